import FerryCore
import FerryPluginKit
import FerryPluginTesting
import Foundation
import Testing

/// The file connector parses and writes common JSON Lines itself, without
/// libbson; libbson stays the reference. Every line the source reads must
/// become the very bytes libbson makes of it (or fail where libbson fails),
/// and every document the sink writes must be the text libbson writes in
/// relaxed mode (doubles and string escapes aside, which are the sink's own).
@Suite("File JSON fast path against libbson", .serialized)
struct FileJSONFastPathTests {
    let work: String
    let harness: PluginHarness

    init() throws {
        work = try TestSupport.temporaryDirectory("ferry-file-fastpath")
        harness = try PluginHarness(path: TestSupport.product("libFerryFile.so"))
    }

    /// Lines at the edges of what the fast path takes, and just past them.
    static let edgeLines: [String] = [
        #"{}"#, #"{ }"#, #" {"a":1} "#, "{\t\"a\"\r: 1}", #"{"a":{}}"#, #"{"a":[]}"#, #"{"a":[[],[{}]]}"#,
        #"{"a":0}"#, #"{"a":-0}"#, #"{"a":-1}"#, #"{"a":2147483647}"#, #"{"a":2147483648}"#, #"{"a":-2147483648}"#,
        #"{"a":-2147483649}"#, #"{"a":999999999999999999}"#, #"{"a":-999999999999999999}"#, #"{"a":1000000000000000000}"#,
        #"{"a":9223372036854775807}"#, #"{"a":-9223372036854775808}"#, #"{"a":9223372036854775808}"#, #"{"a":01}"#,
        #"{"a":1.0}"#, #"{"a":-0.0}"#, #"{"a":1e5}"#, #"{"a":1E-5}"#, #"{"a":1e+400}"#, #"{"a":0.1}"#, #"{"a":1.}"#,
        #"{"a":.5}"#, #"{"a":2.5e}"#, #"{"a":123456789.123456789e-3}"#, #"{"a":-}"#, #"{"a":+1}"#,
        #"{"a":true,"b":false,"c":null}"#, #"{"a":tru}"#, #"{"a":nul}"#, #"{"a":True}"#,
        #"{"a":"\"\\\/\b\f\n\r\t"}"#, #"{"a":"\u00e9\u20AC\ud83d\ude00"}"#, #"{"a":"\ud83d"}"#, #"{"a":"\ude00"}"#,
        #"{"a":"\u0000"}"#, #"{"a\u0000b":1}"#, #"{"a":"\x"}"#, #"{"a":"\u12"}"#, "{\"a\":\"é€😀\"}", "{\"é\":1}",
        "{\"a\":\"\u{7F}\"}", "{\"a\":\"tab\there\"}", #"{"a":"unterminated}"#, #"{"a":1,}"#, #"{"a":1 "b":2}"#,
        #"{"a":1}{"b":2}"#, #"{"a":1} x"#, #"{"a"1}"#, #"{a:1}"#, #"{"a":1,"a":2}"#, #"{"":1}"#, #"{"a.b":1}"#,
        #"{"a":{"$oid":"650000000000000000000001"}}"#, #"{"a":{"$oid":"65000000000000000000000A"}}"#,
        #"{"a":{"$oid":"65000000000000000000001"}}"#, #"{"a":{"$oid":"65000000000000000000000g"}}"#,
        #"{"a":{ "$oid" : "650000000000000000000001" }}"#, #"{"a":{"$oid":"650000000000000000000001","b":1}}"#,
        #"{"a":{"$date":"2026-11-18T03:23:00Z"}}"#, #"{"a":{"$date":"2026-11-18T03:23:00.123Z"}}"#,
        #"{"a":{"$date":"2026-11-18T03:23:00.5Z"}}"#, #"{"a":{"$date":"2026-11-18T03:23:00.12Z"}}"#,
        #"{"a":{"$date":"1970-01-01T00:00:00Z"}}"#, #"{"a":{"$date":"1969-12-31T23:59:59.999Z"}}"#,
        #"{"a":{"$date":"9999-12-31T23:59:59.999Z"}}"#, #"{"a":{"$date":"2024-02-29T00:00:00Z"}}"#,
        #"{"a":{"$date":"2023-02-29T00:00:00Z"}}"#, #"{"a":{"$date":"2000-02-29T12:00:00Z"}}"#,
        #"{"a":{"$date":"2100-02-29T12:00:00Z"}}"#, #"{"a":{"$date":"2026-13-01T00:00:00Z"}}"#,
        #"{"a":{"$date":"2026-11-18T24:00:00Z"}}"#, #"{"a":{"$date":"2026-11-18T23:59:60Z"}}"#,
        #"{"a":{"$date":"2026-11-18T03:23:00+01:00"}}"#, #"{"a":{"$date":"2026-11-18T03:23:00"}}"#,
        #"{"a":{"$date":"2026-11-18"}}"#, #"{"a":{"$date":1700000000000}}"#, #"{"a":{"$date":{"$numberLong":"-1"}}}"#,
        #"{"a":{"$numberDecimal":"17.81"}}"#, #"{"a":{"$numberDecimal":"-0.00"}}"#, #"{"a":{"$numberDecimal":"1E+6144"}}"#,
        #"{"a":{"$numberDecimal":"1E+7000"}}"#, #"{"a":{"$numberDecimal":"NaN"}}"#, #"{"a":{"$numberDecimal":"-Infinity"}}"#,
        #"{"a":{"$numberDecimal":"1234567890123456789012345678901234"}}"#,
        #"{"a":{"$numberDecimal":"12345678901234567890123456789012345"}}"#, #"{"a":{"$numberDecimal":"abc"}}"#,
        #"{"a":{"$numberDecimal":""}}"#, #"{"a":{"$numberLong":"5"}}"#, #"{"a":{"$numberInt":"5"}}"#,
        #"{"a":{"$numberDouble":"NaN"}}"#, #"{"a":{"$binary":{"base64":"AQI=","subType":"00"}}}"#,
        #"{"a":{"$regularExpression":{"pattern":"x","options":""}}}"#, #"{"a":{"$timestamp":{"t":1,"i":2}}}"#,
        #"{"a":{"$minKey":1}}"#, #"{"$oid":"650000000000000000000001"}"#, #"{"a":{"b":{"$x":1}}}"#, #"{"a":{"x":1,"$y":2}}"#,
        #"{"a":["x",1,2.5,true,null,{"b":[{"$oid":"650000000000000000000001"}]}]}"#,
        #"{"_id": {"$oid": "650000000000000000000001"}, "sku": "SKU-00001", "name": "Deluxe Trowel", "category": "music", "price": {"$numberDecimal": "17.81"}, "stock": 9, "updatedAt": {"$date": "2026-11-18T03:23:00Z"}}"#,
        String(repeating: "{\"a\":", count: 63) + "1" + String(repeating: "}", count: 63),
        String(repeating: "{\"a\":", count: 64) + "1" + String(repeating: "}", count: 64),
        String(repeating: "{\"a\":", count: 99) + "1" + String(repeating: "}", count: 99),
        String(repeating: "{\"a\":", count: 100) + "1" + String(repeating: "}", count: 100),
        String(repeating: "{\"a\":", count: 101) + "1" + String(repeating: "}", count: 101),
        String(repeating: "[", count: 150).replacingOccurrences(of: "[", with: "{\"a\":[", options: [], range: nil) + "1",
    ]

    /// Random records from the same pieces, nested a few levels.
    static func randomLines(count: Int) -> [String] {
        var generator = SystemRandomNumberGenerator()
        func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &generator)] }
        let scalars = [
            #""plain""#, #""with \"quotes\" and \\ and \n""#, "\"ünïcødé €\"", #""\u00e9\ud83d\ude00""#, #""""#,
            "0", "-7", "2147483647", "2147483648", "-2147483649", "123456789012345678", "3.25", "-1e-7", "6.02e23",
            "true", "false", "null",
            #"{"$oid": "65a0000000000000000000ff"}"#, #"{"$date": "2024-02-29T23:59:59.999Z"}"#, #"{"$date": "1999-12-31T00:00:00Z"}"#,
            #"{"$numberDecimal": "72.34"}"#, #"{"$numberDecimal": "-1.5E-10"}"#, #"{"$numberLong": "42"}"#,
        ]
        func value(_ depth: Int) -> String {
            switch depth < 3 ? Int.random(in: 0..<10, using: &generator) : 9 {
            case 0: return "{" + (0..<Int.random(in: 0...3, using: &generator)).map { "\"k\($0)\": \(value(depth + 1))" }.joined(separator: ", ") + "}"
            case 1: return "[" + (0..<Int.random(in: 0...3, using: &generator)).map { _ in value(depth + 1) }.joined(separator: ",") + "]"
            case 2: return String(Int64.random(in: .min ... .max, using: &generator) >> Int.random(in: 0...63, using: &generator))
            case 3: return String(Double(bitPattern: UInt64.random(in: 0 ... 0x7FEF_FFFF_FFFF_FFFF, using: &generator)))
            default: return pick(scalars)
            }
        }
        return (0..<count).map { _ in "{" + (0..<Int.random(in: 1...8, using: &generator)).map { "\"f\($0)\": \(value(0))" }.joined(separator: ", ") + "}" }
    }

    @Test("every line the source reads is the document libbson makes of it; lines libbson refuses are refused")
    func sourceMatchesLibBSON() throws {
        var accepted: [(line: String, bytes: [UInt8])] = []
        var refused: [String] = []
        for line in Self.edgeLines + Self.randomLines(count: 20_000) {
            if let bytes = try? ExtendedJSON.parse(line) { accepted.append((line, bytes)) } else { refused.append(line) }
        }
        #expect(accepted.count > 20_000 / 2)
        #expect(refused.count > 20)
        let path = "\(work)/accepted.jsonl"
        try (accepted.map(\.line).joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let source = try harness.open(.source, config: #"{"path": "\#(path)"}"#, mode: .full, batchSize: 1000)
        let records = try source.readAll().batches.flatMap(\.records)
        source.close()
        #expect(records.count == accepted.count)
        var mismatches: [String] = []
        for (record, expected) in zip(records, accepted) where record.bytes != expected.bytes {
            mismatches.append("\(expected.line)\n  libbson: \(expected.bytes)\n  file:    \(record.bytes)")
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) lines differ, first: \(mismatches.prefix(2).joined(separator: "\n").prefix(3000))")

        for (index, line) in refused.enumerated() {
            let one = "\(work)/refused-\(index).jsonl"
            try (line + "\n").write(toFile: one, atomically: true, encoding: .utf8)
            let source = try harness.open(.source, config: #"{"path": "\#(one)"}"#, mode: .full, batchSize: 10)
            #expect(throws: (any Error).self, "libbson refuses \(line), the source read it") { try source.readAll() }
            source.close()
        }
    }

    @Test("the sink writes what libbson writes in relaxed mode, for dates, decimals, ObjectIds and the rest")
    func sinkMatchesLibBSON() throws {
        var generator = SystemRandomNumberGenerator()
        var documents: [BSONDocument] = []
        let dates: [Int64] = [0, 1, 999, 1000, 59_999, -1, -1000, 951_782_400_000, 253_402_300_799_999, 253_402_300_800_000, .max, .min]
        for value in dates { documents.append(BSONDocument([("d", .datetime(value))])) }
        let decimals: [[UInt8]] = [
            Array(repeating: 0, count: 16), Array(repeating: 0xFF, count: 16),
            [0x01] + Array(repeating: 0, count: 13) + [0x40, 0x30],  // 1
            Array(repeating: 0, count: 15) + [0x7C], Array(repeating: 0, count: 15) + [0xF8],  // NaN, -Infinity
        ]
        for bytes in decimals { documents.append(BSONDocument([("p", .decimal128(bytes))])) }
        for _ in 0..<20_000 {
            let random16 = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let oid = (0..<12).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let milliseconds = Int64.random(in: -1_000_000_000_000 ... 300_000_000_000_000, using: &generator)
            documents.append(BSONDocument([
                ("_id", .objectId(oid)), ("p", .decimal128(random16)), ("d", .datetime(milliseconds)),
                ("i", .int32(Int32.random(in: .min ... .max, using: &generator))), ("l", .int64(Int64.random(in: .min ... .max, using: &generator))),
                ("b", .bool(Bool.random(using: &generator))), ("n", .null), ("s", .string("SKU-\(milliseconds)")),
                ("nested", .document(BSONDocument([("a", .array([.int32(1), .datetime(milliseconds), .array([]), .document(BSONDocument([]))]))]))),
                ("bin", .binary(subtype: 0, data: [1, 2, 3])),
            ]))
        }
        let path = "\(work)/written.jsonl"
        let sink = try harness.open(.sink, config: #"{"path": "\#(path)"}"#, mode: .full)
        let written = try sink.write(documents.map { Record(bytes: $0.encoded()) })
        #expect(written.rejects.isEmpty)
        try sink.commit()
        sink.close()
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines.count == documents.count)
        var mismatches: [String] = []
        for (line, document) in zip(lines, documents) {
            // libbson writes an empty document or array as `{  }` / `[  ]`; the sink, as before, `{ }` / `[ ]`.
            let expected = document.encoded().withUnsafeBytes { ExtendedJSON.render(DocumentView($0)) }?
                .replacingOccurrences(of: "[  ]", with: "[ ]").replacingOccurrences(of: "{  }", with: "{ }")
            if line != expected { mismatches.append("file:    \(line)\nlibbson: \(expected ?? "nil")") }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) lines differ, first: \(mismatches.prefix(2).joined(separator: "\n").prefix(3000))")
    }

    @Test("strings and keys: quotes, backslashes and control characters escaped, UTF-8 kept, bad UTF-8 and bad lengths rejected")
    func sinkStringsAndInvalidDocuments() throws {
        let path = "\(work)/strings.jsonl"
        let sink = try harness.open(.sink, config: #"{"path": "\#(path)"}"#, mode: .full)
        var badUTF8 = BSONDocument([("s", .string("ab"))]).encoded()
        badUTF8[badUTF8.count - 3] = 0xFF
        var badLength = BSONDocument([("s", .string("ab"))]).encoded()
        badLength[5 + 2] = 9
        let records = [
            Record(bytes: BSONDocument([("q\"k\\", .string("a\"b\\c\n\t\r\u{8}\u{C}\u{1}\u{7F}é😀")), ("z", .string("x\u{0}y"))]).encoded()),
            Record(bytes: badUTF8), Record(bytes: badLength),
        ]
        let written = try sink.write(records)
        try sink.commit()
        sink.close()
        #expect(written.rejects.map(\.index) == [1, 2])
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text == "{ \"q\\\"k\\\\\" : \"a\\\"b\\\\c\\n\\t\\r\\b\\f\\u0001\u{7F}é😀\", \"z\" : \"x\\u0000y\" }\n")
    }
}
