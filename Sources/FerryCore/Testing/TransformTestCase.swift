import FerryPluginKit

/// One `tests:` entry of a pipeline file: records fed to the transforms and
/// what must come out (as `vector test` does).
public struct TransformTestCase: Sendable {
    public var name: String
    public var line: Int
    /// Indexes into the pipeline's transforms; nil means all of them, in order.
    public var transforms: [Int]?
    public var input: [JSONValue]
    /// The exact output records, in order; nil means "not checked".
    public var expect: [JSONValue]?
    public var expectDropped: Int?
    public var expectDeadLettered: Int?

    /// Reads the `tests:` block, with file and line in every error.
    public static func parse(_ node: ConfigNode?, pipeline: PipelineConfig) throws(ConfigErrors) -> [TransformTestCase] {
        guard let node else { return [] }
        var errors: [ConfigError] = []
        var cases: [TransformTestCase] = []
        guard case .sequence(let items, _) = node else {
            throw ConfigErrors(errors: [ConfigError(file: pipeline.file, line: node.line, field: "tests", "expected a list of test cases")])
        }
        let known: Set<String> = ["name", "transforms", "input", "expect", "expect_dropped", "expect_dead_lettered"]
        for (index, item) in items.enumerated() {
            let path = "tests[\(index)]"
            func fail(_ line: Int, _ field: String, _ message: String) {
                errors.append(ConfigError(file: pipeline.file, line: line, field: "\(path).\(field)", message))
            }
            guard case .mapping(let entries, let line) = item else {
                errors.append(ConfigError(file: pipeline.file, line: item.line, field: path, "expected a mapping"))
                continue
            }
            for entry in entries where !known.contains(entry.key) {
                fail(entry.keyLine, entry.key, "unknown field (known: \(known.sorted().joined(separator: ", ")))")
            }
            var test = TransformTestCase(
                name: item["name"]?.stringValue ?? "test \(index + 1)", line: line, transforms: nil, input: [], expect: nil,
                expectDropped: nil, expectDeadLettered: nil)
            if let transforms = item["transforms"] {
                if case .sequence(let values, _) = transforms {
                    var indexes: [Int] = []
                    for value in values {
                        guard case .integer(let number) = value.json, number >= 0, number < pipeline.transforms.count else {
                            fail(value.line, "transforms", "expected an index of the pipeline's transforms (0…\(max(0, pipeline.transforms.count - 1)))")
                            continue
                        }
                        indexes.append(Int(number))
                    }
                    test.transforms = indexes
                } else {
                    fail(transforms.line, "transforms", "expected a list of transform indexes")
                }
            }
            if case .sequence(let records, _) = item["input"] ?? .sequence([], line: line), item["input"] != nil {
                test.input = records.map(\.json)
                for (recordIndex, record) in records.enumerated() where record.json.objectValue == nil {
                    fail(record.line, "input[\(recordIndex)]", "expected a record (a mapping)")
                }
            } else {
                fail(line, "input", "missing: a list of input records")
            }
            if let expect = item["expect"] {
                if case .sequence(let records, _) = expect {
                    test.expect = records.map(\.json)
                } else {
                    fail(expect.line, "expect", "expected a list of records")
                }
            }
            for (key, assign) in [("expect_dropped", 0), ("expect_dead_lettered", 1)] {
                guard let value = item[key] else { continue }
                guard case .integer(let number) = value.json, number >= 0 else {
                    fail(value.line, key, "expected a count (an integer ≥ 0)")
                    continue
                }
                if assign == 0 { test.expectDropped = Int(number) } else { test.expectDeadLettered = Int(number) }
            }
            if test.expect == nil && test.expectDropped == nil && test.expectDeadLettered == nil {
                fail(line, "expect", "a test needs expect, expect_dropped or expect_dead_lettered")
            }
            cases.append(test)
        }
        if !errors.isEmpty { throw ConfigErrors(errors: errors) }
        return cases
    }
}
