/// A dot path compiled once at open: each component's key bytes, or a
/// wildcard (`*`) that stands for every element of an array (or every field
/// of a document).
///
/// The key bytes live in one allocation the path owns, so walking a record
/// compares raw bytes and allocates nothing.
final class FieldPath {
    enum Component {
        case key(UnsafeRawBufferPointer)
        case wildcard
    }

    let text: String
    let components: [Component]
    /// The same components as plain values, for the hot path (no enum payloads, no ARC).
    let steps: UnsafeMutableBufferPointer<PathStep>
    private let storage: UnsafeMutableRawBufferPointer

    /// Nil when `text` is not a dot path (an empty component, a NUL).
    init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard !text.isEmpty, !parts.contains(where: \.isEmpty), !text.utf8.contains(0) else { return nil }
        self.text = text
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, text.utf8.count), alignment: 1)
        var components: [Component] = []
        var offset = 0
        for part in parts {
            if part == "*" {
                components.append(.wildcard)
                continue
            }
            let bytes = Array(part.utf8)
            let destination = UnsafeMutableRawBufferPointer(rebasing: storage[offset..<(offset + bytes.count)])
            destination.copyBytes(from: bytes)
            components.append(.key(UnsafeRawBufferPointer(destination)))
            offset += bytes.count
        }
        self.components = components
        steps = .allocate(capacity: components.count)
        for (index, component) in components.enumerated() {
            switch component {
            case .key(let key): steps[index] = PathStep(key: key)
            case .wildcard: steps[index] = PathStep(key: UnsafeRawBufferPointer(start: nil, count: 0), isWildcard: true)
            }
        }
    }

    deinit {
        steps.deallocate()
        storage.deallocate()
    }
}

/// One path component as a trivial value: key bytes, or a wildcard.
struct PathStep {
    let key: UnsafeRawBufferPointer
    let isWildcard: Bool
    /// The key's first 8 bytes, little-endian, zero-padded: for keys under 8
    /// bytes the padding is the NUL after the key, so one masked compare of an
    /// 8-byte load checks key and terminator together.
    let head: UInt64
    /// Covers the key and its NUL, up to 8 bytes.
    let headMask: UInt64

    init(key: UnsafeRawBufferPointer, isWildcard: Bool = false) {
        self.key = key
        self.isWildcard = isWildcard
        var head: UInt64 = 0
        for (index, byte) in key.prefix(8).enumerated() { head |= UInt64(byte) << (8 * UInt64(index)) }
        self.head = head
        let covered = min(key.count + 1, 8)
        headMask = covered == 8 ? ~0 : (UInt64(1) << (8 * UInt64(covered))) - 1
    }
}

extension UnsafeRawBufferPointer {
    /// Byte equality through memcmp: keys are short, this is the inner loop.
    @inline(__always)
    func sameBytes(as other: UnsafeRawBufferPointer) -> Bool {
        count == other.count && (count == 0 || memcmp(baseAddress!, other.baseAddress!, count) == 0)
    }
}

#if canImport(Glibc)
import Glibc
#endif
