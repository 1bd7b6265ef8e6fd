import CFerryPlugin

/// A borrowed view of a batch: `count` BSON documents back to back.
///
/// Iteration is bounds-checked and allocation-free; it stops early on a
/// document whose length does not fit, which `validateFraming()` reports.
public struct BatchView: Sequence {
    public let bytes: UnsafeRawBufferPointer
    public let count: Int

    public init(bytes: UnsafeRawBufferPointer, count: Int) {
        self.bytes = bytes
        self.count = count
    }

    public init(_ batch: ferry_batch) {
        self.init(
            bytes: UnsafeRawBufferPointer(start: batch.data, count: Int(batch.size)),
            count: Int(batch.count))
    }

    public var isEmpty: Bool { count == 0 }

    public func makeIterator() -> Iterator { Iterator(bytes: bytes) }

    public struct Iterator: IteratorProtocol {
        let bytes: UnsafeRawBufferPointer
        var offset = 0

        public mutating func next() -> DocumentView? {
            guard offset + 5 <= bytes.count else { return nil }
            let length = Int(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self)))
            guard length >= 5, offset + length <= bytes.count else { return nil }
            let document = DocumentView(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)]))
            offset += length
            return document
        }
    }

    /// The document at `index` (a linear walk: meant for rejects, not loops).
    public func document(at index: Int) -> DocumentView? {
        guard index >= 0 else { return nil }
        var iterator = makeIterator()
        for _ in 0..<index { guard iterator.next() != nil else { return nil } }
        return iterator.next()
    }

    /// Checks that the lengths add up: `count` documents, each at least 5
    /// bytes and 0-terminated, filling `bytes` exactly. Cheap: one hop per document.
    public func validateFraming() throws(BSONError) {
        var offset = 0
        var documents = 0
        while offset < bytes.count {
            guard offset + 5 <= bytes.count else {
                throw BSONError(offset: offset, "\(bytes.count - offset) trailing bytes after document \(documents)")
            }
            let length = Int(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self)))
            guard length >= 5, offset + length <= bytes.count else {
                throw BSONError(offset: offset, "document \(documents) declares \(length) bytes, \(bytes.count - offset) left in the batch")
            }
            guard bytes[offset + length - 1] == 0 else {
                throw BSONError(offset: offset + length - 1, "document \(documents) is not 0-terminated")
            }
            offset += length
            documents += 1
        }
        guard documents == count else {
            throw BSONError(offset: offset, "batch declares \(count) documents but holds \(documents)")
        }
    }
}
