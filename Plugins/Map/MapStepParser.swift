import FerryPluginKit

/// Turns the `steps` config into compiled steps, once at open, with errors
/// that name the step and field: `steps[2].cast.to: unknown type 'money' (…)`.
enum MapStepParser {
    static let stepNames = ["rename", "set", "default", "drop", "copy", "cast", "template"]

    /// - Throws: `MapConfigError` for the first problem found.
    static func parse(_ steps: JSONValue?) throws(MapConfigError) -> [MapStep] {
        guard let steps else { throw MapConfigError(field: "steps", problem: "required") }
        guard case .array(let items) = steps else {
            throw MapConfigError(field: "steps", problem: "expected a list of steps, got \(steps.typeName)")
        }
        guard !items.isEmpty else { throw MapConfigError(field: "steps", problem: "expected at least one step") }
        var parsed: [MapStep] = []
        for (index, item) in items.enumerated() {
            parsed.append(MapStep(index: index, action: try parseStep(item, field: "steps[\(index)]")))
        }
        return parsed
    }

    private static func parseStep(_ item: JSONValue, field: String) throws(MapConfigError) -> MapStep.Action {
        guard case .object(let entries) = item, entries.count == 1, let (name, body) = entries.first else {
            let found = item.objectValue.map { "keys " + $0.keys.sorted().map { "'\($0)'" }.joined(separator: ", ") } ?? item.typeName
            throw MapConfigError(field: field, problem: "expected one step as a one-key mapping such as {rename: {from: a, to: b}}, got \(found)")
        }
        let here = "\(field).\(name)"
        switch name {
        case "rename":
            let body = try StepBody(body, field: here, keys: ["from", "to"])
            return .rename(from: try body.path("from"), to: try body.path("to"))
        case "set":
            let body = try StepBody(body, field: here, keys: ["field", "value"])
            return .set(try body.path("field"), try body.constant("value"))
        case "default":
            let body = try StepBody(body, field: here, keys: ["field", "value"])
            return .setDefault(try body.path("field"), try body.constant("value"))
        case "drop":
            return .drop(try dropPaths(body, field: here))
        case "copy":
            let body = try StepBody(body, field: here, keys: ["from", "to"])
            return .copy(from: try body.path("from"), to: try body.path("to"))
        case "cast":
            let body = try StepBody(body, field: here, keys: ["field", "to"])
            let typeName = try body.string("to")
            guard let target = CastTarget(rawValue: typeName) else {
                let known = CastTarget.allCases.map(\.rawValue).joined(separator: ", ")
                throw MapConfigError(field: "\(here).to", problem: "unknown type '\(typeName)' (known: \(known))")
            }
            return .cast(try body.path("field"), target)
        case "template":
            let body = try StepBody(body, field: here, keys: ["field", "template"])
            let path = try body.path("field")
            let text = try body.string("template")
            do throws(ValueError) {
                return .template(path, try FieldTemplate(parsing: text))
            } catch {
                throw MapConfigError(field: "\(here).template", problem: error.description)
            }
        default:
            throw MapConfigError(
                field: field, problem: "unknown step '\(name)' (known: \(stepNames.joined(separator: ", ")))")
        }
    }

    /// `drop: a.b` or `drop: [a, b.c]`.
    private static func dropPaths(_ body: JSONValue, field: String) throws(MapConfigError) -> [FieldPath] {
        if case .string(let text) = body { return [try path(text, field: field)] }
        guard case .array(let items) = body, !items.isEmpty else {
            throw MapConfigError(field: field, problem: "expected a field path or a non-empty list of them, got \(body.typeName)")
        }
        var paths: [FieldPath] = []
        for (index, item) in items.enumerated() {
            guard case .string(let text) = item else {
                throw MapConfigError(field: "\(field)[\(index)]", problem: "expected a field path, got \(item.typeName)")
            }
            paths.append(try path(text, field: "\(field)[\(index)]"))
        }
        return paths
    }

    fileprivate static func path(_ text: String, field: String) throws(MapConfigError) -> FieldPath {
        // BSON keys are C strings: a NUL would end the key early and corrupt the record.
        guard !text.utf8.contains(0) else {
            throw MapConfigError(field: field, problem: "'\(escapingNUL(text))' contains a NUL character, which a BSON field name cannot hold")
        }
        guard let path = FieldPath(text) else {
            throw MapConfigError(field: field, problem: "'\(text)' is not a field path (dot-separated keys, none empty)")
        }
        return path
    }

    /// The text with each NUL written as `\0`, so a message shows where it is.
    static func escapingNUL(_ text: String) -> String {
        text.replacing("\u{0}", with: "\\0")
    }
}

/// A step's mapping: its keys checked against the ones the step knows, with
/// getters whose errors name the field.
private struct StepBody {
    let field: String
    let entries: [String: JSONValue]

    init(_ value: JSONValue, field: String, keys: [String]) throws(MapConfigError) {
        guard case .object(let entries) = value else {
            throw MapConfigError(field: field, problem: "expected a mapping with \(keys.joined(separator: " and ")), got \(value.typeName)")
        }
        if let unknown = entries.keys.sorted().first(where: { !keys.contains($0) }) {
            throw MapConfigError(field: "\(field).\(unknown)", problem: "unknown key (known: \(keys.joined(separator: ", ")))")
        }
        self.field = field
        self.entries = entries
    }

    /// Present, possibly null (`value: null` is a value).
    func value(_ key: String) throws(MapConfigError) -> JSONValue {
        guard let value = entries[key] else { throw MapConfigError(field: "\(field).\(key)", problem: "required") }
        return value
    }

    func string(_ key: String) throws(MapConfigError) -> String {
        let value = try value(key)
        guard case .string(let text) = value else {
            throw MapConfigError(field: "\(field).\(key)", problem: "expected a string, got \(value.typeName)")
        }
        return text
    }

    func path(_ key: String) throws(MapConfigError) -> FieldPath {
        try MapStepParser.path(try string(key), field: "\(field).\(key)")
    }

    func constant(_ key: String) throws(MapConfigError) -> BSONValue {
        let json = try value(key)
        // libbson refuses a NUL inside a constant's keys ("invalid bytes in UTF8 string").
        do throws(ValueError) {
            return try json.bsonConstant()
        } catch {
            throw MapConfigError(field: "\(field).\(key)", problem: error.description)
        }
    }
}
