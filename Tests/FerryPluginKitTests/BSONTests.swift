import FerryPluginKit
import Foundation
import Testing

@Suite("BSON reading and writing")
struct BSONTests {
    @Test("a document written field by field reads back equal, nested paths included")
    func roundTrip() throws {
        let builder = BatchBuilder()
        builder.appendDocument { doc in
            doc.append("i32", Int32(-7))
            doc.append("i64", Int64(1) << 40)
            doc.append("d", 2.5)
            doc.append("s", "héllo ✓")
            doc.append("b", true)
            doc.appendNull("n")
            doc.appendDatetime("t", milliseconds: 1_700_000_000_123)
            doc.appendDocument("outer") { inner in
                inner.appendArray("items") { items in
                    items.appendDocument(items.nextKey()) { item in item.append("sku", "A") }
                    items.appendDocument(items.nextKey()) { item in item.append("sku", "B") }
                }
            }
        }
        builder.append(["k": .decimal128(Array(repeating: 1, count: 16)), "oid": .objectId(Array(0..<12))] as BSONDocument)
        let view = builder.view
        try view.validateFraming()
        #expect(view.count == 2)
        let first = try #require(view.document(at: 0))
        #expect(first.element(forKey: "i32")?.int32Value == -7)
        #expect(first.element(forKey: "i64")?.int64Value == 1 << 40)
        #expect(first.element(forKey: "s")?.stringValue == "héllo ✓")
        #expect(first.element(atPath: "outer.items.1.sku")?.stringValue == "B")
        #expect(first.element(atPath: "outer.missing.x") == nil)
        #expect(ExtendedJSON.firstInvalidOffset(first) == nil)
        let decoded = first.decode()
        let reencoded = decoded.encoded()
        #expect(reencoded == Array(first.bytes))
        let second = try #require(view.document(at: 1)).decode()
        #expect(second["oid"] == .objectId(Array(0..<12)))
    }

    @Test("extended JSON through libbson keeps types")
    func extendedJSON() throws {
        let bytes = try ExtendedJSON.parse(#"{"p": {"$numberDecimal": "12.30"}, "d": {"$date": "2026-01-02T03:04:05.678Z"}, "n": {"$numberLong": "5"}}"#)
        let text = bytes.withUnsafeBytes { ExtendedJSON.render(DocumentView($0), canonical: true) } ?? ""
        #expect(text.contains(#""$numberDecimal" : "12.30""#))
        #expect(text.contains(#""$numberLong" : "5""#))
        #expect(throws: ExtendedJSONError.self) { try ExtendedJSON.parse("{not json") }
    }

    @Test("framing checks catch lying counts, short buffers and missing terminators")
    func framing() throws {
        let builder = BatchBuilder()
        builder.appendDocument { $0.append("a", Int32(1)) }
        let bytes = builder.view.bytes
        try BatchView(bytes: bytes, count: 1).validateFraming()
        #expect(throws: BSONError.self) { try BatchView(bytes: bytes, count: 2).validateFraming() }
        #expect(throws: BSONError.self) { try BatchView(bytes: UnsafeRawBufferPointer(rebasing: bytes.dropLast()), count: 1).validateFraming() }
        var broken = Array(bytes)
        broken[broken.count - 1] = 7
        let caught = broken.withUnsafeBytes { raw in
            (try? BatchView(bytes: raw, count: 1).validateFraming()) == nil
        }
        #expect(caught)
    }

    @Test("config options produce a JSON Schema that rejects unknown keys")
    func schema() throws {
        let schema = ConfigOption.schema(for: [.string("path", required: true, "p"), .integer("n", default: 3, minimum: 1, "n")])
        let parsed = try JSONValue.parse(schema)
        #expect(parsed["additionalProperties"] == .bool(false))
        #expect(parsed["required"] == .array(["path"]))
        #expect(parsed["properties"]?["n"]?["minimum"] == .integer(1))
        let options: [ConfigOption] = [.string("path", "p"), .integer("n", default: 3, "n")]
        let config = try PluginConfig(json: #"{"path": "x"}"#, options: options)
        #expect(try config.int("n") == 3)
        #expect(throws: PluginError.self) { try PluginConfig(json: #"{"n": "x"}"#, options: options).int("n") }
        // open() is as strict as the schema, for hosts that do not validate first.
        let unknown = #expect(throws: PluginError.self) { try PluginConfig(json: #"{"pth": "x"}"#, options: options) }
        #expect(unknown?.message == "unknown key 'pth' (known: n, path)")
    }
}
