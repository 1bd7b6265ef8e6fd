import CLibBSON
import FerryPluginKit

/// Writes one BSON document as one line of relaxed extended JSON, laid out as
/// libbson lays it out (`{ "a" : 1, "b" : [ 2 ] }`), but with each finite
/// double as the shortest text that reads back to the same bits (`0.01`, not
/// libbson's 20 digits). NaN and the infinities are not JSON numbers: they
/// are written as `{ "$numberDouble" : "NaN" }`, `"Infinity"`, `"-Infinity"`.
/// Types JSON has no form for are written as libbson writes them in relaxed
/// extended JSON: `{ "$oid" : "…" }`, `{ "$date" : "…Z" }` (years 1970–9999,
/// else `{ "$numberLong" : "…" }`), `{ "$numberDecimal" : "…" }`, `{ "$binary" : … }`.
///
/// Documents made only of common types (double, string, document, array,
/// ObjectId, bool, date, null, int32, int64, decimal128) are checked and
/// written in one pass over the bytes; any other document is validated and
/// written element by element with libbson's help, as before — same text,
/// several times the cost.
struct JSONLineWriter {
    /// Holds a one-field document while libbson renders a value of another type.
    private let wrapper = ByteBuffer(capacity: 256)

    /// Appends the document's line, without a newline, to `output`; false
    /// (and `output` as it was) when the document is not valid BSON (bad
    /// lengths, bad UTF-8).
    func render(_ document: DocumentView, into output: BSONBuffer) -> Bool {
        let start = output.count
        if let base = document.bytes.baseAddress, FastWriter.render(base, document.byteCount, into: output) {
            return true
        }
        output.count = start
        guard ExtendedJSON.firstInvalidOffset(document) == nil, appendDocument(document, array: false, output) else {
            output.count = start
            return false
        }
        return true
    }

    private func appendDocument(_ document: DocumentView, array: Bool, _ output: BSONBuffer) -> Bool {
        var first = true
        output.append(array ? "[ " : "{ ")
        for element in document {
            if !first { output.append(", ") }
            first = false
            if !array {
                let key = element.keyBytes
                appendQuoted(key.baseAddress.map { UnsafePointer($0.assumingMemoryBound(to: UInt8.self)) }, key.count, output)
                output.append(" : ")
            }
            guard appendValue(element, output) else { return false }
        }
        output.append(first ? (array ? "]" : "}") : (array ? " ]" : " }"))
        return true
    }

    private func appendValue(_ element: BSONElement, _ output: BSONBuffer) -> Bool {
        switch element.type {
        case .double:
            appendDouble(element.doubleValue!, output)
        case .string:
            let text = element.stringBytes!
            appendQuoted(text.baseAddress.map { UnsafePointer($0.assumingMemoryBound(to: UInt8.self)) }, text.count, output)
        case .document, .array:
            return appendDocument(element.documentValue!, array: element.type == .array, output)
        case .int32, .int64:
            output.appendDecimal(element.int64Value!)
        case .bool:
            output.append(element.boolValue! ? "true" : "false")
        case .null:
            output.append("null")
        default:
            return appendThroughLibBSON(element, output)
        }
        return true
    }

    /// Renders `{ "v" : value }` with libbson and keeps the value's text.
    private func appendThroughLibBSON(_ element: BSONElement, _ output: BSONBuffer) -> Bool {
        wrapper.removeAll()
        var writer = DocumentWriter(buffer: wrapper)
        writer.append("v", element: element)
        writer.finish()
        guard let text = ExtendedJSON.render(DocumentView(wrapper.bytes)) else { return false }
        let prefix = #"{ "v" : "#, suffix = " }"
        guard text.hasPrefix(prefix), text.hasSuffix(suffix), text.utf8.count > prefix.utf8.count + suffix.utf8.count else { return false }
        var value = String(text.dropFirst(prefix.count).dropLast(suffix.count))
        value.withUTF8 { output.append(UnsafeRawBufferPointer($0)) }
        return true
    }
}

func appendDouble(_ value: Double, _ output: BSONBuffer) {
    if value.isNaN {
        output.append(#"{ "$numberDouble" : "NaN" }"#)
    } else if value.isInfinite {
        output.append(value < 0 ? #"{ "$numberDouble" : "-Infinity" }"# : #"{ "$numberDouble" : "Infinity" }"#)
    } else {
        // Swift's description is the shortest round-trip text, and always
        // has a '.' or an exponent, so it reads back as a double, not an integer.
        var text = value.description
        text.withUTF8 { output.append(UnsafeRawBufferPointer($0)) }
    }
}

/// A JSON string: quotes, backslashes and control characters escaped,
/// everything else (valid UTF-8, checked before) as it is.
@inline(__always)
func appendQuoted(_ bytes: UnsafePointer<UInt8>?, _ count: Int, _ output: BSONBuffer) {
    output.append(byte: 0x22)
    guard let bytes else {
        output.append(byte: 0x22)
        return
    }
    var runStart = 0
    for index in 0..<count {
        let byte = bytes[index]
        guard byte < 0x20 || byte == 0x22 || byte == 0x5C else { continue }
        if runStart < index { output.append(bytes + runStart, index - runStart) }
        appendEscape(byte, output)
        runStart = index + 1
    }
    if runStart < count { output.append(bytes + runStart, count - runStart) }
    output.append(byte: 0x22)
}

@inline(never)
private func appendEscape(_ byte: UInt8, _ output: BSONBuffer) {
    switch byte {
    case 0x22: output.append(#"\""#)
    case 0x5C: output.append(#"\\"#)
    case 0x0A: output.append(#"\n"#)
    case 0x0D: output.append(#"\r"#)
    case 0x09: output.append(#"\t"#)
    case 0x08: output.append(#"\b"#)
    case 0x0C: output.append(#"\f"#)
    default:
        output.append(#"\u00"#)
        output.append(byte: hexDigits[Int(byte >> 4)])
        output.append(byte: hexDigits[Int(byte & 15)])
    }
}

private let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

/// Checks and writes a document in one pass over its bytes; false on
/// anything it does not take — a rarer type, a bool other than 0 or 1, a
/// date outside 1970–9999, bad UTF-8, bad lengths — and the caller starts
/// over on the careful path, which also decides what is invalid.
///
/// It writes through a raw cursor into room reserved up front: no BSON
/// element renders to more than six times its size plus 64 bytes (a string
/// of control characters, each `\u00XX`; an empty key's null, `, "" : null`).
private struct FastWriter {
    let out: BSONBuffer
    var w: UnsafeMutablePointer<UInt8>

    static func render(_ p: UnsafeRawPointer, _ length: Int, into out: BSONBuffer) -> Bool {
        out.reserve(length * 6 + 64)
        var writer = FastWriter(out: out, w: (out.base + out.count).assumingMemoryBound(to: UInt8.self))
        guard writer.document(p, length, array: false, depth: 0) else { return false }
        out.count = UnsafeMutableRawPointer(writer.w) - out.base
        return true
    }

    @inline(__always)
    mutating func put(_ byte: UInt8) {
        w.pointee = byte
        w += 1
    }

    @inline(__always)
    mutating func put(_ text: StaticString) {
        w.update(from: text.utf8Start, count: text.utf8CodeUnitCount)
        w += text.utf8CodeUnitCount
    }

    @inline(__always)
    mutating func put(_ bytes: UnsafePointer<UInt8>, _ count: Int) {
        w.update(from: bytes, count: count)
        w += count
    }

    mutating func document(_ p: UnsafeRawPointer, _ length: Int, array: Bool, depth: Int) -> Bool {
        guard length >= 5, depth < 100,
            Int(Int32(littleEndian: p.loadUnaligned(as: Int32.self))) == length,
            p.load(fromByteOffset: length - 1, as: UInt8.self) == 0
        else { return false }
        let end = length - 1
        var i = 4
        var first = true
        put(array ? "[ " : "{ ")
        while i < end {
            let type = p.load(fromByteOffset: i, as: UInt8.self)
            i += 1
            guard let nul = memchr(p + i, 0, end - i) else { return false }
            let keyLength = p.distance(to: UnsafeRawPointer(nul)) - i
            let key = (p + i).assumingMemoryBound(to: UInt8.self)
            if first {
                first = false
            } else {
                put(", ")
            }
            if !array {
                guard quoted(key, keyLength) else { return false }
                put(" : ")
            } else if !isUTF8(key, keyLength) {
                return false
            }
            i += keyLength + 1
            let left = end - i
            let value = p + i
            switch type {
            case 0x01:
                guard left >= 8 else { return false }
                out.count = UnsafeMutableRawPointer(w) - out.base
                appendDouble(Double(bitPattern: UInt64(littleEndian: value.loadUnaligned(as: UInt64.self))), out)
                w = (out.base + out.count).assumingMemoryBound(to: UInt8.self)
                i += 8
            case 0x02:
                guard left >= 4 else { return false }
                let size = Int(Int32(littleEndian: value.loadUnaligned(as: Int32.self)))
                guard size >= 1, size <= left - 4, value.load(fromByteOffset: 4 + size - 1, as: UInt8.self) == 0,
                    quoted((value + 4).assumingMemoryBound(to: UInt8.self), size - 1)
                else { return false }
                i += 4 + size
            case 0x03, 0x04:
                guard left >= 5 else { return false }
                let size = Int(Int32(littleEndian: value.loadUnaligned(as: Int32.self)))
                guard size >= 5, size <= left, document(value, size, array: type == 0x04, depth: depth + 1) else { return false }
                i += size
            case 0x07:
                guard left >= 12 else { return false }
                put(#"{ "$oid" : ""#)
                for index in 0..<12 {
                    let byte = value.load(fromByteOffset: index, as: UInt8.self)
                    put(hexDigit(byte >> 4))
                    put(hexDigit(byte & 15))
                }
                put(#"" }"#)
                i += 12
            case 0x08:
                guard left >= 1 else { return false }
                switch value.load(as: UInt8.self) {
                case 0: put("false")
                case 1: put("true")
                default: return false
                }
                i += 1
            case 0x09:
                guard left >= 8 else { return false }
                let milliseconds = Int64(littleEndian: value.loadUnaligned(as: Int64.self))
                guard milliseconds >= 0, milliseconds <= 253_402_300_799_999 else { return false }
                date(milliseconds)
                i += 8
            case 0x0A:
                put("null")
            case 0x10:
                guard left >= 4 else { return false }
                decimal(Int64(Int32(littleEndian: value.loadUnaligned(as: Int32.self))))
                i += 4
            case 0x12:
                guard left >= 8 else { return false }
                decimal(Int64(littleEndian: value.loadUnaligned(as: Int64.self)))
                i += 8
            case 0x13:
                guard left >= 16 else { return false }
                var decimal = bson_decimal128_t()
                decimal.low = UInt64(littleEndian: value.loadUnaligned(as: UInt64.self))
                decimal.high = UInt64(littleEndian: value.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                put(#"{ "$numberDecimal" : ""#)
                // BSON_DECIMAL128_STRING (43) bytes of room, written in place.
                w.withMemoryRebound(to: CChar.self, capacity: 43) { chars in
                    bson_decimal128_to_string(&decimal, chars)
                }
                w += strlen(UnsafeRawPointer(w).assumingMemoryBound(to: CChar.self))
                put(#"" }"#)
                i += 16
            default:
                return false
            }
        }
        guard i == end else { return false }
        put(first ? (array ? "]" : "}") : (array ? " ]" : " }"))
        return true
    }

    @inline(__always)
    func hexDigit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? 0x30 + nibble : 0x57 + nibble }

    @inline(__always)
    mutating func decimal(_ value: Int64) {
        var magnitude = value.magnitude
        if value < 0 { put(0x2D) }
        var digits = 1
        var probe = magnitude
        while probe >= 10 {
            probe /= 10
            digits += 1
        }
        var cursor = w + digits
        w = cursor
        repeat {
            cursor -= 1
            cursor.pointee = UInt8(truncatingIfNeeded: 0x30 + magnitude % 10)
            magnitude /= 10
        } while magnitude > 0
    }

    /// A JSON string of well-formed UTF-8 (NULs allowed): quotes,
    /// backslashes and control characters escaped. False on bad UTF-8.
    @inline(__always)
    mutating func quoted(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Bool {
        put(0x22)
        var index = 0
        var runStart = 0
        while index < count {
            let byte = bytes[index]
            if byte >= 0x80 {
                guard let length = utf8Length(bytes + index, count - index) else { return false }
                index += length
                continue
            }
            guard byte < 0x20 || byte == 0x22 || byte == 0x5C else {
                index += 1
                continue
            }
            put(bytes + runStart, index - runStart)
            escape(byte)
            index += 1
            runStart = index
        }
        put(bytes + runStart, count - runStart)
        put(0x22)
        return true
    }

    mutating func escape(_ byte: UInt8) {
        switch byte {
        case 0x22: put(#"\""#)
        case 0x5C: put(#"\\"#)
        case 0x0A: put(#"\n"#)
        case 0x0D: put(#"\r"#)
        case 0x09: put(#"\t"#)
        case 0x08: put(#"\b"#)
        case 0x0C: put(#"\f"#)
        default:
            put(#"\u00"#)
            put(hexDigit(byte >> 4))
            put(hexDigit(byte & 15))
        }
    }

    /// `{ "$date" : "YYYY-MM-DDTHH:MM:SS[.mmm]Z" }`, milliseconds only when not zero.
    mutating func date(_ milliseconds: Int64) {
        let millis = Int(milliseconds % 1000)
        let seconds = Int(milliseconds / 1000)
        let (year, month, day) = CivilDate.civil(days: seconds / 86400)
        let time = seconds % 86400
        put(#"{ "$date" : ""#)
        digits(year, 4)
        put(0x2D)
        digits(month, 2)
        put(0x2D)
        digits(day, 2)
        put(0x54)
        digits(time / 3600, 2)
        put(0x3A)
        digits(time / 60 % 60, 2)
        put(0x3A)
        digits(time % 60, 2)
        if millis != 0 {
            put(0x2E)
            digits(millis, 3)
        }
        put(#"Z" }"#)
    }

    @inline(__always)
    mutating func digits(_ value: Int, _ width: Int) {
        var rest = value
        var index = width
        while index > 0 {
            index -= 1
            w[index] = UInt8(truncatingIfNeeded: 0x30 + rest % 10)
            rest /= 10
        }
        w += width
    }

    /// Well-formed UTF-8 (NULs allowed); stricter than libbson where they
    /// differ, so a doubtful string goes the careful way.
    @inline(__always)
    func isUTF8(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Bool {
        var index = 0
        while index < count {
            if bytes[index] < 0x80 {
                index += 1
                continue
            }
            guard let length = utf8Length(bytes + index, count - index) else { return false }
            index += length
        }
        return true
    }

    /// The length of the well-formed multi-byte sequence at `bytes` (no
    /// overlongs, no surrogates, nothing past U+10FFFF), or nil.
    @inline(__always)
    func utf8Length(_ bytes: UnsafePointer<UInt8>, _ left: Int) -> Int? {
        let lead = bytes[0]
        @inline(__always) func continuation(_ offset: Int) -> Bool { bytes[offset] & 0xC0 == 0x80 }
        switch lead {
        case 0xC2...0xDF:
            guard left >= 2, continuation(1) else { return nil }
            return 2
        case 0xE0...0xEF:
            guard left >= 3, continuation(1), continuation(2) else { return nil }
            if lead == 0xE0 && bytes[1] < 0xA0 { return nil }
            if lead == 0xED && bytes[1] > 0x9F { return nil }
            return 3
        case 0xF0...0xF4:
            guard left >= 4, continuation(1), continuation(2), continuation(3) else { return nil }
            if lead == 0xF0 && bytes[1] < 0x90 { return nil }
            if lead == 0xF4 && bytes[1] > 0x8F { return nil }
            return 4
        default:
            return nil
        }
    }
}
