/// A plugin's configuration as the host handed it over (JSON, already
/// checked against the plugin's schema), with typed getters whose errors
/// name the field.
public struct PluginConfig: Sendable {
    public let values: [String: JSONValue]
    let options: [String: ConfigOption]

    public init(json: String, options: [ConfigOption] = []) throws(PluginError) {
        let parsed: JSONValue
        do {
            parsed = json.isEmpty ? .object([:]) : try JSONValue.parse(json)
        } catch {
            throw .config("config is not valid JSON: \(error)")
        }
        guard case .object(let values) = parsed else {
            throw .config("config must be an object, got \(parsed.typeName)")
        }
        // The host validates against the schema first; this keeps a plugin
        // loaded by other hosts (or the conformance harness) as strict.
        if let unknown = values.keys.sorted().first(where: { key in !options.contains { $0.name == key } }) {
            throw .config("unknown key '\(unknown)' (known: \(options.isEmpty ? "none" : options.map(\.name).sorted().joined(separator: ", ")))")
        }
        self.values = values
        self.options = Dictionary(options.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    func value(_ key: String) -> JSONValue? {
        if let value = values[key], value != .null { return value }
        return options[key]?.defaultValue
    }

    public func has(_ key: String) -> Bool { values[key] != nil && values[key] != .null }

    public func string(_ key: String) throws(PluginError) -> String? {
        guard let value = value(key) else { return nil }
        guard let string = value.stringValue else { throw .config("field '\(key)': expected a string, got \(value.typeName)") }
        return string
    }

    public func requiredString(_ key: String) throws(PluginError) -> String {
        guard let string = try string(key), !string.isEmpty else { throw .config("field '\(key)' is required") }
        return string
    }

    public func int(_ key: String) throws(PluginError) -> Int? {
        guard let value = value(key) else { return nil }
        guard let int = value.intValue else { throw .config("field '\(key)': expected an integer, got \(value.typeName)") }
        return Int(int)
    }

    public func double(_ key: String) throws(PluginError) -> Double? {
        guard let value = value(key) else { return nil }
        guard let double = value.doubleValue else { throw .config("field '\(key)': expected a number, got \(value.typeName)") }
        return double
    }

    public func bool(_ key: String) throws(PluginError) -> Bool? {
        guard let value = value(key) else { return nil }
        guard let bool = value.boolValue else { throw .config("field '\(key)': expected true or false, got \(value.typeName)") }
        return bool
    }

    public func strings(_ key: String) throws(PluginError) -> [String]? {
        guard let value = value(key) else { return nil }
        if let single = value.stringValue { return [single] }
        guard let array = value.arrayValue else { throw .config("field '\(key)': expected a list of strings, got \(value.typeName)") }
        var result: [String] = []
        for (index, item) in array.enumerated() {
            guard let string = item.stringValue else { throw .config("field '\(key)[\(index)]': expected a string, got \(item.typeName)") }
            result.append(string)
        }
        return result
    }

    public func object(_ key: String) throws(PluginError) -> [String: JSONValue]? {
        guard let value = value(key) else { return nil }
        guard let object = value.objectValue else { throw .config("field '\(key)': expected an object, got \(value.typeName)") }
        return object
    }
}
