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
        let body = try ConfigBody(value, field: "fields", keys: fieldKeys)
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
