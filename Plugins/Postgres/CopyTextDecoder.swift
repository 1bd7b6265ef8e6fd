#if canImport(Glibc)
import Glibc
#endif
import FerryPluginKit

/// How numeric and timestamp values become BSON (config `numeric`, `timestamps`).
struct ValueOptions {
    enum Numeric: String { case decimal128, string }
    enum TimestampForm: String { case string, datetime, datetime_truncate }
    var numeric: Numeric = .decimal128
    var timestamps: TimestampForm = .string
}

/// Decodes rows of `COPY … TO STDOUT` text format into BSON documents, one
/// field per column, without building intermediate strings for the common
/// types.
final class CopyTextDecoder {
    /// What a user can do about a date or timestamp with no form here (the
    /// read stops: a source has no record to dead-letter yet).
    static let outOfRangeHint = " (±infinity and years after 294246 have no BSON form here): select the column as text in a 'query' (\"column\"::text), or leave it out with 'columns'"

    let columns: [PGColumn]
    let options: ValueOptions
    /// Start and end of each field of the current row, before unescaping
    /// (raw buffers: this is the per-row hot path, no exclusivity checks).
    let fieldStarts: UnsafeMutableBufferPointer<Int>
    let fieldEnds: UnsafeMutableBufferPointer<Int>
    let timestamp = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 64)
    var scratch: [UInt8] = []
    var number = [CChar](repeating: 0, count: 512)

    struct Failure: Error { let message: String }

    init(columns: [PGColumn], options: ValueOptions) {
        self.columns = columns
        self.options = options
        fieldStarts = .allocate(capacity: max(columns.count, 1))
        fieldEnds = .allocate(capacity: max(columns.count, 1))
    }

    deinit {
        fieldStarts.deallocate()
        fieldEnds.deallocate()
        timestamp.deallocate()
    }

    /// Splits a row (without its newline) at tabs. The server always sends every column.
    func split(_ row: UnsafeRawBufferPointer) throws {
        let last = columns.count - 1
        var field = 0
        var start = 0
        guard let base = row.baseAddress else {
            guard last == 0 else { throw Failure(message: "empty row, expected \(columns.count) fields") }
            fieldStarts[0] = 0
            fieldEnds[0] = 0
            return
        }
        while let tab = memchr(base + start, 0x09, row.count - start) {
            let index = base.distance(to: UnsafeRawPointer(tab))
            guard field < last else { throw Failure(message: "row has more fields than the \(columns.count) columns") }
            fieldStarts[field] = start
            fieldEnds[field] = index
            field += 1
            start = index + 1
        }
        guard field == last else { throw Failure(message: "row has \(field + 1) fields, expected \(columns.count)") }
        fieldStarts[field] = start
        fieldEnds[field] = row.count
    }

    /// The raw text of field `index` of the row last split (unescaped), nil for NULL.
    func text(_ row: UnsafeRawBufferPointer, _ index: Int) -> String? {
        let raw = UnsafeRawBufferPointer(rebasing: row[fieldStarts[index]..<fieldEnds[index]])
        if raw.count == 2 && raw[0] == 0x5C && raw[1] == UInt8(ascii: "N") { return nil }
        return withField(raw) { String(decoding: $0, as: UTF8.self) }
    }

    func decode(_ row: UnsafeRawBufferPointer, into writer: inout DocumentWriter) throws {
        try split(row)
        for index in 0..<columns.count {
            let raw = UnsafeRawBufferPointer(rebasing: row[fieldStarts[index]..<fieldEnds[index]])
            let column = columns[index]
            if raw.count == 2 && raw[0] == 0x5C && raw[1] == UInt8(ascii: "N") {
                writer.appendNull(column.name)
                continue
            }
            do {
                if let base = raw.baseAddress, memchr(base, 0x5C, raw.count) != nil {
                    try withField(raw) { try append(column.name, column.type, $0, &writer) }
                } else {
                    try append(column.name, column.type, raw, &writer)
                }
            } catch let failure as Failure {
                throw Failure(message: "column '\(column.name)' (\(column.sqlType)): \(failure.message)")
            } catch let failure as JSONToBSON.Failure {
                throw Failure(message: "column '\(column.name)' (\(column.sqlType)): \(failure.message)")
            }
        }
    }

    /// Calls `body` with the field's bytes, COPY escapes (`\t`, `\\`, …) resolved.
    func withField<R>(_ raw: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        guard raw.contains(0x5C) else { return try body(raw) }
        scratch.removeAll(keepingCapacity: true)
        var index = 0
        while index < raw.count {
            let byte = raw[index]
            index += 1
            guard byte == 0x5C, index < raw.count else { scratch.append(byte); continue }
            let escape = raw[index]
            index += 1
            switch escape {
            case UInt8(ascii: "n"): scratch.append(0x0A)
            case UInt8(ascii: "t"): scratch.append(0x09)
            case UInt8(ascii: "r"): scratch.append(0x0D)
            case UInt8(ascii: "b"): scratch.append(0x08)
            case UInt8(ascii: "f"): scratch.append(0x0C)
            case UInt8(ascii: "v"): scratch.append(0x0B)
            default: scratch.append(escape)
            }
        }
        return try scratch.withUnsafeBytes { try body($0) }
    }

    func append(_ key: String, _ type: PGType, _ text: UnsafeRawBufferPointer, _ writer: inout DocumentWriter) throws {
        switch type {
        case .int2, .int4:
            guard let value = Self.integer(text), let small = Int32(exactly: value) else { throw Failure(message: "not an integer") }
            writer.append(key, small)
        case .int8:
            guard let value = Self.integer(text) else { throw Failure(message: "not an integer") }
            writer.append(key, value)
        case .numeric:
            switch options.numeric {
            case .string:
                writer.appendString(key, utf8: text)
            case .decimal128:
                guard let value = Decimal128Codec.encode(text) else {
                    throw Failure(message: "'\(String(decoding: text, as: UTF8.self))' has no exact decimal128 (more than 34 significant digits, or an exponent beyond decimal128's range); set numeric: string to read it as text")
                }
                writer.append(key, BSONValue.decimal128(Decimal128Codec.bytes(value)))
            }
        case .float4, .float8:
            writer.append(key, try double(text))
        case .text:
            writer.appendString(key, utf8: text)
        case .bool:
            writer.append(key, text.first == UInt8(ascii: "t"))
        case .date:
            guard let micros = Timestamps.microseconds(text) else { throw Failure(message: "date '\(String(decoding: text, as: UTF8.self))' is out of range\(Self.outOfRangeHint)") }
            writer.appendDatetime(key, milliseconds: micros / 1000)
        case .timestamp, .timestamptz:
            if options.timestamps == .string, let iso = isoFastPath(text) {
                writer.appendString(key, utf8: iso)
                return
            }
            guard let micros = Timestamps.microseconds(text) else {
                throw Failure(message: "timestamp '\(String(decoding: text, as: UTF8.self))' is out of range\(Self.outOfRangeHint)")
            }
            switch options.timestamps {
            case .string:
                writer.append(key, Timestamps.iso(microseconds: micros))
            case .datetime:
                guard micros % 1000 == 0 else {
                    throw Failure(message: "'\(String(decoding: text, as: UTF8.self))' has microseconds a BSON date cannot hold (set timestamps: string, or datetime_truncate to drop them)")
                }
                writer.appendDatetime(key, milliseconds: micros / 1000)
            case .datetime_truncate:
                writer.appendDatetime(key, milliseconds: micros >= 0 ? micros / 1000 : (micros - 999) / 1000)
            }
        case .uuid:
            guard let bytes = UUIDText.bytes(text) else { throw Failure(message: "not a uuid") }
            writer.append(key, BSONValue.binary(subtype: 4, data: bytes))
        case .json, .jsonb:
            try JSONToBSON.append(key, json: text, to: &writer)
        case .bytea:
            guard text.count >= 2, text[0] == 0x5C, text[1] == UInt8(ascii: "x"), text.count % 2 == 0 else {
                throw Failure(message: "bytea is not in hex format")
            }
            var data = [UInt8]()
            data.reserveCapacity(text.count / 2 - 1)
            var index = 2
            while index < text.count {
                guard let high = Hex.value(text[index]), let low = Hex.value(text[index + 1]) else { throw Failure(message: "bad hex in bytea") }
                data.append(high << 4 | low)
                index += 2
            }
            writer.append(key, BSONValue.binary(subtype: 0, data: data))
        case .array(let element):
            var parser = ArrayLiteralParser(bytes: text)
            try parser.parse(key, element, decoder: self, into: &writer)
        }
    }

    /// PostgreSQL's `2024-01-02 03:04:05.123456+00` (4-digit year, UTC) as
    /// `2024-01-02T03:04:05.123456Z` by editing the bytes; nil for any other shape.
    func isoFastPath(_ text: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        var count = text.count
        guard count >= 19, count < timestamp.count - 1, text[4] == UInt8(ascii: "-"), text[10] == UInt8(ascii: " ") else { return nil }
        if text[count - 3] == UInt8(ascii: "+") {
            guard text[count - 2] == 0x30, text[count - 1] == 0x30 else { return nil }
            count -= 3
        } else if text[count - 3] == UInt8(ascii: "-") || text[count - 6] == UInt8(ascii: "+") || text[count - 2] == UInt8(ascii: "B") {
            return nil
        }
        let out = UnsafeMutableRawBufferPointer(timestamp)
        out.copyMemory(from: UnsafeRawBufferPointer(rebasing: text[0..<count]))
        out[10] = UInt8(ascii: "T")
        out[count] = UInt8(ascii: "Z")
        return UnsafeRawBufferPointer(rebasing: out[0...count])
    }

    static func integer(_ text: UnsafeRawBufferPointer) -> Int64? {
        var index = 0
        var negative = false
        if text.first == UInt8(ascii: "-") { negative = true; index = 1 }
        guard index < text.count else { return nil }
        var value: Int64 = 0
        while index < text.count {
            let digit = text[index] &- 0x30
            guard digit < 10 else { return nil }
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (next, o2) = negative ? times.subtractingReportingOverflow(Int64(digit)) : times.addingReportingOverflow(Int64(digit))
            guard !o1, !o2 else { return nil }
            value = next
            index += 1
        }
        return value
    }

    func double(_ text: UnsafeRawBufferPointer) throws -> Double {
        guard text.count < number.count else { throw Failure(message: "number too long") }
        return number.withUnsafeMutableBufferPointer { buffer in
            for index in 0..<text.count { buffer[index] = CChar(bitPattern: text[index]) }
            buffer[text.count] = 0
            return strtod(buffer.baseAddress!, nil)
        }
    }
}

/// PostgreSQL's array literal (`{1,2,NULL}`, `{"a b",c}`, `{{1,2},{3,4}}`) to a BSON array.
struct ArrayLiteralParser {
    let bytes: UnsafeRawBufferPointer
    var index = 0

    mutating func parse(_ key: String, _ element: PGType, decoder: CopyTextDecoder, into writer: inout DocumentWriter) throws {
        guard bytes.first == UInt8(ascii: "{") else {
            throw CopyTextDecoder.Failure(message: "array literal with explicit bounds is not supported")
        }
        try array(key, element, decoder, &writer)
        guard index == bytes.count else { throw CopyTextDecoder.Failure(message: "trailing characters after array") }
    }

    mutating func array(_ key: String, _ element: PGType, _ decoder: CopyTextDecoder, _ writer: inout DocumentWriter) throws {
        index += 1  // {
        try writer.appendArray(key) { nested in
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return }
            while index < bytes.count {
                let itemKey = nested.nextKey()
                if bytes[index] == UInt8(ascii: "{") {
                    try array(itemKey, element, decoder, &nested)
                } else {
                    var item: [UInt8] = []
                    var quoted = false
                    if bytes[index] == UInt8(ascii: "\"") {
                        quoted = true
                        index += 1
                        while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                            if bytes[index] == 0x5C { index += 1 }
                            if index < bytes.count { item.append(bytes[index]) }
                            index += 1
                        }
                        index += 1
                    } else {
                        while index < bytes.count, bytes[index] != UInt8(ascii: ","), bytes[index] != UInt8(ascii: "}") {
                            item.append(bytes[index])
                            index += 1
                        }
                    }
                    if !quoted && item.count == 4 && String(decoding: item, as: UTF8.self).uppercased() == "NULL" {
                        nested.appendNull(itemKey)
                    } else {
                        try item.withUnsafeBytes { try decoder.append(itemKey, element, $0, &nested) }
                    }
                }
                guard index < bytes.count else { break }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "}") { index += 1; return }
                throw CopyTextDecoder.Failure(message: "malformed array literal")
            }
            throw CopyTextDecoder.Failure(message: "unterminated array literal")
        }
    }
}
