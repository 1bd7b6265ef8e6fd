#if canImport(Glibc)
import Glibc
#endif
import FerryPluginKit

/// Encodes BSON documents as rows of `COPY … FROM STDIN (FORMAT binary)`:
/// the server then skips parsing numbers, numerics and timestamps from text
/// (measured: its ingest is the bottleneck of a copy). Strings meant for a
/// typed column are parsed here; one that does not parse is a per-record
/// failure naming the field and column, like a value of the wrong BSON type.
final class CopyBinaryEncoder: RowEncoder {
    let columns: [PGColumn]
    let unknownFieldsRejected: Bool
    /// Per column, in raw buffers: the loop over a record's fields reads them
    /// without copying a `PGColumn` (whose strings it would retain and release).
    let names: BSONKeyTable
    let types: UnsafeMutableBufferPointer<PGType>
    let limits: UnsafeMutableBufferPointer<NumericLimit?>
    let elementOIDs: UnsafeMutableBufferPointer<UInt32>
    /// One slot per column for the record being encoded.
    let slots: UnsafeMutableBufferPointer<BSONElement?>
    // Scratch state of the one thread that encodes: no dynamic exclusivity checks (perf).
    @exclusivity(unchecked) var scratch: [UInt8] = []
    @exclusivity(unchecked) var number = [CChar](repeating: 0, count: 512)
    let numeric = NumericBinary()
    /// The numeric(p,s) of the column being encoded, if any.
    @exclusivity(unchecked) var limit: NumericLimit?
    /// Servers before 14 have no numeric infinity.
    let numericInfinity: Bool

    typealias Failure = CopyTextEncoder.Failure

    /// Microseconds and days between 1970-01-01 and PostgreSQL's epoch, 2000-01-01.
    static let epochMicroseconds: Int64 = 946_684_800_000_000
    static let epochDays: Int64 = 10957

    static let header: [UInt8] = Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00] + [0, 0, 0, 0] + [0, 0, 0, 0]
    static let trailer: [UInt8] = [0xFF, 0xFF]

    init(columns: [PGColumn], rejectUnknownFields: Bool, numericInfinity: Bool = true) {
        self.columns = columns
        self.numericInfinity = numericInfinity
        unknownFieldsRejected = rejectUnknownFields
        names = BSONKeyTable(columns.map(\.name))
        let capacity = max(columns.count, 1)
        types = .allocate(capacity: capacity)
        limits = .allocate(capacity: capacity)
        elementOIDs = .allocate(capacity: capacity)
        for (index, column) in columns.enumerated() {
            (types.baseAddress! + index).initialize(to: column.type)
            (limits.baseAddress! + index).initialize(to: column.limit)
            (elementOIDs.baseAddress! + index).initialize(to: PGType.elementOID(ofArray: column.oid) ?? 0)
        }
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: nil)
    }

    deinit {
        types.baseAddress!.deinitialize(count: columns.count)
        types.deallocate()
        limits.deallocate()
        elementOIDs.deallocate()
        slots.deallocate()
    }

    @inline(__always)
    func same(_ key: UnsafeRawBufferPointer, _ index: Int) -> Bool {
        names[index].matches(key)
    }

    func encode(_ document: DocumentView, into out: RowBuffer) throws {
        for index in 0..<columns.count { slots[index] = nil }
        var guess = 0
        for element in document {
            var found = -1
            if guess < names.count, same(element.keyBytes, guess) {
                found = guess
            } else {
                for index in 0..<names.count where same(element.keyBytes, index) {
                    found = index
                    break
                }
            }
            if found < 0 {
                if unknownFieldsRejected {
                    throw Failure(message: "field '\(element.key)' has no column in the table (set unknown_fields: ignore, or add it to 'columns')")
                }
                continue
            }
            slots[found] = element
            guess = found + 1
        }
        out.append(bigEndian: Int16(columns.count))
        for index in 0..<names.count {
            guard let element = slots[index], element.typeByte != BSONType.null.rawValue, element.typeByte != BSONType.undefined.rawValue else {
                out.append(bigEndian: Int32(-1))
                continue
            }
            do {
                limit = limits[index]
                try field(element, types[index], elementOID: elementOIDs[index], out)
            } catch let failure as Failure {
                throw Failure(message: "field '\(columns[index].name)' → column \(columns[index].sqlType): \(failure.message)")
            } catch let failure as BSONToJSON.Failure {
                throw Failure(message: "field '\(columns[index].name)' → column \(columns[index].sqlType): \(failure.message)")
            } catch let refusal as FloatFit.Refusal {
                throw Failure(message: "field '\(columns[index].name)' → column \(columns[index].sqlType): \(refusal.message)")
            }
        }
    }

    /// A length-prefixed value.
    func field(_ element: BSONElement, _ type: PGType, elementOID: UInt32, _ out: RowBuffer) throws {
        let lengthAt = out.count
        out.append(bigEndian: Int32(0))
        try value(element, type, elementOID: elementOID, out)
        out.patch(int32BigEndian: Int32(out.count - lengthAt - 4), at: lengthAt)
    }

    func value(_ element: BSONElement, _ type: PGType, elementOID: UInt32, _ out: RowBuffer) throws {
        func mismatch() -> Failure { Failure(message: "cannot store a BSON \(BSONType.name(of: element.typeByte))") }
        func string() -> String? { element.stringValue }
        switch type {
        case .int2, .int4, .int8:
            var integer: Int64
            if let value = element.int64Value, element.type != .datetime {
                integer = value
            } else if let double = element.doubleValue, double == double.rounded(), abs(double) < 9.2e18 {
                integer = Int64(double)
            } else if let text = element.stringBytes {
                guard let parsed = CopyTextDecoder.integer(trimmed(text)) else { throw Failure(message: "'\(string()!)' is not an integer") }
                integer = parsed
            } else {
                throw mismatch()
            }
            switch type {
            case .int2:
                guard let small = Int16(exactly: integer) else { throw Failure(message: "\(integer) is out of range for smallint") }
                out.append(bigEndian: small)
            case .int4:
                guard let small = Int32(exactly: integer) else { throw Failure(message: "\(integer) is out of range for integer") }
                out.append(bigEndian: small)
            default:
                out.append(bigEndian: integer)
            }
        case .float4, .float8:
            var double: Double
            if let value = element.doubleValue {
                double = value
            } else if let value = element.int64Value, element.type != .datetime {
                double = try FloatFit.double(value)
            } else if element.type == .decimal128 {
                double = try FloatFit.double(decimal128: element.value)
            } else if let text = element.stringBytes {
                // Text is read as the server reads float input: the nearest float.
                double = try parseDouble(Array(trimmed(text)))
                if type == .float4 {
                    out.append(bigEndian: Float(String(decoding: trimmed(text), as: UTF8.self)).map { $0.bitPattern } ?? Float(double).bitPattern)
                    return
                }
            } else {
                throw mismatch()
            }
            if type == .float4 { out.append(bigEndian: try FloatFit.float(double).bitPattern) } else { out.append(bigEndian: double.bitPattern) }
        case .numeric:
            var text: String
            if let value = element.int64Value, element.type != .datetime {
                text = String(value)
            } else if let double = element.doubleValue {
                // The shortest text that reads back as the same double; never the binary fraction.
                text = double.isNaN ? "NaN" : double.isInfinite ? (double < 0 ? "-Infinity" : "Infinity") : "\(double)"
            } else if element.type == .decimal128 {
                try Decimal128Codec.withText(element.value) { try numericValue($0, out) }
                return
            } else if let bytes = element.stringBytes {
                try numericValue(trimmed(bytes), out)
                return
            } else {
                throw mismatch()
            }
            try text.withUTF8 { try numericValue(UnsafeRawBufferPointer($0), out) }
        case .text:
            if let bytes = element.stringBytes {
                out.append(bytes)
            } else if let integer = element.int64Value, element.type != .datetime {
                out.append(String(integer))
            } else if let double = element.doubleValue {
                out.append("\(double)")
            } else if element.type == .decimal128 {
                out.append(Decimal128Codec.text(element.value))
            } else if let bool = element.boolValue {
                out.append(bool ? "true" : "false")
            } else if element.type == .objectId {
                out.append(Hex.string(element.value))
            } else if element.type == .datetime {
                out.append(Timestamps.iso(milliseconds: element.int64Value!))
            } else {
                throw mismatch()
            }
        case .bool:
            if let bool = element.boolValue {
                out.append(bool ? 1 : 0)
            } else if let text = string() {
                switch text.lowercased() {
                case "t", "true", "yes", "y", "on", "1": out.append(1)
                case "f", "false", "no", "n", "off", "0": out.append(0)
                default: throw Failure(message: "'\(text)' is not a boolean")
                }
            } else {
                throw mismatch()
            }
        case .date:
            var milliseconds: Int64
            if element.type == .datetime {
                milliseconds = element.int64Value!
                if let reason = Timestamps.dateRefusal(milliseconds: milliseconds) { throw Failure(message: reason) }
            } else if let text = element.stringBytes {
                guard let micros = Timestamps.microseconds(trimmed(text), applyOffset: false) else { throw Failure(message: "'\(string()!)' is not a date") }
                milliseconds = micros / 1000
            } else {
                throw mismatch()
            }
            let days = Timestamps.floorDay(milliseconds)
            guard days >= Timestamps.firstDay, days < Timestamps.endDay else { throw Failure(message: "'\(string() ?? "")' is outside the range of a date column") }
            out.append(bigEndian: Int32(days - Self.epochDays))
        case .timestamp, .timestamptz:
            var micros: Int64
            if element.type == .datetime {
                let milliseconds = element.int64Value!
                guard Timestamps.timestampHolds(milliseconds: milliseconds) else {
                    throw Failure(message: "date \(milliseconds) ms is outside the range of a timestamp column (4714 BC to 294276 AD)")
                }
                // From PostgreSQL's epoch first: the far end of the range overflows 64-bit microseconds since 1970.
                out.append(bigEndian: (milliseconds - Self.epochMicroseconds / 1000) * 1000)
                return
            } else if let text = element.stringBytes {
                // Like the server's text input: a timestamp without time zone ignores an offset.
                guard let parsed = Timestamps.microseconds(trimmed(text), applyOffset: type == .timestamptz) else {
                    throw Failure(message: "'\(string()!)' is not an ISO-8601 timestamp")
                }
                micros = parsed
            } else {
                throw mismatch()
            }
            out.append(bigEndian: micros - Self.epochMicroseconds)
        case .uuid:
            if element.type == .binary, element.value.count == 21, element.value[4] == 4 || element.value[4] == 3 {
                out.append(UnsafeRawBufferPointer(rebasing: element.value[5...]))
            } else if let text = element.stringBytes, let bytes = UUIDText.bytes(text) {
                bytes.withUnsafeBytes { out.append($0) }
            } else if element.stringBytes != nil {
                throw Failure(message: "'\(string()!)' is not a uuid")
            } else {
                throw mismatch()
            }
        case .json, .jsonb:
            if type == .jsonb { out.append(1) }  // jsonb's binary format version
            if let text = element.stringBytes {
                // A string is taken as JSON text; the server checks it.
                out.append(text)
            } else {
                scratch.removeAll(keepingCapacity: true)
                try BSONToJSON.write(element, to: &scratch)
                scratch.withUnsafeBytes { out.append($0) }
            }
        case .bytea:
            guard element.type == .binary else { throw mismatch() }
            out.append(UnsafeRawBufferPointer(rebasing: element.value[5...]))
        case .array(let itemType):
            guard element.type == .array, elementOID != 0 else {
                if element.type == .array { throw Failure(message: "nested arrays are not supported") }
                throw mismatch()
            }
            var count = 0
            var hasNull = false
            for item in element.documentValue! {
                count += 1
                if item.typeByte == BSONType.null.rawValue { hasNull = true }
                if item.type == .array { throw Failure(message: "nested arrays are not supported") }
            }
            if count == 0 {
                // An empty array has no dimensions.
                out.append(bigEndian: Int32(0))
                out.append(bigEndian: Int32(0))
                out.append(bigEndian: elementOID)
                return
            }
            out.append(bigEndian: Int32(1))
            out.append(bigEndian: Int32(hasNull ? 1 : 0))
            out.append(bigEndian: elementOID)
            out.append(bigEndian: Int32(count))
            out.append(bigEndian: Int32(1))
            for item in element.documentValue! {
                if item.typeByte == BSONType.null.rawValue {
                    out.append(bigEndian: Int32(-1))
                } else {
                    try field(item, itemType, elementOID: 0, out)
                }
            }
        }
    }

    /// A number for a numeric column, refused when the column would change it.
    func numericValue(_ text: UnsafeRawBufferPointer, _ out: RowBuffer) throws {
        if let limit, let reason = limit.violation(text) { throw Failure(message: reason) }
        if !numericInfinity, NumericBinary.isInfinity(text) {
            throw Failure(message: "\(String(decoding: text, as: UTF8.self)): this server (before PostgreSQL 14) has no numeric infinity")
        }
        try numeric.append(text, to: out)
    }

    func trimmed(_ text: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var start = 0
        var end = text.count
        while start < end, text[start] == 0x20 { start += 1 }
        while end > start, text[end - 1] == 0x20 { end -= 1 }
        return UnsafeRawBufferPointer(rebasing: text[start..<end])
    }

    func parseDouble(_ text: [UInt8]) throws -> Double {
        let string = String(decoding: text, as: UTF8.self)
        switch string.lowercased() {
        case "nan": return .nan
        case "infinity", "inf", "+infinity": return .infinity
        case "-infinity", "-inf": return -.infinity
        default: break
        }
        guard text.count < number.count - 1, !text.isEmpty else { throw Failure(message: "'\(string)' is not a number") }
        return try number.withUnsafeMutableBufferPointer { buffer in
            for index in 0..<text.count { buffer[index] = CChar(bitPattern: text[index]) }
            buffer[text.count] = 0
            var end: UnsafeMutablePointer<CChar>?
            let value = strtod(buffer.baseAddress!, &end)
            guard let end, end == buffer.baseAddress! + text.count else { throw Failure(message: "'\(string)' is not a number") }
            return value
        }
    }
}

/// PostgreSQL's binary numeric: base-10000 digits, a weight, a sign and a
/// display scale, built from exact decimal text (never through a double).
/// It holds what the server's numeric holds: 131072 digits before the point,
/// 16383 after; anything larger is refused, as the server would.
final class NumericBinary {
    static let maxIntegerDigits = 131_072
    static let maxScale = 16_383
    /// Decimal digits of the value, integer part then fraction, padded to groups of 4.
    let digits = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: maxIntegerDigits + maxScale + 8)
    let groups = UnsafeMutableBufferPointer<Int16>.allocate(capacity: (maxIntegerDigits + maxScale + 8) / 4 + 1)

    static func isInfinity(_ text: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        if index < text.count, text[index] == UInt8(ascii: "-") || text[index] == UInt8(ascii: "+") { index += 1 }
        return index < text.count && text[index] | 0x20 == UInt8(ascii: "i")
    }

    deinit {
        digits.deallocate()
        groups.deallocate()
    }

    func append(_ text: UnsafeRawBufferPointer, to out: RowBuffer) throws {
        func failure() -> CopyTextEncoder.Failure {
            CopyTextEncoder.Failure(message: "'\(String(decoding: text, as: UTF8.self))' is not a number")
        }
        func special(_ sign: UInt16) {
            out.append(bigEndian: Int16(0))
            out.append(bigEndian: Int16(0))
            out.append(bigEndian: sign)
            out.append(bigEndian: Int16(0))
        }
        var index = 0
        var negative = false
        if index < text.count, text[index] == UInt8(ascii: "-") || text[index] == UInt8(ascii: "+") {
            negative = text[index] == UInt8(ascii: "-")
            index += 1
        }
        if index < text.count, text[index] > 0x39 {
            let word = String(decoding: text[index...], as: UTF8.self).lowercased()
            switch word {
            case "nan": special(0xC000)
            case "infinity", "inf": special(negative ? 0xF000 : 0xD000)
            default: throw failure()
            }
            return
        }
        // Integer digits and fraction digits, then an optional exponent.
        var integerStart = index
        while integerStart < text.count, text[integerStart] == 0x30 { integerStart += 1 }
        var cursor = integerStart
        while cursor < text.count, text[cursor] >= 0x30, text[cursor] <= 0x39 { cursor += 1 }
        let integerEnd = cursor
        var fractionStart = cursor
        var fractionEnd = cursor
        if cursor < text.count, text[cursor] == UInt8(ascii: ".") {
            cursor += 1
            fractionStart = cursor
            while cursor < text.count, text[cursor] >= 0x30, text[cursor] <= 0x39 { cursor += 1 }
            fractionEnd = cursor
        }
        guard cursor > index, integerEnd > index || fractionEnd > fractionStart || integerStart > index else { throw failure() }
        var exponent = 0
        if cursor < text.count, text[cursor] == UInt8(ascii: "e") || text[cursor] == UInt8(ascii: "E") {
            guard let value = Int(String(decoding: text[(cursor + 1)...], as: UTF8.self)), abs(value) <= 1_000_000 else { throw failure() }
            exponent = value
            cursor = text.count
        }
        guard cursor == text.count else { throw failure() }
        // The exponent moves the point: with p the point's index among the digits
        // (integer then fraction), digit i lands p - i places before the point.
        let point = (integerEnd - integerStart) + exponent
        let integerCount = max(0, point)
        let scale = max(0, (fractionEnd - fractionStart) - exponent)
        let leadPad = (4 - integerCount % 4) % 4
        let tailPad = (4 - scale % 4) % 4
        let length = leadPad + integerCount + scale + tailPad
        guard integerCount <= Self.maxIntegerDigits, scale <= Self.maxScale, length <= digits.count else {
            throw CopyTextEncoder.Failure(message: "'\(String(decoding: text, as: UTF8.self))' is outside the range of numeric (at most \(Self.maxIntegerDigits) digits before the point and \(Self.maxScale) after)")
        }
        for position in 0..<length { digits[position] = 0 }
        var position = leadPad + integerCount - point
        for source in integerStart..<integerEnd {
            digits[position] = text[source] - 0x30
            position += 1
        }
        for source in fractionStart..<fractionEnd {
            digits[position] = text[source] - 0x30
            position += 1
        }
        var count = 0
        position = 0
        while position < length {
            groups[count] = Int16(digits[position]) * 1000 + Int16(digits[position + 1]) * 100 + Int16(digits[position + 2]) * 10 + Int16(digits[position + 3])
            count += 1
            position += 4
        }
        var weight = (leadPad + integerCount) / 4 - 1
        var first = 0
        while first < count, groups[first] == 0 { first += 1; weight -= 1 }
        var last = count
        while last > first, groups[last - 1] == 0 { last -= 1 }
        if first == last { weight = 0; negative = false }
        out.append(bigEndian: Int16(last - first))
        out.append(bigEndian: Int16(weight))
        out.append(bigEndian: UInt16(negative ? 0x4000 : 0))
        out.append(bigEndian: Int16(scale))
        for group in first..<last { out.append(bigEndian: groups[group]) }
    }
}
