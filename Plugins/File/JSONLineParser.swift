#if canImport(Glibc)
import Glibc
#endif
import CLibBSON
import FerryPluginKit

/// Parses one line of JSON straight into BSON, for the shapes records usually
/// have: objects, arrays, strings, numbers, true/false/null, and the extended
/// JSON values `{"$oid": "<24 hex>"}`, `{"$date": "YYYY-MM-DDTHH:MM:SS[.mmm]Z"}`
/// and `{"$numberDecimal": "<text>"}`. On anything else — another `$` key, a
/// number or date in a rarer form, bad UTF-8, anything malformed — it returns
/// false and the caller parses the line with libbson, which stays the
/// reference: for every line this parser accepts, it produces the bytes
/// libbson would (checked by a differential test). libbson costs several
/// times more per line, which made it the limit of a file-to-file run.
struct JSONLineParser {
    let output = BSONBuffer(capacity: 4096)

    /// The BSON document for `line` in `output`, or false to fall back.
    func parse(_ line: UnsafeRawBufferPointer) -> Bool {
        output.removeAll()
        guard let base = line.baseAddress, line.count > 0 else { return false }
        let start = base.assumingMemoryBound(to: UInt8.self)
        var scanner = Scanner(p: start, end: start + line.count, out: output)
        scanner.skipSpace()
        guard scanner.p < scanner.end, scanner.p.pointee == 0x7B else { return false }
        scanner.p += 1
        guard scanner.object() else { return false }
        scanner.skipSpace()
        return scanner.p == scanner.end
    }
}

private struct Scanner {
    var p: UnsafePointer<UInt8>
    let end: UnsafePointer<UInt8>
    let out: BSONBuffer
    var depth = 0

    /// Deeper documents go to libbson, which decides where nesting stops (about 100 levels).
    static let maxDepth = 64

    init(p: UnsafePointer<UInt8>, end: UnsafePointer<UInt8>, out: BSONBuffer) {
        self.p = p
        self.end = end
        self.out = out
    }

    @inline(__always)
    mutating func skipSpace() {
        while p < end {
            let byte = p.pointee
            guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { return }
            p += 1
        }
    }

    @inline(__always)
    mutating func consume(_ byte: UInt8) -> Bool {
        guard p < end, p.pointee == byte else { return false }
        p += 1
        return true
    }

    /// An object's members and its `}`; `p` is just after the `{`.
    mutating func object() -> Bool {
        depth += 1
        guard depth < Self.maxDepth else { return false }
        let start = out.count
        out.append(littleEndian: Int32(0))
        skipSpace()
        if !consume(0x7D) {
            while true {
                guard consume(0x22) else { return false }
                // A `$` key is an extended JSON operator to libbson (or an error).
                guard p < end, p.pointee != 0x24 else { return false }
                let typeAt = out.count
                out.append(byte: 0)
                guard string() else { return false }
                skipSpace()
                guard consume(0x3A) else { return false }
                skipSpace()
                let type = value()
                guard type != 0 else { return false }
                out.patch(byte: type, at: typeAt)
                skipSpace()
                if consume(0x2C) {
                    skipSpace()
                    continue
                }
                guard consume(0x7D) else { return false }
                break
            }
        }
        out.append(byte: 0)
        out.patch(int32: Int32(out.count - start), at: start)
        depth -= 1
        return true
    }

    /// An array's elements and its `]`; `p` is just after the `[`.
    mutating func array() -> Bool {
        depth += 1
        guard depth < Self.maxDepth else { return false }
        let start = out.count
        out.append(littleEndian: Int32(0))
        skipSpace()
        if !consume(0x5D) {
            var index: Int64 = 0
            while true {
                let typeAt = out.count
                out.append(byte: 0)
                out.appendDecimal(index)
                out.append(byte: 0)
                index += 1
                let type = value()
                guard type != 0 else { return false }
                out.patch(byte: type, at: typeAt)
                skipSpace()
                if consume(0x2C) {
                    skipSpace()
                    continue
                }
                guard consume(0x5D) else { return false }
                break
            }
        }
        out.append(byte: 0)
        out.patch(int32: Int32(out.count - start), at: start)
        depth -= 1
        return true
    }

    /// One value written to `out`; its BSON type byte, or 0 to fall back.
    mutating func value() -> UInt8 {
        guard p < end else { return 0 }
        switch p.pointee {
        case 0x22:  // "
            p += 1
            let start = out.count
            out.append(littleEndian: Int32(0))
            guard string() else { return 0 }
            out.patch(int32: Int32(out.count - start - 4), at: start)
            return 0x02
        case 0x7B:  // {
            p += 1
            skipSpace()
            if p + 1 < end, p.pointee == 0x22, p[1] == 0x24 { return extendedValue() }
            return object() ? 0x03 : 0
        case 0x5B:  // [
            p += 1
            return array() ? 0x04 : 0
        case 0x74:  // true
            guard literal("true") else { return 0 }
            out.append(byte: 1)
            return 0x08
        case 0x66:  // false
            guard literal("false") else { return 0 }
            out.append(byte: 0)
            return 0x08
        case 0x6E:  // null
            return literal("null") ? 0x0A : 0
        case 0x2D, 0x30...0x39:
            return number()
        default:
            return 0
        }
    }

    @inline(__always)
    mutating func literal(_ word: StaticString) -> Bool {
        let length = word.utf8CodeUnitCount
        guard end - p >= length, memcmp(p, word.utf8Start, length) == 0 else { return false }
        p += length
        return true
    }

    /// A JSON string's contents (`p` just after the opening quote) as UTF-8,
    /// NUL-terminated. A key may not hold a NUL; libbson takes no NUL in a
    /// value either, so `\u0000` falls back. Bad UTF-8 falls back.
    mutating func string() -> Bool {
        var runStart = p
        while p < end {
            let byte = p.pointee
            if byte == 0x22 {
                out.append(runStart, p - runStart)
                out.append(byte: 0)
                p += 1
                return true
            }
            if byte == 0x5C {
                out.append(runStart, p - runStart)
                p += 1
                guard escape() else { return false }
                runStart = p
                continue
            }
            if byte < 0x20 { return false }
            if byte < 0x80 {
                p += 1
                continue
            }
            guard utf8Sequence() else { return false }
        }
        return false
    }

    /// Steps over one well-formed multi-byte UTF-8 sequence (no overlongs,
    /// no surrogates, nothing past U+10FFFF).
    @inline(__always)
    mutating func utf8Sequence() -> Bool {
        let lead = p.pointee
        let left = end - p
        @inline(__always) func continuation(_ offset: Int) -> Bool { p[offset] & 0xC0 == 0x80 }
        switch lead {
        case 0xC2...0xDF:
            guard left >= 2, continuation(1) else { return false }
            p += 2
        case 0xE0...0xEF:
            guard left >= 3, continuation(1), continuation(2) else { return false }
            if lead == 0xE0 && p[1] < 0xA0 { return false }
            if lead == 0xED && p[1] > 0x9F { return false }
            p += 3
        case 0xF0...0xF4:
            guard left >= 4, continuation(1), continuation(2), continuation(3) else { return false }
            if lead == 0xF0 && p[1] < 0x90 { return false }
            if lead == 0xF4 && p[1] > 0x8F { return false }
            p += 4
        default:
            return false
        }
        return true
    }

    /// One escape (`p` just after the backslash), decoded into `out`.
    mutating func escape() -> Bool {
        guard p < end else { return false }
        let byte = p.pointee
        p += 1
        switch byte {
        case 0x22, 0x5C, 0x2F: out.append(byte: byte)
        case 0x62: out.append(byte: 0x08)
        case 0x66: out.append(byte: 0x0C)
        case 0x6E: out.append(byte: 0x0A)
        case 0x72: out.append(byte: 0x0D)
        case 0x74: out.append(byte: 0x09)
        case 0x75:
            guard var scalar = hex4() else { return false }
            if scalar == 0 { return false }
            if scalar >= 0xDC00 && scalar <= 0xDFFF { return false }
            if scalar >= 0xD800 && scalar <= 0xDBFF {
                guard end - p >= 6, p[0] == 0x5C, p[1] == 0x75 else { return false }
                p += 2
                guard let low = hex4(), low >= 0xDC00, low <= 0xDFFF else { return false }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            }
            appendUTF8(scalar)
        default:
            return false
        }
        return true
    }

    @inline(__always)
    mutating func hex4() -> UInt32? {
        guard end - p >= 4 else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = Self.hexValue(p.pointee) else { return nil }
            value = value << 4 | UInt32(digit)
            p += 1
        }
        return value
    }

    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x61...0x66: byte - 0x61 + 10
        case 0x41...0x46: byte - 0x41 + 10
        default: nil
        }
    }

    func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            out.append(byte: UInt8(scalar))
        case 0x80..<0x800:
            out.append(byte: UInt8(0xC0 | scalar >> 6))
            out.append(byte: UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            out.append(byte: UInt8(0xE0 | scalar >> 12))
            out.append(byte: UInt8(0x80 | (scalar >> 6) & 0x3F))
            out.append(byte: UInt8(0x80 | scalar & 0x3F))
        default:
            out.append(byte: UInt8(0xF0 | scalar >> 18))
            out.append(byte: UInt8(0x80 | (scalar >> 12) & 0x3F))
            out.append(byte: UInt8(0x80 | (scalar >> 6) & 0x3F))
            out.append(byte: UInt8(0x80 | scalar & 0x3F))
        }
    }

    /// A JSON number: an integer of at most 18 digits as int32 when it fits,
    /// else int64 (as libbson does); a fraction or exponent as a double.
    mutating func number() -> UInt8 {
        let start = p
        let negative = p.pointee == 0x2D
        if negative { p += 1 }
        guard p < end, isDigit(p.pointee) else { return 0 }
        // A leading zero followed by a digit is not JSON.
        if p.pointee == 0x30, p + 1 < end, isDigit(p[1]) { return 0 }
        var magnitude: UInt64 = 0
        var digits = 0
        while p < end, isDigit(p.pointee) {
            magnitude = magnitude &* 10 &+ UInt64(p.pointee - 0x30)
            digits += 1
            p += 1
        }
        var isDouble = false
        if p < end, p.pointee == 0x2E {
            isDouble = true
            p += 1
            guard p < end, isDigit(p.pointee) else { return 0 }
            while p < end, isDigit(p.pointee) { p += 1 }
        }
        if p < end, p.pointee | 0x20 == 0x65 {
            isDouble = true
            p += 1
            if p < end, p.pointee == 0x2B || p.pointee == 0x2D { p += 1 }
            guard p < end, isDigit(p.pointee) else { return 0 }
            while p < end, isDigit(p.pointee) { p += 1 }
        }
        if !isDouble {
            // -0 and integers near the int64 limits: libbson's own rules apply.
            guard digits <= 18, !(negative && magnitude == 0) else { return 0 }
            let value = negative ? -Int64(magnitude) : Int64(magnitude)
            if let small = Int32(exactly: value) {
                out.append(littleEndian: small)
                return 0x10
            }
            out.append(littleEndian: value)
            return 0x12
        }
        let length = p - start
        guard length < 64 else { return 0 }
        var text: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        let value = withUnsafeMutableBytes(of: &text) { scratch -> Double in
            scratch.baseAddress!.copyMemory(from: start, byteCount: length)
            return strtod(scratch.baseAddress!.assumingMemoryBound(to: CChar.self), nil)
        }
        guard value.isFinite else { return 0 }
        out.append(littleEndian: value.bitPattern)
        return 0x01
    }

    @inline(__always)
    func isDigit(_ byte: UInt8) -> Bool { byte &- 0x30 < 10 }

    /// `{"$oid": …}`, `{"$date": "…"}` or `{"$numberDecimal": "…"}` with `p`
    /// on the key's opening quote; the value and the closing `}` are consumed.
    mutating func extendedValue() -> UInt8 {
        let type: UInt8
        if literal("\"$oid\"") {
            type = 0x07
        } else if literal("\"$date\"") {
            type = 0x09
        } else if literal("\"$numberDecimal\"") {
            type = 0x13
        } else {
            return 0
        }
        skipSpace()
        guard consume(0x3A) else { return 0 }
        skipSpace()
        guard consume(0x22) else { return 0 }
        // The value: plain ASCII without escapes, else libbson decides.
        let start = p
        while p < end, p.pointee != 0x22 {
            guard p.pointee >= 0x20, p.pointee < 0x80, p.pointee != 0x5C else { return 0 }
            p += 1
        }
        guard p < end else { return 0 }
        let text = UnsafeBufferPointer(start: start, count: p - start)
        p += 1
        skipSpace()
        guard consume(0x7D) else { return 0 }
        switch type {
        case 0x07: return objectId(text) ? type : 0
        case 0x09: return date(text) ? type : 0
        default: return decimal(text) ? type : 0
        }
    }

    func objectId(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        guard text.count == 24 else { return false }
        out.reserve(12)
        for index in 0..<12 {
            guard let high = Self.hexValue(text[2 * index]), let low = Self.hexValue(text[2 * index + 1]) else { return false }
            out.append(byte: high << 4 | low)
        }
        return true
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` or `…:SS.mmmZ`, years 1970 through 9999 (the
    /// form libbson writes in relaxed mode); other forms fall back.
    func date(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        guard text.count == 20 || text.count == 24, text[text.count - 1] == 0x5A else { return false }
        @inline(__always) func digits(_ at: Int, _ count: Int) -> Int? {
            var value = 0
            for index in at..<(at + count) {
                let digit = text[index] &- 0x30
                guard digit < 10 else { return nil }
                value = value * 10 + Int(digit)
            }
            return value
        }
        guard text[4] == 0x2D, text[7] == 0x2D, text[10] == 0x54, text[13] == 0x3A, text[16] == 0x3A,
            let year = digits(0, 4), let month = digits(5, 2), let day = digits(8, 2),
            let hour = digits(11, 2), let minute = digits(14, 2), let second = digits(17, 2),
            year >= 1970, (1...12).contains(month), day >= 1, day <= CivilDate.daysInMonth(year: year, month: month),
            hour < 24, minute < 60, second < 60
        else { return false }
        var milliseconds = 0
        if text.count == 24 {
            guard text[19] == 0x2E, let fraction = digits(20, 3) else { return false }
            milliseconds = fraction
        }
        let days = CivilDate.days(year: year, month: month, day: day)
        let value = Int64(((days * 24 + hour) * 60 + minute) * 60 + second) * 1000 + Int64(milliseconds)
        out.append(littleEndian: value)
        return true
    }

    func decimal(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        guard text.count < 64 else { return false }
        var scratch: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        var value = bson_decimal128_t()
        let parsed = withUnsafeMutableBytes(of: &scratch) { buffer -> Bool in
            buffer.baseAddress!.copyMemory(from: text.baseAddress!, byteCount: text.count)
            return bson_decimal128_from_string(buffer.baseAddress!.assumingMemoryBound(to: CChar.self), &value)
        }
        guard parsed else { return false }
        out.append(littleEndian: value.low)
        out.append(littleEndian: value.high)
        return true
    }
}
