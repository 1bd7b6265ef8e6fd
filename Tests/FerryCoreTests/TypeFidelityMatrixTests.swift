import FerryPluginKit
import Foundation
import Testing

/// Every BSON type through every pair of built-in connectors (file, postgres
/// with typed columns, postgres with a jsonb column, mongo), with the real
/// `ferry` binary. Each cell is the same value and type, a conversion the
/// connector's README documents, or a dead letter; anything else is ALTERED
/// and fails the test. The table is docs/type-fidelity.md.
@Suite("Type fidelity matrix", .serialized)
struct TypeFidelityMatrixTests {
    /// A column of the matrix: the connectors a value went through, which of a
    /// record's fields it judges, and how its target is read back.
    struct Path {
        let name: String
        /// The record fields it looks at: the typed column, the buried copy, or both.
        let typed: Bool
        let deep: Bool
    }

    /// Conversions the READMEs state, by the connectors they involve.
    static func documented(_ label: String, row: String, path: String) -> Bool {
        let involves = { (connector: String) in path.contains(connector) }
        // Mongo README, Types: relaxed extended JSON writes an int64 that fits in 32 bits as a plain number; it reads back as int32.
        if involves("file"), row == "int64" || row == "document", label == "→ int32" { return true }
        // Postgres README, Types: json/jsonb are re-serialised ("jsonb has none [key order] to keep"); JSON integers read
        // back as int32/int64, a fraction as a double when it prints back identically, else decimal128.
        let json = involves("jsonb") || ["document", "array"].contains(row) && involves("typed")
        if json, label == "keys reordered" { return true }
        if json, ["double", "int32", "int64", "decimal128", "document", "array"].contains(row),
            ["→ int32", "→ int64", "→ double", "→ decimal128"].contains(label)
        {
            return true
        }
        // Postgres README, Types: numeric and jsonb have no signed zero; -0 lands as 0.
        if involves("pg") || involves("postgres"), ["double", "decimal128"].contains(row), label == "-0 → 0" { return true }
        // Postgres README, Types: into json/jsonb, a date is written as its ISO-8601 string, an ObjectId as its
        // hex, a UUID binary as UUID text; they read back as strings.
        if involves("jsonb"), (row == "datetime" && label == "→ string (ISO-8601)") || (row == "ObjectId" && label == "→ string (hex)")
            || (row == "binary (subtype 4, uuid)" && label == "→ string (uuid text)")
        {
            return true
        }
        // Postgres README, Types: a text column takes "ObjectId (hex)"; text reads back as string.
        if involves("typed"), row == "ObjectId", label == "→ text (hex)" || label == "→ string (hex)" { return true }
        return false
    }

    @Test("every BSON type through every pair of connectors is kept, converted as documented, or dead-lettered")
    func matrix() throws {
        let started = Date()
        let stores = try TypeFidelityStores()
        defer { stores.cleanUp() }
        let entries = TypeFidelityCorpus.entries

        // The inputs, checked to hold exactly the corpus before anything runs.
        let input = entries.map { entry in
            entry.document.encoded().withUnsafeBytes { ExtendedJSON.render(DocumentView($0), canonical: true)! }
        }
        try (input.joined(separator: "\n") + "\n").write(toFile: "\(stores.work)/input.jsonl", atomically: true, encoding: .utf8)
        let parsed = try stores.readFile("input")
        for entry in entries {
            let document = try #require(parsed[Int64(entry.id)])
            try #require(FidelityJudge.same(.document(document), .document(entry.document)), "canonical JSON changed \(entry.document)")
        }
        try stores.mongo.insert(stores.database, "input", entries.map(\.document))
        let seeded = try stores.readMongo("input")
        var seedChanges: [String] = []
        for entry in entries where !FidelityJudge.same(.document(seeded[Int64(entry.id)] ?? [:]), .document(entry.document)) {
            seedChanges.append("\(entry.document) stored as \(seeded[Int64(entry.id)].map(\.description) ?? "nothing")")
        }

        var results: [String: [Int32: [FidelityOutcome]]] = [:]
        var columns: [String] = []
        var failures: [String] = []
        /// What each ALTERED cell saw, with the paths that saw it, for the docs.
        var changes: [(what: String, paths: [String])] = []
        func change(_ what: String, _ column: String) {
            if let index = changes.firstIndex(where: { $0.what == what }) {
                if !changes[index].paths.contains(column) { changes[index].paths.append(column) }
            } else {
                changes.append((what, [column]))
            }
        }
        var reasons: [String] = []

        /// Runs source → sink; `reach` are the records that arrived in the source at all
        /// (a record a first leg dead-lettered keeps that outcome).
        func cell(_ name: String, source: String, sink: (String) -> String, upstream: [Int32: [FidelityOutcome]] = [:],
                  split: ((String) -> String)? = nil, read: () throws -> [Int32: [FidelityOutcome]]) throws {
            columns.append(name)
            let slug = name.replacingOccurrences(of: "→", with: "_to_").filter { $0.isLetter || $0.isNumber || $0 == "_" }
            var letters: [Int64: String] = [:]
            var runFailures: [Int32: String] = [:]
            let run = try stores.ferry(slug, source: source, sink: sink(""))
            letters = run.deadLetters
            if run.status != 0 && run.status != 3 {
                guard let split else { throw TestFailure("\(name): ferry run failed (exit \(run.status)):\n\(run.output)") }
                // A source that stops the run on one value: find the values, one type at a time.
                for row in TypeFidelityCorpus.rows {
                    let part = try stores.ferry("\(slug)_\(row.field)", source: split("t = ''\(row.name)''"), sink: sink("_\(row.field)"))
                    letters.merge(part.deadLetters) { a, _ in a }
                    guard part.status != 0 && part.status != 3 else { continue }
                    for entry in entries where entry.row.name == row.name {
                        let one = try stores.ferry("\(slug)_\(entry.id)", source: split("\"_id\" = \(entry.id)"), sink: sink("_\(entry.id)"))
                        letters.merge(one.deadLetters) { a, _ in a }
                        if one.status != 0 && one.status != 3 {
                            runFailures[entry.id] = Self.firstError(one.output)
                        }
                    }
                }
            }
            var outcomes = try read()
            for entry in entries {
                if let before = upstream[entry.id], before.contains(where: { if case .refused = $0 { true } else { false } }) {
                    outcomes[entry.id] = before
                } else if let reason = runFailures[entry.id] {
                    outcomes[entry.id] = [.runFailed(reason)]
                } else if let reason = letters[Int64(entry.id)] {
                    outcomes[entry.id] = [.refused(reason)]
                }
            }
            results[name] = outcomes
        }

        func judgeBSON(_ documents: [Int64: BSONDocument], typed: Bool, deep: Bool) -> [Int32: [FidelityOutcome]] {
            var outcomes: [Int32: [FidelityOutcome]] = [:]
            for entry in entries {
                guard let document = documents[Int64(entry.id)] else { outcomes[entry.id] = [.altered("record \(entry.document) was not read back")]; continue }
                var got: [FidelityOutcome] = []
                if typed { got += FidelityJudge.judge(entry.value, document[entry.row.field]) }
                if deep {
                    let leaf = TypeFidelityCorpus.dig(document["deep"], entry.path)
                    got += FidelityJudge.judge(entry.value, leaf).map {
                        if case .altered(let what) = $0 { .altered("\(what) (buried in \(FidelityJudge.show(entry.deep)), read back \(FidelityJudge.show(document["deep"])))") } else { $0 }
                    }
                }
                outcomes[entry.id] = got
            }
            return outcomes
        }

        func judgeTyped(_ table: String) throws -> [Int32: [FidelityOutcome]] {
            let stored = try stores.readTyped(table)
            var outcomes: [Int32: [FidelityOutcome]] = [:]
            for entry in entries {
                guard let text = stored[Int64(entry.id)] else { outcomes[entry.id] = [.altered("\(FidelityJudge.show(entry.value)) is not in \(stores.table(table))")]; continue }
                outcomes[entry.id] = [Self.judgeColumn(entry.value, text, columnType: entry.row.columnType)]
            }
            return outcomes
        }

        func judgeJSONB(_ table: String) throws -> [Int32: [FidelityOutcome]] {
            let stored = try stores.readJSONB(table)
            var outcomes: [Int32: [FidelityOutcome]] = [:]
            for entry in entries {
                guard let text = stored[Int64(entry.id)] ?? nil, let json = PlainJSON.parse(text) else {
                    outcomes[entry.id] = [.altered("\(FidelityJudge.show(entry.deep)) is not in \(stores.table(table)) as JSON")]
                    continue
                }
                guard let leaf = Self.dig(json, entry.path) else {
                    outcomes[entry.id] = [.altered("\(FidelityJudge.show(entry.deep)) stored as \(text)")]
                    continue
                }
                outcomes[entry.id] = PlainJSON.judge(entry.value, leaf).map {
                    if case .altered(let what) = $0 { .altered("\(what) (buried in \(FidelityJudge.show(entry.deep)), stored \(text))") } else { $0 }
                }
            }
            return outcomes
        }

        let file = stores.fileEnd("input"), mongo = stores.mongoEnd("input", source: true)
        try cell("file→file", source: file, sink: { stores.fileEnd("out_ff" + $0, sink: true) }) { judgeBSON(try stores.readFile("out_ff"), typed: true, deep: true) }
        try cell("file→mongo", source: file, sink: { _ in stores.mongoEnd("out_fm") }) { judgeBSON(try stores.readMongo("out_fm"), typed: true, deep: true) }
        try cell("file→postgres(typed)", source: file, sink: { _ in stores.typedSink("typed1") }) { try judgeTyped("typed1") }
        try cell("file→postgres(jsonb)", source: file, sink: { _ in stores.jsonbSink("jsonb1") }) { try judgeJSONB("jsonb1") }
        try cell("mongo→file", source: mongo, sink: { stores.fileEnd("out_mf" + $0, sink: true) }) { judgeBSON(try stores.readFile("out_mf"), typed: true, deep: true) }
        try cell("mongo→mongo", source: mongo, sink: { _ in stores.mongoEnd("out_mm") }) { judgeBSON(try stores.readMongo("out_mm"), typed: true, deep: true) }
        try cell("mongo→postgres(typed)", source: mongo, sink: { _ in stores.typedSink("typed2") }) { try judgeTyped("typed2") }
        try cell("mongo→postgres(jsonb)", source: mongo, sink: { _ in stores.jsonbSink("jsonb2") }) { try judgeJSONB("jsonb2") }
        // PostgreSQL as the source: the tables file→postgres wrote, judged against the original values.
        let typed = results["file→postgres(typed)"]!, jsonb = results["file→postgres(jsonb)"]!
        let typedSource = { (filter: String) in stores.postgresSource("typed1", filter: filter) }
        let jsonbSource = { (filter: String) in stores.postgresSource("jsonb1", filter: filter) }
        try cell("postgres(typed)→file", source: stores.postgresSource("typed1"), sink: { stores.fileEnd("out_tf" + $0, sink: true) }, upstream: typed, split: typedSource) {
            judgeBSON(try Self.merged(stores, "out_tf"), typed: true, deep: false)
        }
        try cell("postgres(typed)→mongo", source: stores.postgresSource("typed1"), sink: { _ in stores.mongoEnd("out_tm") }, upstream: typed, split: typedSource) {
            judgeBSON(try stores.readMongo("out_tm"), typed: true, deep: false)
        }
        try cell("postgres(typed)→postgres(typed)", source: stores.postgresSource("typed1"), sink: { _ in stores.typedSink("typed3") }, upstream: typed, split: typedSource) {
            try judgeTyped("typed3")
        }
        try cell("postgres(jsonb)→file", source: stores.postgresSource("jsonb1"), sink: { stores.fileEnd("out_jf" + $0, sink: true) }, upstream: jsonb, split: jsonbSource) {
            judgeBSON(try Self.merged(stores, "out_jf"), typed: false, deep: true)
        }
        try cell("postgres(jsonb)→mongo", source: stores.postgresSource("jsonb1"), sink: { _ in stores.mongoEnd("out_jm") }, upstream: jsonb, split: jsonbSource) {
            judgeBSON(try stores.readMongo("out_jm"), typed: false, deep: true)
        }
        try cell("postgres(jsonb)→postgres(jsonb)", source: stores.postgresSource("jsonb1"), sink: { _ in stores.jsonbSink("jsonb3") }, upstream: jsonb, split: jsonbSource) {
            try judgeJSONB("jsonb3")
        }

        // The cells: every value's outcome, checked against what the READMEs document.
        var table: [[String]] = []
        for row in TypeFidelityCorpus.rows {
            var line = [row.name]
            for column in columns {
                var labels: [String] = []
                var altered: [String] = []
                for entry in entries where entry.row.name == row.name {
                    for outcome in results[column]![entry.id] ?? [.altered("no outcome")] {
                        switch outcome {
                        case .kept: labels.append("kept")
                        case .refused(let reason):
                            labels.append("refused (dead letter)")
                            // One line per type and reason: the table name is the only part that differs by path.
                            let note = "\(row.name): " + reason.replacingOccurrences(of: #"public\.types_\w+"#, with: "(table)", options: .regularExpression)
                            if !reasons.contains(note) { reasons.append(note) }
                        case .runFailed(let reason):
                            labels.append("run fails")
                            failures.append("\(column), \(row.name): the run fails on \(FidelityJudge.show(entry.value)): \(reason)")
                        case .converted(let label):
                            if Self.documented(label, row: row.name, path: column) {
                                labels.append(label)
                            } else {
                                altered.append("\(label), undocumented")
                                change("\(row.name): \(FidelityJudge.show(entry.value)) \(label), which no README documents", column)
                                failures.append("\(column), \(row.name): \(FidelityJudge.show(entry.value)) \(label) — no README documents this")
                            }
                        case .altered(let what):
                            altered.append(what)
                            change("\(row.name): \(what.components(separatedBy: " (buried in").first!)", column)
                            failures.append("\(column), \(row.name): \(what)")
                        }
                    }
                }
                var unique: [String] = []
                for label in labels where !unique.contains(label) { unique.append(label) }
                line.append(((altered.isEmpty ? [] : ["**ALTERED**"]) + unique).joined(separator: "; "))
            }
            table.append(line)
        }
        let markdown = Self.markdown(columns: columns, rows: table)
        let seconds = Date().timeIntervalSince(started)
        print("Type fidelity matrix (\(entries.count) values, \(columns.count) paths, \(String(format: "%.1f", seconds)) s):\n\n\(markdown)")
        print("Dead-letter reasons:\n" + reasons.joined(separator: "\n"))
        for line in seedChanges { print("note: SecantusDB stored an input differently: \(line)") }

        // The table in the docs is the generated one.
        let docPath = TestSupport.repoRoot.appendingPathComponent("docs/type-fidelity.md").path
        let findings = changes.map { "- \($0.what) (\($0.paths.joined(separator: ", ")))" }.joined(separator: "\n")
        let document = Self.document(table: markdown, findings: findings)
        let current = try? String(contentsOfFile: docPath, encoding: .utf8)
        if current != document {
            if ProcessInfo.processInfo.environment["FERRY_UPDATE_DOCS"] == "1" {
                try document.write(toFile: docPath, atomically: true, encoding: .utf8)
            } else {
                Issue.record("docs/type-fidelity.md differs from the generated matrix: copy the table printed above into it, or run this test with FERRY_UPDATE_DOCS=1 to rewrite the file")
            }
        }
        if !failures.isEmpty {
            Issue.record("\(failures.count) values were changed silently (ALTERED), grouped by what changed and where:\n\(findings)")
        }
        #expect(seedChanges.isEmpty, "the test server changed inputs: \(seedChanges.joined(separator: "\n"))")
        #expect(seconds < 150, "the matrix took \(seconds) s")
    }

    /// A file target, with what the per-type and per-record runs wrote beside it.
    static func merged(_ stores: TypeFidelityStores, _ name: String) throws -> [Int64: BSONDocument] {
        var documents = try stores.readFile(name)
        for entry in TypeFidelityCorpus.entries {
            for part in ["\(name)_\(entry.row.field)", "\(name)_\(entry.id)"] {
                documents.merge(try stores.readFile(part)) { a, _ in a }
            }
        }
        return documents
    }

    static func firstError(_ output: String) -> String {
        let lines = output.split(separator: "\n").map(String.init)
        return (lines.first { $0.lowercased().contains("error") || $0.contains("failed") } ?? lines.last ?? "").trimmingCharacters(in: .whitespaces)
    }

    static func dig(_ value: PlainJSON.Value, _ path: [String]) -> PlainJSON.Value? {
        var current = value
        for step in path {
            switch current {
            case .object(let fields):
                guard let next = fields.first(where: { $0.0 == step })?.1 else { return nil }
                current = next
            case .array(let items):
                guard let index = Int(step), index < items.count else { return nil }
                current = items[index]
            default: return nil
            }
        }
        return current
    }

    /// Sent `value` into a column of `columnType`; psql shows `text` (canonical, see readTyped).
    static func judgeColumn(_ value: BSONValue, _ text: String?, columnType: String) -> FidelityOutcome {
        let shown = FidelityJudge.show(value)
        guard let text else { return value == .null ? .kept : .altered("\(shown) stored as NULL in a \(columnType) column") }
        let altered = FidelityOutcome.altered("\(shown) stored as \(columnType) '\(text)'")
        switch (value, columnType) {
        case (.double(let v), "float8"):
            guard let got = Double(text) else { return altered }
            return (v.isNaN ? got.isNaN : v.bitPattern == got.bitPattern) ? .kept : altered
        case (.string(let v), "text"): return v == text ? .kept : altered
        case (.document, "jsonb"), (.array, "jsonb"):
            guard let json = PlainJSON.parse(text) else { return altered }
            let outcomes = PlainJSON.judge(value, json)
            return outcomes.first { if case .altered = $0 { true } else { false } } ?? outcomes.first { $0 != .kept } ?? .kept
        case (.binary(0, let bytes), "bytea"): return FidelityJudge.hex(bytes) == text ? .kept : altered
        case (.binary(4, let bytes), "uuid"): return FidelityJudge.hex(bytes) == text.replacingOccurrences(of: "-", with: "") ? .kept : altered
        case (.objectId(let bytes), "text"): return FidelityJudge.hex(bytes) == text ? .converted("→ text (hex)") : altered
        case (.bool(let v), "bool"): return text == (v ? "true" : "false") ? .kept : altered
        case (.datetime(let v), "timestamptz"): return Int64(text) == v ? .kept : altered
        case (.int32(let v), "int4"): return Int64(text) == Int64(v) ? .kept : altered
        case (.int64(let v), "int8"): return Int64(text) == v ? .kept : altered
        case (.decimal128, "numeric"):
            let key = FidelityJudge.numberKey(value)
            if FidelityJudge.isNegativeZero(value), FidelityJudge.zeroKey(FidelityJudge.decimalKey(text)) { return .converted("-0 → 0") }
            return key != nil && key == FidelityJudge.decimalKey(text) ? .kept : altered
        default: return altered
        }
    }

    static func markdown(columns: [String], rows: [[String]]) -> String {
        var lines = ["| BSON type | " + columns.joined(separator: " | ") + " |"]
        lines.append("| --- |" + String(repeating: " --- |", count: columns.count))
        for row in rows { lines.append("| " + row.joined(separator: " | ") + " |") }
        return lines.joined(separator: "\n")
    }

    /// docs/type-fidelity.md: the matrix and how to read it.
    static func document(table: String, findings: String) -> String {
        let columnTypes = TypeFidelityCorpus.rows.map { "\($0.name) → `\($0.columnType)`" }.joined(separator: ", ")
        return """
            # Type fidelity: every BSON type through every pair of connectors

            Generated by `Tests/FerryCoreTests/TypeFidelityMatrixTests.swift`, which runs the real
            `ferry` binary against the test PostgreSQL and SecantusDB servers; the test fails when this
            page differs from what it measured (run it with `FERRY_UPDATE_DOCS=1` to rewrite the page).

            Each row is a BSON type, sent as several values (edge cases below), each once as a top-level
            field and once buried one to three levels deep in documents and arrays. Each column is a
            source → sink pipeline; the target is read back without Ferry (libbson for files, a wire
            client for MongoDB, `psql` for PostgreSQL). The PostgreSQL sources are the tables that
            `file→postgres(…)` wrote, and their cells compare with the original BSON value.

            - **postgres(typed)**: one column per type, created by the sink's `create_table`:
              \(columnTypes). Only the top-level field goes there.
            - **postgres(jsonb)**: one `jsonb` column holding the buried copy.

            A cell lists what happened to the row's values:

            - `kept`: the same type and value (doubles bit for bit, NaN as NaN, -0.0 as -0.0;
              decimal128 by value);
            - `→ type`, `keys reordered`: a conversion the connector's README documents
              ([postgres](../Plugins/Postgres/README.md#types), [mongo](../Plugins/Mongo/README.md#types));
            - `refused (dead letter)`: the record went to the dead letters with the sink's reason, the
              rest of the run went on;
            - `run fails`: the run stops with an error naming the value;
            - **ALTERED**: a change no README documents. The test fails on it.

            \(table)

            \(findings.isEmpty ? "No cell is ALTERED." : "The ALTERED cells, value by value:\n\n" + findings)

            The values: double 0.1, -0.0, NaN, ±Infinity, 1e16, 1.0, 5e-324, the largest double, 1e-7;
            strings empty, non-ASCII (é, ☕, 日本, 𝄞) and with quotes, backslashes and control characters;
            documents and arrays empty and nested; binary of 0, 6 and 300 bytes; two UUIDs; ObjectIds;
            dates at 1970, 1 ms before it, 1920, year 1 and the last millisecond of 9999; regexes with
            options and non-ASCII; int32 and int64 extremes and ±(2^53 + 1), and int64 42 (fits in 32
            bits); decimal128 19.90, a 34-digit coefficient, exponents +6000, +40 and -6176, -0, NaN and
            ±Infinity; minKey, maxKey.

            """
    }
}
