import FerryCore
import FerryPluginKit
import Foundation
import Testing

@Suite("PostgreSQL connector: types, incremental, shards", .serialized)
struct PostgresSourceTests {
    let pg: PostgresFixture

    init() throws { pg = try PostgresFixture() }

    static let allTypes = """
        id bigint PRIMARY KEY, i2 int2, i4 int4, i8 int8, n numeric(30,8), f4 real, f8 float8, t text, v varchar(20),
        b bool, d date, ts timestamp, tz timestamptz, u uuid, j json, jb jsonb, by bytea, ia int[], ta text[],
        updated_at timestamptz
        """

    static let allValues = """
        (1, 32767, -2147483648, 9223372036854775807, 123456789012345678901.12345678, 1.5, 0.1,
         E'h\\u00e9llo \\u2615\\ttab\\nline \\\\ back "q" ''s', 'v', true, '2024-02-29', '2024-01-02 03:04:05.123456',
         '2024-01-02 03:04:05.654321+02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a":[1,2.5,"x"],"$oid":null}',
         '{"k": {"n": 1.10, "s": "\\u00e9"}, "arr": [true, null]}', '\\xdeadbeef00', '{1,NULL,-3}',
         '{"a b",NULL,"c\\"d","e\\\\f",""}', '2024-01-01 00:00:00.000001+00'),
        (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2024-01-01'),
        (3, -1, 0, -9223372036854775808, -0.00000001, '-Infinity', 'NaN', '', '', false, '1970-01-01', '1969-12-31 23:59:59.999999',
         '2262-04-11 23:47:16.854775+00', '00000000-0000-0000-0000-000000000000', '[]', '{}', '\\x', '{}', '{}', '2024-01-01')
        """

    @Test("every type survives PostgreSQL → PostgreSQL exactly (numeric digits, microseconds, unicode, NULLs)", arguments: ["binary", "text"])
    func roundTripEveryType(format: String) throws {
        let source = PostgresFixture.name("types_src"), target = PostgresFixture.name("types_dst")
        try pg.sql("CREATE TABLE \(source) (\(Self.allTypes)); INSERT INTO \(source) VALUES \(Self.allValues); CREATE TABLE \(target) (\(Self.allTypes))")
        let report = try pg.run(pg.copyPipeline(from: source, to: target, sinkExtra: ", copy_format: \(format)"))
        #expect(report.outcome == .completed, "\(report.failureMessage ?? "")")
        #expect(report.statistics.inserted == 3)
        // json has no equality operator: compare it as text (written compact in the source).
        let columns = "id, i2, i4, i8, n, f4, f8, t, v, b, d, ts, tz, u, j::text, jb, by, ia, ta, updated_at"
        #expect(try pg.difference(source, target, columns: columns) == 0)
        let row = try #require(try pg.sql("SELECT n::text, tz::text, ts::text, t, i8::text, f8::text, by::text, ta::text FROM \(target) WHERE id = 1").first)
        #expect(row[0] == "123456789012345678901.12345678")
        #expect(row[1] == "2024-01-02 01:04:05.654321+00")
        #expect(row[2] == "2024-01-02 03:04:05.123456")
        #expect(row[3] == "h\u{e9}llo \u{2615}\ttab\nline \\ back \"q\" 's")
        #expect(row[4] == "9223372036854775807")
        #expect(row[5] == "0.1")
        #expect(row[6] == "\\xdeadbeef00")
        #expect(row[7] == #"{"a b",NULL,"c\"d","e\\f",""}"#)
        #expect(try pg.int("SELECT count(*) FROM \(target) WHERE id = 2 AND i2 IS NULL AND n IS NULL AND tz IS NULL AND jb IS NULL AND ta IS NULL") == 1)
    }

    @Test("BSON types: numeric is decimal128, timestamps exact strings, uuid binary 4, json documents, arrays")
    func bsonTypes() throws {
        let source = PostgresFixture.name("bson_src")
        try pg.sql("CREATE TABLE \(source) (\(Self.allTypes)); INSERT INTO \(source) VALUES \(Self.allValues)")
        let output = "\(pg.work)/\(source).jsonl"
        let report = try pg.run(
            """
            source: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(source), key: [id]}}
            sink: {plugin: file, config: {path: \(output)}}
            mode: full
            """)
        #expect(report.outcome == .completed, "\(report.failureMessage ?? "")")
        let lines = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 3)
        let document = try ExtendedJSON.parse(String(lines[0])).withUnsafeBytes { DocumentView($0).decode() }
        #expect(document["i2"] == .int32(32767))
        #expect(document["i8"] == .int64(9_223_372_036_854_775_807))
        #expect(document["f8"] == .double(0.1))
        if case .decimal128(let bytes)? = document["n"] {
            #expect(bytes.withUnsafeBytes { Decimal128TextForTests.text($0) } == "123456789012345678901.12345678")
        } else {
            Issue.record("numeric is not decimal128: \(String(describing: document["n"]))")
        }
        #expect(document["tz"] == .string("2024-01-02T01:04:05.654321Z"))
        #expect(document["d"] == .datetime(1_709_164_800_000))
        #expect(document["u"] == .binary(subtype: 4, data: [0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11]))
        #expect(document["by"] == .binary(subtype: 0, data: [0xde, 0xad, 0xbe, 0xef, 0x00]))
        #expect(document["ia"] == .array([.int32(1), .null, .int32(-3)]))
        #expect(document["ta"] == .array([.string("a b"), .null, .string("c\"d"), .string("e\\f"), .string("")]))
        #expect(document["j"] == .document(["a": .array([.int32(1), .double(2.5), .string("x")]), "$oid": .null]))
        if case .document(let jb)? = document["jb"], case .document(let k)? = jb["k"] {
            // 1.10 keeps its trailing zero: a decimal, not a double.
            if case .decimal128(let bytes)? = k["n"] {
                #expect(bytes.withUnsafeBytes { Decimal128TextForTests.text($0) } == "1.10")
            } else {
                Issue.record("jsonb 1.10 is not decimal128: \(String(describing: k["n"]))")
            }
            #expect(k["s"] == .string("\u{e9}"))
        } else {
            Issue.record("jsonb is not a document: \(String(describing: document["jb"]))")
        }
        let nulls = try ExtendedJSON.parse(String(lines[1])).withUnsafeBytes { DocumentView($0).decode() }
        #expect(nulls["n"] == .null)
        #expect(nulls.fields.count == 20)
    }

    @Test("timestamps: datetime refuses microseconds it would lose; datetime_truncate keeps milliseconds")
    func timestampForms() throws {
        let source = PostgresFixture.name("ts_src")
        try pg.sql("CREATE TABLE \(source) (id int PRIMARY KEY, at timestamptz); INSERT INTO \(source) VALUES (1, '2024-01-02 03:04:05.123456+00')")
        func pipeline(_ form: String, _ output: String) -> String {
            """
            source: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(source), key: [id], timestamps: \(form)}}
            sink: {plugin: file, config: {path: \(output)}}
            mode: full
            """
        }
        let refused = try pg.run(pipeline("datetime", "\(pg.work)/refused.jsonl"))
        let message = try #require(refused.failureMessage)
        #expect(message.contains("column 'at'"))
        #expect(message.contains("microseconds"))
        let truncated = try pg.run(pipeline("datetime_truncate", "\(pg.work)/truncated.jsonl"))
        #expect(truncated.outcome == .completed)
        let line = try String(contentsOfFile: "\(pg.work)/truncated.jsonl", encoding: .utf8)
        let document = try ExtendedJSON.parse(String(line.split(separator: "\n")[0])).withUnsafeBytes { DocumentView($0).decode() }
        #expect(document["at"] == .datetime(1_704_164_645_123))
    }

    @Test("a column type it cannot map is an error naming the column and type")
    func unmappedType() throws {
        let source = PostgresFixture.name("odd_src")
        try pg.sql("CREATE TABLE \(source) (id int PRIMARY KEY, spot point)")
        let report = try pg.run(
            """
            source: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(source), key: [id]}}
            sink: {plugin: blackhole}
            mode: full
            """)
        let message = try #require(report.failureMessage)
        #expect(message.contains("column 'spot'"))
        #expect(message.contains("point"))
    }

    @Test("an infinite date or timestamp stops the read naming the column, the value and the way out; that way out reads every row")
    func infiniteTimes() throws {
        let source = PostgresFixture.name("inf_src")
        try pg.sql(
            """
            CREATE TABLE \(source) (id int PRIMARY KEY, t timestamp, d date);
            INSERT INTO \(source) VALUES (1, '2024-01-02 03:04:05', '2024-01-02'), (2, 'infinity', '2024-01-02'), (3, '2024-01-02', '-infinity')
            """)
        for (column, value) in [("t", "timestamp 'infinity'"), ("d", "date '-infinity'")] {
            let columns = column == "t" ? "[id, t]" : "[id, d]"
            let report = try pg.run(
                """
                source: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(source), key: [id], columns: \(columns)}}
                sink: {plugin: blackhole}
                mode: full
                """)
            let message = try #require(report.failureMessage)
            #expect(message.contains("column '\(column)'"), "\(message)")
            #expect(message.contains("\(value) is out of range"), "\(message)")
            #expect(message.contains("select the column as text in a 'query'"), "\(message)")
        }
        let output = "\(pg.work)/\(source).jsonl"
        let report = try pg.run(
            """
            source: {plugin: postgres, config: {dsn: "\(pg.dsn)", query: "SELECT id, t::text AS t, d::text AS d FROM \(source)", key: [id]}}
            sink: {plugin: file, config: {path: \(output)}}
            mode: full
            """)
        #expect(report.outcome == .completed, "\(report.failureMessage ?? "")")
        let text = try String(contentsOfFile: output, encoding: .utf8)
        #expect(text.contains(#""t" : "infinity""#), "\(text)")
        #expect(text.contains(#""d" : "-infinity""#), "\(text)")
        #expect(text.split(separator: "\n").count == 3)
    }

    @Test("incremental reads only new and changed rows; cursor ties across batch boundaries are neither lost nor repeated")
    func incrementalWithTies() throws {
        let source = PostgresFixture.name("inc_src"), target = PostgresFixture.name("inc_dst")
        // 11 rows over 3 cursor values: every batch of 2 or 3 splits a tie group somewhere.
        try pg.sql(
            """
            CREATE TABLE \(source) (id int PRIMARY KEY, name text, updated_at timestamptz NOT NULL);
            CREATE INDEX ON \(source) (updated_at, id);
            INSERT INTO \(source) SELECT g, 'row ' || g, '2024-01-01 00:00:00.000001+00'::timestamptz + ((g % 3) || ' seconds')::interval FROM generate_series(1, 11) g;
            CREATE TABLE \(target) (id int PRIMARY KEY, name text, updated_at timestamptz NOT NULL);
            """)
        for batch in [2, 3] {
            try pg.sql("TRUNCATE \(target)")
            let store = MemoryStateStore()
            let yaml = pg.copyPipeline(from: source, to: target, mode: "incremental", sourceExtra: ", cursor: updated_at", batch: batch)
            let first = try pg.run(yaml, store: store)
            #expect(first.outcome == .completed, "\(first.failureMessage ?? "")")
            #expect(first.statistics.read == 11)
            #expect(try pg.difference(source, target) == 0)
            let idle = try pg.run(yaml, store: store)
            #expect(idle.statistics.read == 0)
            // Two changed rows and three new ones, all sharing one new cursor value (a tie).
            try pg.sql(
                """
                UPDATE \(source) SET name = name || ' changed', updated_at = '2024-02-01 00:00:00.5+00' WHERE id IN (2, 7);
                INSERT INTO \(source) SELECT g, 'new ' || g, '2024-02-01 00:00:00.5+00' FROM generate_series(12, 14) g;
                """)
            let second = try pg.run(yaml, store: store)
            #expect(second.outcome == .completed, "\(second.failureMessage ?? "")")
            #expect(second.statistics.read == 5)
            #expect(second.statistics.inserted == 3)
            #expect(second.statistics.updated == 2)
            #expect(try pg.difference(source, target) == 0)
            try pg.sql("DELETE FROM \(source) WHERE id > 11; UPDATE \(source) SET name = 'row ' || id, updated_at = '2024-01-01 00:00:00.000001+00'::timestamptz + ((id % 3) || ' seconds')::interval")
        }
    }

    @Test("a saved state from another table is refused with a clear message")
    func foreignStateRefused() throws {
        let a = PostgresFixture.name("state_a"), b = PostgresFixture.name("state_b"), target = PostgresFixture.name("state_dst")
        try pg.sql(
            """
            CREATE TABLE \(a) (id int PRIMARY KEY, updated_at timestamptz NOT NULL); INSERT INTO \(a) VALUES (1, now());
            CREATE TABLE \(b) (id int PRIMARY KEY, updated_at timestamptz NOT NULL);
            CREATE TABLE \(target) (id int PRIMARY KEY, updated_at timestamptz NOT NULL);
            """)
        let store = MemoryStateStore()
        func yaml(_ source: String) -> String {
            """
            name: shared_state
            source: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(source), key: [id], cursor: updated_at}}
            sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(target), key: [id]}}
            mode: incremental
            """
        }
        #expect(try pg.run(yaml(a), store: store).outcome == .completed)
        let refused = try pg.run(yaml(b), store: store)
        let message = try #require(refused.failureMessage)
        #expect(message.contains("saved state is for public.\(a)"))
        #expect(message.contains("reset"))

        // Two different queries: the position of one is not reused for the other.
        func queryYAML(_ query: String) -> String {
            """
            name: shared_query_state
            source: {plugin: postgres, config: {dsn: "\(pg.dsn)", query: "\(query)", key: [id], cursor: updated_at}}
            sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(target), key: [id]}}
            mode: incremental
            """
        }
        #expect(try pg.run(queryYAML("SELECT id, updated_at FROM \(a)"), store: store).outcome == .completed)
        let otherQuery = try pg.run(queryYAML("SELECT id, updated_at FROM \(a) WHERE id > 0"), store: store)
        #expect(try #require(otherQuery.failureMessage).contains("saved state is for query"))
    }

    @Test("shards: the slices of 3 readers are disjoint and together are the table")
    func shards() throws {
        let source = PostgresFixture.name("shard_src"), target = PostgresFixture.name("shard_dst")
        try pg.sql(
            """
            CREATE TABLE \(source) (id int PRIMARY KEY, name text); INSERT INTO \(source) SELECT g, 'n' || g FROM generate_series(1, 1000) g;
            CREATE TABLE \(target) (id int, name text);
            """)
        var total = 0
        for index in 0..<3 {
            var options = RunOptions()
            options.shard = ShardSpec(index: index, count: 3)
            let report = try pg.run(
                """
                name: shard_copy
                source: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(source), key: [id]}}
                sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(target), mode: insert}}
                mode: full
                """, options: options)
            #expect(report.outcome == .completed, "\(report.failureMessage ?? "")")
            #expect(report.statistics.read > 250 && report.statistics.read < 420, "shard \(index) read \(report.statistics.read)")
            total += report.statistics.read
        }
        #expect(total == 1000)
        #expect(try pg.int("SELECT count(*) FROM \(target)") == 1000)
        #expect(try pg.int("SELECT count(DISTINCT id) FROM \(target)") == 1000)
        #expect(try pg.difference(source, target) == 0)
    }

    @Test("a query source with an estimate, and reltuples for a table")
    func querySource() throws {
        let source = PostgresFixture.name("q_src")
        try pg.sql("CREATE TABLE \(source) (id int PRIMARY KEY, price numeric(10,2)); INSERT INTO \(source) SELECT g, g / 100.0 FROM generate_series(1, 500) g; ANALYZE \(source)")
        let output = "\(pg.work)/\(source).jsonl"
        let report = try pg.run(
            """
            source: {plugin: postgres, config: {dsn: "\(pg.dsn)", query: "SELECT id, price FROM \(source) WHERE price >= 4", key: [id], numeric: string}}
            sink: {plugin: file, config: {path: \(output)}}
            mode: full
            batch_size: 50
            """)
        #expect(report.outcome == .completed, "\(report.failureMessage ?? "")")
        #expect(report.statistics.read == 101)
        #expect(report.statistics.estimatedTotal == 101)
        let first = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n")[0]
        #expect(first.contains(#""price" : "4.00""#))
    }
}

/// decimal128 bytes → text, independent of the plugin's codec (a small BID decoder).
enum Decimal128TextForTests {
    static func text(_ bytes: UnsafeRawBufferPointer) -> String {
        let low = bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
        let high = bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        let exponent = Int((high >> 49) & 0x3FFF) - 6176
        let coefficient = (UInt128(high & 0x1_FFFF_FFFF_FFFF) << 64) | UInt128(low)
        var digits = String(coefficient)
        let negative = high >> 63 == 1
        if exponent < 0 {
            while digits.count <= -exponent { digits = "0" + digits }
            digits.insert(".", at: digits.index(digits.endIndex, offsetBy: exponent))
        } else if exponent > 0 {
            digits += "E+\(exponent)"
        }
        return (negative ? "-" : "") + digits
    }
}
