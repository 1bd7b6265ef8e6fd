/// A growable byte buffer for rewriting one record at a time, reused for
/// every record of an instance. Its appends inline (the SDK's `ByteBuffer`
/// lives in another module, so each of its appends is a call).
final class RecordWriter {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int = 4096) {
        self.capacity = capacity
        base = .allocate(byteCount: capacity, alignment: 8)
    }

    deinit { base.deallocate() }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    func removeAll() { count = 0 }

    @inline(__always)
    private func reserve(_ extra: Int) {
        guard count + extra > capacity else { return }
        var grown = capacity * 2
        while grown < count + extra { grown *= 2 }
        let moved = UnsafeMutableRawPointer.allocate(byteCount: grown, alignment: 8)
        moved.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = moved
        capacity = grown
    }

    @inline(__always)
    func append(_ bytes: UnsafeRawBufferPointer) {
        reserve(bytes.count)
        if let source = bytes.baseAddress, bytes.count > 0 { (base + count).copyMemory(from: source, byteCount: bytes.count) }
        count += bytes.count
    }

    @inline(__always)
    func append(byte: UInt8) {
        reserve(1)
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    /// Reserves an int32 length at the current end and returns its offset.
    @inline(__always)
    func beginLength() -> Int {
        reserve(4)
        count += 4
        return count - 4
    }

    /// Writes the length of everything from `offset` on, into the int32 there.
    @inline(__always)
    func endLength(at offset: Int) {
        base.storeBytes(of: Int32(count - offset).littleEndian, toByteOffset: offset, as: Int32.self)
    }
}
