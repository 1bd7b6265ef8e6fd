import FerryPluginKit

/// The plugin's config compiled once at open: the rule tree with its
/// patterns, the field-name filter and the match limits. Errors name the
/// config field: `rules[1].exclude: pattern '(' does not compile: … at offset 1`.
struct RegexFilterConfig {
    var program: RuleProgram?
    var fieldFilter: FieldNameFilter?
    var limits: MatchLimits

    static let ruleKeys = ["field", "include", "exclude", "missing"] + PatternFlags.keys
    static let fieldKeys = ["keep", "drop", "nested"] + PatternFlags.keys

    /// - Throws: `RegexConfigError` for the first problem found.
    init(_ config: PluginConfig) throws {
        limits = MatchLimits(
            matchLimit: UInt32(try config.int("match_limit") ?? 1_000_000),
            depthLimit: UInt32(try config.int("depth_limit") ?? 100_000),
            jitStackBytes: (try config.int("jit_stack_kb") ?? 1024) * 1024)
        let defaults = Defaults(
            flags: PatternFlags(
                caseInsensitive: try config.bool("case_insensitive") ?? false,
                utf: try config.bool("utf") ?? true,
                ucp: try config.bool("ucp") ?? true,
                anchored: try config.bool("anchored") ?? false),
            missing: MissingPolicy(rawValue: try config.string("missing") ?? "nonmatch") ?? .nonmatch,
            jit: try config.bool("jit") ?? true)

        if let rules = config.values["rules"], rules != .null {
            var parser = RuleParser(defaults: defaults)
            let items = try parser.list(rules, field: "rules")
            let tree: RuleTree = (try config.string("match") ?? "all") == "any" ? .any(items) : .all(items)
            program = RuleProgram(tree: tree, rules: parser.rules)
        }
        if let fields = config.values["fields"], fields != .null {
            fieldFilter = try Self.fieldFilter(fields, defaults: defaults)
        }
        guard program != nil || fieldFilter != nil else {
            throw RegexConfigError(field: "rules", problem: "set rules (record rules), fields (field-name rules) or both")
        }
    }

    struct Defaults {
        var flags: PatternFlags
        var missing: MissingPolicy
        var jit: Bool
    }

    private static func fieldFilter(_ value: JSONValue, defaults: Defaults) throws -> FieldNameFilter {
        let body = try Body(value, field: "fields", keys: fieldKeys)
        let modes = ["keep", "drop"].filter { body.entries[$0] != nil }
        guard modes.count == 1, let mode = FieldNameFilter.Mode(rawValue: modes[0]) else {
            throw RegexConfigError(field: "fields", problem: "set exactly one of keep or drop (a pattern on field names)")
        }
        let flags = try body.flags(defaults.flags)
        let source = try body.string(mode.rawValue)
        let pattern = try compile(source, flags: flags, jit: defaults.jit, field: "fields.\(mode.rawValue)")
        return FieldNameFilter(mode: mode, pattern: pattern, nested: try body.bool("nested") ?? true)
    }

    static func compile(_ source: String, flags: PatternFlags, jit: Bool, field: String) throws -> CompiledPattern {
        do throws(PatternError) {
            return try CompiledPattern(source, flags: flags, jit: jit)
        } catch {
            throw RegexConfigError(field: field, problem: error.description)
        }
    }
}

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
        let body = try Body(value, field: field, keys: RegexFilterConfig.ruleKeys)
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

/// A mapping in the config, its keys checked, with getters whose errors name the field.
private struct Body {
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

/// A config problem found at open, at a field such as `rules[1].exclude`.
struct RegexConfigError: Error, CustomStringConvertible {
    let field: String
    let problem: String

    var description: String { "\(field): \(problem)" }
}
