import FerryPluginKit

/// Checks a plugin's `config:` against the JSON Schema its descriptor
/// carries. Understands the subset plugins use: type, properties, required,
/// additionalProperties: false, enum, minimum, maximum, items.
public struct SchemaValidator {
    public let schema: JSONValue
    public let plugin: String
    public let file: String

    public init(schema: JSONValue, plugin: String, file: String) {
        self.schema = schema
        self.plugin = plugin
        self.file = file
    }

    /// All problems found, each with its line and field path.
    public func validate(_ node: ConfigNode?, path: String, line: Int) -> [ConfigError] {
        var errors: [ConfigError] = []
        check(node, against: schema, path: path, line: line, into: &errors)
        return errors
    }

    private func error(_ line: Int, _ path: String, _ message: String) -> ConfigError {
        ConfigError(file: file, line: line, field: path, "\(message) (plugin '\(plugin)')")
    }

    private func check(_ node: ConfigNode?, against schema: JSONValue, path: String, line: Int, into errors: inout [ConfigError]) {
        guard case .object(let rules) = schema else { return }
        let value = node?.json ?? .object([:])
        let here = node?.line ?? line
        if let type = rules["type"]?.stringValue, !Self.matches(value, type: type) {
            errors.append(error(here, path, "expected \(Self.article(type)), got \(value.typeName)"))
            return
        }
        if let allowed = rules["enum"]?.arrayValue, !allowed.contains(value) {
            let list = allowed.map { $0.stringValue.map { "'\($0)'" } ?? $0.jsonText }.joined(separator: ", ")
            errors.append(error(here, path, "must be one of \(list), got \(value.jsonText)"))
        }
        if let minimum = rules["minimum"]?.doubleValue, let number = value.doubleValue, number < minimum {
            errors.append(error(here, path, "must be at least \(rules["minimum"]!.jsonText), got \(value.jsonText)"))
        }
        if let maximum = rules["maximum"]?.doubleValue, let number = value.doubleValue, number > maximum {
            errors.append(error(here, path, "must be at most \(rules["maximum"]!.jsonText), got \(value.jsonText)"))
        }
        if case .sequence(let items, _) = node, let itemSchema = rules["items"] {
            for (index, item) in items.enumerated() {
                check(item, against: itemSchema, path: "\(path)[\(index)]", line: item.line, into: &errors)
            }
        }
        guard value.objectValue != nil else { return }
        let entries = node?.entries ?? []
        let properties = rules["properties"]?.objectValue ?? [:]
        for name in rules["required"]?.arrayValue?.compactMap(\.stringValue) ?? []
        where !entries.contains(where: { $0.key == name && $0.value.json != .null }) {
            errors.append(error(here, path, "missing required field '\(name)'"))
        }
        for entry in entries {
            let childPath = path.isEmpty ? entry.key : "\(path).\(entry.key)"
            if let propertySchema = properties[entry.key] {
                if entry.value.json != .null {
                    check(entry.value, against: propertySchema, path: childPath, line: entry.keyLine, into: &errors)
                }
            } else if rules["additionalProperties"] == .bool(false) {
                let known = properties.keys.sorted().joined(separator: ", ")
                errors.append(error(entry.keyLine, childPath, "unknown field (known: \(known.isEmpty ? "none" : known))"))
            }
        }
    }

    static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool), ("null", .null): true
        case ("integer", .integer): true
        case ("integer", .number(let v)): v.rounded() == v
        case ("number", .integer), ("number", .number): true
        default: false
        }
    }

    static func article(_ type: String) -> String {
        type == "integer" || type == "object" || type == "array" ? "an \(type)" : "a \(type)"
    }
}
