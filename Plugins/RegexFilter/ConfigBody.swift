import FerryPluginKit

/// A mapping in the config, its keys checked, with getters whose errors name the field.
struct ConfigBody {
    let field: String
    let entries: [String: JSONValue]

    init(_ value: JSONValue, field: String, keys: [String]) throws {
        guard case .object(let entries) = value else {
            throw RegexConfigError(field: field, problem: "expected a mapping, got \(value.typeName)")
        }
        if let unknown = entries.keys.sorted().first(where: { !keys.contains($0) }) {
            throw RegexConfigError(field: "\(field).\(unknown)", problem: "unknown key (known: \(keys.joined(separator: ", ")))")
        }
        self.field = field
        self.entries = entries
    }

    func string(_ key: String) throws -> String {
        guard let text = try optionalString(key) else { throw RegexConfigError(field: "\(field).\(key)", problem: "required") }
        return text
    }

    func optionalString(_ key: String) throws -> String? {
        guard let value = entries[key], value != .null else { return nil }
        guard case .string(let text) = value else {
            throw RegexConfigError(field: "\(field).\(key)", problem: "expected a string, got \(value.typeName)")
        }
        return text
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = entries[key], value != .null else { return nil }
        guard case .bool(let flag) = value else {
            throw RegexConfigError(field: "\(field).\(key)", problem: "expected true or false, got \(value.typeName)")
        }
        return flag
    }

    /// The plugin-level flags, overridden by this mapping's own.
    func flags(_ defaults: PatternFlags) throws -> PatternFlags {
        var flags = defaults
        if let value = try bool("case_insensitive") { flags.caseInsensitive = value }
        if let value = try bool("utf") { flags.utf = value }
        if let value = try bool("ucp") { flags.ucp = value }
        if let value = try bool("anchored") { flags.anchored = value }
        return flags
    }
}
