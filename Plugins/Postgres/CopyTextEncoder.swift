#if canImport(Glibc)
import Glibc
#endif
import FerryPluginKit

/// Encodes BSON documents as rows of `COPY … FROM STDIN` text format for a
/// fixed column list. A value that does not fit its column is a per-record
/// failure (the sink rejects the record), never a silent NULL.
/// Turns one record into one COPY row for the sink's column list.
protocol RowEncoder: AnyObject {
    func encode(_ document: DocumentView, into out: RowBuffer) throws
}

final class CopyTextEncoder: RowEncoder {
    let columns: [PGColumn]
    let unknownFieldsRejected: Bool
    /// Column name bytes, for matching record keys without making strings.
    let names: [[UInt8]]
    var slots: [BSONElement?]
    var literal: [UInt8] = []
    /// The numeric(p,s) of the column being encoded, if any.
    var limit: NumericLimit?
    /// Servers before 14 have no numeric infinity.
    let numericInfinity: Bool

    struct Failure: Error { let message: String }

    init(columns: [PGColumn], rejectUnknownFields: Bool, numericInfinity: Bool = true) {
        self.columns = columns
        self.numericInfinity = numericInfinity
        unknownFieldsRejected = rejectUnknownFields
        names = columns.map { Array($0.name.utf8) }
        slots = [BSONElement?](repeating: nil, count: columns.count)
    }

    /// Appends one row (with its newline) to `out`.
    func encode(_ document: DocumentView, into out: RowBuffer) throws {
        for index in slots.indices { slots[index] = nil }
        var guess = 0
        for element in document {
            // Records usually carry the columns in order: try the next slot first.
            var found = -1
            if guess < names.count, same(element.keyBytes, guess) {
                found = guess
            } else {
                for index in names.indices where same(element.keyBytes, index) {
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
        for (index, column) in columns.enumerated() {
            if index > 0 { out.append(0x09) }
            guard let element = slots[index], element.typeByte != BSONType.null.rawValue, element.typeByte != BSONType.undefined.rawValue else {
                out.append(0x5C)
                out.append(UInt8(ascii: "N"))
                continue
            }
            do {
                limit = column.limit
                try value(element, column.type, out, inArray: false)
            } catch let failure as Failure {
                throw Failure(message: "field '\(column.name)' → column \(column.sqlType): \(failure.message)")
            } catch let failure as BSONToJSON.Failure {
                throw Failure(message: "field '\(column.name)' → column \(column.sqlType): \(failure.message)")
            } catch let refusal as FloatFit.Refusal {
                throw Failure(message: "field '\(column.name)' → column \(column.sqlType): \(refusal.message)")
            }
        }
        out.append(0x0A)
    }

    /// A number for a numeric column, refused when the column would change it.
    func numeric(_ text: UnsafeRawBufferPointer, _ out: RowBuffer) throws {
        if let limit, let reason = limit.violation(text) { throw Failure(message: reason) }
        if !numericInfinity, NumericBinary.isInfinity(text) {
            throw Failure(message: "\(String(decoding: text, as: UTF8.self)): this server (before PostgreSQL 14) has no numeric infinity")
        }
        out.append(text)
    }

    func numeric(_ text: String, _ out: RowBuffer) throws {
        var text = text
        try text.withUTF8 { try numeric(UnsafeRawBufferPointer($0), out) }
    }

    @inline(__always)
    func same(_ key: UnsafeRawBufferPointer, _ index: Int) -> Bool {
        names[index].withUnsafeBytes { name in
            name.count == key.count && (key.count == 0 || memcmp(name.baseAddress!, key.baseAddress!, key.count) == 0)
        }
    }

    /// Text for one value; `inArray` quotes it for an array literal instead of COPY-escaping.
    func value(_ element: BSONElement, _ type: PGType, _ out: RowBuffer, inArray: Bool) throws {
        func mismatch() -> Failure { Failure(message: "cannot store a BSON \(BSONType.name(of: element.typeByte))") }
        func text(_ string: String) {
            var string = string
            string.withUTF8 { escaped(UnsafeRawBufferPointer($0), out, inArray: inArray) }
        }
        switch type {
        case .int2, .int4, .int8:
            if let integer = element.int64Value, element.type != .datetime {
                out.append(String(integer))
            } else if let double = element.doubleValue, double == double.rounded(), abs(double) < 9.2e18 {
                out.append(String(Int64(double)))
            } else if let string = element.stringBytes {
                escaped(string, out, inArray: inArray)
            } else {
                throw mismatch()
            }
        case .numeric:
            if let integer = element.int64Value, element.type != .datetime {
                try numeric(String(integer), out)
            } else if let double = element.doubleValue {
                // Swift prints the shortest text that reads back as the same double.
                try numeric(double.isNaN ? "NaN" : double.isInfinite ? (double < 0 ? "-Infinity" : "Infinity") : "\(double)", out)
            } else if element.type == .decimal128 {
                try Decimal128Codec.withText(element.value) { try numeric($0, out) }
            } else if let string = element.stringBytes {
                if let limit, let reason = limit.violation(string) { throw Failure(message: reason) }
                escaped(string, out, inArray: inArray)
            } else {
                throw mismatch()
            }
        case .float4, .float8:
            var double: Double
            if let integer = element.int64Value, element.type != .datetime {
                double = try FloatFit.double(integer)
            } else if let value = element.doubleValue {
                double = value
            } else if element.type == .decimal128 {
                double = try FloatFit.double(decimal128: element.value)
            } else if let string = element.stringBytes {
                // Text is the server's to read, as float input: the nearest float.
                escaped(string, out, inArray: inArray)
                return
            } else {
                throw mismatch()
            }
            // The shortest text that reads back as the same float.
            if double.isNaN {
                out.append("NaN")
            } else if double.isInfinite {
                out.append(double < 0 ? "-Infinity" : "Infinity")
            } else if type == .float4 {
                out.append("\(try FloatFit.float(double))")
            } else {
                out.append("\(double)")
            }
        case .text:
            if let string = element.stringBytes {
                escaped(string, out, inArray: inArray)
            } else if let integer = element.int64Value, element.type != .datetime {
                out.append(String(integer))
            } else if let double = element.doubleValue {
                out.append("\(double)")
            } else if element.type == .decimal128 {
                out.append(Decimal128Codec.text(element.value))
            } else if let bool = element.boolValue {
                out.append((bool ? "true" : "false"))
            } else if element.type == .objectId {
                out.append(Hex.string(element.value))
            } else if element.type == .datetime {
                out.append(Timestamps.iso(milliseconds: element.int64Value!))
            } else {
                throw mismatch()
            }
        case .bool:
            if let bool = element.boolValue {
                out.append(bool ? UInt8(ascii: "t") : UInt8(ascii: "f"))
            } else if let string = element.stringBytes {
                escaped(string, out, inArray: inArray)
            } else {
                throw mismatch()
            }
        case .date:
            if element.type == .datetime {
                let milliseconds = element.int64Value!
                if let reason = Timestamps.dateRefusal(milliseconds: milliseconds) { throw Failure(message: reason) }
                out.append(Timestamps.copyDate(days: Timestamps.floorDay(milliseconds)))
            } else if let string = element.stringBytes {
                escaped(string, out, inArray: inArray)
            } else {
                throw mismatch()
            }
        case .timestamp, .timestamptz:
            if element.type == .datetime {
                let milliseconds = element.int64Value!
                guard Timestamps.timestampHolds(milliseconds: milliseconds) else {
                    throw Failure(message: "date \(milliseconds) ms is outside the range of a timestamp column (4714 BC to 294276 AD)")
                }
                out.append(Timestamps.copyText(milliseconds: milliseconds))
            } else if let string = element.stringBytes {
                escaped(string, out, inArray: inArray)
            } else {
                throw mismatch()
            }
        case .uuid:
            if element.type == .binary, element.value.count == 21, element.value[4] == 4 || element.value[4] == 3 {
                text(UUIDText.string(UnsafeRawBufferPointer(rebasing: element.value[5...])))
            } else if let string = element.stringBytes {
                escaped(string, out, inArray: inArray)
            } else {
                throw mismatch()
            }
        case .json, .jsonb:
            literal.removeAll(keepingCapacity: true)
            if let string = element.stringBytes {
                // A string is taken as JSON text; the server checks it.
                literal.append(contentsOf: string)
            } else {
                try BSONToJSON.write(element, to: &literal)
            }
            let json = literal
            json.withUnsafeBytes { escaped($0, out, inArray: inArray) }
        case .bytea:
            guard element.type == .binary else { throw mismatch() }
            // `\x` + hex; the backslash is escaped once for COPY (and once more inside an array).
            if inArray { out.append("\"\\\\\\\\x") } else { out.append("\\\\x") }
            for byte in element.value[5...] {
                out.append(Hex.digits[Int(byte >> 4)])
                out.append(Hex.digits[Int(byte & 15)])
            }
            if inArray { out.append(UInt8(ascii: "\"")) }
        case .array(let elementType):
            guard element.type == .array, !inArray else {
                if element.type == .array { throw Failure(message: "nested arrays are not supported") }
                throw mismatch()
            }
            out.append(UInt8(ascii: "{"))
            var first = true
            for item in element.documentValue! {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                if item.typeByte == BSONType.null.rawValue {
                    out.append("NULL")
                } else {
                    try value(item, elementType, out, inArray: true)
                }
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Text with COPY's escapes, or (in an array) double-quoted with array
    /// escapes whose backslashes COPY then escapes again.
    func escaped(_ bytes: UnsafeRawBufferPointer, _ out: RowBuffer, inArray: Bool) {
        if inArray { out.append(UInt8(ascii: "\"")) }
        // Copy runs of plain bytes at once; only \\, \n, \r, \t (and " in arrays) need escapes.
        var runStart = 0
        var index = 0
        let count = bytes.count
        while index < count {
            let byte = bytes[index]
            if byte > UInt8(ascii: "\"") && byte != 0x5C {
                index += 1
                continue
            }
            let escape: UInt8
            switch byte {
            case 0x5C: escape = 0x5C
            case 0x0A: escape = UInt8(ascii: "n")
            case 0x0D: escape = UInt8(ascii: "r")
            case 0x09: escape = UInt8(ascii: "t")
            case UInt8(ascii: "\"") where inArray: escape = UInt8(ascii: "\"")
            default:
                index += 1
                continue
            }
            out.append(UnsafeRawBufferPointer(rebasing: bytes[runStart..<index]))
            if inArray && (byte == 0x5C || byte == UInt8(ascii: "\"")) {
                // The array literal's backslash, itself escaped for COPY.
                out.append(0x5C, 0x5C)
                if byte == 0x5C { out.append(0x5C, 0x5C) } else { out.append(byte) }
            } else {
                out.append(0x5C, escape)
            }
            index += 1
            runStart = index
        }
        out.append(UnsafeRawBufferPointer(rebasing: bytes[runStart..<count]))
        if inArray { out.append(UInt8(ascii: "\"")) }
    }
}
