/// One key of a plugin's configuration: name, type, default and description.
///
/// A plugin declares its options once; the SDK derives the JSON Schema the
/// host validates pipelines against, and `PluginConfig` applies the defaults
/// (Fluent Bit's config map, one source of truth).
public struct ConfigOption: Sendable {
    public enum Kind: Sendable {
        case string
        case integer(minimum: Int64?, maximum: Int64?)
        case number
        case boolean
        case enumeration([String])
        case stringArray
        case object
        /// Any JSON value (the plugin checks it itself).
        case any
    }

    public var name: String
    public var kind: Kind
    public var required: Bool
    public var defaultValue: JSONValue?
    public var description: String

    public init(_ name: String, _ kind: Kind, required: Bool = false, default defaultValue: JSONValue? = nil, _ description: String) {
        self.name = name
        self.kind = kind
        self.required = required
        self.defaultValue = defaultValue
        self.description = description
    }

    public static func string(_ name: String, required: Bool = false, default value: String? = nil, _ description: String) -> ConfigOption {
        .init(name, .string, required: required, default: value.map(JSONValue.string), description)
    }

    public static func integer(_ name: String, default value: Int64? = nil, minimum: Int64? = nil, maximum: Int64? = nil, _ description: String) -> ConfigOption {
        .init(name, .integer(minimum: minimum, maximum: maximum), default: value.map(JSONValue.integer), description)
    }

    public static func boolean(_ name: String, default value: Bool? = nil, _ description: String) -> ConfigOption {
        .init(name, .boolean, default: value.map(JSONValue.bool), description)
    }

    public static func oneOf(_ name: String, _ values: [String], default value: String? = nil, _ description: String) -> ConfigOption {
        .init(name, .enumeration(values), default: value.map(JSONValue.string), description)
    }

    var schema: JSONValue {
        var fields: [String: JSONValue] = ["description": .string(description)]
        switch kind {
        case .string: fields["type"] = "string"
        case .integer(let minimum, let maximum):
            fields["type"] = "integer"
            if let minimum { fields["minimum"] = .integer(minimum) }
            if let maximum { fields["maximum"] = .integer(maximum) }
        case .number: fields["type"] = "number"
        case .boolean: fields["type"] = "boolean"
        case .enumeration(let values):
            fields["type"] = "string"
            fields["enum"] = .array(values.map(JSONValue.string))
        case .stringArray:
            fields["type"] = "array"
            fields["items"] = .object(["type": "string"])
        case .object: fields["type"] = "object"
        case .any: break
        }
        if let defaultValue { fields["default"] = defaultValue }
        return .object(fields)
    }

    /// The JSON Schema of an options list: an object with no unknown keys.
    public static func schema(for options: [ConfigOption]) -> String {
        var properties: [String: JSONValue] = [:]
        for option in options { properties[option.name] = option.schema }
        let required = options.filter(\.required).map { JSONValue.string($0.name) }
        var schema: [String: JSONValue] = [
            "type": "object",
            "properties": .object(properties),
            "additionalProperties": .bool(false),
        ]
        if !required.isEmpty { schema["required"] = .array(required) }
        return JSONValue.object(schema).jsonText
    }
}

extension JSONValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
}
