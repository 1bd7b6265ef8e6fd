#if canImport(Glibc)
import Glibc
#endif

/// The COPY text of a batch, built byte by byte: a malloc'd buffer whose
/// fields skip exclusivity checks (per-byte hot path; one owner, one thread),
/// and that can drop a half-written row.
final class RowBuffer {
    @exclusivity(unchecked) private(set) var base: UnsafeMutableRawPointer?
    @exclusivity(unchecked) private(set) var count = 0
    @exclusivity(unchecked) private var capacity = 0

    deinit { free(base) }

    @inline(__always)
    func reserve(_ extra: Int) {
        let needed = count + extra
        if needed <= capacity { return }
        var newCapacity = max(capacity * 2, 4096)
        while newCapacity < needed { newCapacity *= 2 }
        guard let grown = realloc(base, newCapacity) else { fatalError("postgres: out of memory (\(newCapacity) bytes)") }
        base = grown
        capacity = newCapacity
    }

    @inline(__always)
    func append(_ byte: UInt8) {
        reserve(1)
        base!.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    @inline(__always)
    func append(_ a: UInt8, _ b: UInt8) {
        reserve(2)
        base!.storeBytes(of: a, toByteOffset: count, as: UInt8.self)
        base!.storeBytes(of: b, toByteOffset: count + 1, as: UInt8.self)
        count += 2
    }

    @inline(__always)
    func append(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        reserve(bytes.count)
        (base! + count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        count += bytes.count
    }

    func append(_ string: String) {
        var string = string
        string.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    func append<S: Sequence>(contentsOf bytes: S) where S.Element == UInt8 {
        for byte in bytes { append(byte) }
    }

    @inline(__always)
    func append<T: FixedWidthInteger>(bigEndian value: T) {
        reserve(MemoryLayout<T>.size)
        (base! + count).storeBytes(of: value.bigEndian, as: T.self)
        count += MemoryLayout<T>.size
    }

    /// Overwrites 4 bytes at `offset` (a length written before its value was known).
    func patch(int32BigEndian value: Int32, at offset: Int) {
        (base! + offset).storeBytes(of: value.bigEndian, as: Int32.self)
    }

    func truncate(to length: Int) { count = min(count, length) }
    func removeAll() { count = 0 }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}
