#if canImport(Glibc)
import Glibc
#endif
import FerryPluginKit

/// Decodes rows of `COPY … TO STDOUT (FORMAT binary)` into BSON documents.
///
/// The server skips its text output functions (numeric and timestamp output
/// cost it more than sending the binary form), and integers, floats, text,
/// booleans, uuids and bytea arrive ready to use. Numerics, dates and
/// timestamps are rendered here as the server's own text (`numeric_out`,
/// ISO `date_out`/`timestamp_out` in UTC) and go through the text decoder,
/// so every value becomes exactly the BSON the text format gives.
/// Columns of other types (real, arrays) keep the whole read on text format:
/// see `reads(_:)`.
final class CopyBinaryDecoder {
    let columns: [PGColumn]
    let text: CopyTextDecoder
    /// Per column, in raw buffers: the per-field loop reads them without
    /// copying a `PGColumn` (whose strings it would retain and release).
    let keys: BSONKeyTable
    let kinds: UnsafeMutableBufferPointer<Kind>
    /// Start and length of each field of the current row (-1: NULL).
    let fieldStarts: UnsafeMutableBufferPointer<Int>
    let fieldLengths: UnsafeMutableBufferPointer<Int>
    /// A value's text, rendered here (numeric, date, timestamp). One thread
    /// decodes: no dynamic exclusivity checks (they were a tenth of a copy's time).
    @exclusivity(unchecked) var scratch: [UInt8] = []
    /// Room for one ISO timestamp (`isoTimestamp`).
    let iso = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 32)

    /// The column types read in binary.
    enum Kind: UInt8 {
        case int2, int4, int8, float8, numeric, text, bool, date, timestamp, timestamptz, uuid, json, jsonb, bytea

        init?(_ type: PGType) {
            switch type {
            case .int2: self = .int2
            case .int4: self = .int4
            case .int8: self = .int8
            case .float8: self = .float8
            case .numeric: self = .numeric
            case .text: self = .text
            case .bool: self = .bool
            case .date: self = .date
            case .timestamp: self = .timestamp
            case .timestamptz: self = .timestamptz
            case .uuid: self = .uuid
            case .json: self = .json
            case .jsonb: self = .jsonb
            case .bytea: self = .bytea
            // real: the server's shortest float4 text, widened, is not the float4 widened.
            case .float4, .array: return nil
            }
        }
    }

    struct Failure: Error { let message: String }

    static let signature: [UInt8] = [0x50, 0x47, 0x43, 0x4F, 0x50, 0x59, 0x0A, 0xFF, 0x0D, 0x0A, 0x00]

    /// Whether every column can be read in binary (and, for the key and
    /// cursor columns, turned back into text for the resume position).
    static func reads(_ columns: [PGColumn]) -> Bool {
        columns.allSatisfy { Kind($0.type) != nil }
    }

    init(columns: [PGColumn], text: CopyTextDecoder) {
        self.columns = columns
        self.text = text
        keys = BSONKeyTable(columns.map(\.name))
        kinds = .allocate(capacity: max(columns.count, 1))
        for (index, column) in columns.enumerated() { (kinds.baseAddress! + index).initialize(to: Kind(column.type) ?? .text) }
        fieldStarts = .allocate(capacity: max(columns.count, 1))
        fieldLengths = .allocate(capacity: max(columns.count, 1))
        scratch.reserveCapacity(64)
    }

    deinit {
        iso.deallocate()
        kinds.deallocate()
        fieldStarts.deallocate()
        fieldLengths.deallocate()
    }

    /// The length of the file header at the start of the first message.
    static func headerLength(_ message: UnsafeRawBufferPointer) throws -> Int {
        guard message.count >= 19, signature.withUnsafeBytes({ memcmp($0.baseAddress!, message.baseAddress!, 11) == 0 }) else {
            throw Failure(message: "binary COPY data does not start with the PGCOPY signature")
        }
        let extensionLength = Int(UInt32(bigEndian: message.loadUnaligned(fromByteOffset: 15, as: UInt32.self)))
        guard 19 + extensionLength <= message.count else { throw Failure(message: "binary COPY header is cut short") }
        return 19 + extensionLength
    }

    /// Whether `message` is the end-of-data marker (a field count of -1).
    static func isTrailer(_ message: UnsafeRawBufferPointer) -> Bool {
        message.count == 2 && message[0] == 0xFF && message[1] == 0xFF
    }

    /// Finds the fields of one row.
    func split(_ row: UnsafeRawBufferPointer) throws {
        guard row.count >= 2 else { throw Failure(message: "binary row of \(row.count) bytes") }
        let count = Int(Int16(bigEndian: row.loadUnaligned(as: Int16.self)))
        guard count == columns.count else { throw Failure(message: "row has \(count) fields, expected \(columns.count)") }
        var offset = 2
        for index in 0..<count {
            guard offset + 4 <= row.count else { throw Failure(message: "binary row cut short") }
            let length = Int(Int32(bigEndian: row.loadUnaligned(fromByteOffset: offset, as: Int32.self)))
            offset += 4
            fieldStarts[index] = offset
            fieldLengths[index] = length
            if length > 0 {
                guard offset + length <= row.count else { throw Failure(message: "binary row cut short") }
                offset += length
            }
        }
        guard offset == row.count else { throw Failure(message: "binary row has \(row.count - offset) trailing bytes") }
    }

    func decode(_ row: UnsafeRawBufferPointer, into writer: inout DocumentWriter) throws {
        try split(row)
        for index in 0..<keys.count {
            let length = fieldLengths[index]
            if length < 0 {
                writer.appendNull(keys[index])
                continue
            }
            let value = UnsafeRawBufferPointer(start: row.baseAddress! + fieldStarts[index], count: length)
            do {
                try append(index, value, &writer)
            } catch let failure as Failure {
                throw CopyTextDecoder.Failure(message: "column '\(columns[index].name)' (\(columns[index].sqlType)): \(failure.message)")
            } catch let failure as CopyTextDecoder.Failure {
                throw CopyTextDecoder.Failure(message: "column '\(columns[index].name)' (\(columns[index].sqlType)): \(failure.message)")
            } catch let failure as JSONToBSON.Failure {
                throw CopyTextDecoder.Failure(message: "column '\(columns[index].name)' (\(columns[index].sqlType)): \(failure.message)")
            }
        }
    }

    private func append(_ index: Int, _ value: UnsafeRawBufferPointer, _ writer: inout DocumentWriter) throws {
        func need(_ size: Int) throws {
            guard value.count == size else { throw Failure(message: "binary value of \(value.count) bytes, expected \(size)") }
        }
        let key = keys[index]
        let kind = kinds[index]
        switch kind {
        case .int2:
            try need(2)
            writer.append(key, Int32(Int16(bigEndian: value.loadUnaligned(as: Int16.self))))
        case .int4:
            try need(4)
            writer.append(key, Int32(bigEndian: value.loadUnaligned(as: Int32.self)))
        case .int8:
            try need(8)
            writer.append(key, Int64(bigEndian: value.loadUnaligned(as: Int64.self)))
        case .float8:
            try need(8)
            let number = Double(bitPattern: UInt64(bigEndian: value.loadUnaligned(as: UInt64.self)))
            // The text format's "NaN" reads back as the default NaN.
            writer.append(key, number.isNaN ? Double.nan : number)
        case .text:
            writer.appendString(key, utf8: value)
        case .bool:
            try need(1)
            writer.append(key, value[0] != 0)
        case .uuid:
            try need(16)
            writer.appendBinary(key, subtype: 4, value)
        case .bytea:
            writer.appendBinary(key, subtype: 0, value)
        case .json:
            try JSONToBSON.append(columns[index].name, json: value, to: &writer)
        case .jsonb:
            guard value.count >= 1, value[0] == 1 else { throw Failure(message: "jsonb binary format version \(value.first ?? 0), expected 1") }
            try JSONToBSON.append(columns[index].name, json: UnsafeRawBufferPointer(rebasing: value[1...]), to: &writer)
        case .numeric, .date, .timestamp, .timestamptz:
            // The common values go straight to BSON; the rest through the
            // server's text and the text decoder. Either way the same BSON
            // (checked against the text format on random values).
            if direct(kind, key, value, &writer) { return }
            try serverText(columns[index].type, value)
            try scratch.withUnsafeBytes { try text.append(columns[index].name, columns[index].type, $0, &writer) }
        }
    }

    /// Numerics that fit a decimal128, and dates and timestamps of years 1
    /// to 9999, written as the text route writes them; false leaves the
    /// value (and any error about it) to that route.
    private func direct(_ kind: Kind, _ key: BSONKey, _ value: UnsafeRawBufferPointer, _ writer: inout DocumentWriter) -> Bool {
        switch kind {
        case .numeric:
            guard text.options.numeric == .decimal128, let decimal = Self.decimal128(value) else { return false }
            writer.appendDecimal128(key, low: decimal.low, high: decimal.high)
        case .date:
            guard value.count == 4 else { return false }
            let days = Int64(Int32(bigEndian: value.loadUnaligned(as: Int32.self)))
            guard days >= Self.firstDirectDay, days < Self.endDirectDay else { return false }
            writer.appendDatetime(key, milliseconds: (days + 10957) * 86_400_000)
        default:
            guard value.count == 8 else { return false }
            let micros = Int64(bigEndian: value.loadUnaligned(as: Int64.self))
            guard micros >= Self.firstDirectDay * 86_400_000_000, micros < Self.endDirectDay * 86_400_000_000 else { return false }
            let unix = micros + 946_684_800_000_000
            switch text.options.timestamps {
            case .string:
                writer.appendString(key, utf8: isoTimestamp(micros))
            case .datetime:
                guard unix % 1000 == 0 else { return false }
                writer.appendDatetime(key, milliseconds: unix / 1000)
            case .datetime_truncate:
                writer.appendDatetime(key, milliseconds: unix >= 0 ? unix / 1000 : (unix - 999) / 1000)
            }
        }
        return true
    }

    /// Days since 2000-01-01 of 0001-01-01 and of 10000-01-01: the years whose
    /// text has four digits and no BC, the shape the text route edits into ISO.
    static let firstDirectDay: Int64 = -730_119
    static let endDirectDay: Int64 = 2_921_940

    /// A binary numeric as the decimal128 its `numeric_out` text encodes to,
    /// digit by digit through the same accumulator; nil for NaN, infinities,
    /// malformed values and values with no exact decimal128.
    static func decimal128(_ value: UnsafeRawBufferPointer) -> (low: UInt64, high: UInt64)? {
        guard value.count >= 8 else { return nil }
        let count = Int(Int16(bigEndian: value.loadUnaligned(as: Int16.self)))
        let weight = Int(Int16(bigEndian: value.loadUnaligned(fromByteOffset: 2, as: Int16.self)))
        let sign = UInt16(bigEndian: value.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        let scale = Int(Int16(bigEndian: value.loadUnaligned(fromByteOffset: 6, as: Int16.self)))
        guard count >= 0, value.count == 8 + 2 * count, scale >= 0, sign == 0x0000 || sign == 0x4000 else { return nil }
        var digits = Decimal128Codec.Digits()
        func group(_ index: Int) -> Int? {
            guard index >= 0 && index < count else { return 0 }
            let group = Int(Int16(bigEndian: value.loadUnaligned(fromByteOffset: 8 + 2 * index, as: Int16.self)))
            return group >= 0 && group <= 9999 ? group : nil
        }
        if weight < 0 {
            guard digits.add(0, afterPoint: false) else { return nil }
        } else {
            for index in 0...weight {
                guard let value = group(index) else { return nil }
                // The first group is printed without leading zeros, the rest with four digits.
                var divisor = index == 0 ? (value >= 1000 ? 1000 : value >= 100 ? 100 : value >= 10 ? 10 : 1) : 1000
                while divisor > 0 {
                    guard digits.add(UInt8(value / divisor % 10), afterPoint: false) else { return nil }
                    divisor /= 10
                }
            }
        }
        var written = 0
        var index = weight + 1
        while written < scale {
            guard let value = group(index) else { return nil }
            var divisor = 1000
            while divisor > 0 && written < scale {
                guard digits.add(UInt8(value / divisor % 10), afterPoint: true) else { return nil }
                divisor /= 10
                written += 1
            }
            index += 1
        }
        return digits.encode(negative: sign == 0x4000)
    }

    /// The server's text of field `index` of the row last split (for the
    /// resume position), nil for NULL.
    func text(_ row: UnsafeRawBufferPointer, _ index: Int) throws -> String? {
        let length = fieldLengths[index]
        guard length >= 0 else { return nil }
        let value = UnsafeRawBufferPointer(rebasing: row[fieldStarts[index]..<(fieldStarts[index] + length)])
        switch columns[index].type {
        case .int2 where length == 2: return String(Int16(bigEndian: value.loadUnaligned(as: Int16.self)))
        case .int4 where length == 4: return String(Int32(bigEndian: value.loadUnaligned(as: Int32.self)))
        case .int8 where length == 8: return String(Int64(bigEndian: value.loadUnaligned(as: Int64.self)))
        case .uuid where length == 16: return UUIDText.string(value)
        case .bool where length == 1: return value[0] != 0 ? "t" : "f"
        case .numeric, .date, .timestamp, .timestamptz:
            try serverText(columns[index].type, value)
            return String(decoding: scratch, as: UTF8.self)
        case .float8 where length == 8:
            let number = Double(bitPattern: UInt64(bigEndian: value.loadUnaligned(as: UInt64.self)))
            return number.isNaN ? "NaN" : number.isInfinite ? (number < 0 ? "-Infinity" : "Infinity") : number.description
        case .text, .json: return String(decoding: value, as: UTF8.self)
        case .jsonb where length >= 1: return String(decoding: value[1...], as: UTF8.self)
        case .bytea: return "\\x" + Hex.string(value)
        default: throw Failure(message: "binary value of \(length) bytes for type \(columns[index].sqlType)")
        }
    }

    /// Renders a binary numeric, date or timestamp into `scratch` as the
    /// server's text output would (DateStyle ISO, TimeZone UTC).
    func serverText(_ type: PGType, _ value: UnsafeRawBufferPointer) throws {
        scratch.removeAll(keepingCapacity: true)
        switch type {
        case .numeric: try numericText(value)
        case .date:
            guard value.count == 4 else { throw Failure(message: "binary date of \(value.count) bytes") }
            let days = Int32(bigEndian: value.loadUnaligned(as: Int32.self))
            if days == .max { return put("infinity") }
            if days == .min { return put("-infinity") }
            let (year, month, day) = Self.civil(daysSince1970: Int64(days) + 10957)
            putDate(year, month, day)
            if year <= 0 { put(" BC") }
        default:
            guard value.count == 8 else { throw Failure(message: "binary timestamp of \(value.count) bytes") }
            let micros = Int64(bigEndian: value.loadUnaligned(as: Int64.self))
            if micros == .max { return put("infinity") }
            if micros == .min { return put("-infinity") }
            let year = putTimestamp(micros)
            if type == .timestamptz { put("+00") }
            if year <= 0 { put(" BC") }
        }
    }

    /// A timestamp's civil date, second of the day, and fraction of a second
    /// as timestamp_out shows it: its digits without trailing zeros, and how many.
    static func timestampParts(_ micros: Int64) -> (year: Int64, month: Int, day: Int, seconds: Int, fraction: Int, width: Int) {
        var days = micros / 86_400_000_000
        var rest = micros % 86_400_000_000
        if rest < 0 {
            rest += 86_400_000_000
            days -= 1
        }
        let (year, month, day) = civil(daysSince1970: days + 10957)
        var fraction = Int(rest % 1_000_000)
        var width = fraction == 0 ? 0 : 6
        while width > 0 && fraction % 10 == 0 {
            fraction /= 10
            width -= 1
        }
        return (year, month, day, Int(rest / 1_000_000), fraction, width)
    }

    /// `YYYY-MM-DDTHH:MM:SS[.f]Z` for years 1 to 9999, as the text route
    /// makes it from timestamp_out's text (the fraction without trailing
    /// zeros), written in place: this runs for every timestamp of a copy.
    private func isoTimestamp(_ micros: Int64) -> UnsafeRawBufferPointer {
        let parts = Self.timestampParts(micros)
        let (year, month, day, seconds, width) = (parts.year, parts.month, parts.day, parts.seconds, parts.width)
        var fraction = parts.fraction
        let out = iso
        func pair(_ value: Int, _ at: Int) {
            out[at] = UInt8(truncatingIfNeeded: 0x30 + value / 10)
            out[at + 1] = UInt8(truncatingIfNeeded: 0x30 + value % 10)
        }
        pair(Int(year) / 100, 0)
        pair(Int(year) % 100, 2)
        out[4] = 0x2D
        pair(month, 5)
        out[7] = 0x2D
        pair(day, 8)
        out[10] = 0x54
        pair(seconds / 3600, 11)
        out[13] = 0x3A
        pair(seconds / 60 % 60, 14)
        out[16] = 0x3A
        pair(seconds % 60, 17)
        var count = 19
        if width > 0 {
            out[19] = 0x2E
            for place in stride(from: width, to: 0, by: -1) {
                out[19 + place] = UInt8(truncatingIfNeeded: 0x30 + fraction % 10)
                fraction /= 10
            }
            count = 20 + width
        }
        out[count] = 0x5A
        return UnsafeRawBufferPointer(start: out.baseAddress, count: count + 1)
    }

    /// `YYYY-MM-DD HH:MM:SS[.ffffff]` as timestamp_out writes it (the
    /// fraction without trailing zeros); the year.
    private func putTimestamp(_ micros: Int64) -> Int64 {
        let (year, month, day, seconds, fraction, width) = Self.timestampParts(micros)
        putDate(year, month, day)
        scratch.append(0x20)
        putDigits(seconds / 3600, 2)
        scratch.append(0x3A)
        putDigits(seconds / 60 % 60, 2)
        scratch.append(0x3A)
        putDigits(seconds % 60, 2)
        if width > 0 {
            scratch.append(0x2E)
            putDigits(fraction, width)
        }
        return year
    }

    /// numeric_out: base-10000 digits, weight of the first, sign, display scale.
    private func numericText(_ value: UnsafeRawBufferPointer) throws {
        guard value.count >= 8 else { throw Failure(message: "binary numeric of \(value.count) bytes") }
        let count = Int(Int16(bigEndian: value.loadUnaligned(as: Int16.self)))
        let weight = Int(Int16(bigEndian: value.loadUnaligned(fromByteOffset: 2, as: Int16.self)))
        let sign = UInt16(bigEndian: value.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        let scale = Int(Int16(bigEndian: value.loadUnaligned(fromByteOffset: 6, as: Int16.self)))
        guard count >= 0, value.count == 8 + 2 * count, scale >= 0 else { throw Failure(message: "malformed binary numeric") }
        switch sign {
        case 0xC000: return put("NaN")
        case 0xD000: return put("Infinity")
        case 0xF000: return put("-Infinity")
        case 0x0000, 0x4000: break
        default: throw Failure(message: "binary numeric with sign 0x\(String(sign, radix: 16))")
        }
        func digit(_ index: Int) -> Int {
            index >= 0 && index < count ? Int(Int16(bigEndian: value.loadUnaligned(fromByteOffset: 8 + 2 * index, as: Int16.self))) : 0
        }
        if sign == 0x4000 { scratch.append(0x2D) }
        if weight < 0 {
            scratch.append(0x30)
        } else {
            for index in 0...weight {
                let group = digit(index)
                if index == 0 {
                    put(String(group))
                } else {
                    putDigits(group, 4)
                }
            }
        }
        if scale > 0 {
            scratch.append(0x2E)
            var written = 0
            var index = weight + 1
            while written < scale {
                let group = digit(index)
                var divisor = 1000
                while divisor > 0 && written < scale {
                    scratch.append(UInt8(truncatingIfNeeded: 0x30 + group / divisor % 10))
                    divisor /= 10
                    written += 1
                }
                index += 1
            }
        }
    }

    private func put(_ text: StaticString) {
        scratch.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    private func put(_ text: String) {
        scratch.append(contentsOf: text.utf8)
    }

    private func putDigits(_ value: Int, _ width: Int) {
        var divisor = 1
        for _ in 1..<width { divisor *= 10 }
        while divisor > 0 {
            scratch.append(UInt8(truncatingIfNeeded: 0x30 + value / divisor % 10))
            divisor /= 10
        }
    }

    /// `YYYY-MM-DD`, the year at least 4 digits; BC years as 1 - year (` BC` added by the caller).
    private func putDate(_ year: Int64, _ month: Int, _ day: Int) {
        let shown = year <= 0 ? 1 - year : year
        if shown >= 10000 { put(String(shown)) } else { putDigits(Int(shown), 4) }
        scratch.append(0x2D)
        putDigits(month, 2)
        scratch.append(0x2D)
        putDigits(day, 2)
    }

    /// Proleptic Gregorian date of a day count since 1970-01-01 (the SDK's `CivilDate`).
    static func civil(daysSince1970 days: Int64) -> (year: Int64, month: Int, day: Int) {
        let date = CivilDate.civil(days: Int(days))
        return (Int64(date.year), date.month, date.day)
    }
}
