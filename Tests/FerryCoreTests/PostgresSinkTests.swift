import FerryCore
import FerryPluginKit
import Foundation
import Testing

@Suite("PostgreSQL connector: sink modes, rejects, preview", .serialized)
struct PostgresSinkTests {
    let pg: PostgresFixture

    init() throws { pg = try PostgresFixture() }

    func makeTables(_ source: String, _ target: String, rows: Int = 5) throws {
        try pg.sql(
            """
            CREATE TABLE \(source) (id int PRIMARY KEY, name text, price numeric(10,2), tags text[], doc jsonb);
            INSERT INTO \(source) SELECT g, 'item ' || g, g * 1.25, ARRAY['t' || g], jsonb_build_object('g', g) FROM generate_series(1, \(rows)) g;
            CREATE TABLE \(target) (id int PRIMARY KEY, name text, price numeric(10,2), tags text[], doc jsonb);
            """)
    }

    @Test("upsert rewrites only the changed rows: xmin of unchanged rows stays, counts are inserted/updated/unchanged")
    func upsertOnlyChanged() throws {
        let source = PostgresFixture.name("up_src"), target = PostgresFixture.name("up_dst")
        try makeTables(source, target)
        let yaml = pg.copyPipeline(from: source, to: target)
        let first = try pg.run(yaml)
        #expect(first.outcome == .completed, "\(first.failureMessage ?? "")")
        #expect((first.statistics.inserted, first.statistics.updated, first.statistics.unchanged) == (5, 0, 0))
        let before = Dictionary(uniqueKeysWithValues: try pg.sql("SELECT id, xmin::text FROM \(target)").map { ($0[0]!, $0[1]!) })
        try pg.sql("UPDATE \(source) SET price = price + 1 WHERE id = 2; UPDATE \(source) SET doc = '{\"g\": 40}' WHERE id = 4; INSERT INTO \(source) VALUES (6, 'six', 6, NULL, NULL)")
        let second = try pg.run(yaml)
        #expect(second.outcome == .completed, "\(second.failureMessage ?? "")")
        #expect((second.statistics.inserted, second.statistics.updated, second.statistics.unchanged) == (1, 2, 3))
        let after = Dictionary(uniqueKeysWithValues: try pg.sql("SELECT id, xmin::text FROM \(target)").map { ($0[0]!, $0[1]!) })
        for id in ["1", "3", "5"] { #expect(after[id] == before[id], "row \(id) was rewritten") }
        for id in ["2", "4"] { #expect(after[id] != before[id], "row \(id) was not updated") }
        #expect(try pg.difference(source, target) == 0)
        let third = try pg.run(yaml)
        #expect((third.statistics.inserted, third.statistics.updated, third.statistics.unchanged) == (0, 0, 6))
    }

    @Test("into an empty table rows are copied straight in; a key seen again falls back to the merge and is updated, not rejected")
    func emptyTableFastPathFallsBack() throws {
        let target = PostgresFixture.name("fast_dst")
        try pg.sql("CREATE TABLE \(target) (id int PRIMARY KEY, name text)")
        let input = "\(pg.work)/\(target).jsonl"
        let lines = [#"{"id": 1, "name": "a"}"#, #"{"id": 2, "name": "b"}"#, #"{"id": 2, "name": "b2"}"#, #"{"id": 3, "name": "c"}"#, #"{"id": 1, "name": "a"}"#, #"{"id": 4, "name": "d"}"#]
        try (lines.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
        let report = try pg.run(
            """
            source: {plugin: file, config: {path: \(input)}}
            sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(target), key: [id]}}
            batch_size: 2
            """)
        #expect(report.outcome == .completed, "\(report.failureMessage ?? "")")
        #expect(report.statistics.deadLettered == 0)
        #expect((report.statistics.inserted, report.statistics.updated, report.statistics.unchanged) == (4, 1, 1))
        #expect(try pg.sql("SELECT id::text, name FROM \(target) ORDER BY id") == [["1", "a"], ["2", "b2"], ["3", "c"], ["4", "d"]])
    }

    @Test("missing-only inserts absent keys and never touches existing rows")
    func missingOnly() throws {
        let source = PostgresFixture.name("mo_src"), target = PostgresFixture.name("mo_dst")
        try makeTables(source, target)
        try pg.sql("INSERT INTO \(target) (id, name, price) VALUES (1, 'kept', 99), (3, 'kept too', 98)")
        let report = try pg.run(pg.copyPipeline(from: source, to: target, mode: "missing-only"))
        #expect(report.outcome == .completed, "\(report.failureMessage ?? "")")
        #expect((report.statistics.inserted, report.statistics.updated, report.statistics.unchanged) == (3, 0, 2))
        #expect(try pg.sql("SELECT name, price::text FROM \(target) WHERE id IN (1, 3) ORDER BY id") == [["kept", "99.00"], ["kept too", "98.00"]])
        #expect(try pg.int("SELECT count(*) FROM \(target)") == 5)
    }

    @Test("replace empties the table once per run, with several workers")
    func replaceAndInsert() throws {
        let source = PostgresFixture.name("rep_src"), target = PostgresFixture.name("rep_dst")
        try makeTables(source, target, rows: 250)
        try pg.sql("INSERT INTO \(target) (id, name) VALUES (1000, 'stale')")
        // Two workers, each with its own connection: the table is emptied once, not once per worker.
        let yaml = pg.copyPipeline(from: source, to: target, sinkExtra: ", mode: replace", batch: 20, extra: "workers: 2")
        let report = try pg.run(yaml)
        #expect(report.outcome == .completed, "\(report.failureMessage ?? "")")
        #expect(report.statistics.inserted == 250)
        #expect(try pg.difference(source, target) == 0)
        // A second run replaces again (it does not append).
        try pg.sql("DELETE FROM \(source) WHERE id > 200")
        let again = try pg.run(yaml)
        #expect(again.statistics.inserted == 200)
        #expect(try pg.difference(source, target) == 0)
    }

    @Test("rows the server refuses are dead-lettered with its reason; the rest of the batch lands", arguments: ["binary", "text"])
    func rejects(format: String) throws {
        let target = PostgresFixture.name("rej_dst")
        try pg.sql("CREATE TABLE \(target) (id int PRIMARY KEY, qty int NOT NULL CHECK (qty >= 0), label varchar(5))")
        var lines: [String] = []
        for id in 1...40 {
            switch id {
            case 7: lines.append(#"{"id": 7, "qty": -1, "label": "neg"}"#)
            case 13: lines.append(#"{"id": 13, "qty": 1, "label": "much too long"}"#)
            case 21: lines.append(#"{"id": 21, "qty": "many", "label": "bad"}"#)
            case 30: lines.append(#"{"id": 30, "qty": {"a": 1}, "label": "doc"}"#)
            case 33: lines.append(#"{"id": 33, "qty": 1, "colour": "red"}"#)
            default: lines.append(#"{"id": \#(id), "qty": \#(id), "label": "ok"}"#)
            }
        }
        let input = "\(pg.work)/\(target).jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
        let deadLetters = "\(pg.work)/\(target).dead.jsonl"
        let report = try pg.run(
            """
            source: {plugin: file, config: {path: \(input)}}
            sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(target), key: [id], copy_format: \(format)}}
            batch_size: 40
            """, deadLetters: deadLetters)
        #expect(report.statistics.deadLettered == 5)
        #expect(report.statistics.inserted == 35)
        #expect(try pg.int("SELECT count(*) FROM \(target)") == 35)
        #expect(try pg.int("SELECT count(*) FROM \(target) WHERE id IN (7, 13, 21, 30, 33)") == 0)
        let dead = try String(contentsOfFile: deadLetters, encoding: .utf8)
        #expect(dead.contains("violates check constraint"))
        #expect(dead.contains("value too long"))
        // Text COPY leaves the string to the server; binary COPY parses it in the plugin.
        #expect(dead.contains(format == "text" ? "invalid input syntax for type integer" : "'many' is not an integer"))
        #expect(dead.contains("field 'qty'"))
        #expect(dead.contains("field 'colour' has no column"))
    }

    @Test("a batch sent in many chunks while it is encoded: refusals deep inside it are rejected alone, every other row lands once", arguments: ["binary", "text"])
    func streamedBatchRejects(format: String) throws {
        let target = PostgresFixture.name("stream_dst")
        try pg.sql("CREATE TABLE \(target) (id int PRIMARY KEY, qty int NOT NULL CHECK (qty >= 0), label text)")
        // 20,000 rows of ~250 bytes: about 5 MB, many times the sink's send chunk.
        let refused: Set<Int> = [3, 9_001, 19_999]  // by the server (check constraint)
        let rejected: Set<Int> = [15_000]  // by the plugin (not an integer)
        let label = String(repeating: "x", count: 240)
        var lines: [String] = []
        for id in 1...20_000 {
            let qty = refused.contains(id) ? "-1" : rejected.contains(id) ? #""many""# : "\(id)"
            lines.append(#"{"id": \#(id), "qty": \#(qty), "label": "\#(label)"}"#)
        }
        let input = "\(pg.work)/\(target).jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
        let deadLetters = "\(pg.work)/\(target).dead.jsonl"
        let report = try pg.run(
            """
            source: {plugin: file, config: {path: \(input)}}
            sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(target), key: [id], mode: insert, copy_format: \(format)}}
            batch_size: 20000
            """, deadLetters: deadLetters)
        #expect(report.statistics.deadLettered == 4)
        #expect(report.statistics.inserted == 19_996)
        #expect(try pg.int("SELECT count(*) FROM \(target)") == 19_996)
        #expect(try pg.int("SELECT count(DISTINCT id) FROM \(target)") == 19_996)
        #expect(try pg.int("SELECT count(*) FROM \(target) WHERE id IN (3, 9001, 15000, 19999)") == 0)
        #expect(try pg.int("SELECT count(*) FROM \(target) WHERE qty <> id OR length(label) <> 240") == 0)
        let dead = try String(contentsOfFile: deadLetters, encoding: .utf8)
        #expect(dead.split(separator: "\n").count == 4)
        #expect(dead.contains("violates check constraint"))
    }

    @Test("BSON values of other shapes land exactly: dates, decimal128, ISO strings, doubles into numeric, uuid text", arguments: ["binary", "text"])
    func bsonIntoTypedColumns(format: String) throws {
        let target = PostgresFixture.name("shapes_dst")
        try pg.sql("CREATE TABLE \(target) (id int PRIMARY KEY, n numeric(12,4), f float8, tz timestamptz, ts timestamp, d date, u uuid, b bool, ia int8[], na numeric[], t text)")
        let lines = [
            #"{"id": 1, "n": {"$numberDecimal": "1E+3"}, "f": 7, "tz": {"$date": "2024-05-06T07:08:09.123Z"}, "ts": "2024-05-06T07:08:09.654321+02:00", "d": {"$date": "2024-02-29T00:00:00Z"}, "u": "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "b": "true", "ia": [1, {"$numberLong": "9007199254740993"}], "na": [{"$numberDecimal": "-0.0001"}, 2.5, null], "t": 42}"#,
            #"{"id": 2, "n": 0.1, "f": {"$numberDecimal": "2.5"}, "tz": "2024-05-06 07:08:09.000001+00", "ts": {"$date": "1969-12-31T23:59:59.999Z"}, "d": "2024-03-01", "u": {"$binary": {"base64": "oO68mZwLTvi7bWu5vTgKEQ==", "subType": "04"}}, "b": false, "ia": [], "na": [], "t": {"$oid": "650000000000000000000001"}}"#,
            #"{"id": 3, "n": "-12345678.9", "f": "NaN", "tz": "2024-05-06T09:08:09+02:00"}"#,
        ]
        let input = "\(pg.work)/\(target).jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
        let report = try pg.run(
            """
            source: {plugin: file, config: {path: \(input)}}
            sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(target), key: [id], copy_format: \(format)}}
            """)
        #expect(report.outcome == .completed, "\(report.failureMessage ?? "")")
        #expect(report.statistics.deadLettered == 0)
        let rows = try pg.sql("SELECT id, n::text, f::text, tz::text, ts::text, d::text, u::text, b::text, ia::text, na::text, t FROM \(target) ORDER BY id")
        #expect(rows.count == 3)
        #expect(rows[0] == ["1", "1000.0000", "7", "2024-05-06 07:08:09.123+00", "2024-05-06 07:08:09.654321", "2024-02-29", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "true", "{1,9007199254740993}", "{-0.0001,2.5,NULL}", "42"])
        #expect(rows[1] == ["2", "0.1000", "2.5", "2024-05-06 07:08:09.000001+00", "1969-12-31 23:59:59.999", "2024-03-01", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "false", "{}", "{}", "650000000000000000000001"])
        #expect(rows[2] == ["3", "-12345678.9000", "NaN", "2024-05-06 07:08:09+00", nil, nil, nil, nil, nil, nil, nil])
    }

    @Test("numeric keeps its exact digits and scale from strings, decimal128 and exponents", arguments: ["binary", "text"])
    func numericExact(format: String) throws {
        let target = PostgresFixture.name("num_dst")
        try pg.sql("CREATE TABLE \(target) (id int PRIMARY KEY, n numeric)")
        let values = [
            #""000123.4500""#, #""0.05E+2""#, #""1E-3""#, #""-0.000""#, #"{"$numberDecimal": "1.000E+5"}"#, #"{"$numberDecimal": "-98765432109876543210.0123456789"}"#,
            #""12345678901234567890123456789012345678.9""#, #""NaN""#, #""-Infinity""#, "7", #"{"$numberLong": "-9007199254740993"}"#, "0.1",
            // decimal128 on the binary sink's stack-built text (64-bit coefficient, ≤ 40 fraction digits) and just past it
            #"{"$numberDecimal": "19.90"}"#, #"{"$numberDecimal": "-0.0050"}"#, #"{"$numberDecimal": "12345"}"#, #"{"$numberDecimal": "0E-3"}"#,
            #"{"$numberDecimal": "1E-40"}"#, #"{"$numberDecimal": "1E-41"}"#, #"{"$numberDecimal": "18446744073709551615E-2"}"#,
            #"{"$numberDecimal": "18446744073709551616E-2"}"#,
        ]
        let expected = ["123.4500", "5", "0.001", "0.000", "100000", "-98765432109876543210.0123456789",
                        "12345678901234567890123456789012345678.9", "NaN", "-Infinity", "7", "-9007199254740993", "0.1",
                        "19.90", "-0.0050", "12345", "0.000", "0." + String(repeating: "0", count: 39) + "1",
                        "0." + String(repeating: "0", count: 40) + "1", "184467440737095516.15", "184467440737095516.16"]
        let input = "\(pg.work)/\(target).jsonl"
        try (values.enumerated().map { #"{"id": \#($0.offset), "n": \#($0.element)}"# }.joined(separator: "\n") + "\n")
            .write(toFile: input, atomically: true, encoding: .utf8)
        let report = try pg.run(
            """
            source: {plugin: file, config: {path: \(input)}}
            sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(target), key: [id], copy_format: \(format)}}
            """)
        #expect(report.outcome == .completed, "\(report.failureMessage ?? "")")
        #expect(try pg.sql("SELECT n::text FROM \(target) ORDER BY id").map { $0[0] ?? "NULL" } == expected)
    }

    @Test("a domain column maps as its base type, and its check still rejects")
    func domainColumn() throws {
        let source = PostgresFixture.name("dom_src"), target = PostgresFixture.name("dom_dst"), domain = PostgresFixture.name("posint")
        try pg.sql(
            """
            CREATE DOMAIN \(domain) AS int CHECK (VALUE > 0);
            CREATE TABLE \(source) (id int PRIMARY KEY, qty int); INSERT INTO \(source) VALUES (1, 5), (2, -5), (3, 7);
            CREATE TABLE \(target) (id \(domain) PRIMARY KEY, qty \(domain));
            """)
        let report = try pg.run(pg.copyPipeline(from: source, to: target))
        #expect(report.outcome == .completed, "\(report.failureMessage ?? "")")
        #expect(report.statistics.inserted == 2)
        #expect(report.statistics.deadLettered == 1)
        #expect(try pg.sql("SELECT id::text, qty::text FROM \(target) ORDER BY id") == [["1", "5"], ["3", "7"]])
    }

    @Test("dry-run preview counts inserts, updates and unchanged rows and changes nothing")
    func preview() throws {
        let source = PostgresFixture.name("pv_src"), target = PostgresFixture.name("pv_dst")
        try makeTables(source, target)
        try pg.sql("INSERT INTO \(target) SELECT * FROM \(source) WHERE id <= 3; UPDATE \(target) SET name = 'old' WHERE id = 1")
        let before = try pg.sql("SELECT id, name, xmin::text FROM \(target) ORDER BY id")
        var options = RunOptions()
        options.dryRun = true
        let report = try pg.run(pg.copyPipeline(from: source, to: target), options: options)
        #expect(report.outcome == .completed, "\(report.failureMessage ?? "")")
        #expect((report.statistics.inserted, report.statistics.updated, report.statistics.unchanged) == (2, 1, 2))
        #expect(try pg.sql("SELECT id, name, xmin::text FROM \(target) ORDER BY id") == before)
    }

    @Test("create_table makes the table when it is missing; without it a missing table is a clear error")
    func createTable() throws {
        let source = PostgresFixture.name("ct_src"), target = PostgresFixture.name("ct_dst")
        try makeTables(source, target)
        try pg.sql("DROP TABLE \(target)")
        let missing = try pg.run(pg.copyPipeline(from: source, to: target))
        let message = try #require(missing.failureMessage)
        #expect(message.contains("table public.\(target) does not exist"))
        let created = try pg.run(
            pg.copyPipeline(from: source, to: target, sinkExtra: #", create_table: ["id int", "name text", "price numeric(10,2)", "tags text[]", "doc jsonb"]"#))
        #expect(created.outcome == .completed, "\(created.failureMessage ?? "")")
        #expect(try pg.difference(source, target) == 0)
        #expect(try pg.int("SELECT count(*) FROM pg_index WHERE indrelid = '\(target)'::regclass AND indisprimary") == 1)
    }

    @Test("create_table with several workers: one creates the table, the others wait and use it (no catalog collision)")
    func createTableWithWorkers() throws {
        for attempt in 0..<3 {
            let source = PostgresFixture.name("ctw_src"), target = PostgresFixture.name("ctw_dst")
            try makeTables(source, target, rows: 2000)
            try pg.sql("DROP TABLE \(target)")
            let report = try pg.run(
                pg.copyPipeline(
                    from: source, to: target, sinkExtra: #", create_table: ["id int", "name text", "price numeric(10,2)", "tags text[]", "doc jsonb"]"#,
                    batch: 50, extra: "workers: 4"))
            #expect(report.outcome == .completed, "attempt \(attempt): \(report.failureMessage ?? "")")
            #expect(try pg.difference(source, target) == 0)
        }
    }
}
