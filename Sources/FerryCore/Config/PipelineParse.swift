import FerryPluginKit
import Foundation

/// A pipeline file's values while its key table is applied, before the
/// required stages are known to be there.
struct PipelineDraft {
    var name = ""
    var source: StageConfig?
    var transforms: [StageConfig] = []
    var sink: StageConfig?
    var batchSize = PipelineConfig.defaultBatchSize
    var workers = 1
    var mode = SyncMode.incremental
    var maxInFlight: Int?
    var readLanes = 1
    var readLanesLine: Int?
    var checkpointIntervalMilliseconds = 1000
    var deadLetters = DeadLetterConfig()
    var retry = RetryPolicy()
    var schedule: String?
    var tests: ConfigNode?
    var deletes = DeletePolicy.ignore
    var maxDeletes = DeletePolicy.defaultMaxDeletes
    var deletesLine: Int?

    func config(file: String) -> PipelineConfig? {
        guard let source, let sink else { return nil }
        var config = PipelineConfig(
            name: name, file: file, source: source, transforms: transforms, sink: sink, batchSize: batchSize,
            workers: workers, mode: mode, schedule: schedule, deadLetters: deadLetters,
            retry: retry, maxInFlight: maxInFlight, checkpointIntervalMilliseconds: checkpointIntervalMilliseconds,
            readLanes: readLanes, readLanesLine: readLanesLine, tests: tests)
        config.deletes = deletes
        config.maxDeletes = maxDeletes
        config.deletesLine = deletesLine
        return config
    }
}

/// One parse of a pipeline file: the root mapping, the errors so far, and the
/// checks every key's reader shares (expansion, stages, bounded integers).
final class PipelineParse {
    let root: ConfigNode
    let file: String
    /// The file's absolute path: its name is the pipeline's default name.
    let absolute: URL
    let interpolation: Interpolation
    private(set) var errors: [ConfigError] = []
    /// Keys whose value could not be expanded: their error is the one to
    /// report, not a second "missing" for the same key.
    private var unexpanded: Set<String> = []

    init(root: ConfigNode, file: String, interpolation: Interpolation) {
        self.root = root
        self.file = file
        absolute = URL(fileURLWithPath: file).standardizedFileURL
        var interpolation = interpolation
        interpolation.builtins["PIPELINE_DIR"] = absolute.deletingLastPathComponent().path
        self.interpolation = interpolation
    }

    func fail(_ line: Int?, _ field: String?, _ message: String) {
        errors.append(ConfigError(file: file, line: line, field: field, message))
    }

    /// An "unknown field" error for each key of `node` that `table` does not declare.
    func rejectUnknown(_ node: ConfigNode, _ table: ConfigKeyTable, path: String? = nil, known: String? = nil) {
        for entry in table.unknown(in: node.entries) {
            fail(entry.keyLine, path.map { "\($0).\(entry.key)" } ?? entry.key, "unknown field (\(known ?? "known: \(table.knownList)"))")
        }
    }

    /// A top-level value with `${…}` expanded, or nil when absent or not expandable.
    func expanded(_ key: String) -> ConfigNode? {
        guard let node = root[key] else { return nil }
        do {
            return try node.interpolated(interpolation, file: file, path: key)
        } catch {
            if unexpanded.insert(key).inserted { errors.append(error) }
            return nil
        }
    }

    /// A value that came from `${…}` may be a secret (`${file:/run/secrets/x}`):
    /// messages name the setting, never the value.
    func shown(_ key: String, in node: ConfigNode? = nil, _ value: ConfigNode) -> String {
        let raw = (node ?? root)[key]?.stringValue ?? ""
        if raw.contains("${") { return "a value from \(raw.contains("${file:") ? "${file:…}" : "${…}")" }
        return "'\(value.stringValue ?? value.kindName)'"
    }

    func stage(_ node: ConfigNode?, role: String, line: Int) -> StageConfig? {
        guard let node else {
            if unexpanded.contains(role) { return nil }
            fail(line, role, "missing (a stage needs 'plugin:' and optionally 'config:')")
            return nil
        }
        guard case .mapping(_, let stageLine) = node else {
            fail(node.line, role, "expected a mapping with 'plugin:' and 'config:', got \(node.kindName)")
            return nil
        }
        rejectUnknown(node, PipelineKeys.stage, path: role, known: "a stage has 'plugin' and 'config'")
        guard let plugin = node["plugin"]?.stringValue, !plugin.isEmpty else {
            fail(stageLine, "\(role).plugin", "missing plugin name")
            return nil
        }
        let config = node["config"]
        if let config, case .scalar(let text, _, _) = config, !text.isEmpty {
            fail(config.line, "\(role).config", "expected a mapping, got a scalar")
        }
        return StageConfig(plugin: plugin, config: config, line: stageLine, role: role)
    }

    /// The integer `key` of the root (expanded) or of the already expanded
    /// `node` at `path`, within `key`'s bounds; nil when absent or wrong.
    func integer(_ key: ConfigKey, in node: ConfigNode? = nil, path: String? = nil) -> Int? {
        let bounds = key.integerBounds
        // The unexpanded parent: whether the value came from `${…}` shows only there.
        let rawParent = path.flatMap { root[String($0.prefix { $0 != "." })] } ?? node
        guard let field = (node ?? root)[key.name] else { return nil }
        let fieldPath = path ?? key.name
        var resolved = field
        if node == nil {
            guard let expandedField = expanded(key.name) else { return nil }
            resolved = expandedField
        }
        guard case .integer(let int) = resolved.json else {
            if let text = resolved.stringValue, !text.isEmpty, text.allSatisfy({ $0.isNumber || $0 == "-" || $0 == "+" }) {
                fail(field.line, fieldPath, "must be from \(bounds.lowerBound) to \(bounds.upperBound), got \(shown(key.name, in: rawParent, resolved))")
            } else {
                fail(field.line, fieldPath, "expected an integer, got \(resolved.json.typeName)")
            }
            return nil
        }
        guard int >= bounds.lowerBound, int <= bounds.upperBound else {
            let got = shown(key.name, in: rawParent, resolved)
            fail(field.line, fieldPath, int < bounds.lowerBound ? "must be at least \(bounds.lowerBound), got \(got)" : "must be at most \(bounds.upperBound), got \(got)")
            return nil
        }
        return Int(int)
    }
}
