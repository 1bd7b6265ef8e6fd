import FerryPluginKit
import Yams

/// A YAML value that remembers its line, so every later check can say where.
public indirect enum ConfigNode: Sendable {
    case scalar(String, quoted: Bool, line: Int)
    case mapping([(key: String, keyLine: Int, value: ConfigNode)], line: Int)
    case sequence([ConfigNode], line: Int)

    public var line: Int {
        switch self {
        case .scalar(_, _, let line), .mapping(_, let line), .sequence(_, let line): line
        }
    }

    /// Parses YAML text, keeping line numbers.
    public static func parse(yaml: String, file: String) throws(ConfigError) -> ConfigNode? {
        try YAMLShapeCheck.check(yaml, file: file)
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw Self.describe(error, file: file)
        } catch {
            throw ConfigError(file: file, "invalid YAML: \(error)")
        }
        guard let root else { return nil }
        return try convert(root, file: file)
    }

    private static func describe(_ error: YamlError, file: String) -> ConfigError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return ConfigError(file: file, line: mark.line, "invalid YAML: \(problem)")
        default:
            return ConfigError(file: file, "invalid YAML: \(error)")
        }
    }

    private static func convert(_ node: Node, file: String) throws(ConfigError) -> ConfigNode {
        let line = node.mark?.line ?? 0
        switch node {
        case .scalar(let scalar):
            return .scalar(scalar.string, quoted: scalar.style != .plain && scalar.style != .any, line: line)
        case .mapping(let mapping):
            var entries: [(key: String, keyLine: Int, value: ConfigNode)] = []
            // A set, not a scan of `entries`: a file of n keys must cost n, not n².
            var seen: Set<String> = []
            for (key, value) in mapping {
                guard case .scalar(let keyScalar) = key else {
                    throw ConfigError(file: file, line: key.mark?.line, "mapping keys must be plain strings")
                }
                if !seen.insert(keyScalar.string).inserted {
                    throw ConfigError(file: file, line: key.mark?.line, field: keyScalar.string, "duplicate key")
                }
                entries.append((keyScalar.string, key.mark?.line ?? line, try convert(value, file: file)))
            }
            return .mapping(entries, line: line)
        case .sequence(let sequence):
            var items: [ConfigNode] = []
            for item in sequence { items.append(try convert(item, file: file)) }
            return .sequence(items, line: line)
        case .alias:
            throw ConfigError(file: file, line: line, "YAML aliases are not supported")
        }
    }

    public subscript(key: String) -> ConfigNode? {
        if case .mapping(let entries, _) = self { return entries.first { $0.key == key }?.value }
        return nil
    }

    public var entries: [(key: String, keyLine: Int, value: ConfigNode)] {
        if case .mapping(let entries, _) = self { return entries }
        return []
    }

    public var stringValue: String? {
        if case .scalar(let value, _, _) = self { return value }
        return nil
    }

    public var kindName: String {
        switch self {
        case .scalar: "a scalar"
        case .mapping: "a mapping"
        case .sequence: "a list"
        }
    }

    /// The node as JSON, typing plain scalars the YAML 1.2 core way
    /// (null, booleans, integers, floats); quoted scalars stay strings.
    public var json: JSONValue {
        switch self {
        case .scalar(let text, let quoted, _):
            if quoted { return .string(text) }
            switch text {
            case "", "~", "null", "Null", "NULL": return .null
            case "true", "True", "TRUE": return .bool(true)
            case "false", "False", "FALSE": return .bool(false)
            default: break
            }
            if let int = Int64(text) { return .integer(int) }
            if text.first.map({ $0.isNumber || $0 == "-" || $0 == "+" || $0 == "." }) == true, let double = Double(text) {
                return .number(double)
            }
            return .string(text)
        case .mapping(let entries, _):
            return .object(Dictionary(entries.map { ($0.key, $0.value.json) }, uniquingKeysWith: { first, _ in first }))
        case .sequence(let items, _):
            return .array(items.map(\.json))
        }
    }
}
