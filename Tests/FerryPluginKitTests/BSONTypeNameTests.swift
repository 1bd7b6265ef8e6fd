import FerryPluginKit
import Testing

@Suite("BSON type names: one table for every message")
struct BSONTypeNameTests {
    static let allTypes: [BSONType] = [
        .double, .string, .document, .array, .binary, .undefined, .objectId, .bool, .datetime, .null, .regex, .dbPointer,
        .javascript, .symbol, .javascriptWithScope, .int32, .timestamp, .int64, .decimal128, .minKey, .maxKey,
    ]

    @Test("decimal128 is 'decimal' and datetime 'date', as MongoDB's $type aliases; every name is distinct")
    func names() {
        #expect(BSONType.decimal128.name == "decimal")
        #expect(BSONType.datetime.name == "date")
        #expect(BSONType.objectId.name == "objectId")
        #expect(Set(Self.allTypes.map(\.name)).count == Self.allTypes.count)
    }

    @Test("a value's type name is its type's, including deprecated types kept raw; an unknown byte is named in hex")
    func valueNames() {
        let values: [BSONValue] = [
            .double(1), .string("s"), .document([:]), .array([]), .binary(subtype: 0, data: []), .objectId(Array(repeating: 0, count: 12)),
            .bool(true), .datetime(0), .null, .regex(pattern: "a", options: ""), .int32(1), .timestamp(1), .int64(1),
            .decimal128(Array(repeating: 0, count: 16)), .minKey, .maxKey,
        ]
        for value in values {
            #expect(BSONType(rawValue: value.typeByte)?.name == value.typeName, "\(value)")
        }
        #expect(BSONValue.decimal128(Array(repeating: 0, count: 16)).typeName == "decimal")
        #expect(BSONValue.raw(type: 0x06, bytes: []).typeName == "undefined")
        #expect(BSONValue.raw(type: 0x0C, bytes: []).typeName == "dbPointer")
        #expect(BSONType.name(of: 0x20) == "BSON type 0x20")
        #expect(BSONType.name(of: 0x00) == "BSON type 0x00")
    }

    @Test("an encoded value's element reads back with the same type byte")
    func typeByteMatchesEncoding() throws {
        let values: [BSONValue] = [.double(1), .string("s"), .int32(1), .int64(1), .datetime(5), .decimal128(Array(repeating: 0, count: 16)), .null]
        for value in values {
            let bytes = BSONDocument([("v", value)]).encoded()
            let typeByte = bytes.withUnsafeBytes { DocumentView($0).element(forKey: "v")?.typeByte }
            #expect(typeByte == value.typeByte, "\(value)")
        }
    }
}
