/// An owned BSON value, for code off the hot path: transforms that rebuild
/// documents, dry-run previews and tests.
public enum BSONValue: Equatable, Sendable {
    case double(Double)
    case string(String)
    case document(BSONDocument)
    case array([BSONValue])
    case binary(subtype: UInt8, data: [UInt8])
    case objectId([UInt8])
    case bool(Bool)
    /// Milliseconds since the Unix epoch, UTC.
    case datetime(Int64)
    case null
    case regex(pattern: String, options: String)
    case int32(Int32)
    case timestamp(UInt64)
    case int64(Int64)
    /// IEEE 754-2008 decimal128, as its 16 little-endian bytes.
    case decimal128([UInt8])
    case minKey
    case maxKey
    /// Any other (deprecated) type, kept as its raw value bytes.
    case raw(type: UInt8, bytes: [UInt8])
}

extension BSONValue {
    /// The value's type byte.
    public var typeByte: UInt8 {
        switch self {
        case .double: BSONType.double.rawValue
        case .string: BSONType.string.rawValue
        case .document: BSONType.document.rawValue
        case .array: BSONType.array.rawValue
        case .binary: BSONType.binary.rawValue
        case .objectId: BSONType.objectId.rawValue
        case .bool: BSONType.bool.rawValue
        case .datetime: BSONType.datetime.rawValue
        case .null: BSONType.null.rawValue
        case .regex: BSONType.regex.rawValue
        case .int32: BSONType.int32.rawValue
        case .timestamp: BSONType.timestamp.rawValue
        case .int64: BSONType.int64.rawValue
        case .decimal128: BSONType.decimal128.rawValue
        case .minKey: BSONType.minKey.rawValue
        case .maxKey: BSONType.maxKey.rawValue
        case .raw(let type, _): type
        }
    }

    /// An int32, int64 or double as a Double (an int64 past 2^53 rounds to the
    /// nearest), else nil: how checks compare numbers across integer widths.
    public var numberAsDouble: Double? {
        switch self {
        case .int32(let value): Double(value)
        case .int64(let value): Double(value)
        case .double(let value): value
        default: nil
        }
    }

    /// The type's name in messages (`BSONType.name`): `string`, `int32`, `decimal`, `date`…
    public var typeName: String { BSONType.name(of: typeByte) }
}

/// An owned, ordered BSON document.
public struct BSONDocument: Equatable, Sendable, ExpressibleByDictionaryLiteral {
    public var fields: [(key: String, value: BSONValue)]

    public init(_ fields: [(String, BSONValue)] = []) {
        self.fields = fields.map { (key: $0.0, value: $0.1) }
    }

    public init(dictionaryLiteral elements: (String, BSONValue)...) {
        self.init(elements)
    }

    public subscript(key: String) -> BSONValue? {
        get { fields.first { $0.key == key }?.value }
        set {
            if let index = fields.firstIndex(where: { $0.key == key }) {
                if let newValue { fields[index].value = newValue } else { fields.remove(at: index) }
            } else if let newValue {
                fields.append((key: key, value: newValue))
            }
        }
    }

    public var keys: [String] { fields.map(\.key) }

    public static func == (lhs: BSONDocument, rhs: BSONDocument) -> Bool {
        lhs.fields.count == rhs.fields.count
            && zip(lhs.fields, rhs.fields).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    /// Encodes the document to BSON bytes.
    public func encoded() -> [UInt8] {
        let buffer = ByteBuffer(capacity: 64)
        var writer = DocumentWriter(buffer: buffer)
        for (key, value) in fields { writer.append(key, value) }
        writer.finish()
        return buffer.copyBytes()
    }
}

extension BSONElement {
    /// The value decoded into an owned `BSONValue`.
    public var decodedValue: BSONValue {
        func bytes(_ range: Range<Int>) -> [UInt8] { Array(value[range]) }
        switch typeByte {
        case 0x01: return .double(doubleValue!)
        case 0x02: return .string(stringValue!)
        case 0x03: return .document(DocumentView(value).decode())
        case 0x04: return .array(DocumentView(value).map(\.decodedValue))
        case 0x05: return .binary(subtype: value[4], data: bytes(5..<value.count))
        case 0x07: return .objectId(bytes(0..<12))
        case 0x08: return .bool(value[0] != 0)
        case 0x09: return .datetime(int64Value!)
        case 0x0A: return .null
        case 0x0B:
            let parts = value.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
            return .regex(
                pattern: String(decoding: parts[0], as: UTF8.self),
                options: parts.count > 1 ? String(decoding: parts[1], as: UTF8.self) : "")
        case 0x10: return .int32(int32Value!)
        case 0x11: return .timestamp(UInt64(littleEndian: value.loadUnaligned(as: UInt64.self)))
        case 0x12: return .int64(int64Value!)
        case 0x13: return .decimal128(bytes(0..<16))
        case 0xFF: return .minKey
        case 0x7F: return .maxKey
        default: return .raw(type: typeByte, bytes: Array(value))
        }
    }
}
