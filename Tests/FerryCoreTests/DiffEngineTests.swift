import CLibBSON
import FerryPluginKit
import Foundation
import Testing

@testable import FerryCore

/// `ferry diff`'s comparison, against independent answers: Foundation's
/// Decimal and libbson for what numbers are equal, and a plain model of two
/// keyed tables for what a diff must report and a repair must leave.
@Suite("Diff engine: canonical values and a model of source and target")
struct DiffEngineTests {
    // MARK: numbers

    enum Number {
        case int32(Int32), int64(Int64), double(Double), decimal(low: UInt64, high: UInt64)

        var element: BSONValue {
            switch self {
            case .int32(let v): .int32(v)
            case .int64(let v): .int64(v)
            case .double(let v): .double(v)
            case .decimal(let low, let high):
                .decimal128(withUnsafeBytes(of: low.littleEndian) { Array($0) } + withUnsafeBytes(of: high.littleEndian) { Array($0) })
            }
        }

        /// The value as text, made by someone other than CanonicalValue.
        var oracleText: String {
            switch self {
            case .int32(let v): String(v)
            case .int64(let v): String(v)
            case .double(let v): "\(v)"
            case .decimal(let low, let high):
                PostgresDecimalDifferentialTests.libbsonText(low, high)
            }
        }
    }

    static func canonical(_ value: BSONValue) -> [UInt8] {
        let bytes = BSONDocument([("v", value)]).encoded()
        return bytes.withUnsafeBytes { raw in
            var out: [UInt8] = []
            CanonicalValue.append(DocumentView(raw).element(forKey: "v")!, to: &out)
            return out
        }
    }

    @Test("numbers are equal exactly when their decimal values are, whatever type carries them (Foundation's Decimal and libbson as the oracle)")
    func numbersAgainstDecimal() throws {
        var generator = SystemRandomNumberGenerator()
        let coefficients: [Int64] = [0, 1, 5, 10, 15, 100, 123, 1_000_000, 99_999, 4_503_599_627_370_497]
        var pool: [Number] = []
        for _ in 0..<600 {
            let coefficient = coefficients.randomElement(using: &generator)!
            let exponent = Int.random(in: -4...4, using: &generator)
            let negative = Bool.random(using: &generator)
            let text = "\(negative ? "-" : "")\(coefficient)E\(exponent)"
            let exact = try #require(Decimal(string: text))
            // The same value in every type that can carry it exactly.
            if exponent >= 0, let integer = Int64(exactly: NSDecimalNumber(decimal: exact).doubleValue), Decimal(integer) == exact {
                pool.append(.int64(integer))
                if let small = Int32(exactly: integer) { pool.append(.int32(small)) }
            }
            if let double = Double(text), Decimal(string: "\(double)") == exact { pool.append(.double(double)) }
            // decimal128 with trailing zeros: 1.5, 1.50 and 1.500 are one value.
            let zeros = Int.random(in: 0...3, using: &generator)
            let padded = "\(negative ? "-" : "")\(coefficient)\(String(repeating: "0", count: zeros))E\(exponent - zeros)"
            let (low, high) = try #require(PostgresDecimalDifferentialTests.libbsonValue(padded))
            pool.append(.decimal(low: low, high: high))
        }
        var checked = 0
        var equalPairs = 0
        for _ in 0..<20_000 {
            let a = pool.randomElement(using: &generator)!
            let b = pool.randomElement(using: &generator)!
            let oracle = try #require(Decimal(string: a.oracleText)) == (try #require(Decimal(string: b.oracleText)))
            let ours = Self.canonical(a.element) == Self.canonical(b.element)
            #expect(ours == oracle, "\(a) (\(a.oracleText)) vs \(b) (\(b.oracleText)): canonical says \(ours), Decimal says \(oracle)")
            checked += 1
            if oracle { equalPairs += 1 }
        }
        #expect(checked == 20_000 && equalPairs > 200, "too few equal pairs (\(equalPairs)) to test anything")
    }

    @Test("a record is compared field by field: order, int widths and a missing null do not matter; types, values and array order do")
    func comparatorRules() {
        func verdict(_ source: BSONDocument, _ target: BSONDocument) -> DiffComparator.Verdict {
            let comparator = DiffComparator(key: ["id"])
            target.encoded().withUnsafeBytes { comparator.addTarget(DocumentView($0)) }
            return source.encoded().withUnsafeBytes { comparator.compare(DocumentView($0)) }
        }
        #expect(verdict(["id": .int32(1), "a": .string("x"), "b": .int32(2)], ["b": .double(2), "a": .string("x"), "id": .int64(1)]) == .equal)
        #expect(verdict(["id": .int32(1), "a": .null], ["id": .int32(1)]) == .equal)
        #expect(verdict(["id": .int32(1)], ["id": .int32(1), "loaded_at": .datetime(5)]) == .equal)
        #expect(verdict(["id": .int32(1), "a": .string("1")], ["id": .int32(1), "a": .int32(1)]) == .changed(["a"]))
        #expect(verdict(["id": .int32(1), "a": .int32(0)], ["id": .int32(1)]) == .changed(["a"]))
        #expect(
            verdict(
                ["id": .int32(1), "d": .document(["x": .int32(1), "y": .int32(2)])],
                ["id": .int32(1), "d": .document(["y": .int64(2), "x": .double(1)])]) == .equal)
        #expect(
            verdict(["id": .int32(1), "l": .array([.int32(1), .int32(2)])], ["id": .int32(1), "l": .array([.int32(2), .int32(1)])])
                == .changed(["l"]))
        #expect(verdict(["id": .int32(2)], ["id": .int32(1)]) == .missing)
        #expect(verdict(["name": .string("no key")], ["id": .int32(1)]) == .noKey)
    }

    // MARK: a model of two keyed tables

    /// Records as the test keeps them: id → fields (JSON text of each value).
    typealias Table = [Int: [(String, String)]]

    static func jsonl(_ table: Table, order: [Int]) -> String {
        order.compactMap { id in
            table[id].map { fields in "{" + (["\"id\": \(id)"] + fields.map { "\"\($0.0)\": \($0.1)" }).joined(separator: ", ") + "}" }
        }.joined(separator: "\n") + "\n"
    }

    @Test("diff reports exactly the model's missing, extra and changed keys; repair leaves the target equal, and refuses deletes above the limit")
    func modelOfTwoTables() throws {
        let folder = try TestSupport.temporaryDirectory("diff-model")
        let plugins = try TestSupport.pluginDirectory(["FerryFile"])
        var generator = SystemRandomNumberGenerator()
        for round in 0..<6 {
            var source: Table = [:]
            for id in 1...400 {
                source[id] = [("name", "\"n\(id)\""), ("price", "\(Int.random(in: 1...9, using: &generator)).5"), ("qty", "\(id % 7)")]
            }
            var target = source
            var missing = Set<Int>(), extra = Set<Int>(), changed = Set<Int>()
            for id in source.keys.shuffled(using: &generator).prefix(60) {
                switch Int.random(in: 0..<7, using: &generator) {
                case 0:
                    target[id] = nil
                    missing.insert(id)
                case 1:
                    target[id]![0].1 = "\"edited\""
                    changed.insert(id)
                case 2:
                    source[id] = nil
                    extra.insert(id)
                case 3:
                    // Not a change: the same number as a double, fields reordered, a column of the target's own.
                    target[id] = [("qty", "\(id % 7).0"), ("loaded", "true")] + target[id]!.filter { $0.0 != "qty" }
                case 4:
                    // Not a change: a null the target leaves out.
                    source[id]!.append(("note", "null"))
                case 5:
                    // A change the cursor never saw: a value of another type.
                    target[id]![2].1 = "\"\(id % 7)\""
                    changed.insert(id)
                default:
                    target[id]![1].1 = "0.25"
                    changed.insert(id)
                }
            }
            for id in 1000..<(1000 + Int.random(in: 0...20, using: &generator)) {
                target[id] = [("name", "\"only here\"")]
                extra.insert(id)
            }
            for id in 2000..<(2000 + Int.random(in: 0...20, using: &generator)) {
                source[id] = [("name", "\"new\"")]
                missing.insert(id)
            }
            try Self.jsonl(source, order: source.keys.shuffled(using: &generator)).write(toFile: "\(folder)/src.jsonl", atomically: true, encoding: .utf8)
            try Self.jsonl(target, order: target.keys.shuffled(using: &generator)).write(toFile: "\(folder)/dst.jsonl", atomically: true, encoding: .utf8)
            let plan = try TestSupport.plan(
                """
                name: model
                source: {plugin: file, config: {path: \(folder)/src.jsonl, format: jsonl}}
                sink: {plugin: file, config: {path: \(folder)/dst.jsonl, format: jsonl, key: id}}
                batch_size: 37
                """, plugins: plugins, file: "\(folder)/p.yaml")
            func diff(_ repair: RepairOptions? = nil) -> DiffReport {
                DiffRunner(
                    plan: plan, options: DiffOptions(sampleSize: 1000, repair: repair), logger: TestSupport.logger,
                    deadLetterPath: "\(folder)/dead.jsonl"
                ).run()
            }
            func ids(_ keys: [String]) -> Set<Int> {
                Set(keys.compactMap { Int($0.filter(\.isNumber)) })
            }
            let report = diff()
            #expect(report.failure == nil, "round \(round): \(report.failure?.description ?? "")")
            #expect(ids(report.sampleMissing) == missing, "round \(round): missing")
            #expect(ids(report.sampleExtra) == extra, "round \(round): extra")
            #expect(ids(report.sampleChanged.map(\.key)) == changed, "round \(round): changed")
            #expect(report.equal == source.count - missing.count - changed.count, "round \(round): matching")

            if !extra.isEmpty {
                let refused = diff(RepairOptions(maxDeletes: extra.count - 1))
                #expect(refused.repair?.deletesRefused != nil && refused.repair?.deleted == 0, "round \(round): deletes above the limit")
                #expect(ids(diff().sampleExtra) == extra, "round \(round): the extras are still there after a refusal")
            }
            let repaired = diff(RepairOptions(maxDeletes: extra.count))
            #expect(repaired.repair?.deleted == extra.count, "round \(round): deleted")
            let after = diff()
            #expect(after.isEqual, "round \(round): after repair: missing \(after.missing), extra \(after.extra), changed \(after.changed)")
            #expect(after.targetRecords == source.count, "round \(round): one record per key")
        }
    }
}
