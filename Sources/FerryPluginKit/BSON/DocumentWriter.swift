/// Appends one BSON document to a `ByteBuffer`, field by field, with no
/// intermediate objects. Call `finish()` once, after the last field.
public struct DocumentWriter {
    let buffer: ByteBuffer
    let start: Int
    /// For arrays: the next index, written as the key.
    var nextIndex: Int?

    public init(buffer: ByteBuffer) {
        self.init(buffer: buffer, isArray: false)
    }

    init(buffer: ByteBuffer, isArray: Bool) {
        self.buffer = buffer
        self.start = buffer.count
        self.nextIndex = isArray ? 0 : nil
        buffer.append(littleEndian: Int32(0))
    }

    /// Writes the terminator and the length. The writer must not be used after.
    public mutating func finish() {
        buffer.append(byte: 0)
        buffer.patch(int32: Int32(buffer.count - start), at: start)
    }

    @inline(__always)
    mutating func header(_ type: BSONType, _ key: String) {
        buffer.append(byte: type.rawValue)
        var key = key
        key.withUTF8 { buffer.append(UnsafeRawBufferPointer($0)) }
        buffer.append(byte: 0)
    }

    @inline(__always)
    mutating func header(_ type: BSONType, _ key: UnsafeRawBufferPointer) {
        buffer.append(byte: type.rawValue)
        buffer.append(key)
        buffer.append(byte: 0)
    }

    public mutating func append(_ key: String, _ value: Int32) {
        header(.int32, key)
        buffer.append(littleEndian: value)
    }

    public mutating func append(_ key: String, _ value: Int64) {
        header(.int64, key)
        buffer.append(littleEndian: value)
    }

    public mutating func append(_ key: String, _ value: Int) { append(key, Int64(value)) }

    public mutating func append(_ key: String, _ value: Double) {
        header(.double, key)
        buffer.append(littleEndian: value.bitPattern)
    }

    public mutating func append(_ key: String, _ value: Bool) {
        header(.bool, key)
        buffer.append(byte: value ? 1 : 0)
    }

    public mutating func append(_ key: String, _ value: String) {
        header(.string, key)
        appendStringBody(value)
    }

    /// A string value from raw UTF-8 bytes (no NUL inside).
    public mutating func appendString(_ key: String, utf8 bytes: UnsafeRawBufferPointer) {
        header(.string, key)
        buffer.append(littleEndian: Int32(bytes.count + 1))
        buffer.append(bytes)
        buffer.append(byte: 0)
    }

    public mutating func appendNull(_ key: String) { header(.null, key) }

    /// A UTC datetime in milliseconds since the epoch.
    public mutating func appendDatetime(_ key: String, milliseconds: Int64) {
        header(.datetime, key)
        buffer.append(littleEndian: milliseconds)
    }

    public mutating func appendDocument(_ key: String, _ body: (inout DocumentWriter) throws -> Void) rethrows {
        header(.document, key)
        var nested = DocumentWriter(buffer: buffer, isArray: false)
        try body(&nested)
        nested.finish()
    }

    public mutating func appendArray(_ key: String, _ body: (inout DocumentWriter) throws -> Void) rethrows {
        header(.array, key)
        var nested = DocumentWriter(buffer: buffer, isArray: true)
        try body(&nested)
        nested.finish()
    }

    /// Copies an element as it is encoded, under its own key.
    public mutating func append(_ element: BSONElement) {
        buffer.append(element.element)
    }

    /// Copies an element's value under another key.
    public mutating func append(_ key: String, element: BSONElement) {
        buffer.append(byte: element.typeByte)
        var key = key
        key.withUTF8 { buffer.append(UnsafeRawBufferPointer($0)) }
        buffer.append(byte: 0)
        buffer.append(element.value)
    }

    /// For array writers: the next element's key ("0", "1", …).
    public mutating func nextKey() -> String {
        let index = nextIndex ?? 0
        nextIndex = index + 1
        return String(index)
    }

    /// Appends an owned value.
    public mutating func append(_ key: String, _ value: BSONValue) {
        switch value {
        case .double(let v): append(key, v)
        case .string(let v): append(key, v)
        case .document(let doc):
            appendDocument(key) { writer in
                for (k, v) in doc.fields { writer.append(k, v) }
            }
        case .array(let values):
            appendArray(key) { writer in
                for v in values { writer.append(writer.nextKey(), v) }
            }
        case .binary(let subtype, let data):
            header(.binary, key)
            buffer.append(littleEndian: Int32(data.count))
            buffer.append(byte: subtype)
            data.withUnsafeBytes { buffer.append($0) }
        case .objectId(let bytes):
            header(.objectId, key)
            bytes.withUnsafeBytes { buffer.append($0) }
        case .bool(let v): append(key, v)
        case .datetime(let ms): appendDatetime(key, milliseconds: ms)
        case .null: appendNull(key)
        case .regex(let pattern, let options):
            header(.regex, key)
            var p = pattern, o = options
            p.withUTF8 { buffer.append(UnsafeRawBufferPointer($0)) }
            buffer.append(byte: 0)
            o.withUTF8 { buffer.append(UnsafeRawBufferPointer($0)) }
            buffer.append(byte: 0)
        case .int32(let v): append(key, v)
        case .timestamp(let v):
            header(.timestamp, key)
            buffer.append(littleEndian: v)
        case .int64(let v): append(key, v)
        case .decimal128(let bytes):
            header(.decimal128, key)
            bytes.withUnsafeBytes { buffer.append($0) }
        case .minKey: header(.minKey, key)
        case .maxKey: header(.maxKey, key)
        case .raw(let type, let bytes):
            buffer.append(byte: type)
            var key = key
            key.withUTF8 { buffer.append(UnsafeRawBufferPointer($0)) }
            buffer.append(byte: 0)
            bytes.withUnsafeBytes { buffer.append($0) }
        }
    }

    @inline(__always)
    mutating func appendStringBody(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            buffer.append(littleEndian: Int32(utf8.count + 1))
            buffer.append(UnsafeRawBufferPointer(utf8))
        }
        buffer.append(byte: 0)
    }
}
