#if canImport(Glibc)
import Glibc
#endif
import CFerryPlugin

/// Builds one batch: documents appended back to back in one malloc'd buffer
/// that is handed over the ABI without copying, and freed by `release`.
public final class BatchBuilder {
    let buffer: ByteBuffer
    /// Unchecked for the same reason as `ByteBuffer`'s fields: one per record on the hot path.
    @exclusivity(unchecked) public private(set) var count = 0
    /// For sources: the resume position after this batch (opaque to the host).
    public var state: [UInt8]?

    public init(capacity: Int = 4096) {
        buffer = ByteBuffer(capacity: capacity)
    }

    public var byteCount: Int { buffer.count }
    public var isEmpty: Bool { count == 0 }

    /// Writes a document field by field.
    @inline(__always)
    public func appendDocument(_ body: (inout DocumentWriter) throws -> Void) rethrows {
        var writer = DocumentWriter(buffer: buffer)
        let start = buffer.count
        do {
            try body(&writer)
        } catch {
            buffer.count = start
            throw error
        }
        writer.finish()
        count += 1
    }

    /// Copies a document as it is (no decode, no re-encode).
    @inline(__always)
    public func append(_ document: DocumentView) {
        buffer.append(document.bytes)
        count += 1
    }

    /// Copies an encoded document. The caller vouches that `bytes` is one BSON document.
    public func append(encoded bytes: UnsafeRawBufferPointer) {
        buffer.append(bytes)
        count += 1
    }

    public func append(_ document: BSONDocument) {
        var writer = DocumentWriter(buffer: buffer)
        for (key, value) in document.fields { writer.append(key, value) }
        writer.finish()
        count += 1
    }

    /// A view of what has been built so far.
    public var view: BatchView { BatchView(bytes: buffer.bytes, count: count) }

    /// Drops the documents and state, keeping the storage.
    public func reset() {
        buffer.removeAll()
        count = 0
        state = nil
    }

    /// Moves the contents into `batch` (documents, then the state blob, in one
    /// allocation whose pointer goes into `private_data`) and starts empty.
    public func finish(into batch: inout ferry_batch) {
        let documentBytes = buffer.count
        if let state, !state.isEmpty {
            state.withUnsafeBytes { buffer.append($0) }
        }
        let hint = buffer.capacity
        let (pointer, total) = buffer.take()
        batch.data = UnsafePointer(pointer?.assumingMemoryBound(to: UInt8.self))
        batch.size = UInt64(documentBytes)
        batch.count = UInt32(count)
        batch.private_data = pointer
        if total > documentBytes, let pointer {
            batch.state = UnsafePointer((pointer + documentBytes).assumingMemoryBound(to: UInt8.self))
            batch.state_size = UInt32(total - documentBytes)
        } else {
            batch.state = nil
            batch.state_size = 0
        }
        count = 0
        state = nil
        buffer.reserve(hint)
    }

    /// Frees what `finish(into:)` handed over.
    public static func release(_ batch: inout ferry_batch) {
        if batch.flags & UInt32(FERRY_BATCH_PASSTHROUGH) == 0 {
            free(batch.private_data)
        }
        batch = ferry_batch()
    }
}
