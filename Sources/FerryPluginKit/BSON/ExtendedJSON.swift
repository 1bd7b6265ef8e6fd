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

    /// Full structural validation through libbson (UTF-8, nesting, lengths).
    /// Returns nil when valid, or the byte offset of the first problem.
    public static func firstInvalidOffset(_ document: DocumentView) -> Int? {
        guard let base = document.bytes.baseAddress else { return 0 }
        let offset = ferry_bson_validate(base.assumingMemoryBound(to: UInt8.self), UInt32(document.byteCount))
        return offset < 0 ? nil : Int(offset)
    }
}

public struct ExtendedJSONError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}
