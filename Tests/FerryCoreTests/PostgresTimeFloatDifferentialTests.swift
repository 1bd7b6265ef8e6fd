import FerryCore
import FerryPluginKit
import Foundation
import Testing

/// BSON dates and doubles through the PostgreSQL sink (both COPY formats) and
/// back through the source, against the server's own reading of each value
/// (its calendar for dates, glibc's `%.17g` text for doubles). The cases come
/// from a seeded generator; FERRY_TEST_SEED=<n> replays a failure.
@Suite("PostgreSQL connector: dates and doubles against the server", .serialized)
struct PostgresTimeFloatDifferentialTests {
    let pg: PostgresFixture

    init() throws { pg = try PostgresFixture() }

    typealias Generator = PostgresDecimalDifferentialTests.SeededGenerator

    static let yearOne: Int64 = -62_135_596_800_000  // 0001-01-01T00:00:00Z
    static let year10000: Int64 = 253_402_300_800_000  // 10000-01-01T00:00:00Z
    /// The source reads timestamps as 64-bit microseconds since 1970: up to 294246-12-31.
    static let lastReadable: Int64 = 9_223_339_000_000_000

    func records(_ path: String) throws -> [BSONDocument] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { line in
            try ExtendedJSON.parse(String(line)).withUnsafeBytes { DocumentView($0).decode() }
        }
    }

    @Test("BSON dates ⇄ timestamptz and timestamp, and ISO strings with offsets and microseconds", arguments: ["binary", "text"])
    func dates(format: String) throws {
        let seed = PostgresDecimalDifferentialTests.seed
        var random = Generator(state: seed)
        var milliseconds: [Int64] = [0, -1, 1, Self.yearOne, Self.yearOne - 1, Self.year10000 - 1, Self.year10000,
                                     951_782_400_000, -2_203_891_200_000, 946_684_800_000, 946_684_799_999,
                                     -210_866_803_200_000, Self.lastReadable]
        for _ in 0..<10_000 {
            switch Int.random(in: 0..<4, using: &random) {
            case 0: milliseconds.append(Int64.random(in: Self.yearOne..<0, using: &random))
            case 1: milliseconds.append(Int64.random(in: Self.yearOne..<Self.year10000, using: &random))
            case 2: milliseconds.append(Int64.random(in: -2_000_000_000_000...2_000_000_000_000, using: &random))
            default: milliseconds.append(Int64.random(in: -210_866_803_200_000...Self.lastReadable, using: &random))
            }
        }
        // Strings with offsets and microseconds, years 1-9999.
        var strings: [String] = []
        for _ in 0..<5_000 {
            let year = Int.random(in: 1...9999, using: &random), month = Int.random(in: 1...12, using: &random), day = Int.random(in: 1...28, using: &random)
            let offsetMinutes = Int.random(in: -14 * 60...14 * 60, using: &random)
            let sign = offsetMinutes < 0 ? "-" : "+"
            strings.append(
                String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%06d%@%02d:%02d", year, month, day,
                       Int.random(in: 0...23, using: &random), Int.random(in: 0...59, using: &random), Int.random(in: 0...59, using: &random),
                       Int.random(in: 0...999_999, using: &random), sign, abs(offsetMinutes) / 60, abs(offsetMinutes) % 60))
        }
        let outOfRange: [Int64] = [Int64.min, Int64.max, -210_866_803_200_001, 9_224_318_016_000_000]
        let context = "seed \(seed), \(milliseconds.count) dates, \(strings.count) strings, \(outOfRange.count) out of range"
        var body = ""
        for (id, value) in milliseconds.enumerated() {
            body += #"{"id": \#(id), "tz": {"$date": {"$numberLong": "\#(value)"}}, "ts": {"$date": {"$numberLong": "\#(value)"}}, "ms": \#(value)}"# + "\n"
        }
        for (offset, text) in strings.enumerated() {
            body += #"{"id": \#(100_000 + offset), "tz": "\#(text)", "ts": "\#(text)", "s": "\#(text)"}"# + "\n"
        }
        for (offset, value) in outOfRange.enumerated() {
            body += #"{"id": \#(200_000 + offset), "tz": {"$date": {"$numberLong": "\#(value)"}}}"# + "\n"
        }
        let input = "\(pg.work)/dates-\(format).jsonl"
        try body.write(toFile: input, atomically: false, encoding: .utf8)
        let table = PostgresFixture.name("dates_\(format)")
        try pg.sql("CREATE TABLE \(table) (id int PRIMARY KEY, tz timestamptz, ts timestamp, ms int8, s text)")
        let deadLetters = "\(pg.work)/\(table).dead.jsonl"
        let report = try pg.run(
            """
            source: {plugin: file, config: {path: \(input)}}
            sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(table), mode: insert, copy_format: \(format)}}
            batch_size: 5000
            workers: 1
            """, deadLetters: deadLetters)
        #expect(report.outcome == .completed, "\(report.failureMessage ?? ""); \(context)")
        #expect(Int(report.statistics.deadLettered) == outOfRange.count, "\(context)")
        #expect(try pg.int("SELECT count(*) FROM \(table)") == milliseconds.count + strings.count, "\(context)")
        let dead = (try? String(contentsOfFile: deadLetters, encoding: .utf8)) ?? ""
        #expect(dead.contains("field 'tz'") && dead.contains("outside the range of a timestamp column"), "\(context)")
        // The server's calendar: the stored instant is exactly the BSON date.
        let wrongDates = try pg.sql(
            "SELECT id, ms, tz::text, ts::text FROM \(table) WHERE ms IS NOT NULL AND (extract(epoch FROM tz) * 1000 <> ms OR extract(epoch FROM ts) * 1000 <> ms) ORDER BY id LIMIT 10")
        #expect(wrongDates.isEmpty, "dates stored off: \(wrongDates); \(context)")
        // The server's reading of each string (timestamp without time zone ignores the offset, as its input does).
        let wrongStrings = try pg.sql(
            "SELECT id, s, tz::text, ts::text FROM \(table) WHERE s IS NOT NULL AND (tz <> s::timestamptz OR ts <> s::timestamp) ORDER BY id LIMIT 10")
        #expect(wrongStrings.isEmpty, "strings stored off: \(wrongStrings); \(context)")

        // Back to BSON dates: the same milliseconds. (Up to year 9999: the file sink's
        // relaxed JSON writes later dates as ISO text that libbson cannot read back.)
        guard format == "binary" else { return }
        let output = "\(pg.work)/dates-out.jsonl"
        try? FileManager.default.removeItem(atPath: output)
        let back = try pg.run(
            """
            source: {plugin: postgres, config: {dsn: "\(pg.dsn)", query: "SELECT id, tz, ts, ms FROM \(table) WHERE ms IS NOT NULL AND ms < \(Self.year10000)", key: [id], timestamps: datetime}}
            sink: {plugin: file, config: {path: \(output)}}
            mode: full
            batch_size: 5000
            workers: 1
            """)
        #expect(back.outcome == .completed, "\(back.failureMessage ?? ""); \(context)")
        var wrong: [String] = []
        let documents = try records(output)
        #expect(documents.count == milliseconds.filter { $0 < Self.year10000 }.count, "\(context)")
        for document in documents {
            let ms = document["ms"].flatMap { value -> Int64? in
                if case .int64(let number) = value { return number }
                if case .int32(let number) = value { return Int64(number) }
                return nil
            }
            guard let ms, case .datetime(let tz)? = document["tz"], case .datetime(let ts)? = document["ts"] else {
                wrong.append("\(document)")
                continue
            }
            if (tz != ms || ts != ms) && wrong.count < 10 { wrong.append("\(ms) → tz \(tz), ts \(ts)") }
        }
        #expect(wrong.isEmpty, "dates read back off: \(wrong); \(context)")
    }

    @Test("doubles ⇄ float8: NaN, ±Infinity, -0, subnormals, random bit patterns, bit for bit", arguments: ["binary", "text"])
    func doubles(format: String) throws {
        let seed = PostgresDecimalDifferentialTests.seed
        var random = Generator(state: seed)
        var values: [Double] = [.nan, .infinity, -.infinity, 0, -0.0, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .leastNormalMagnitude,
                                .leastNormalMagnitude.nextDown, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 0.1, 1.0 / 3, 9_007_199_254_740_993, 1e23, 5e-324]
        for _ in 0..<20_000 {
            switch Int.random(in: 0..<4, using: &random) {
            case 0: values.append(Double(bitPattern: random.next() & 0x800F_FFFF_FFFF_FFFF))  // subnormal
            case 1: values.append(Double(Int.random(in: -1_000_000...1_000_000, using: &random)) / 100)
            default:
                var value = Double(bitPattern: random.next())
                while !value.isFinite { value = Double(bitPattern: random.next()) }
                values.append(value)
            }
        }
        let context = "seed \(seed), \(values.count) doubles"
        var body = ""
        for (id, value) in values.enumerated() {
            let text = value.isNaN ? "NaN" : value.isInfinite ? (value < 0 ? "-Infinity" : "Infinity") : String(format: "%.17g", value)
            body += #"{"id": \#(id), "f": {"$numberDouble": "\#(text)"}, "t": "\#(text)", "bits": {"$numberLong": "\#(Int64(bitPattern: value.bitPattern))"}}"# + "\n"
        }
        let input = "\(pg.work)/doubles-\(format).jsonl"
        try body.write(toFile: input, atomically: false, encoding: .utf8)
        let table = PostgresFixture.name("dbl_\(format)")
        try pg.sql("CREATE TABLE \(table) (id int PRIMARY KEY, f float8, t text, bits int8)")
        let report = try pg.run(
            """
            source: {plugin: file, config: {path: \(input)}}
            sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(table), mode: insert, copy_format: \(format)}}
            batch_size: 5000
            workers: 1
            """)
        #expect(report.outcome == .completed, "\(report.failureMessage ?? ""); \(context)")
        #expect(report.statistics.deadLettered == 0, "\(context)")
        // The server's own reading of glibc's 17 digits, and the sign of zero.
        let wrong = try pg.sql(
            "SELECT id, t, f::text FROM \(table) WHERE f IS DISTINCT FROM t::float8 OR (f = 0 AND (t LIKE '-%') <> (f::text LIKE '-%')) ORDER BY id LIMIT 10")
        #expect(wrong.isEmpty, "doubles stored off: \(wrong); \(context)")

        let output = "\(pg.work)/doubles-out-\(format).jsonl"
        try? FileManager.default.removeItem(atPath: output)
        let back = try pg.run(
            """
            source: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(table), columns: [id, f, bits], key: [id]}}
            sink: {plugin: file, config: {path: \(output)}}
            mode: full
            batch_size: 5000
            workers: 1
            """)
        #expect(back.outcome == .completed, "\(back.failureMessage ?? ""); \(context)")
        var mismatches: [String] = []
        let documents = try records(output)
        #expect(documents.count == values.count, "\(context)")
        for document in documents {
            guard case .double(let value)? = document["f"], let bits = document["bits"].flatMap({ value -> Int64? in
                if case .int64(let number) = value { return number }
                if case .int32(let number) = value { return Int64(number) }
                return nil
            }) else {
                mismatches.append("\(document)")
                continue
            }
            let expected = Double(bitPattern: UInt64(bitPattern: bits))
            let same = expected.isNaN ? value.isNaN : value.bitPattern == expected.bitPattern
            if !same && mismatches.count < 10 { mismatches.append("\(expected) → \(value)") }
        }
        #expect(mismatches.isEmpty, "doubles read back off: \(mismatches); \(context)")
    }

    @Test("numbers a float column would round are refused per record, naming the field", arguments: ["binary", "text"])
    func floatRefusals(format: String) throws {
        let table = PostgresFixture.name("flt_\(format)")
        try pg.sql("CREATE TABLE \(table) (id int PRIMARY KEY, f float8, r real)")
        let lines = [
            #"{"id": 1, "f": {"$numberDecimal": "0.1"}, "r": 0.5}"#,
            #"{"id": 2, "f": {"$numberDecimal": "1234567890.123456789012345678901234"}}"#,
            #"{"id": 3, "f": {"$numberLong": "9007199254740993"}}"#,
            #"{"id": 4, "r": 0.123456789}"#,
            #"{"id": 5, "f": {"$numberDecimal": "1E+400"}}"#,
            #"{"id": 6, "f": {"$numberDecimal": "-0"}, "r": {"$numberLong": "16777216"}}"#,
            #"{"id": 7, "r": {"$numberLong": "16777217"}}"#,
        ]
        let input = "\(pg.work)/\(table).jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
        let deadLetters = "\(pg.work)/\(table).dead.jsonl"
        let report = try pg.run(
            """
            source: {plugin: file, config: {path: \(input)}}
            sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(table), key: [id], copy_format: \(format)}}
            """, deadLetters: deadLetters)
        #expect(report.outcome == .completed, "\(report.failureMessage ?? "")")
        #expect(try pg.sql("SELECT id::text, f::text, r::text FROM \(table) ORDER BY id") == [["1", "0.1", "0.5"], ["6", "-0", "1.6777216e+07"]])
        let dead = try String(contentsOfFile: deadLetters, encoding: .utf8)
        #expect(dead.contains("field 'f'") && dead.contains("has no exact double"))
        #expect(dead.contains("field 'r'") && dead.contains("has no exact real/float4"))
        #expect(report.statistics.deadLettered == 5)
    }
}
