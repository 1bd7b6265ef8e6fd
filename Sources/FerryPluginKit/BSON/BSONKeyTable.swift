#if canImport(Glibc)
import Glibc
#endif

/// Field names encoded once, for code that writes the same names in every
/// record (a table's columns, a fixed schema).
///
/// A `String` key is encoded again for each field written, and the names of
/// a column list are reached through copies that retain and release them;
/// on a database copy that was a quarter of a plugin's time (perf). A key
/// from a table is a pointer and a length into memory the table owns: use
/// it only while the table lives.
public final class BSONKeyTable {
    /// The keys, in the order of the names given.
    public let keys: UnsafeBufferPointer<BSONKey>
    private let storage: UnsafeMutableRawPointer

    /// Encodes `names` as UTF-8. A name must not hold a NUL (BSON ends keys with one).
    public init(_ names: [String]) {
        precondition(names.allSatisfy { !$0.utf8.contains(0) }, "a BSON key cannot hold a NUL byte")
        let total = names.reduce(0) { $0 + $1.utf8.count }
        let storage = UnsafeMutableRawPointer.allocate(byteCount: max(total, 1), alignment: 1)
        self.storage = storage
        let keys = UnsafeMutableBufferPointer<BSONKey>.allocate(capacity: max(names.count, 1))
        var offset = 0
        for (index, name) in names.enumerated() {
            var name = name
            let length = name.withUTF8 { utf8 in
                if let base = utf8.baseAddress { (storage + offset).copyMemory(from: base, byteCount: utf8.count) }
                return utf8.count
            }
            (keys.baseAddress! + index).initialize(to: BSONKey(utf8: UnsafeRawBufferPointer(start: storage + offset, count: length)))
            offset += length
        }
        self.keys = UnsafeBufferPointer(start: keys.baseAddress, count: names.count)
    }

    deinit {
        UnsafeMutableBufferPointer(mutating: keys).deallocate()
        storage.deallocate()
    }

    public var count: Int { keys.count }

    public subscript(index: Int) -> BSONKey { keys[index] }
}

/// One field name of a `BSONKeyTable`: its UTF-8 bytes, without the NUL.
public struct BSONKey: @unchecked Sendable {
    public let utf8: UnsafeRawBufferPointer

    /// Whether a field's key (`BSONElement.keyBytes`) is this name.
    @inline(__always)
    public func matches(_ key: UnsafeRawBufferPointer) -> Bool {
        key.count == utf8.count && (key.count == 0 || memcmp(key.baseAddress!, utf8.baseAddress!, key.count) == 0)
    }
}

extension DocumentWriter {
    public mutating func append(_ key: BSONKey, _ value: Int32) {
        header(.int32, key.utf8)
        buffer.append(littleEndian: value)
    }

    public mutating func append(_ key: BSONKey, _ value: Int64) {
        header(.int64, key.utf8)
        buffer.append(littleEndian: value)
    }

    public mutating func append(_ key: BSONKey, _ value: Double) {
        header(.double, key.utf8)
        buffer.append(littleEndian: value.bitPattern)
    }

    public mutating func append(_ key: BSONKey, _ value: Bool) {
        header(.bool, key.utf8)
        buffer.append(byte: value ? 1 : 0)
    }

    /// A string value from raw UTF-8 bytes (no NUL inside).
    public mutating func appendString(_ key: BSONKey, utf8 bytes: UnsafeRawBufferPointer) {
        header(.string, key.utf8)
        buffer.append(littleEndian: Int32(bytes.count + 1))
        buffer.append(bytes)
        buffer.append(byte: 0)
    }

    public mutating func appendNull(_ key: BSONKey) { header(.null, key.utf8) }

    /// A UTC datetime in milliseconds since the epoch.
    public mutating func appendDatetime(_ key: BSONKey, milliseconds: Int64) {
        header(.datetime, key.utf8)
        buffer.append(littleEndian: milliseconds)
    }

    /// A decimal128 from its two 64-bit halves (IEEE 754-2008 BID, as libbson stores them).
    public mutating func appendDecimal128(_ key: BSONKey, low: UInt64, high: UInt64) {
        header(.decimal128, key.utf8)
        buffer.append(littleEndian: low)
        buffer.append(littleEndian: high)
    }

    /// Binary data of a subtype (0 generic, 4 UUID, …), copied from `bytes`.
    public mutating func appendBinary(_ key: BSONKey, subtype: UInt8, _ bytes: UnsafeRawBufferPointer) {
        header(.binary, key.utf8)
        buffer.append(littleEndian: Int32(bytes.count))
        buffer.append(byte: subtype)
        buffer.append(bytes)
    }

    /// An owned value; for the common types the overloads above spare building one.
    public mutating func append(_ key: BSONKey, _ value: BSONValue) {
        append(String(decoding: key.utf8, as: UTF8.self), value)
    }
}
