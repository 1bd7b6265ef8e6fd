import FerryCore
import FerryPluginKit
import Foundation
import Testing

/// The regex filter through the real runner: JSON Lines in through the file
/// source, libFerryRegexFilter.so loaded by path, JSON Lines out through the
/// file sink, dead letters read back from their file.
@Suite("Regex filter transform", .serialized)
struct RegexFilterTests {
    let plugins: String
    let work: String

    init() throws {
        plugins = try TestSupport.pluginDirectory(["FerryFile", "FerryGenerate", "FerryBlackhole", "FerryRegexFilter"])
        work = try TestSupport.temporaryDirectory("ferry-regex")
    }

    /// What one run produced.
    struct Filtered {
        var report: RunReport
        var output: [BSONDocument]
        var deadLetters: [(reason: String, record: BSONDocument)]

        /// The `id` of each record written, in order.
        var ids: [Int64] { output.compactMap { RegexFilterTests.integer($0["id"]) } }
        var reasons: [String] { deadLetters.map(\.reason) }
    }

    /// Runs extended-JSON `records` through one regex_filter stage whose
    /// `config:` is the YAML mapping `config` (unindented, one key per line).
    func filter(_ records: [String], config: String, workers: Int = 1, batchSize: Int = 100) throws -> Filtered {
        let input = "\(work)/in.jsonl", output = "\(work)/out.jsonl", dead = "\(work)/dead.jsonl"
        for path in [output, dead] { try? FileManager.default.removeItem(atPath: path) }
        try (records.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
        let indented = config.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n")
        let yaml = """
            source: {plugin: file, config: {path: \(input)}}
            transforms:
              - plugin: regex_filter
                config:
            \(indented)
            sink: {plugin: file, config: {path: \(output)}}
            mode: full
            batch_size: \(batchSize)
            workers: \(workers)
            """
        let plan = try TestSupport.plan(yaml, plugins: plugins, file: "\(work)/pipeline.yaml")
        let report = PipelineRunner(plan: plan, store: MemoryStateStore(), deadLetterPath: dead, logger: TestSupport.logger).run()
        var filtered = Filtered(report: report, output: [], deadLetters: [])
        if FileManager.default.fileExists(atPath: output) {
            filtered.output = try lines(output).map(Self.document)
        }
        if let path = report.deadLetterPath, FileManager.default.fileExists(atPath: path) {
            for line in try lines(path) {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                let reason = try #require(object["reason"] as? String)
                let record = try JSONSerialization.data(withJSONObject: try #require(object["record"]))
                filtered.deadLetters.append((reason, try Self.document(String(decoding: record, as: UTF8.self))))
            }
        }
        return filtered
    }

    func lines(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    static func document(_ json: String) throws -> BSONDocument {
        try ExtendedJSON.parse(json).withUnsafeBytes { DocumentView($0).decode() }
    }

    static func integer(_ value: BSONValue?) -> Int64? {
        switch value {
        case .int32(let number): Int64(number)
        case .int64(let number): number
        default: nil
        }
    }

    /// Records `{"id": i, field: value}` for each value (JSON text), ids from 1.
    static func records(_ field: String, _ values: [String]) -> [String] {
        values.enumerated().map { #"{"id": \#($0.offset + 1), "\#(field)": \#($0.element)}"# }
    }

    // MARK: record rules

    @Test("include keeps matching records, exclude drops them; the rest are counted as filtered")
    func includeAndExclude() throws {
        let records = Self.records("category", [#""books""#, #""games""#, #""toys""#, #""bookshelves""#])
        let include = try filter(records, config: #"rules: [{field: category, include: "^(books|games)$"}]"#)
        #expect(include.report.outcome == .completed)
        #expect(include.ids == [1, 2])
        #expect(include.report.statistics.filtered == 2)
        #expect(include.output.first == ["id": .int32(1), "category": .string("books")])

        let exclude = try filter(records, config: #"rules: [{field: category, exclude: "^book"}]"#)
        #expect(exclude.ids == [2, 3])
        #expect(exclude.deadLetters.isEmpty)
    }

    @Test("every record kept: the batch passes through unchanged")
    func allKept() throws {
        let records = (1...250).map { #"{"id": \#($0), "name": "item \#($0)", "nested": {"a": [1, 2]}}"# }
        let result = try filter(records, config: #"rules: [{field: name, include: "^item \\d+$"}]"#, batchSize: 100)
        #expect(result.ids == Array(1...250))
        #expect(result.output[7] == ["id": .int32(8), "name": .string("item 8"), "nested": .document(["a": .array([.int32(1), .int32(2)])])])
    }

    @Test("rules combine with match: all (and) and match: any (or), and nest as all/any groups")
    func andOr() throws {
        let records = [
            #"{"id": 1, "category": "books", "name": "Atlas"}"#,
            #"{"id": 2, "category": "books", "name": "Clearance SALE"}"#,
            #"{"id": 3, "category": "toys", "name": "Kite"}"#,
            #"{"id": 4, "category": "toys", "name": "sale kite"}"#,
            #"{"id": 5, "category": "games", "name": "Chess"}"#,
        ]
        let all = try filter(records, config: """
            match: all
            rules:
              - {field: category, include: "^(books|games)$"}
              - {field: name, exclude: "\\\\bsale\\\\b", case_insensitive: true}
            """)
        #expect(all.ids == [1, 5])

        let any = try filter(records, config: """
            match: any
            rules:
              - {field: category, include: "^games$"}
              - {field: name, include: "^K"}
            """)
        #expect(any.ids == [3, 5])

        // (books AND NOT sale) OR toys
        let nested = try filter(records, config: """
            match: any
            rules:
              - all:
                  - {field: category, include: "^books$"}
                  - {field: name, exclude: "(?i)sale"}
              - {field: category, include: "^toys$"}
            """)
        #expect(nested.ids == [1, 3, 4])
    }

    @Test("dot paths reach nested documents; items.*.sku matches when any element matches; items.1.sku picks one")
    func nestedAndArrayPaths() throws {
        let records = [
            #"{"id": 1, "address": {"city": "Paris", "geo": {"country": "FR"}}, "items": [{"sku": "A-1"}, {"sku": "B-2"}]}"#,
            #"{"id": 2, "address": {"city": "Lyon", "geo": {"country": "FR"}}, "items": [{"sku": "C-3"}]}"#,
            #"{"id": 3, "address": {"city": "Berlin", "geo": {"country": "DE"}}, "items": []}"#,
            #"{"id": 4, "address": "unknown", "items": [{"qty": 1}, {"sku": "B-9"}]}"#,
            #"{"id": 5, "tags": ["new", "sale"], "items": {"first": {"sku": "B-5"}}}"#,
        ]
        #expect(try filter(records, config: #"rules: [{field: address.geo.country, include: "^FR$"}]"#).ids == [1, 2])
        #expect(try filter(records, config: #"rules: [{field: items.*.sku, include: "^B-"}]"#).ids == [1, 4, 5])
        #expect(try filter(records, config: #"rules: [{field: items.*.sku, exclude: "^B-"}]"#).ids == [2, 3])
        #expect(try filter(records, config: #"rules: [{field: items.1.sku, include: "^B-"}]"#).ids == [1, 4])
        #expect(try filter(records, config: #"rules: [{field: tags.*, include: "^sale$"}]"#).ids == [5])
        // A whole array or document has no text form: it never matches.
        #expect(try filter(records, config: #"rules: [{field: items, include: ""}]"#).ids == [])
    }

    @Test("keys are matched whole: prefixes, longer keys and keys of 8 bytes and more, near the end of a record too")
    func keyLookup() throws {
        let records = [
            #"{"id": 1, "cat": "x", "categoryX": "x", "category": "hit", "a_much_longer_key_name": "long"}"#,
            #"{"id": 2, "categoryX": "hit", "categor": "hit"}"#,
            #"{"id": 3, "a_much_longer_key_nam": "long", "k": "hit"}"#,
            #"{"id": 4, "a_much_longer_key_name": "long"}"#,
        ]
        #expect(try filter(records, config: #"rules: [{field: category, include: "^hit$"}]"#).ids == [1])
        #expect(try filter(records, config: #"rules: [{field: cat, include: "^x$"}]"#).ids == [1])
        #expect(try filter(records, config: #"rules: [{field: a_much_longer_key_name, include: "^long$"}]"#).ids == [1, 4])
        #expect(try filter(records, config: #"rules: [{field: k, include: "^hit$"}]"#).ids == [3])
    }

    // MARK: flags and unicode

    @Test("case_insensitive, anchored, utf and ucp, per rule and as plugin-wide defaults")
    func flags() throws {
        let records = Self.records("name", [#""Big Sale""#, #""big sale""#, #""Résumé""#, #""école""#, #""ÉCOLE""#, #""x""#])
        #expect(try filter(records, config: #"rules: [{field: name, include: "sale"}]"#).ids == [2])
        #expect(try filter(records, config: #"rules: [{field: name, include: "sale", case_insensitive: true}]"#).ids == [1, 2])
        #expect(try filter(records, config: "case_insensitive: true\nrules: [{field: name, include: sale}]").ids == [1, 2])
        #expect(try filter(records, config: "case_insensitive: true\nrules: [{field: name, include: sale, case_insensitive: false}]").ids == [2])
        // Anchored: the match must start at the first character.
        #expect(try filter(records, config: #"rules: [{field: name, include: "ale"}]"#).ids == [1, 2])
        #expect(try filter(records, config: #"rules: [{field: name, include: "ale", anchored: true}]"#).ids == [])
        #expect(try filter(records, config: #"rules: [{field: name, include: "big", anchored: true}]"#).ids == [2])
        // UTF-8 mode: `.` is one code point; off, it is one byte (é is two).
        #expect(try filter(records, config: #"rules: [{field: name, include: "^.cole$"}]"#).ids == [4])
        #expect(try filter(records, config: #"rules: [{field: name, include: "^.cole$", utf: false}]"#).ids == [])
        #expect(try filter(records, config: #"rules: [{field: name, include: "^..cole$", utf: false}]"#).ids == [4])
        // UCP: \w covers letters beyond ASCII.
        #expect(try filter(records, config: #"rules: [{field: name, include: "^\\w+$"}]"#).ids == [3, 4, 5, 6])
        #expect(try filter(records, config: #"rules: [{field: name, include: "^\\w+$", ucp: false}]"#).ids == [6])
    }

    @Test("unicode: caseless ÉCOLE matches école, \\p{L} and \\p{Lu} classes, Greek and CJK")
    func unicode() throws {
        let records = Self.records("name", [#""école""#, #""ÉCOLE""#, #""ΣΟΦΙΑ""#, #""σοφια""#, #""東京""#, #""R2-D2""#])
        #expect(try filter(records, config: #"rules: [{field: name, include: "^ÉCOLE$", case_insensitive: true}]"#).ids == [1, 2])
        #expect(try filter(records, config: #"rules: [{field: name, include: "^école$", case_insensitive: true}]"#).ids == [1, 2])
        #expect(try filter(records, config: #"rules: [{field: name, include: "^ÉCOLE$"}]"#).ids == [2])
        #expect(try filter(records, config: #"rules: [{field: name, include: "^σοφια$", case_insensitive: true}]"#).ids == [3, 4])
        #expect(try filter(records, config: #"rules: [{field: name, include: "^\\p{L}+$"}]"#).ids == [1, 2, 3, 4, 5])
        #expect(try filter(records, config: #"rules: [{field: name, include: "^\\p{Lu}+$"}]"#).ids == [2, 3])
        #expect(try filter(records, config: #"rules: [{field: name, include: "\\p{Han}"}]"#).ids == [5])
    }

    // MARK: missing fields

    @Test("a missing or null field is a non-match by default; missing: match and missing: reject, per rule or plugin-wide")
    func missingPolicy() throws {
        let records = [
            #"{"id": 1, "name": "sale"}"#,
            #"{"id": 2}"#,
            #"{"id": 3, "name": null}"#,
            #"{"id": 4, "name": "kite"}"#,
            #"{"id": 5, "address": "flat"}"#,
        ]
        #expect(try filter(records, config: #"rules: [{field: name, include: "sale"}]"#).ids == [1])
        #expect(try filter(records, config: #"rules: [{field: name, exclude: "sale"}]"#).ids == [2, 3, 4, 5])
        #expect(try filter(records, config: #"rules: [{field: name, include: "sale", missing: match}]"#).ids == [1, 2, 3, 5])
        #expect(try filter(records, config: "missing: match\nrules: [{field: name, exclude: sale}]").ids == [4])
        // A path through a scalar (address is a string) is missing too.
        #expect(try filter(records, config: #"rules: [{field: address.city, include: "x", missing: match}]"#).ids == [1, 2, 3, 4, 5])

        let rejected = try filter(records, config: #"rules: [{field: name, include: "sale", missing: reject}]"#)
        #expect(rejected.ids == [1])
        #expect(rejected.report.statistics.deadLettered == 3)
        #expect(rejected.deadLetters.map { Self.integer($0.record["id"]) } == [2, 3, 5])
        #expect(rejected.reasons.allSatisfy { $0 == "regex_filter: rules[0] (include 'name'): field 'name' is missing (missing: reject)" })
    }

    // MARK: canonical text of non-string values

    @Test("numbers, decimals, bools, dates and ObjectIds are matched on their canonical text")
    func canonicalForms() throws {
        let values = [
            "42",  // int32
            #"{"$numberLong": "-9000000000"}"#,
            "12.5",
            "12.0",
            #"{"$numberDecimal": "19.99"}"#,
            "true",
            #"{"$date": "2026-11-25T10:00:00.5Z"}"#,
            #"{"$oid": "650000000000000000000abc"}"#,
            #"{"a": 1}"#,
            #"{"$binary": {"base64": "AAE=", "subType": "00"}}"#,
            #""""#,
            #"{"$symbol": "sym"}"#,
        ]
        let records = Self.records("v", values)
        func ids(_ pattern: String) throws -> [Int64] {
            try filter(records, config: "rules: [{field: v, include: '\(pattern)'}]").ids
        }
        #expect(try ids("^42$") == [1])
        #expect(try ids("^-9000000000$") == [2])
        #expect(try ids(#"^12\.5$"#) == [3])
        #expect(try ids(#"^12\.0$"#) == [4])
        #expect(try ids(#"^19\.99$"#) == [5])
        #expect(try ids("^true$") == [6])
        #expect(try ids(#"^2026-11-25T10:00:00\.500Z$"#) == [7])
        #expect(try ids("^650000000000000000000abc$") == [8])
        #expect(try ids("^$") == [11])
        #expect(try ids("^sym$") == [12])
        // Documents and binary have no text form: even an empty pattern does not match them.
        #expect(try ids("") == [1, 2, 3, 4, 5, 6, 7, 8, 11, 12])
        #expect(try ids("^[0-9.]+$") == [1, 3, 4, 5])
    }

    // MARK: field-name rules

    @Test("fields.drop removes matching names at every depth, documents inside arrays too; nested: false stops at the top")
    func dropFields() throws {
        let records = [#"{"id": 1, "_secret": "x", "name": "A", "meta": {"_rev": 3, "by": "me"}, "items": [{"_tmp": 1, "sku": "S"}, 7]}"#]
        let dropped = try filter(records, config: #"fields: {drop: "^_"}"#)
        #expect(dropped.output == [["id": .int32(1), "name": .string("A"), "meta": .document(["by": .string("me")]),
            "items": .array([.document(["sku": .string("S")]), .int32(7)])]])

        let top = try filter(records, config: #"fields: {drop: "^_", nested: false}"#)
        #expect(top.output.first?.keys == ["id", "name", "meta", "items"])
        #expect(top.output.first?["meta"] == .document(["_rev": .int32(3), "by": .string("me")]))
    }

    @Test("fields.keep keeps only matching names, nested too, after the record rules chose the record")
    func keepFields() throws {
        let records = [
            #"{"id": 1, "name": "A", "price": 2.5, "meta": {"id": 9, "note": "n"}, "category": "books"}"#,
            #"{"id": 2, "name": "B", "price": 1.5, "category": "toys"}"#,
        ]
        let kept = try filter(records, config: """
            rules: [{field: category, include: "^books$"}]
            fields: {keep: "^(id|name|meta)$"}
            """)
        #expect(kept.output == [["id": .int32(1), "name": .string("A"), "meta": .document(["id": .int32(9)])]])
        let caseless = try filter(records, config: #"fields: {keep: "^(ID|NAME)$", case_insensitive: true}"#)
        #expect(caseless.output == [["id": .int32(1), "name": .string("A")], ["id": .int32(2), "name": .string("B")]])
    }

    // MARK: safety

    @Test("a catastrophic pattern hits the match limit: that record is dead-lettered with the rule and limit, the next is fine")
    func catastrophicPattern() throws {
        let evil = String(repeating: "a", count: 30_000) + "b"
        let records = [#"{"id": 1, "s": "\#(evil)"}"#, #"{"id": 2, "s": "aaaa"}"#, #"{"id": 3, "s": "bbb"}"#]
        for jit in [true, false] {
            let started = ContinuousClock.now
            let result = try filter(records, config: "jit: \(jit)\nrules: [{field: s, include: '(a+)+$'}]")
            let elapsed = ContinuousClock.now - started
            #expect(result.report.outcome == .completed)
            #expect(result.ids == [2])
            #expect(result.report.statistics.filtered == 1)
            #expect(result.report.statistics.deadLettered == 1)
            let letter = try #require(result.deadLetters.first)
            #expect(Self.integer(letter.record["id"]) == 1)
            #expect(letter.reason.hasPrefix("regex_filter: rules[0] (include 's') /(a+)+$/up on field 's': PCRE2 "))
            #expect(letter.reason.contains("limit exceeded"))
            #expect(letter.reason.contains("match_limit 1000000") || letter.reason.contains("depth_limit 100000"))
            #expect(letter.reason.hasSuffix("record rejected"))
            // Bounded, not benchmarked: minutes would mean no limit at all.
            #expect(elapsed < .seconds(60))
        }
        // A lower limit is honoured and named.
        let low = try filter(records, config: "match_limit: 5000\nrules: [{field: s, include: '(a+)+$'}]")
        #expect(low.reasons.first?.contains("PCRE2 match limit exceeded (match_limit 5000)") == true)
        #expect(low.ids == [2])
    }

    @Test("the depth limit (interpreter) and the JIT stack limit are named in the reason too")
    func otherLimits() throws {
        let long = String(repeating: "ab", count: 50_000)
        let records = [#"{"id": 1, "s": "\#(long)"}"#, #"{"id": 2, "s": "abab"}"#]
        let depth = try filter(records, config: "jit: false\ndepth_limit: 1000\nrules: [{field: s, include: '^(a|b)*$'}]")
        #expect(depth.ids == [2])
        #expect(depth.reasons == ["regex_filter: rules[0] (include 's') /^(a|b)*$/up on field 's': PCRE2 depth limit exceeded (depth_limit 1000); record rejected"])

        let stack = try filter(records, config: "jit_stack_kb: 32\nrules: [{field: s, include: '^(a|b)*$'}]")
        #expect(stack.ids == [2])
        #expect(stack.reasons == ["regex_filter: rules[0] (include 's') /^(a|b)*$/up on field 's': PCRE2 JIT stack limit exceeded (jit_stack_kb 32); record rejected"])
    }

    @Test("an invalid pattern fails at open, naming the rule, field, pattern, PCRE2's message and offset")
    func invalidPattern() throws {
        let result = try filter([#"{"id": 1}"#], config: """
            rules:
              - {field: category, include: "^ok$"}
              - {field: name, exclude: "(sale|clearance"}
            """)
        guard case .failed(let message) = result.report.outcome else {
            Issue.record("expected the run to fail, got \(result.report.outcome)")
            return
        }
        #expect(message.description.contains(
            "regex_filter: rules[1].exclude (field 'name'): pattern '(sale|clearance' does not compile: missing closing parenthesis at offset 15"))

        let fields = try filter([#"{"id": 1}"#], config: #"fields: {keep: "a{2,1}"}"#)
        guard case .failed(let fieldMessage) = fields.report.outcome else {
            Issue.record("expected the run to fail, got \(fields.report.outcome)")
            return
        }
        #expect(fieldMessage.description.contains("regex_filter: fields.keep: pattern 'a{2,1}' does not compile: numbers out of order in {} quantifier at offset 5"))
    }

    @Test("ferry validate opens the plugin: a bad pattern is reported there, with exit 2; a good one is ok")
    func validateCommand() throws {
        let bad = "\(work)/bad.yaml", good = "\(work)/good.yaml"
        try """
            source: {plugin: generate}
            transforms:
              - plugin: regex_filter
                config:
                  rules:
                    - any:
                        - {field: sku, include: "^SKU-(?<n>\\\\d+$"}
            sink: {plugin: blackhole}
            """.write(toFile: bad, atomically: true, encoding: .utf8)
        let failed = try TestSupport.run(TestSupport.ferryExecutable, ["validate", bad, "--plugins", plugins])
        #expect(failed.status == 2)
        #expect(failed.stderr.contains(
            "regex_filter: rules[0].any[0].include (field 'sku'): pattern '^SKU-(?<n>\\d+$' does not compile: missing closing parenthesis at offset 14"))
        #expect(failed.stdout.isEmpty)

        try """
            source: {plugin: generate}
            transforms:
              - plugin: regex_filter
                config:
                  rules: [{field: category, include: "^(books|games)$"}]
            sink: {plugin: blackhole}
            """.write(toFile: good, atomically: true, encoding: .utf8)
        let passed = try TestSupport.run(TestSupport.ferryExecutable, ["validate", good, "--plugins", plugins])
        #expect(passed.status == 0, "\(passed.stderr)")
        #expect(passed.stdout.contains("ok"))
    }

    @Test("config mistakes are errors that name the field")
    func configErrors() throws {
        func message(_ config: String) throws -> String {
            let result = try filter([#"{"id": 1}"#], config: config)
            guard case .failed(let message) = result.report.outcome else { return "run did not fail: \(result.report.outcome)" }
            return message.description
        }
        #expect(try message("match: all").contains("regex_filter: rules: set rules (record rules), fields (field-name rules) or both"))
        #expect(try message("rules: [{field: a, include: x, exclude: y}]").contains("rules[0]: set exactly one of include or exclude"))
        #expect(try message("rules: [{field: 'a..b', include: x}]").contains("rules[0].field: 'a..b' is not a field path"))
        #expect(try message("rules: [{field: a, include: x, flavour: 1}]").contains("rules[0].flavour: unknown key"))
        #expect(try message("rules: [{field: a, include: x, missing: maybe}]").contains("rules[0].missing: unknown policy 'maybe'"))
        #expect(try message("rules: []").contains("rules: expected at least one rule"))
        #expect(try message("fields: {keep: a, drop: b}").contains("fields: set exactly one of keep or drop"))
    }

    @Test("two workers, each with its own matcher, give the same answer over many batches")
    func twoWorkers() throws {
        let categories = ["books", "games", "toys", "music"]
        let records = (1...2_000).map { #"{"id": \#($0), "category": "\#(categories[$0 % 4])", "name": "n\#($0)"}"# }
        let result = try filter(records, config: #"rules: [{field: category, include: "^(books|games)$"}, {field: name, exclude: "7$"}]"#,
            workers: 2, batchSize: 64)
        let expected = (1...2_000).filter { ($0 % 4 == 0 || $0 % 4 == 1) && $0 % 10 != 7 }.map(Int64.init)
        #expect(result.ids == expected)
        #expect(result.report.statistics.filtered == 2_000 - expected.count)
    }
}
