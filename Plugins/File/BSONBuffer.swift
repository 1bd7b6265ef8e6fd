#if canImport(Glibc)
import Glibc
#endif

/// A growable malloc'd byte buffer local to this plugin: the SDK's
/// `ByteBuffer` is not inlinable across the library boundary, and the JSON
/// parser and writer append a few bytes at a time, millions of times a second.
/// Never shared between threads.
final class BSONBuffer {
    @exclusivity(unchecked) private(set) var base: UnsafeMutableRawPointer
    @exclusivity(unchecked) var count = 0
    @exclusivity(unchecked) private(set) var capacity: Int

    init(capacity: Int) {
        self.capacity = Swift.max(capacity, 64)
        guard let memory = malloc(self.capacity) else { fatalError("ferry file: out of memory (\(capacity) bytes)") }
        base = memory
    }

    deinit { free(base) }

    @inline(__always)
    func reserve(_ extra: Int) {
        if count + extra > capacity { grow(to: count + extra) }
    }

    @inline(never)
    private func grow(to needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        guard let grown = realloc(base, newCapacity) else { fatalError("ferry file: out of memory (\(newCapacity) bytes)") }
        base = grown
        capacity = newCapacity
    }

    @inline(__always)
    func append(byte: UInt8) {
        reserve(1)
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    @inline(__always)
    func append(_ pointer: UnsafeRawPointer, _ length: Int) {
        reserve(length)
        (base + count).copyMemory(from: pointer, byteCount: length)
        count += length
    }

    @inline(__always)
    func append(_ bytes: UnsafeRawBufferPointer) {
        if let pointer = bytes.baseAddress, bytes.count > 0 { append(pointer, bytes.count) }
    }

    @inline(__always)
    func append(_ text: StaticString) {
        append(UnsafeRawPointer(text.utf8Start), text.utf8CodeUnitCount)
    }

    @inline(__always)
    func append<T: FixedWidthInteger>(littleEndian value: T) {
        reserve(MemoryLayout<T>.size)
        (base + count).storeBytes(of: value.littleEndian, as: T.self)
        count += MemoryLayout<T>.size
    }

    @inline(__always)
    func patch(int32 value: Int32, at offset: Int) {
        (base + offset).storeBytes(of: value.littleEndian, as: Int32.self)
    }

    @inline(__always)
    func patch(byte: UInt8, at offset: Int) {
        base.storeBytes(of: byte, toByteOffset: offset, as: UInt8.self)
    }

    /// Appends `value` in decimal.
    @inline(__always)
    func appendDecimal(_ value: Int64) {
        reserve(20)
        var magnitude = value.magnitude
        if value < 0 { append(byte: 0x2D) }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { scratch in
            var index = scratch.count
            repeat {
                index -= 1
                scratch[index] = UInt8(truncatingIfNeeded: 0x30 + magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            append(scratch.baseAddress! + index, scratch.count - index)
        }
    }

    func removeAll() { count = 0 }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}
