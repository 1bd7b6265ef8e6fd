import FerryPluginKit

/// Parses `rules` (and nested `all` / `any` groups) into tree nodes and a flat rule list.
struct RuleParser {
    let defaults: RegexFilterConfig.Defaults
    private(set) var rules: [RecordRule] = []

    init(defaults: RegexFilterConfig.Defaults) {
        self.defaults = defaults
    }

    mutating func list(_ value: JSONValue, field: String) throws -> [RuleTree] {
        guard case .array(let items) = value else {
            throw RegexConfigError(field: field, problem: "expected a list of rules, got \(value.typeName)")
        }
        guard !items.isEmpty else { throw RegexConfigError(field: field, problem: "expected at least one rule") }
        var nodes: [RuleTree] = []
        for (index, item) in items.enumerated() {
            nodes.append(try node(item, field: "\(field)[\(index)]"))
        }
        return nodes
    }

    private mutating func node(_ value: JSONValue, field: String) throws -> RuleTree {
        guard case .object(let entries) = value else {
            throw RegexConfigError(
                field: field, problem: "expected a rule {field: …, include: …} or {exclude: …}, or a group {all: […]} / {any: […]}, got \(value.typeName)")
        }
        for group in ["all", "any"] where entries[group] != nil {
            guard entries.count == 1, let items = entries[group] else {
                throw RegexConfigError(field: field, problem: "a group has only its '\(group)' key")
            }
            let children = try list(items, field: "\(field).\(group)")
            return group == "all" ? .all(children) : .any(children)
        }
        let body = try ConfigBody(value, field: field, keys: RegexFilterConfig.ruleKeys)
        let actions = ["include", "exclude"].filter { entries[$0] != nil }
        guard actions.count == 1, let action = RuleAction(rawValue: actions[0]) else {
            throw RegexConfigError(field: field, problem: "set exactly one of include or exclude (the pattern)")
        }
        let pathText = try body.string("field")
        guard let path = FieldPath(pathText) else {
            throw RegexConfigError(field: "\(field).field", problem: "'\(pathText)' is not a field path (dot-separated keys, none empty; * for every array element)")
        }
        var missing = defaults.missing
        if let text = try body.optionalString("missing") {
            guard let policy = MissingPolicy(rawValue: text) else {
                throw RegexConfigError(
                    field: "\(field).missing", problem: "unknown policy '\(text)' (known: \(MissingPolicy.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            missing = policy
        }
        let label = "\(field) (\(action.rawValue) '\(pathText)')"
        let pattern = try RegexFilterConfig.compile(
            try body.string(action.rawValue), flags: try body.flags(defaults.flags), jit: defaults.jit,
            field: "\(field).\(action.rawValue) (field '\(pathText)')")
        rules.append(RecordRule(label: label, action: action, path: path, pattern: pattern, missing: missing))
        return .rule(rules.count - 1)
    }
}
