/// Remembers, per field name, whether a field-name rule keeps it: records of
/// one stream repeat the same few names, so most lookups skip PCRE2.
///
/// Direct-mapped (a colliding name replaces the older one), names up to
/// `maxKey` bytes; one per transform instance, never shared.
struct NameVerdictCache {
    static let slots = 256
    static let maxKey = 56

    private struct Slot {
        var hash: UInt64 = 0
        /// -1: empty.
        var length: Int = -1
        var keep = false
    }

    private let slots: UnsafeMutableBufferPointer<Slot>
    private let keys: UnsafeMutableRawBufferPointer

    init() {
        slots = .allocate(capacity: Self.slots)
        slots.initialize(repeating: Slot())
        keys = .allocate(byteCount: Self.slots * Self.maxKey, alignment: 8)
    }

    func deallocate() {
        slots.deallocate()
        keys.deallocate()
    }

    @inline(__always)
    static func hash(_ key: UnsafeRawBufferPointer) -> UInt64 {
        // FNV-1a: names are short, this is a handful of multiplies.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return hash
    }

    /// The cached verdict for `key`, if any.
    @inline(__always)
    func verdict(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Bool? {
        let index = Int(truncatingIfNeeded: hash) & (Self.slots - 1)
        let slot = slots[index]
        guard slot.hash == hash, slot.length == key.count,
            key.count == 0 || memcmp(keys.baseAddress! + index * Self.maxKey, key.baseAddress!, key.count) == 0
        else { return nil }
        return slot.keep
    }

    @inline(__always)
    func store(_ key: UnsafeRawBufferPointer, hash: UInt64, keep: Bool) {
        guard key.count <= Self.maxKey else { return }
        let index = Int(truncatingIfNeeded: hash) & (Self.slots - 1)
        if key.count > 0 { (keys.baseAddress! + index * Self.maxKey).copyMemory(from: key.baseAddress!, byteCount: key.count) }
        slots[index] = Slot(hash: hash, length: key.count, keep: keep)
    }
}

#if canImport(Glibc)
import Glibc
#endif
