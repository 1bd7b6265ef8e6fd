import FerryCore
import FerryPluginKit
import Foundation
import Testing

/// The map transform through the real runner: JSON Lines in through the file
/// source, the map plugin loaded by path, JSON Lines out through the file sink.
@Suite("Map transform", .serialized)
struct MapTransformTests {
    let plugins: String
    let work: String

    init() throws {
        plugins = try TestSupport.pluginDirectory(["FerryFile", "FerryBlackhole", "FerryMap"])
        work = try TestSupport.temporaryDirectory("ferry-map")
    }

    /// What one run produced: the report, the records written and the dead letters.
    struct Mapped {
        var report: RunReport
        var output: [BSONDocument]
        var deadLetters: [(reason: String, record: BSONDocument)]

        var reasons: [String] { deadLetters.map(\.reason) }
    }

    /// Runs extended-JSON `records` through one map stage whose `steps:` are the
    /// YAML list `steps` (one item per line, unindented).
    func map(_ records: [String], steps: String, batchSize: Int = 100) throws -> Mapped {
        let indented = steps.split(separator: "\n").map { "        " + $0 }.joined(separator: "\n")
        return try run(
            records,
            transforms: """
                transforms:
                  - plugin: map
                    config:
                      steps:
                \(indented)
                """,
            batchSize: batchSize)
    }

    /// Runs `records` through the `transforms:` block given as YAML.
    func run(_ records: [String], transforms: String, batchSize: Int = 100) throws -> Mapped {
        let input = "\(work)/in.jsonl", output = "\(work)/out.jsonl", dead = "\(work)/dead.jsonl"
        try (records.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
        let yaml = """
            source: {plugin: file, config: {path: \(input)}}
            \(transforms)
            sink: {plugin: file, config: {path: \(output)}}
            mode: full
            batch_size: \(batchSize)
            workers: 1
            """
        let plan = try TestSupport.plan(yaml, plugins: plugins, file: "\(work)/pipeline.yaml")
        let report = PipelineRunner(plan: plan, store: MemoryStateStore(), deadLetterPath: dead, logger: TestSupport.logger).run()
        var mapped = Mapped(report: report, output: [], deadLetters: [])
        if FileManager.default.fileExists(atPath: output) {
            mapped.output = try lines(output).map(Self.document)
        }
        if let path = report.deadLetterPath {
            for line in try lines(path) {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                let reason = try #require(object["reason"] as? String)
                let recordObject = try #require(object["record"])
                // Invalid BSON reaches the dead-letter file as a string, which would crash data(withJSONObject:).
                guard JSONSerialization.isValidJSONObject(recordObject) else { throw TestFailure("dead letter without a record object: \(line)") }
                let record = try JSONSerialization.data(withJSONObject: recordObject)
                mapped.deadLetters.append((reason, try Self.document(String(decoding: record, as: UTF8.self))))
            }
        }
        return mapped
    }

    func lines(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    static func document(_ json: String) throws -> BSONDocument {
        try ExtendedJSON.parse(json).withUnsafeBytes { DocumentView($0).decode() }
    }

    /// A value as extended JSON reads it: `value(#"{"$numberDecimal": "1.5"}"#)`.
    static func value(_ json: String) throws -> BSONValue {
        try #require(try document(#"{"v": \#(json)}"#)["v"])
    }

    static func decimal(_ text: String) throws -> BSONValue { try value(#"{"$numberDecimal": "\#(text)"}"#) }
    static func date(_ iso: String) throws -> BSONValue { try value(#"{"$date": "\#(iso)"}"#) }

    /// Integers as written by the file sink: relaxed extended JSON has no int64
    /// marker, so an int64 that fits 32 bits reads back as int32.
    static func integer(_ value: BSONValue?) -> Int64? {
        switch value {
        case .int32(let number): Int64(number)
        case .int64(let number): number
        default: nil
        }
    }

    // MARK: rename, set, default, drop, copy

    @Test("rename moves top-level and nested fields, creates documents, keeps a sibling's position, skips a missing source")
    func rename() throws {
        let mapped = try map(
            [#"{"id": 1, "name": "Lamp", "address": {"zip": "75001", "city": "Paris"}, "n": 1}"#],
            steps: """
                - rename: {from: name, to: title}
                - rename: {from: address.zip, to: shipping.postal.code}
                - rename: {from: nothing, to: something}
                - rename: {from: address.city, to: address.town}
                - rename: {from: n, to: meta.count}
                """)
        #expect(mapped.report.outcome == .completed)
        let record = try #require(mapped.output.first)
        #expect(record.keys == ["id", "title", "address", "shipping", "meta"])
        #expect(record["title"] == .string("Lamp"))
        #expect(record["address"] == .document(["town": .string("Paris")]))
        #expect(record["shipping"] == .document(["postal": .document(["code": .string("75001")])]))
        #expect(record["meta"] == .document(["count": .int32(1)]))
        #expect(record["something"] == nil)
    }

    @Test("set writes constants of every JSON kind and extended JSON types, replacing in place")
    func set() throws {
        let mapped = try map(
            [#"{"a": "old", "b": 1}"#],
            steps: """
                - set: {field: a, value: new}
                - set: {field: small, value: 5}
                - set: {field: large, value: 5000000000}
                - set: {field: ratio, value: 2.5}
                - set: {field: flag, value: true}
                - set: {field: nothing, value: null}
                - set: {field: nested.object, value: {z: 1, a: [1, two, 3.5]}}
                - set: {field: price, value: {$numberDecimal: "0.00"}}
                - set: {field: at, value: {$date: "2026-11-25T10:00:00Z"}}
                - set: {field: exact, value: {$numberDouble: "1.0"}}
                """)
        let record = try #require(mapped.output.first)
        #expect(record.keys == ["a", "b", "small", "large", "ratio", "flag", "nothing", "nested", "price", "at", "exact"])
        #expect(record["a"] == .string("new"))
        #expect(record["small"] == .int32(5))
        #expect(record["large"] == .int64(5_000_000_000))
        #expect(record["ratio"] == .double(2.5))
        #expect(record["flag"] == .bool(true))
        #expect(record["nothing"] == .null)
        #expect(record["nested"] == .document(["object": .document(["a": .array([.int32(1), .string("two"), .double(3.5)]), "z": .int32(1)])]))
        #expect(record["price"] == (try Self.decimal("0.00")))
        #expect(record["at"] == (try Self.date("2026-11-25T10:00:00Z")))
        #expect(record["exact"] == .double(1.0))
    }

    @Test("default fills only missing or null fields, nested ones too")
    func defaults() throws {
        let mapped = try map(
            [#"{"k": 1, "stock": 7, "note": null}"#, #"{"k": 2}"#],
            steps: """
                - default: {field: stock, value: 0}
                - default: {field: note, value: none}
                - default: {field: meta.origin, value: import}
                """)
        #expect(mapped.output.count == 2)
        #expect(Self.integer(mapped.output[0]["stock"]) == 7)
        #expect(mapped.output[0]["note"] == .string("none"))
        #expect(mapped.output[0]["meta"] == .document(["origin": .string("import")]))
        #expect(Self.integer(mapped.output[1]["stock"]) == 0)
        #expect(mapped.output[1]["note"] == .string("none"))
    }

    @Test("drop removes a single path or a list, nested fields and array elements, and skips missing ones")
    func drop() throws {
        let mapped = try map(
            [#"{"a": 1, "b": 2, "c": {"secret": "x", "keep": true}, "tags": ["t0", "t1", "t2"]}"#],
            steps: """
                - drop: a
                - drop: [c.secret, nothing, c.nothing.deeper, tags.1]
                """)
        let record = try #require(mapped.output.first)
        #expect(record.keys == ["b", "c", "tags"])
        #expect(record["c"] == .document(["keep": .bool(true)]))
        #expect(record["tags"] == .array([.string("t0"), .string("t2")]))
    }

    @Test("copy duplicates a value into a nested path, keeps the source, skips a missing one; paths index arrays")
    func copy() throws {
        let mapped = try map(
            [#"{"sku": "A-1", "items": [{"q": 1}, {"q": 2}]}"#],
            steps: """
                - copy: {from: sku, to: legacy.code}
                - copy: {from: items.1.q, to: second}
                - copy: {from: missing, to: ghost}
                - set: {field: items.0.q, value: 9}
                """)
        let record = try #require(mapped.output.first)
        #expect(record["sku"] == .string("A-1"))
        #expect(record["legacy"] == .document(["code": .string("A-1")]))
        #expect(Self.integer(record["second"]) == 2)
        #expect(record["ghost"] == nil)
        #expect(record["items"] == .array([.document(["q": .int32(9)]), .document(["q": .int32(2)])]))
    }

    @Test("a path blocked by a scalar or past an array's end dead-letters that record only")
    func blockedPath() throws {
        let mapped = try map(
            [
                #"{"k": 1, "name": "Ada"}"#, #"{"k": 2, "name": {"first": "Alan"}, "tags": ["t"]}"#,
                #"{"k": 3, "name": {}, "tags": []}"#, #"{"k": 4, "tags": ["t"], "meta": {"inner": 5}}"#,
            ],
            steps: """
                - set: {field: name.last, value: Lovelace}
                - set: {field: tags.0, value: x}
                - set: {field: meta.inner.x, value: 1}
                """)
        #expect(mapped.report.outcome == .completed)
        #expect(mapped.report.statistics.written == 1)
        #expect(mapped.report.statistics.deadLettered == 3)
        #expect(mapped.reasons == [
            "map: steps[0] set 'name.last': 'name' is a string, not a document",
            "map: steps[1] set 'tags.0': 'tags' has 0 elements, no index 0",
            "map: steps[2] set 'meta.inner.x': 'meta.inner' is an int32, not a document",
        ])
        #expect(mapped.deadLetters.map { Self.integer($0.record["k"]) } == [1, 3, 4])
        #expect(mapped.output.first?["name"] == .document(["first": .string("Alan"), "last": .string("Lovelace")]))
        #expect(mapped.output.first?["tags"] == .array([.string("x")]))
        #expect(mapped.output.first?["meta"] == .document(["inner": .document(["x": .int32(1)])]))
    }

    // MARK: cast

    @Test("cast to integer: strings, whole doubles, int32, dates; fractions, words and overflow are dead-lettered")
    func castToInteger() throws {
        let mapped = try map(
            [
                #"{"k": 1, "qty": "42"}"#, #"{"k": 2, "qty": "12.5"}"#, #"{"k": 3, "qty": " -7 "}"#,
                #"{"k": 4, "qty": "abc"}"#, #"{"k": 5, "qty": 3.0}"#, #"{"k": 6, "qty": 2.5}"#,
                #"{"k": 7, "qty": "5000000000"}"#, #"{"k": 8, "qty": "99999999999999999999"}"#,
                #"{"k": 9, "qty": {"$date": "1970-01-01T00:00:01.5Z"}}"#, #"{"k": 10}"#, #"{"k": 11, "qty": null}"#,
                #"{"k": 12, "qty": {"$numberDecimal": "12.00"}}"#, #"{"k": 13, "qty": true}"#,
            ],
            steps: "- cast: {field: qty, to: integer}", batchSize: 4)
        #expect(mapped.report.outcome == .completed)
        #expect(mapped.output.map { Self.integer($0["k"]) } == [1, 3, 5, 7, 9, 10, 11, 12])
        #expect(mapped.output.map { $0["qty"] } == [.int32(42), .int32(-7), .int32(3), .int64(5_000_000_000), .int32(1500), nil, .null, .int32(12)])
        #expect(mapped.reasons == [
            #"map: steps[0] cast 'qty' to integer: "12.5" is not an integer"#,
            #"map: steps[0] cast 'qty' to integer: "abc" is not an integer"#,
            #"map: steps[0] cast 'qty' to integer: 2.5 is not a whole number"#,
            #"map: steps[0] cast 'qty' to integer: "99999999999999999999" is out of the 64-bit integer range"#,
            #"map: steps[0] cast 'qty' to integer: a bool cannot be cast to integer"#,
        ])
        // The dead letter carries the record as it came in, not as far as the steps got.
        #expect(mapped.deadLetters.map { Self.integer($0.record["k"]) } == [2, 4, 6, 8, 13])
        #expect(mapped.deadLetters.first?.record["qty"] == .string("12.5"))
        #expect(mapped.report.statistics.written == 8)
        #expect(mapped.report.statistics.deadLettered == 5)
    }

    @Test("cast to double: strings in decimal notation, integers, decimals; words, hex, NaN and inexact integers are dead-lettered")
    func castToDouble() throws {
        let mapped = try map(
            [
                #"{"v": "12.5"}"#, #"{"v": "1e-3"}"#, #"{"v": 4}"#, #"{"v": {"$numberDecimal": "19.99"}}"#,
                #"{"v": "abc"}"#, #"{"v": "0x10"}"#, #"{"v": "NaN"}"#, #"{"v": {"$numberLong": "9007199254740993"}}"#,
            ],
            steps: "- cast: {field: v, to: double}")
        #expect(mapped.output.map { $0["v"] } == [.double(12.5), .double(0.001), .double(4), .double(19.99)])
        #expect(mapped.reasons == [
            #"map: steps[0] cast 'v' to double: "abc" is not a number"#,
            #"map: steps[0] cast 'v' to double: "0x10" is not a number"#,
            #"map: steps[0] cast 'v' to double: "NaN" is not a number"#,
            #"map: steps[0] cast 'v' to double: 9007199254740993 has no exact double"#,
        ])
    }

    @Test("cast to decimal: strings, integers, doubles by their shortest text; words, 35 digits and bools are dead-lettered")
    func castToDecimal() throws {
        let mapped = try map(
            [
                #"{"price": "19.99"}"#, #"{"price": 5}"#, #"{"price": 0.1}"#, #"{"price": 1e-05}"#,
                #"{"price": {"$numberDecimal": "7.50"}}"#, #"{"price": "abc"}"#,
                #"{"price": "1.0000000000000000000000000000000001"}"#, #"{"price": false}"#,
            ],
            steps: "- cast: {field: price, to: decimal}")
        #expect(mapped.output.map { $0["price"] } == [
            try Self.decimal("19.99"), try Self.decimal("5"), try Self.decimal("0.1"), try Self.decimal("0.00001"),
            try Self.decimal("7.50"),
        ])
        #expect(mapped.reasons == [
            #"map: steps[0] cast 'price' to decimal: "abc" is not a number"#,
            #"map: steps[0] cast 'price' to decimal: "1.0000000000000000000000000000000001" does not fit decimal128 (at most 34 significant digits)"#,
            #"map: steps[0] cast 'price' to decimal: a bool cannot be cast to decimal"#,
        ])
    }

    @Test("cast to string: integers, doubles, decimals, bools, dates, ObjectIds; a document is dead-lettered")
    func castToString() throws {
        let mapped = try map(
            [
                #"{"v": 42}"#, #"{"v": 12.5}"#, #"{"v": {"$numberDecimal": "19.990"}}"#, #"{"v": false}"#,
                #"{"v": {"$date": "2026-11-25T10:00:00Z"}}"#, #"{"v": {"$oid": "65000000000000000000ABCD"}}"#,
                #"{"v": "as is"}"#, #"{"v": {"$numberLong": "-9000000000"}}"#, #"{"v": {"nested": 1}}"#,
            ],
            steps: "- cast: {field: v, to: string}")
        #expect(mapped.output.map { $0["v"] } == [
            "42", "12.5", "19.990", "false", "2026-11-25T10:00:00.000Z", "65000000000000000000abcd", "as is", "-9000000000",
        ].map(BSONValue.string))
        #expect(mapped.reasons == ["map: steps[0] cast 'v' to string: a document cannot be cast to string"])
    }

    @Test("cast to bool: true/false/1/0/yes/no in any case and integers 1 and 0; anything else is dead-lettered")
    func castToBool() throws {
        let mapped = try map(
            [
                #"{"v": "TRUE"}"#, #"{"v": "no"}"#, #"{"v": "1"}"#, #"{"v": "Yes"}"#, #"{"v": 0}"#, #"{"v": true}"#,
                #"{"v": "maybe"}"#, #"{"v": 2}"#,
            ],
            steps: "- cast: {field: v, to: bool}")
        #expect(mapped.output.map { $0["v"] } == [true, false, true, true, false, true].map(BSONValue.bool))
        #expect(mapped.reasons == [
            #"map: steps[0] cast 'v' to bool: "maybe" is not a boolean (true/false, 1/0, yes/no)"#,
            "map: steps[0] cast 'v' to bool: 2 is not a boolean (only 1 and 0 are)",
        ])
    }

    @Test("cast to date: ISO-8601 with fractions and offsets, epoch milliseconds; no zone, bad formats and impossible days are dead-lettered")
    func castToDate() throws {
        let mapped = try map(
            [
                #"{"v": "2026-11-25T10:00:00Z"}"#, #"{"v": "2026-11-25T10:00:00.123Z"}"#,
                #"{"v": "2026-11-25T11:00:00+01:00"}"#, #"{"v": "2026-11-25 07:30:00.5-0230"}"#,
                #"{"v": "2024-02-29T00:00:00.123456Z"}"#, #"{"v": {"$numberLong": "1795600800000"}}"#,
                #"{"v": "1969-12-31T23:59:59.999Z"}"#,
                #"{"v": "25/11/2026"}"#, #"{"v": "2026-11-25T10:00:00"}"#, #"{"v": "2026-02-29T10:00:00Z"}"#,
                #"{"v": 1.5}"#,
            ],
            steps: "- cast: {field: v, to: date}")
        #expect(mapped.output.map { $0["v"] } == [
            try Self.date("2026-11-25T10:00:00Z"), try Self.date("2026-11-25T10:00:00.123Z"),
            try Self.date("2026-11-25T10:00:00Z"), try Self.date("2026-11-25T10:00:00.5Z"),
            try Self.date("2024-02-29T00:00:00.123Z"), try Self.date("2026-11-25T10:00:00Z"),
            .datetime(-1),
        ])
        #expect(mapped.reasons == [
            #"map: steps[0] cast 'v' to date: "25/11/2026" is not an ISO-8601 date-time such as 2026-11-25T10:00:00Z"#,
            #"map: steps[0] cast 'v' to date: "2026-11-25T10:00:00" is not an ISO-8601 date-time such as 2026-11-25T10:00:00Z"#,
            #"map: steps[0] cast 'v' to date: "2026-02-29T10:00:00Z" is not an ISO-8601 date-time such as 2026-11-25T10:00:00Z"#,
            "map: steps[0] cast 'v' to date: a double cannot be cast to date",
        ])
    }

    @Test("casts chain: string → date → string and date → integer round-trip exactly")
    func castRoundTrips() throws {
        let mapped = try map(
            [#"{"at": "2026-11-25T11:00:00.250+01:00", "pre": "1900-01-01T00:00:00Z"}"#],
            steps: """
                - cast: {field: at, to: date}
                - copy: {from: at, to: ms}
                - cast: {field: ms, to: integer}
                - cast: {field: at, to: string}
                - cast: {field: pre, to: date}
                - cast: {field: pre, to: string}
                """)
        let record = try #require(mapped.output.first)
        #expect(record["at"] == .string("2026-11-25T10:00:00.250Z"))
        #expect(record["ms"] == .int64(1_795_600_800_250))
        #expect(record["pre"] == .string("1900-01-01T00:00:00.000Z"))
    }

    // MARK: template

    @Test("template fills placeholders from nested fields, leaves missing and null empty, and keeps literal braces")
    func template() throws {
        let mapped = try map(
            [
                #"{"first_name": "Ada", "last_name": "Lovelace", "id": 7, "price": {"$numberDecimal": "9.90"}, "a": {"b": true}}"#,
                #"{"first_name": "Alan", "last_name": null, "id": 8}"#,
                #"{"first_name": "Grace", "id": [1, 2]}"#,
            ],
            steps: """
                - template: {field: full_name, template: "{first_name} {last_name}"}
                - template: {field: label, template: "{{{id}}}: {price} {a.b} }}"}
                """)
        #expect(mapped.output.map { $0["full_name"] } == [.string("Ada Lovelace"), .string("Alan ")])
        #expect(mapped.output.map { $0["label"] } == [.string("{7}: 9.90 true }"), .string("{8}:   }")])
        #expect(mapped.reasons == ["map: steps[1] template 'label': placeholder {id} is an array, which has no text form"])
    }

    // MARK: invalid configs

    static let invalidConfigs: [(steps: String, message: String)] = [
        ("- rename: {from: a, to: b}\n- renam: {from: a, to: b}", "steps[1]: unknown step 'renam' (known: rename, set, default, drop, copy, cast, template)"),
        ("- set: {field: a, value: 1}\n- drop: x\n- cast: {field: price, to: money}", "steps[2].cast.to: unknown type 'money' (known: string, integer, double, decimal, bool, date)"),
        (#"- template: {field: name, template: "{first_name} {last_name"}"#, "steps[0].template.template: unterminated placeholder '{last_name' at character 14"),
        (#"- template: {field: name, template: "a } b"}"#, "steps[0].template.template: lone '}' at character 3"),
        ("- cast: {field: price}", "steps[0].cast.to: required"),
        ("- copy: {from: a, to: b, too: c}", "steps[0].copy.too: unknown key (known: from, to)"),
        ("- drop: [a, 'b..c']", "steps[0].drop[1]: 'b..c' is not a field path"),
        ("- {rename: {from: a, to: b}, drop: c}", "steps[0]: expected one step as a one-key mapping"),
        ("- set: {field: a, value: {$date: soon}}", "steps[0].set.value: not a valid value"),
        // A NUL would end a BSON key early: refused at open, never written.
        (#"- set: {field: "a\0b", value: 1}"#, #"steps[0].set.field: 'a\0b' contains a NUL character, which a BSON field name cannot hold"#),
        (#"- rename: {from: a, to: "x.\0"}"#, #"steps[0].rename.to: 'x.\0' contains a NUL character"#),
        (#"- default: {field: a, value: {outer: {"k\0": 1}}}"#, "steps[0].default.value: not a valid value (invalid bytes in UTF8 string)"),
    ]

    @Test("an invalid config fails the run at open, naming the step index and field", arguments: invalidConfigs)
    func invalidConfig(steps: String, message: String) throws {
        let mapped = try map([#"{"a": 1}"#], steps: steps)
        let failure = try #require(mapped.report.failureMessage)
        #expect(failure.contains("plugin 'map' (transforms[0]) open failed, config error: \(message)"), "\(failure)")
        #expect(mapped.report.statistics.written == 0)
    }

    @Test("steps must be a non-empty list")
    func stepsNotAList() throws {
        let failure = try #require(try run([#"{"a": 1}"#], transforms: "transforms: [{plugin: map, config: {steps: {rename: {from: a, to: b}}}}]").report.failureMessage)
        #expect(failure.contains("config error: steps: expected a list of steps, got object"))
        let empty = try #require(try run([#"{"a": 1}"#], transforms: "transforms: [{plugin: map, config: {steps: []}}]").report.failureMessage)
        #expect(empty.contains("config error: steps: expected at least one step"))
    }

    // MARK: the shop

    /// The README's shop mapping, exactly as documented.
    static func readmeShopMapping() throws -> String {
        let readme = try String(
            contentsOf: TestSupport.repoRoot.appendingPathComponent("Plugins/Map/README.md"), encoding: .utf8)
        // Any ```yaml fence, whatever the doc test's marks after it on the fence line.
        let blocks = readme.components(separatedBy: "```yaml").dropFirst().map { block in
            String(block.drop(while: { $0 != "\n" }).dropFirst()).components(separatedBy: "```")[0]
        }
        return try #require(blocks.first { $0.hasPrefix("# shop: product → cart row\n") })
    }

    @Test("the shop: MongoDB products become the cart service's rows, as the README's mapping says")
    func shopProductToCartRow() throws {
        let products = [
            #"{"_id": {"$oid": "650000000000000000000001"}, "sku": "SKU-00001", "name": "Deluxe Trowel", "description": "Steel.", "price": {"$numberDecimal": "17.81"}, "stock": 9, "category": "garden", "updatedAt": {"$date": "2026-11-18T03:23:00Z"}}"#,
            #"{"_id": {"$oid": "65000000000000000000000A"}, "sku": "SKU-00010", "name": "Old Lamp", "price": 12.5, "category": "home", "updatedAt": "2026-11-03T13:26:00.5+01:00"}"#,
            #"{"_id": {"$oid": "650000000000000000000003"}, "sku": "SKU-00003", "name": "Broken", "price": "abc", "stock": 1, "updatedAt": {"$date": "2026-11-02T18:07:00Z"}}"#,
            #"{"_id": {"$oid": "650000000000000000000004"}, "sku": "SKU-00004", "name": "Big Stock", "price": "1999.00", "stock": {"$numberLong": "6000000000"}, "updatedAt": {"$date": "2026-11-01T00:00:00Z"}}"#,
        ]
        let mapped = try run(products, transforms: try Self.readmeShopMapping(), batchSize: 2)
        #expect(mapped.report.outcome == .completed)
        #expect(mapped.report.statistics.read == 4)
        #expect(mapped.report.statistics.written == 3)
        // A defaulted stock is appended, so only the first row keeps the source's order.
        #expect(mapped.output.map { $0.keys.sorted() } == Array(repeating: ["name", "price", "product_id", "sku", "stock", "updated_at"], count: 3))
        #expect(mapped.output[0] == [
            "product_id": .string("650000000000000000000001"), "sku": .string("SKU-00001"), "name": .string("Deluxe Trowel"),
            "price": try Self.decimal("17.81"), "stock": .int32(9), "updated_at": try Self.date("2026-11-18T03:23:00Z"),
        ])
        #expect(mapped.output[1]["product_id"] == .string("65000000000000000000000a"))
        #expect(mapped.output[1]["price"] == (try Self.decimal("12.5")))
        #expect(Self.integer(mapped.output[1]["stock"]) == 0)
        #expect(mapped.output[1]["updated_at"] == (try Self.date("2026-11-03T12:26:00.500Z")))
        #expect(mapped.output[2]["price"] == (try Self.decimal("1999.00")))
        #expect(mapped.output[2]["stock"] == .int64(6_000_000_000))
        #expect(mapped.reasons == [#"map: steps[2] cast 'price' to decimal: "abc" is not a number"#])
        #expect(mapped.deadLetters.first?.record["sku"] == .string("SKU-00003"))
    }
}
