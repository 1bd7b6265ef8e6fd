import FerryPluginKit

enum RegexFilterPlugin {
    static var manifest: PluginManifest {
        PluginManifest(
            name: "regex_filter", version: "1.0.0",
            description: "Keeps or drops records by PCRE2 rules on their fields, and fields by name",
            options: [
                .init("rules", .any, "Record rules: {field, include|exclude, flags…, missing} or groups {all: […]} / {any: […]} (see Plugins/RegexFilter/README.md)"),
                .oneOf("match", ["all", "any"], default: "all", "How the top-level rules combine: all (and) or any (or)"),
                .init("fields", .object, "Field-name rule: {keep: PATTERN} or {drop: PATTERN}, nested (default true), flags…"),
                .oneOf("missing", MissingPolicy.allCases.map(\.rawValue), default: "nonmatch", "What a missing or null field counts as: nonmatch, match, or reject (dead-letter)"),
                .boolean("case_insensitive", default: false, "Default for every pattern: PCRE2_CASELESS"),
                .boolean("utf", default: true, "Default for every pattern: UTF-8 mode (PCRE2_UTF, invalid UTF-8 never errors)"),
                .boolean("ucp", default: true, "Default for every pattern: Unicode properties for \\w \\d \\s \\b (PCRE2_UCP)"),
                .boolean("anchored", default: false, "Default for every pattern: match only at the start (PCRE2_ANCHORED)"),
                .integer("match_limit", default: 1_000_000, minimum: 1, maximum: Int64(UInt32.max), "PCRE2 match limit per match; past it the record is dead-lettered"),
                .integer("depth_limit", default: 100_000, minimum: 1, maximum: Int64(UInt32.max), "PCRE2 backtracking depth limit (interpreter) per match"),
                .integer("jit_stack_kb", default: 1024, minimum: 32, maximum: 1_048_576, "Maximum JIT stack per worker, in KiB"),
                .boolean("jit", default: true, "JIT-compile patterns when PCRE2 supports it (falls back to the interpreter)"),
            ],
            transform: RegexFilterTransform.self)
    }
}

@_cdecl("ferry_plugin_entry")
public func ferryPluginEntry() -> UnsafeRawPointer { PluginExport.entry(RegexFilterPlugin.manifest) }
