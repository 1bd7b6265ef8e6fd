import CLibBSON

/// MongoDB Extended JSON ⇄ BSON through libbson, so types such as `$oid`,
/// `$date`, `$numberDecimal` and `$binary` survive a trip through text.
public enum ExtendedJSON {
    /// Parses one JSON object (relaxed or canonical extended JSON) into BSON bytes.
    public static func parse(_ json: String) throws(ExtendedJSONError) -> [UInt8] {
        let utf8 = Array(json.utf8)
        do {
            return try utf8.withUnsafeBytes { try parse(utf8: $0) }
        } catch let error as ExtendedJSONError {
            throw error
        } catch {
            throw ExtendedJSONError(message: "\(error)")
        }
    }

    /// Parses UTF-8 JSON text into BSON bytes.
    public static func parse(utf8: UnsafeRawBufferPointer) throws(ExtendedJSONError) -> [UInt8] {
        var message = [CChar](repeating: 0, count: 512)
        guard let base = utf8.baseAddress, utf8.count > 0 else { throw ExtendedJSONError(message: "empty input") }
        // libbson takes a top-level array as the document {"0": …, "1": …}: a
        // record the input never held. Only an object is a record.
        let first = utf8.first { $0 != 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }
        guard first == UInt8(ascii: "{") else {
            throw ExtendedJSONError(message: first == UInt8(ascii: "[") ? "a JSON array, not an object" : "not a JSON object")
        }
        let document = message.withUnsafeMutableBufferPointer { messageBuffer in
            ferry_bson_from_json(base.assumingMemoryBound(to: CChar.self), utf8.count, messageBuffer.baseAddress, messageBuffer.count)
        }
        guard let document else {
            let text = message.withUnsafeBufferPointer { buffer in
                String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            throw ExtendedJSONError(message: text.isEmpty ? "not a JSON object" : text)
        }
        defer { bson_destroy(document) }
        let data = ferry_bson_data(document)
        return Array(UnsafeBufferPointer(start: data, count: Int(ferry_bson_length(document))))
    }

    /// Renders a document as relaxed extended JSON (numbers as JSON numbers,
    /// dates as `{"$date": "…"}`), one line.
    public static func render(_ document: DocumentView, canonical: Bool = false) -> String? {
        guard let base = document.bytes.baseAddress else { return nil }
        var length = 0
        let text =
            canonical
            ? ferry_bson_to_canonical_json(base.assumingMemoryBound(to: UInt8.self), UInt32(document.byteCount), &length)
            : ferry_bson_to_relaxed_json(base.assumingMemoryBound(to: UInt8.self), UInt32(document.byteCount), &length)
        guard let text else { return nil }
        defer { bson_free(text) }
        return String(decoding: UnsafeRawBufferPointer(start: text, count: length), as: UTF8.self)
    }

    /// Full structural validation (UTF-8, nesting, lengths): libbson's, then
    /// Ferry's own walk for what libbson 1.23 lets through.
    /// Returns nil when valid, or the byte offset of the first problem.
    public static func firstInvalidOffset(_ document: DocumentView) -> Int? {
        guard let base = document.bytes.baseAddress else { return 0 }
        let offset = ferry_bson_validate(base.assumingMemoryBound(to: UInt8.self), UInt32(document.byteCount))
        if offset >= 0 { return Int(offset) }
        return firstProblem(document, at: 0)
    }

    /// libbson 1.23's `bson_validate` checks the UTF-8 of keys but not of
    /// string values (which Ferry decodes lossily), and misses a nested
    /// document or array that ends early, holds an unknown type or lacks its
    /// terminator (libbson's JSON renderer then writes broken JSON). So every
    /// document, nested ones too, must walk element by element exactly to its
    /// terminator, and every string, code, symbol, regex, DBPointer and
    /// code-with-scope value must hold NUL-terminated UTF-8 (NULs allowed in
    /// strings). `at` is the document's offset in the top one.
    private static func firstProblem(_ document: DocumentView, at base: Int) -> Int? {
        let bytes = document.bytes
        guard let start = bytes.baseAddress, bytes.count >= 5, bytes[bytes.count - 1] == 0 else { return base }
        var end = 4
        for element in document {
            guard let elementStart = element.element.baseAddress else { return base + end }
            let offset = elementStart - start
            end = offset + element.element.count
            switch element.typeByte {
            case BSONType.string.rawValue, BSONType.javascript.rawValue, BSONType.symbol.rawValue:
                guard element.value.last == 0, let text = element.stringBytes else { return base + offset }
                if let pointer = text.baseAddress,
                    !bson_utf8_validate(pointer.assumingMemoryBound(to: CChar.self), text.count, true)
                {
                    return base + offset
                }
            case BSONType.document.rawValue, BSONType.array.rawValue:
                guard let nested = element.documentValue, let nestedStart = nested.bytes.baseAddress else { return base + offset }
                if let problem = firstProblem(nested, at: base + (nestedStart - start)) { return problem }
            case BSONType.regex.rawValue:
                // Pattern and options, each NUL-terminated.
                let value = element.value
                guard let split = value.firstIndex(of: 0), isUTF8(value[..<split]), isUTF8(value[(split + 1)...].dropLast()) else {
                    return base + offset
                }
            case BSONType.dbPointer.rawValue:
                // A string (int32 length with its NUL), then a 12-byte ObjectId.
                let value = element.value
                let length = Int(Int32(littleEndian: value.loadUnaligned(as: Int32.self)))
                guard value.count == 4 + length + 12, value[4 + length - 1] == 0, isUTF8(value[4..<(4 + length - 1)]) else {
                    return base + offset
                }
            case BSONType.javascriptWithScope.rawValue:
                // Total length, then a string (int32 length with its NUL), then the scope document.
                let value = element.value
                guard value.count >= 14 else { return base + offset }
                let length = Int(Int32(littleEndian: value.loadUnaligned(fromByteOffset: 4, as: Int32.self)))
                guard length >= 1, 8 + length + 5 <= value.count, value[8 + length - 1] == 0, isUTF8(value[8..<(8 + length - 1)]) else {
                    return base + offset
                }
                let scope = DocumentView(UnsafeRawBufferPointer(rebasing: value[(8 + length)...]))
                guard let scopeStart = scope.bytes.baseAddress,
                    Int(Int32(littleEndian: scope.bytes.loadUnaligned(as: Int32.self))) == scope.byteCount
                else { return base + offset }
                if let problem = firstProblem(scope, at: base + (scopeStart - start)) { return problem }
            default:
                continue
            }
        }
        // The walk stops at the terminator, or early at an element it cannot read.
        return end == bytes.count - 1 ? nil : base + end
    }

    private static func isUTF8(_ bytes: Slice<UnsafeRawBufferPointer>) -> Bool {
        let text = UnsafeRawBufferPointer(rebasing: bytes)
        guard let pointer = text.baseAddress else { return true }
        return bson_utf8_validate(pointer.assumingMemoryBound(to: CChar.self), text.count, true)
    }
}

public struct ExtendedJSONError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}
