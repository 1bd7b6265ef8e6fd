import FerryPluginKit

/// Checks that a plugin's config schema is a well-formed JSON Schema (the
/// structural rules of the 2020-12 meta-schema for the keywords plugins use),
/// so `ferry validate` can rely on it. Returns every problem with its JSON path.
public enum SchemaLint {
    static let types: Set<String> = ["object", "array", "string", "number", "integer", "boolean", "null"]
    static let schemaKeywords: Set<String> = ["items", "additionalProperties", "not", "contains", "propertyNames", "if", "then", "else"]
    static let schemaArrayKeywords: Set<String> = ["allOf", "anyOf", "oneOf", "prefixItems"]
    static let schemaMapKeywords: Set<String> = ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"]
    static let numberKeywords: Set<String> = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"]
    static let countKeywords: Set<String> = ["minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"]
    static let stringKeywords: Set<String> = ["$schema", "$id", "$ref", "title", "description", "pattern", "format", "$comment"]

    public static func problems(in schema: JSONValue) -> [String] {
        var problems: [String] = []
        guard case .object = schema else { return ["$: the schema must be an object (got \(schema.typeName))"] }
        if let type = schema["type"], type != .string("object") {
            problems.append("$.type: a plugin config schema must have type \"object\" (got \(type.jsonText))")
        }
        check(schema, path: "$", into: &problems)
        return problems
    }

    private static func check(_ schema: JSONValue, path: String, into problems: inout [String]) {
        switch schema {
        case .bool:
            return  // true / false are valid schemas
        case .object(let keywords):
            for (keyword, value) in keywords.sorted(by: { $0.key < $1.key }) {
                let at = "\(path).\(keyword)"
                switch keyword {
                case "type":
                    checkType(value, path: at, into: &problems)
                case _ where schemaKeywords.contains(keyword):
                    check(value, path: at, into: &problems)
                case _ where schemaArrayKeywords.contains(keyword):
                    guard case .array(let items) = value, !items.isEmpty else {
                        problems.append("\(at): must be a non-empty array of schemas")
                        continue
                    }
                    for (index, item) in items.enumerated() { check(item, path: "\(at)[\(index)]", into: &problems) }
                case _ where schemaMapKeywords.contains(keyword):
                    guard case .object(let members) = value else {
                        problems.append("\(at): must be an object of schemas")
                        continue
                    }
                    for (name, member) in members.sorted(by: { $0.key < $1.key }) {
                        check(member, path: "\(at).\(name)", into: &problems)
                    }
                case "required":
                    guard case .array(let names) = value, names.allSatisfy({ $0.stringValue != nil }) else {
                        problems.append("\(at): must be an array of strings")
                        continue
                    }
                    if Set(names.compactMap(\.stringValue)).count != names.count {
                        problems.append("\(at): names must be unique")
                    }
                    if let properties = keywords["properties"]?.objectValue {
                        for name in names.compactMap(\.stringValue) where properties[name] == nil {
                            problems.append("\(at): '\(name)' is required but not among the properties")
                        }
                    }
                case "enum":
                    if case .array(let values) = value, !values.isEmpty { continue }
                    problems.append("\(at): must be a non-empty array")
                case _ where numberKeywords.contains(keyword):
                    if value.doubleValue == nil && value.intValue == nil { problems.append("\(at): must be a number") }
                case _ where countKeywords.contains(keyword):
                    if (value.intValue ?? -1) < 0 { problems.append("\(at): must be a non-negative integer") }
                case _ where stringKeywords.contains(keyword):
                    if value.stringValue == nil { problems.append("\(at): must be a string") }
                default:
                    continue  // default, examples, const and unknown annotations are allowed
                }
            }
        default:
            problems.append("\(path): a schema must be an object or a boolean (got \(schema.typeName))")
        }
    }

    private static func checkType(_ value: JSONValue, path: String, into problems: inout [String]) {
        switch value {
        case .string(let name):
            if !types.contains(name) { problems.append("\(path): unknown type '\(name)'") }
        case .array(let names):
            if names.isEmpty { problems.append("\(path): must not be empty") }
            for name in names {
                guard let text = name.stringValue, types.contains(text) else {
                    problems.append("\(path): unknown type \(name.jsonText)")
                    continue
                }
            }
        default:
            problems.append("\(path): must be a type name or an array of them")
        }
    }
}
