#if canImport(Glibc)
import Glibc
#endif

/// One element found by `BSONScanner`: its type byte, key and value bytes.
struct ScannedElement {
    let type: UInt8
    let key: UnsafeRawBufferPointer
    /// The encoded value, without type byte and key.
    let value: UnsafeRawBufferPointer

    /// The UTF-8 bytes of a string (or symbol, or JavaScript code) value,
    /// without its length and NUL.
    @inline(__always)
    var stringBytes: UnsafeRawBufferPointer? {
        guard type == 0x02 || type == 0x0E || type == 0x0D, value.count >= 5 else { return nil }
        return UnsafeRawBufferPointer(rebasing: value[4..<(value.count - 1)])
    }

    /// The value as a document view, for documents and arrays.
    @inline(__always)
    var isContainer: Bool { type == 0x03 || type == 0x04 }
}

/// Walks the elements of one BSON document in place, for the per-record hot
/// path: no iterator objects, no key strings, bounds checked on every length
/// so malformed input ends the walk instead of reading out of bounds.
enum BSONScanner {
    /// Walks a document's elements one by one.
    struct Cursor {
        let base: UnsafeRawPointer?
        /// The index of the document's terminating NUL.
        let end: Int
        var offset = 4

        @inline(__always)
        init(_ document: UnsafeRawBufferPointer) {
            base = document.baseAddress
            end = document.count >= 5 && document.baseAddress != nil ? document.count - 1 : 0
        }

        @inline(__always)
        mutating func next() -> ScannedElement? {
            guard offset < end, let base else { return nil }
            let type = base.load(fromByteOffset: offset, as: UInt8.self)
            if type == 0 { return nil }
            let keyStart = offset + 1
            var keyEnd = keyStart
            while keyEnd < end && base.load(fromByteOffset: keyEnd, as: UInt8.self) != 0 { keyEnd += 1 }
            guard keyEnd < end else { return nil }
            let valueStart = keyEnd + 1
            guard let length = valueLength(type: type, base: base, at: valueStart, available: end - valueStart) else {
                offset = end
                return nil
            }
            offset = valueStart + length
            return ScannedElement(
                type: type,
                key: UnsafeRawBufferPointer(start: base + keyStart, count: keyEnd - keyStart),
                value: UnsafeRawBufferPointer(start: base + valueStart, count: length))
        }
    }

    /// Calls `body` for each element until it returns false or the document
    /// ends (or stops being well-formed).
    @inline(__always)
    static func forEach(_ document: UnsafeRawBufferPointer, _ body: (ScannedElement) -> Bool) {
        var cursor = Cursor(document)
        while let element = cursor.next() {
            if !body(element) { return }
        }
    }

    /// The first element with this path step's key, if any.
    ///
    /// Keys are short: one unaligned 8-byte load finds the key's NUL (the
    /// zero-byte bit trick) and, masked, compares key and NUL at once. Near the
    /// end of the document, or for keys of 8 bytes and more, it goes byte by byte.
    @inline(__always)
    static func find(_ step: PathStep, in document: UnsafeRawBufferPointer) -> ScannedElement? {
        guard document.count >= 5, let base = document.baseAddress else { return nil }
        let wantedCount = step.key.count
        let end = document.count - 1
        var offset = 4
        while offset < end {
            let type = base.load(fromByteOffset: offset, as: UInt8.self)
            if type == 0 { return nil }
            let keyStart = offset + 1
            var keyEnd: Int
            var same: Bool
            if keyStart + 8 <= document.count {
                let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: keyStart, as: UInt64.self))
                let zeros = (word &- 0x0101_0101_0101_0101) & ~word & 0x8080_8080_8080_8080
                if zeros != 0 {
                    keyEnd = keyStart + zeros.trailingZeroBitCount / 8
                    same = wantedCount < 8 && (word & step.headMask) == step.head
                } else {
                    keyEnd = keyStart + 8
                    while keyEnd < end && base.load(fromByteOffset: keyEnd, as: UInt8.self) != 0 { keyEnd += 1 }
                    same = wantedCount >= 8 && keyEnd - keyStart == wantedCount && word == step.head
                        && (wantedCount == 8 || memcmp(base + keyStart + 8, step.key.baseAddress! + 8, wantedCount - 8) == 0)
                }
            } else {
                keyEnd = keyStart
                while keyEnd < end && base.load(fromByteOffset: keyEnd, as: UInt8.self) != 0 { keyEnd += 1 }
                same = keyEnd - keyStart == wantedCount
                    && (wantedCount == 0 || memcmp(base + keyStart, step.key.baseAddress!, wantedCount) == 0)
            }
            guard keyEnd < end else { return nil }
            let valueStart = keyEnd + 1
            guard let length = valueLength(type: type, base: base, at: valueStart, available: end - valueStart) else { return nil }
            if same {
                return ScannedElement(
                    type: type,
                    key: UnsafeRawBufferPointer(start: base + keyStart, count: keyEnd - keyStart),
                    value: UnsafeRawBufferPointer(start: base + valueStart, count: length))
            }
            offset = valueStart + length
        }
        return nil
    }

    /// Length of a value of `type` at `offset`, nil if it does not fit in `available`.
    @inline(__always)
    static func valueLength(type: UInt8, base: UnsafeRawPointer, at offset: Int, available: Int) -> Int? {
        @inline(__always) func int32() -> Int? {
            available >= 4 ? Int(Int32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: Int32.self))) : nil
        }
        let length: Int
        switch type {
        case 0x01, 0x09, 0x11, 0x12: length = 8
        case 0x10: length = 4
        case 0x02, 0x0D, 0x0E:
            guard let size = int32(), size >= 1 else { return nil }
            length = 4 + size
        case 0x03, 0x04, 0x0F:
            guard let size = int32(), size >= 5 else { return nil }
            length = size
        case 0x08: length = 1
        case 0x07: length = 12
        case 0x13: length = 16
        case 0x06, 0x0A, 0xFF, 0x7F: length = 0
        case 0x05:
            guard let size = int32(), size >= 0 else { return nil }
            length = 5 + size
        case 0x0B:
            // Two C strings: pattern and options.
            var index = offset
            var strings = 0
            let limit = offset + available
            while index < limit && strings < 2 {
                if base.load(fromByteOffset: index, as: UInt8.self) == 0 { strings += 1 }
                index += 1
            }
            guard strings == 2 else { return nil }
            length = index - offset
        case 0x0C:
            guard let size = int32(), size >= 1 else { return nil }
            length = 4 + size + 12
        default: return nil
        }
        return length <= available ? length : nil
    }
}
