/// A read-only, zero-copy view of one BSON document inside a batch buffer.
///
/// The view borrows the buffer: it is valid only while the batch it came from
/// is alive (for the length of a plugin call). Iterating it allocates nothing.
public struct DocumentView: Sequence {
    /// The whole document: its int32 length, its elements and the 0 terminator.
    public let bytes: UnsafeRawBufferPointer

    public init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// The document's declared length in bytes.
    public var byteCount: Int { bytes.count }

    public func makeIterator() -> Iterator { Iterator(bytes: bytes) }

    /// Walks the elements; stops (returns nil) at the terminator or at the
    /// first element that does not fit, so malformed input never reads out of bounds.
    public struct Iterator: IteratorProtocol {
        let bytes: UnsafeRawBufferPointer
        var offset = 4

        init(bytes: UnsafeRawBufferPointer) {
            self.bytes = bytes
            if bytes.count < 5 { offset = bytes.count }
        }

        public mutating func next() -> BSONElement? {
            let end = bytes.count - 1
            guard offset < end else { return nil }
            let start = offset
            let typeByte = bytes[start]
            if typeByte == 0 { return nil }
            let keyStart = offset + 1
            var keyEnd = keyStart
            while keyEnd < end && bytes[keyEnd] != 0 { keyEnd += 1 }
            guard keyEnd < end else { offset = end; return nil }
            let valueStart = keyEnd + 1
            guard let length = BSONElement.valueLength(type: typeByte, bytes: bytes, at: valueStart),
                valueStart + length <= end
            else { offset = end; return nil }
            offset = valueStart + length
            return BSONElement(
                typeByte: typeByte,
                keyBytes: UnsafeRawBufferPointer(rebasing: bytes[keyStart..<keyEnd]),
                value: UnsafeRawBufferPointer(rebasing: bytes[valueStart..<(valueStart + length)]),
                element: UnsafeRawBufferPointer(rebasing: bytes[start..<offset]))
        }
    }

    /// The element with this exact key at the top level, if any.
    public func element(forKey key: String) -> BSONElement? {
        var key = key
        return key.withUTF8 { keyBytes in
            for element in self where element.keyBytes.elementsEqual(keyBytes) { return element }
            return nil
        }
    }

    /// Follows a dot path (`a.b.0.c`) through nested documents and arrays.
    public func element(atPath path: String) -> BSONElement? {
        var current = self
        var result: BSONElement?
        for component in path.split(separator: ".", omittingEmptySubsequences: false) {
            guard let element = current.element(forKey: String(component)) else { return nil }
            result = element
            if let nested = element.documentValue { current = nested } else { current = DocumentView(UnsafeRawBufferPointer(start: nil, count: 0)) }
        }
        return result
    }

    /// Copies the document into an owned value (for tests, previews and slow paths).
    public func decode() -> BSONDocument {
        var fields: [(String, BSONValue)] = []
        for element in self { fields.append((element.key, element.decodedValue)) }
        return BSONDocument(fields)
    }
}

/// One element of a document: its type, key and value bytes, all borrowed.
public struct BSONElement {
    public let typeByte: UInt8
    public let keyBytes: UnsafeRawBufferPointer
    /// The value's encoded bytes, without type byte and key.
    public let value: UnsafeRawBufferPointer
    /// The whole element as encoded: type byte, key, NUL, value.
    public let element: UnsafeRawBufferPointer

    public var type: BSONType? { BSONType(rawValue: typeByte) }
    public var key: String { String(decoding: keyBytes, as: UTF8.self) }

    public var int32Value: Int32? {
        typeByte == BSONType.int32.rawValue ? Int32(littleEndian: value.loadUnaligned(as: Int32.self)) : nil
    }
    public var int64Value: Int64? {
        switch typeByte {
        case BSONType.int64.rawValue, BSONType.datetime.rawValue: Int64(littleEndian: value.loadUnaligned(as: Int64.self))
        case BSONType.int32.rawValue: Int64(Int32(littleEndian: value.loadUnaligned(as: Int32.self)))
        default: nil
        }
    }
    public var doubleValue: Double? {
        typeByte == BSONType.double.rawValue ? Double(bitPattern: UInt64(littleEndian: value.loadUnaligned(as: UInt64.self))) : nil
    }
    public var boolValue: Bool? { typeByte == BSONType.bool.rawValue ? value[0] != 0 : nil }
    /// The UTF-8 bytes of a string value, without its NUL.
    public var stringBytes: UnsafeRawBufferPointer? {
        guard typeByte == BSONType.string.rawValue || typeByte == BSONType.symbol.rawValue
            || typeByte == BSONType.javascript.rawValue, value.count >= 5
        else { return nil }
        return UnsafeRawBufferPointer(rebasing: value[4..<(value.count - 1)])
    }
    public var stringValue: String? { stringBytes.map { String(decoding: $0, as: UTF8.self) } }
    public var documentValue: DocumentView? {
        typeByte == BSONType.document.rawValue || typeByte == BSONType.array.rawValue ? DocumentView(value) : nil
    }

    /// Length in bytes of a value of `type` starting at `offset`, or nil if it
    /// cannot be encoded there.
    static func valueLength(type: UInt8, bytes: UnsafeRawBufferPointer, at offset: Int) -> Int? {
        let available = bytes.count - offset
        func int32(at position: Int) -> Int? {
            guard position + 4 <= bytes.count else { return nil }
            return Int(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: Int32.self)))
        }
        func cString(at position: Int) -> Int? {
            var index = position
            while index < bytes.count, bytes[index] != 0 { index += 1 }
            return index < bytes.count ? index - position + 1 : nil
        }
        let length: Int?
        switch type {
        case 0x01, 0x09, 0x11, 0x12: length = 8
        case 0x02, 0x0D, 0x0E:
            length = int32(at: offset).flatMap { $0 >= 1 ? 4 + $0 : nil }
        case 0x03, 0x04, 0x0F:
            length = int32(at: offset).flatMap { $0 >= 5 ? $0 : nil }
        case 0x05: length = int32(at: offset).flatMap { $0 >= 0 ? 5 + $0 : nil }
        case 0x06, 0x0A, 0xFF, 0x7F: length = 0
        case 0x07: length = 12
        case 0x08: length = 1
        case 0x0B:
            if let pattern = cString(at: offset), let options = cString(at: offset + pattern) {
                length = pattern + options
            } else { length = nil }
        case 0x0C: length = int32(at: offset).flatMap { $0 >= 1 ? 4 + $0 + 12 : nil }
        case 0x10: length = 4
        case 0x13: length = 16
        default: length = nil
        }
        guard let length, length <= available else { return nil }
        return length
    }
}
