/// BSON element type bytes (bsonspec.org), the ones Ferry reads and writes.
public enum BSONType: UInt8, Sendable {
    case double = 0x01
    case string = 0x02
    case document = 0x03
    case array = 0x04
    case binary = 0x05
    case undefined = 0x06
    case objectId = 0x07
    case bool = 0x08
    case datetime = 0x09
    case null = 0x0A
    case regex = 0x0B
    case dbPointer = 0x0C
    case javascript = 0x0D
    case symbol = 0x0E
    case javascriptWithScope = 0x0F
    case int32 = 0x10
    case timestamp = 0x11
    case int64 = 0x12
    case decimal128 = 0x13
    case minKey = 0xFF
    case maxKey = 0x7F
}

extension BSONType {
    /// The type as every message names it: the words of the docs, and for the
    /// rest MongoDB's `$type` aliases (`decimal`, `date`, `objectId`, `dbPointer`…).
    public var name: String {
        switch self {
        case .double: "double"
        case .string: "string"
        case .document: "document"
        case .array: "array"
        case .binary: "binary"
        case .undefined: "undefined"
        case .objectId: "objectId"
        case .bool: "bool"
        case .datetime: "date"
        case .null: "null"
        case .regex: "regex"
        case .dbPointer: "dbPointer"
        case .javascript: "javascript"
        case .symbol: "symbol"
        case .javascriptWithScope: "javascriptWithScope"
        case .int32: "int32"
        case .timestamp: "timestamp"
        case .int64: "int64"
        case .decimal128: "decimal"
        case .minKey: "minKey"
        case .maxKey: "maxKey"
        }
    }

    /// `name` of a type byte, or `BSON type 0x…` for a byte no type has.
    public static func name(of typeByte: UInt8) -> String {
        if let type = BSONType(rawValue: typeByte) { return type.name }
        return "BSON type 0x" + (typeByte < 0x10 ? "0" : "") + String(typeByte, radix: 16)
    }
}
