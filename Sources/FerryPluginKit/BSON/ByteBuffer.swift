#if canImport(Glibc)
import Glibc
#endif

/// A growable byte buffer on malloc'd memory, so its storage can be handed
/// across the C ABI and freed there with `free`.
///
/// Its fields opt out of dynamic exclusivity checks: they are touched several
/// times per BSON field on the hot path, the checks cost about half of a
/// generator's time (measured with perf), and a buffer is never shared
/// between threads or accessed re-entrantly.
public final class ByteBuffer {
    @exclusivity(unchecked) public private(set) var base: UnsafeMutableRawPointer?
    @exclusivity(unchecked) public internal(set) var count = 0
    @exclusivity(unchecked) public private(set) var capacity = 0

    public init(capacity: Int = 0) {
        if capacity > 0 { reserve(capacity) }
    }

    deinit { free(base) }

    @inline(__always)
    public func reserve(_ extra: Int) {
        let needed = count + extra
        if needed <= capacity { return }
        var newCapacity = Swift.max(capacity * 2, 256)
        while newCapacity < needed { newCapacity *= 2 }
        guard let grown = realloc(base, newCapacity) else { fatalError("ferry: out of memory (\(newCapacity) bytes)") }
        base = grown
        capacity = newCapacity
    }

    @inline(__always)
    public func append(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        reserve(bytes.count)
        (base! + count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        count += bytes.count
    }

    @inline(__always)
    public func append(byte: UInt8) {
        reserve(1)
        base!.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    @inline(__always)
    public func append<T: FixedWidthInteger>(littleEndian value: T) {
        reserve(MemoryLayout<T>.size)
        (base! + count).storeBytes(of: value.littleEndian, as: T.self)
        count += MemoryLayout<T>.size
    }

    @inline(__always)
    func patch(int32 value: Int32, at offset: Int) {
        (base! + offset).storeBytes(of: value.littleEndian, as: Int32.self)
    }

    /// Drops the contents, keeping the storage.
    public func removeAll() { count = 0 }

    /// Hands the storage to the caller (who must `free` it) and starts empty.
    public func take() -> (pointer: UnsafeMutableRawPointer?, count: Int) {
        let taken = (base, count)
        base = nil
        count = 0
        capacity = 0
        return taken
    }

    public func copyBytes() -> [UInt8] {
        guard let base else { return [] }
        return Array(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// The contents as a borrowed buffer, valid until the next mutation.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}
