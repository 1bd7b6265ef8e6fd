import FerryCore
import FerryPluginKit
import FerryPluginTesting
import Foundation
import Testing

/// The source reads in binary COPY when it can and in text COPY when a column
/// needs it (an array, a real). A value's BSON must not depend on which: the
/// same table is read both ways (an int[] column added to force text) and
/// every other field must come out identical.
@Suite("PostgreSQL source: binary COPY against text COPY", .serialized)
struct PostgresBinaryCopyTests {
    let pg: PostgresFixture

    init() throws { pg = try PostgresFixture() }

    static let edgeValues = """
        (10, 1, 1, 1, 'NaN', 'Infinity', 'a\\tb\\\\c', 'x', true, '0044-03-15 BC', '0044-03-15 12:00:00.5 BC',
         '0001-01-01 00:00:00+00 BC', NULL, '{"x":null}', '[1,"a"]', '\\x00ff', '{}', '{}', '2024-01-01'),
        (11, 2, 2, 2, 0, '-0', '', 'y', false, '12345-06-07', '12345-06-07 08:09:10.000001', '9999-12-31 23:59:59.999999+00',
         NULL, '{"n":1}', '{"m":2.50}', NULL, '{}', '{}', '2024-01-01 00:00:00.12+00'),
        (12, 3, 3, 3, 0.00000001, 1e300, 'z', 'z', NULL, '0999-01-01', '0999-01-01 00:00:00.1', '1000-01-01 00:00:00.010203+00',
         NULL, '[1,"a"]', '[]', NULL, '{}', '{}', '2024-01-01 00:00:00.5+00'),
        (13, 4, 4, 4, -99999999999999999999.99999999, 'NaN', NULL, NULL, NULL, '200000-01-01', '200000-01-01 00:00:00.000001', '1970-01-01 00:00:00+00',
         NULL, NULL, NULL, NULL, '{}', '{}', '2024-01-01 00:00:01+00'),
        (14, 5, 5, 5, 10000, 12345.678, 'w', 'w', NULL, '2000-01-01', '2000-01-01 00:00:00', '1999-12-31 23:59:59.999+00',
         NULL, NULL, NULL, NULL, '{}', '{}', '2024-01-01 00:00:02+00')
        """

    static func read(_ pg: PostgresFixture, _ table: String, columns: [String], options: String) throws -> [BSONDocument] {
        let harness = try PluginHarness(path: TestSupport.product("libFerryPostgres.so"))
        let list = columns.map { "\"\($0)\"" }.joined(separator: ", ")
        let source = try harness.open(.source, config: #"{"dsn": "\#(pg.dsn)", "table": "\#(table)", "key": ["id"], "columns": [\#(list)]\#(options)}"#, mode: .full, batchSize: 3)
        defer { source.close() }
        return try source.readAll().batches.flatMap(\.records).map { record in record.bytes.withUnsafeBytes { DocumentView($0).decode() } }
    }

    @Test("every value reads the same in binary and in text COPY", arguments: ["", #", "numeric": "string", "timestamps": "datetime_truncate""#])
    func binaryMatchesText(options: String) throws {
        let table = PostgresFixture.name("binary_src")
        try pg.sql("""
            CREATE TABLE \(table) (\(PostgresSourceTests.allTypes));
            INSERT INTO \(table) VALUES \(PostgresSourceTests.allValues);
            INSERT INTO \(table) (id, i2, i4, i8, n, f8, t, v, b, d, ts, tz, u, j, jb, by, ia, ta, updated_at) VALUES \(Self.edgeValues)
            """)
        let columns = ["id", "i2", "i4", "i8", "n", "f8", "t", "v", "b", "d", "ts", "tz", "u", "j", "jb", "by", "updated_at"]
        let binary = try Self.read(pg, table, columns: columns, options: options)
        let text = try Self.read(pg, table, columns: columns + ["ia"], options: options)
        #expect(binary.count == 8)
        #expect(text.count == binary.count)
        for (b, t) in zip(binary, text) {
            let withoutArray = BSONDocument(t.fields.filter { $0.key != "ia" })
            // Bytes, not ==: a NaN must be the same NaN, and NaN == NaN is false.
            #expect(b.encoded() == withoutArray.encoded(), "binary \(b) ≠ text \(withoutArray)")
        }
    }
}

/// The binary decoder writes common numerics, dates and timestamps straight
/// to BSON and sends the rest through the server's text; the text format is
/// the oracle. Random values over the whole ranges, read both ways.
@Suite("PostgreSQL source: binary COPY against text COPY on random values", .serialized)
struct PostgresBinaryCopyRandomTests {
    let pg: PostgresFixture

    init() throws { pg = try PostgresFixture() }

    /// A numeric text with at most 34 significant digits (or zeros past them), so it has a decimal128.
    static func numeric(_ rng: inout PostgresDecimalDifferentialTests.SeededGenerator) -> String {
        func digits(_ count: Int) -> String { String((0..<count).map { _ in Character(String(Int.random(in: 0...9, using: &rng))) }) }
        switch Int.random(in: 0..<10, using: &rng) {
        case 0: return ["0", "0.000", "-0.5", "1e300", "-1e-300", "10000", "0.0001", "9999.9999", "NaN", "Infinity", "-Infinity"].randomElement(using: &rng)!
        case 1: return "1" + String(repeating: "0", count: Int.random(in: 30...60, using: &rng))  // zeros past 34 digits
        case 2: return "0." + String(repeating: "0", count: Int.random(in: 0...40, using: &rng)) + digits(Int.random(in: 1...20, using: &rng))
        default:
            let whole = Int.random(in: 0...20, using: &rng)
            let fraction = Int.random(in: 0...(34 - whole), using: &rng)
            let sign = Bool.random(using: &rng) ? "-" : ""
            return sign + (whole == 0 ? "0" : String(Int.random(in: 1...9, using: &rng)) + digits(whole - 1)) + (fraction == 0 ? "" : "." + digits(fraction))
        }
    }

    /// A timestamp text from 4712 BC to 294200 AD, mostly within years 1 to
    /// 9999. (Infinity, and the last years before 294277, are errors either way.)
    static func timestamp(_ rng: inout PostgresDecimalDifferentialTests.SeededGenerator, wholeMilliseconds: Bool) -> String {
        let year: Int
        switch Int.random(in: 0..<10, using: &rng) {
        case 0: year = Int.random(in: -4711...0, using: &rng)
        case 1: year = Int.random(in: 10000...294200, using: &rng)
        default: year = Int.random(in: 1...9999, using: &rng)
        }
        let micros = wholeMilliseconds ? Int.random(in: 0...999, using: &rng) * 1000 : Int.random(in: 0...999_999, using: &rng)
        let shown = year <= 0 ? 1 - year : year
        let text = String(format: "%04d-%02d-%02d %02d:%02d:%02d.%06d", shown, Int.random(in: 1...12, using: &rng), Int.random(in: 1...28, using: &rng),
                          Int.random(in: 0...23, using: &rng), Int.random(in: 0...59, using: &rng), Int.random(in: 0...59, using: &rng), micros)
        return text + (year <= 0 ? " BC" : "")
    }

    static func date(_ rng: inout PostgresDecimalDifferentialTests.SeededGenerator) -> String {
        let year = [Int.random(in: -4711...0, using: &rng), Int.random(in: 10000...294_200, using: &rng), Int.random(in: 1...9999, using: &rng),
                    Int.random(in: 1...9999, using: &rng)].randomElement(using: &rng)!
        let shown = year <= 0 ? 1 - year : year
        return String(format: "%04d-%02d-%02d", shown, Int.random(in: 1...12, using: &rng), Int.random(in: 1...28, using: &rng)) + (year <= 0 ? " BC" : "")
    }

    @Test("20,000 random numerics, dates and timestamps decode to the same BSON in binary and in text",
          arguments: ["", #", "numeric": "string", "timestamps": "datetime_truncate""#, #", "timestamps": "datetime""#])
    func randomValues(options: String) throws {
        let seed = UInt64.random(in: 1...UInt64.max)
        var rng = PostgresDecimalDifferentialTests.SeededGenerator(state: seed)
        let table = PostgresFixture.name("binary_rand")
        try pg.sql("CREATE TABLE \(table) (id int PRIMARY KEY, n numeric, n2 numeric(20,6), d date, ts timestamp, tz timestamptz, ia int[])")
        let wholeMilliseconds = options.contains(#""datetime""#)
        // psql takes the SQL as one argument: chunks stay well under its 128 KiB limit.
        for chunk in 0..<40 {
            let rows = (0..<500).map { index -> String in
                let id = chunk * 500 + index
                let n2 = String(format: "%.6f", Double.random(in: -1e13...1e13, using: &rng))
                return "(\(id), '\(Self.numeric(&rng))', '\(n2)', '\(Self.date(&rng))', '\(Self.timestamp(&rng, wholeMilliseconds: wholeMilliseconds))', "
                    + "'\(Self.timestamp(&rng, wholeMilliseconds: wholeMilliseconds))+00', NULL)"
            }
            try pg.sql("INSERT INTO \(table) VALUES \(rows.joined(separator: ",\n"))")
        }
        let columns = ["id", "n", "n2", "d", "ts", "tz"]
        let binary = try PostgresBinaryCopyTests.read(pg, table, columns: columns, options: options)
        let text = try PostgresBinaryCopyTests.read(pg, table, columns: columns + ["ia"], options: options)
        #expect(binary.count == 20_000)
        #expect(text.count == binary.count)
        var mismatches = 0
        for (b, t) in zip(binary, text) {
            let withoutArray = BSONDocument(t.fields.filter { $0.key != "ia" })
            if b.encoded() != withoutArray.encoded() {
                mismatches += 1
                if mismatches <= 5 { Issue.record("seed \(seed): binary \(b) ≠ text \(withoutArray)") }
            }
        }
        #expect(mismatches == 0, "seed \(seed)")
    }
}
