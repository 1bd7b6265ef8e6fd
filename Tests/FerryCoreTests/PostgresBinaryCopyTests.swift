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

    func read(_ table: String, columns: [String], options: String) throws -> [BSONDocument] {
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
        let binary = try read(table, columns: columns, options: options)
        let text = try read(table, columns: columns + ["ia"], options: options)
        #expect(binary.count == 8)
        #expect(text.count == binary.count)
        for (b, t) in zip(binary, text) {
            let withoutArray = BSONDocument(t.fields.filter { $0.key != "ia" })
            // Bytes, not ==: a NaN must be the same NaN, and NaN == NaN is false.
            #expect(b.encoded() == withoutArray.encoded(), "binary \(b) ≠ text \(withoutArray)")
        }
    }
}
