import CLibBSON
import FerryCore
import FerryPluginKit
import Foundation
import Testing

/// decimal128 through the PostgreSQL connector and the map cast, checked
/// against two oracles that share no code with the plugins: libbson's own
/// `bson_decimal128_to_string` / `bson_decimal128_from_string`, and a real
/// PostgreSQL parsing the same text (`(t::numeric)::text`). The cases come
/// from a seeded generator; FERRY_TEST_SEED=<n> replays a failure.
@Suite("PostgreSQL connector: decimal128 against libbson and the server", .serialized)
struct PostgresDecimalDifferentialTests {
    let pg: PostgresFixture

    init() throws { pg = try PostgresFixture() }

    // MARK: - The regression

    @Test("wide decimal128 coefficients land exactly, not as 0", arguments: ["binary", "text"])
    func wideCoefficients(format: String) throws {
        let table = PostgresFixture.name("dec_wide")
        try pg.sql("CREATE TABLE \(table) (id int PRIMARY KEY, v numeric)")
        let values = ["1234567890123456789012345678.901234", "-1234567890123456789012345678901234", "1.000000000000000000000000000000000"]
        let input = "\(pg.work)/\(table).jsonl"
        try (values.enumerated().map { #"{"id": \#($0.offset), "v": {"$numberDecimal": "\#($0.element)"}}"# }.joined(separator: "\n") + "\n")
            .write(toFile: input, atomically: true, encoding: .utf8)
        let report = try pg.run(
            """
            source: {plugin: file, config: {path: \(input)}}
            sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(table), key: [id], copy_format: \(format)}}
            """)
        #expect(report.outcome == .completed, "\(report.failureMessage ?? "")")
        #expect(try pg.sql("SELECT v::text FROM \(table) ORDER BY id").map { $0[0] ?? "NULL" } == values)
    }

    // MARK: - Generated cases

    /// SplitMix64: small, fast, and the same sequence on every platform.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static var seed: UInt64 {
        if let text = ProcessInfo.processInfo.environment["FERRY_TEST_SEED"], let seed = UInt64(text) { return seed }
        return UInt64.random(in: 1...UInt64.max)
    }

    /// libbson's text of a decimal128 (the oracle for BSON → text).
    static func libbsonText(_ low: UInt64, _ high: UInt64) -> String {
        var value = bson_decimal128_t()
        value.low = low
        value.high = high
        var buffer = [CChar](repeating: 0, count: Int(BSON_DECIMAL128_STRING))
        bson_decimal128_to_string(&value, &buffer)
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// libbson's decimal128 of a text (the oracle for text → BSON), nil when it refuses.
    static func libbsonValue(_ text: String) -> (low: UInt64, high: UInt64)? {
        var value = bson_decimal128_t()
        guard bson_decimal128_from_string(text, &value) else { return nil }
        return (value.low, value.high)
    }

    static func encode(negative: Bool, exponent: Int, coefficient: UInt128) -> (low: UInt64, high: UInt64) {
        let high = (negative ? 0x8000_0000_0000_0000 : 0) | (UInt64(exponent + 6176) << 49) | UInt64(truncatingIfNeeded: coefficient >> 64)
        return (UInt64(truncatingIfNeeded: coefficient), high)
    }

    static let maxCoefficient: UInt128 = 9_999_999_999_999_999_999_999_999_999_999_999

    static func power(_ n: Int) -> UInt128 { (0..<n).reduce(UInt128(1)) { value, _ in value * 10 } }

    /// The edges, then `count` generated values: every coefficient length
    /// 1-34, exponents mostly near the point (where the fast paths turn) and a
    /// share across the whole range, both signs, zeros with exponents.
    static func cases(seed: UInt64, count: Int) -> [(low: UInt64, high: UInt64)] {
        var values: [(low: UInt64, high: UInt64)] = []
        for negative in [false, true] {
            for exponent in [-6176, -6175, -6143, -41, -40, -34, -6, -1, 0, 1, 6, 33, 34, 6110, 6111] {
                for coefficient: UInt128 in [0, 1, 9, maxCoefficient, power(33), power(19) - 1, power(19), UInt128(UInt64.max), UInt128(UInt64.max) + 1] {
                    values.append(encode(negative: negative, exponent: exponent, coefficient: coefficient))
                }
            }
        }
        values.append((0, 0x7C00_0000_0000_0000))  // NaN
        values.append((0, 0x7800_0000_0000_0000))  // Infinity
        values.append((0, 0xF800_0000_0000_0000))  // -Infinity
        for text in ["1234567890123456789012345678.901234", "-1234567890123456789012345678901234", "1.000000000000000000000000000000000"] {
            values.append(libbsonValue(text)!)
        }
        var random = SeededGenerator(state: seed)
        for _ in 0..<count {
            let length = Int.random(in: 1...34, using: &random)
            var coefficient: UInt128 = 0
            if Int.random(in: 0..<50, using: &random) > 0 {
                let low = power(length - 1), span = power(length) - low
                let wide = (UInt128(random.next()) << 64) | UInt128(random.next())
                coefficient = low + wide % span
            }
            let exponent: Int
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<70: exponent = Int.random(in: -45...10, using: &random)
            case 70..<95: exponent = Int.random(in: -200...200, using: &random)
            default: exponent = Int.random(in: -6176...6111, using: &random)
            }
            values.append(encode(negative: Bool.random(using: &random), exponent: exponent, coefficient: coefficient))
        }
        return values
    }

    func writeInput(_ path: String, _ texts: [String]) throws {
        var body = ""
        body.reserveCapacity(texts.count * 80)
        for (id, text) in texts.enumerated() {
            body += #"{"id": \#(id), "v": {"$numberDecimal": "\#(text)"}, "t": "\#(text)"}"# + "\n"
        }
        try body.write(toFile: path, atomically: false, encoding: .utf8)
    }

    @Test("100,000 decimal128 values: BSON → binary and text COPY → numeric → BSON, each step against libbson and PostgreSQL")
    func decimalRoundTrip() throws {
        let seed = Self.seed
        let values = Self.cases(seed: seed, count: 100_000)
        let context = "seed \(seed), \(values.count) cases (FERRY_TEST_SEED=\(seed) replays them)"
        let texts = values.map { Self.libbsonText($0.low, $0.high) }
        // libbson itself must read its text back to the same bits, or the input is not what we think.
        for (index, text) in texts.enumerated() {
            let back = try #require(Self.libbsonValue(text), "libbson refuses its own text \(text); \(context)")
            let value = values[index]
            let canonical = value.high & 0x6000_0000_0000_0000 != 0x6000_0000_0000_0000 || value.high & 0x7800_0000_0000_0000 == 0x7800_0000_0000_0000
            if canonical && (value.high >> 58) & 0x1F != 0x1F {
                try #require(back == value, "libbson does not read \(text) back to the same bits; \(context)")
            }
        }
        let input = "\(pg.work)/decimals.jsonl"
        try writeInput(input, texts)
        var tables: [String] = []
        for format in ["binary", "text"] {
            let table = PostgresFixture.name("dec_\(format)")
            tables.append(table)
            try pg.sql("CREATE TABLE \(table) (id int, v numeric, t text)")
            let report = try pg.run(
                """
                source: {plugin: file, config: {path: \(input)}}
                sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(table), mode: insert, copy_format: \(format)}}
                batch_size: 20000
                workers: 1
                """)
            #expect(report.outcome == .completed, "\(format): \(report.failureMessage ?? ""); \(context)")
            #expect(report.statistics.deadLettered == 0, "\(format): \(context)")
            #expect(try pg.int("SELECT count(*) FROM \(table)") == values.count, "\(format): \(context)")
            // The server's reading of libbson's text is the expected value, digits and scale.
            let wrong = try pg.sql(
                "SELECT id, left(t, 60), left(v::text, 60) FROM \(table) WHERE v::text IS DISTINCT FROM (t::numeric)::text ORDER BY id LIMIT 10")
            let total = try pg.int("SELECT count(*) FROM \(table) WHERE v::text IS DISTINCT FROM (t::numeric)::text")
            #expect(wrong.isEmpty, "\(format) COPY stored \(total) values differently from PostgreSQL's reading of libbson's text, e.g. \(wrong); \(context)")
        }

        // numeric → decimal128: the source's value for each row must be libbson's reading of the server's text.
        let output = "\(pg.work)/decimals-out.jsonl"
        try? FileManager.default.removeItem(atPath: output)
        let report = try pg.run(
            """
            source: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(tables[0]), columns: [id, v], key: [id]}}
            sink: {plugin: file, config: {path: \(output)}}
            mode: full
            batch_size: 20000
            workers: 1
            """)
        #expect(report.outcome == .completed, "source: \(report.failureMessage ?? ""); \(context)")
        var serverText: [Int: String] = [:]
        for row in try pg.sql("SELECT id, v::text FROM \(tables[0])") { serverText[Int(row[0]!)!] = row[1]! }
        var mismatches: [String] = []
        var checked = 0
        let lines = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == values.count, "source read \(lines.count) rows; \(context)")
        for line in lines {
            let document = try ExtendedJSON.parse(String(line)).withUnsafeBytes { DocumentView($0).decode() }
            guard case .int32(let id)? = document["id"], case .decimal128(let bytes)? = document["v"] else {
                mismatches.append("unexpected record \(line.prefix(80))")
                continue
            }
            let text = serverText[Int(id)]!
            let got = bytes.withUnsafeBytes { (low: UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)), high: UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self))) }
            let expected = Self.libbsonValue(text)
            checked += 1
            if expected == nil || expected! != got, mismatches.count < 10 {
                mismatches.append("id \(id): server \(text.prefix(60)) → \(Self.libbsonText(got.low, got.high)), libbson: \(expected.map { Self.libbsonText($0.low, $0.high) } ?? "refused")")
            }
        }
        #expect(checked == values.count, "\(context)")
        #expect(mismatches.isEmpty, "numeric → decimal128 differs from libbson: \(mismatches); \(context)")
    }

    @Test("numeric(p,s): a value the column would round or overflow is dead-lettered naming the field; the rest land unchanged", arguments: ["binary", "text"])
    func typmodRejects(format: String) throws {
        let seed = Self.seed
        var random = SeededGenerator(state: seed)
        var texts: [String] = ["Infinity", "-Infinity", "NaN", "-0", "0E-20", "99999999999999.999999", "100000000000000", "0.0000005", "1.1000000", "-1E+13", "1E+14"]
        for _ in 0..<20_000 {
            let length = Int.random(in: 1...34, using: &random)
            let low = Self.power(length - 1), span = Self.power(length) - low
            let coefficient = low + ((UInt128(random.next()) << 64) | UInt128(random.next())) % span
            let value = Self.encode(negative: Bool.random(using: &random), exponent: Int.random(in: -12...8, using: &random), coefficient: coefficient)
            texts.append(Self.libbsonText(value.low, value.high))
        }
        let context = "seed \(seed), \(texts.count) cases"
        let input = "\(pg.work)/typmod-\(format).jsonl"
        try writeInput(input, texts)
        let table = PostgresFixture.name("dec_typmod")
        try pg.sql("CREATE TABLE \(table) (id int, v numeric(20,6), t text)")
        let deadLetters = "\(pg.work)/\(table).dead.jsonl"
        let report = try pg.run(
            """
            source: {plugin: file, config: {path: \(input)}}
            sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(table), mode: insert, copy_format: \(format)}}
            batch_size: 5000
            workers: 1
            dead_letters: {max: 100000}
            """, deadLetters: deadLetters)
        #expect(report.outcome == .completed, "\(report.failureMessage ?? ""); \(context)")
        // The server decides what fits: equal after rounding to 6 places, under 10^14.
        let table2 = PostgresFixture.name("dec_oracle")
        try pg.sql("CREATE TABLE \(table2) (id int, v numeric, t text)")
        let all = try pg.run(
            """
            source: {plugin: file, config: {path: \(input)}}
            sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(table2), mode: insert, copy_format: \(format)}}
            batch_size: 5000
            """)
        #expect(all.outcome == .completed && all.statistics.inserted == UInt64(texts.count), "\(context)")
        let fits = try pg.int(
            """
            SELECT count(*) FROM \(table2) WHERE t::numeric = 'NaN' OR (t::numeric NOT IN ('Infinity', '-Infinity')
              AND round(t::numeric, 6) = t::numeric AND abs(t::numeric) < 1e14)
            """)
        #expect(try pg.int("SELECT count(*) FROM \(table)") == fits, "\(context)")
        #expect(Int(report.statistics.deadLettered) == texts.count - fits, "\(context)")
        #expect(try pg.int("SELECT count(*) FROM \(table) WHERE v IS DISTINCT FROM t::numeric") == 0, "a value landed changed; \(context)")
        let dead = try String(contentsOfFile: deadLetters, encoding: .utf8)
        #expect(dead.contains("field 'v'"))
        #expect(dead.contains("would round it"))
        #expect(dead.contains("digits before the decimal point"))
        #expect(dead.contains("Infinity cannot be stored in numeric(20,6)"))
    }

    // MARK: - map cast

    /// Runs `records` through one map stage; returns the output records and the dead-letter count.
    func mapRun(_ body: String, steps: String) throws -> (output: [BSONDocument], deadLettered: Int) {
        let plugins = try TestSupport.pluginDirectory(["FerryFile", "FerryMap"])
        let input = "\(pg.work)/cast-in.jsonl", output = "\(pg.work)/cast-out.jsonl"
        try body.write(toFile: input, atomically: false, encoding: .utf8)
        try? FileManager.default.removeItem(atPath: output)
        let plan = try TestSupport.plan(
            """
            source: {plugin: file, config: {path: \(input)}}
            transforms:
              - plugin: map
                config:
                  steps: \(steps)
            sink: {plugin: file, config: {path: \(output)}}
            batch_size: 5000
            workers: 1
            dead_letters: {max: 100000}
            """, plugins: plugins, file: "\(pg.work)/cast.yaml")
        let report = PipelineRunner(plan: plan, store: MemoryStateStore(), deadLetterPath: "\(pg.work)/cast-dead.jsonl", logger: TestSupport.logger).run()
        #expect(report.outcome == .completed, "\(report.failureMessage ?? "")")
        let lines = (try? String(contentsOfFile: output, encoding: .utf8))?.split(separator: "\n") ?? []
        return (try lines.map { try ExtendedJSON.parse(String($0)).withUnsafeBytes { DocumentView($0).decode() } }, Int(report.statistics.deadLettered))
    }

    static func words(_ bytes: [UInt8]) -> (low: UInt64, high: UInt64) {
        bytes.withUnsafeBytes { (UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)), UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self))) }
    }

    @Test("map cast: decimal → string and string → decimal agree with libbson; decimal → integer is exact or refused")
    func mapCast() throws {
        let seed = Self.seed
        let values = Self.cases(seed: seed, count: 20_000)
        let context = "seed \(seed), \(values.count) cases"
        var body = ""
        for (id, value) in values.enumerated() {
            let text = Self.libbsonText(value.low, value.high)
            body += #"{"id": \#(id), "d": {"$numberDecimal": "\#(text)"}, "t": "\#(text)"}"# + "\n"
        }
        let finite = values.filter { value in
            let text = Self.libbsonText(value.low, value.high)
            return !text.contains("Inf") && !text.contains("NaN")
        }
        // Strings cast to decimal only in the number spelling (no NaN/Infinity): the finite values.
        var finiteBody = ""
        for (id, value) in finite.enumerated() {
            let text = Self.libbsonText(value.low, value.high)
            finiteBody += #"{"id": \#(id), "d": {"$numberDecimal": "\#(text)"}, "t": "\#(text)"}"# + "\n"
        }
        let strings = try mapRun(finiteBody, steps: "[{copy: {from: d, to: s}}, {cast: {field: s, to: string}}, {cast: {field: t, to: decimal}}]")
        #expect(strings.deadLettered == 0, "\(context)")
        #expect(strings.output.count == finite.count, "\(context)")
        var wrong: [String] = []
        for document in strings.output {
            guard case .int32(let id)? = document["id"], case .string(let s)? = document["s"], case .decimal128(let t)? = document["t"] else {
                wrong.append("\(document)")
                continue
            }
            let value = finite[Int(id)]
            let expectedText = Self.libbsonText(value.low, value.high)
            let expectedBits = Self.libbsonValue(expectedText)!
            if (s != expectedText || Self.words(t) != expectedBits) && wrong.count < 10 { wrong.append("\(expectedText): string \(s), decimal \(Self.libbsonText(Self.words(t).low, Self.words(t).high))") }
        }
        #expect(wrong.isEmpty, "map cast differs from libbson: \(wrong); \(context)")

        // decimal → integer: the exact whole number, or a dead letter.
        var expected: [Int: Int64] = [:]
        for (id, value) in values.enumerated() {
            let text = Self.libbsonText(value.low, value.high)
            guard !text.contains("Inf"), !text.contains("NaN") else { continue }
            // The oracle: PostgreSQL-free, from libbson's text with Foundation's Decimal avoided: plain digits arithmetic.
            let negative = text.hasPrefix("-")
            let unsigned = negative ? String(text.dropFirst()) : text
            let mantissaText = unsigned.split(separator: "E").first.map(String.init) ?? unsigned
            let exponentPart = unsigned.split(separator: "E").dropFirst().first.map { Int($0)! } ?? 0
            let parts = mantissaText.split(separator: ".", omittingEmptySubsequences: false)
            let digits = parts.joined()
            let exponent = exponentPart - (parts.count > 1 ? parts[1].count : 0)
            let trimmed = digits.drop { $0 == "0" }
            if trimmed.isEmpty { expected[id] = 0; continue }
            // Value = digits × 10^exponent: whole when the dropped digits are zeros.
            var integerDigits = String(trimmed)
            if exponent < 0 {
                let cut = min(-exponent, integerDigits.count)
                guard integerDigits.suffix(cut).allSatisfy({ $0 == "0" }) else { continue }
                integerDigits = String(integerDigits.dropLast(cut))
                if integerDigits.isEmpty { expected[id] = 0; continue }
            } else if exponent > 0 {
                guard integerDigits.count + exponent <= 20 else { continue }
                integerDigits += String(repeating: "0", count: exponent)
            }
            if let integer = Int64((negative ? "-" : "") + integerDigits) { expected[id] = integer }
        }
        let integers = try mapRun(body, steps: "[{cast: {field: d, to: integer}}]")
        #expect(integers.output.count == expected.count, "\(context)")
        #expect(integers.deadLettered == values.count - expected.count, "\(context)")
        wrong = []
        for document in integers.output {
            // JSON Lines in between: a small int64 reads back as int32.
            let integer = document["d"].flatMap { value -> Int64? in
                if case .int64(let number) = value { return number }
                if case .int32(let number) = value { return Int64(number) }
                return nil
            }
            guard case .int32(let id)? = document["id"], let integer else {
                wrong.append("\(document)")
                continue
            }
            if expected[Int(id)] != integer && wrong.count < 10 { wrong.append("id \(id): \(integer), expected \(expected[Int(id)].map(String.init) ?? "a dead letter")") }
        }
        #expect(wrong.isEmpty, "decimal → integer: \(wrong); \(context)")
    }
}
