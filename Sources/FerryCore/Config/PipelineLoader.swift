import Foundation
import FerryPluginKit

/// Reads a pipeline YAML file into a `PipelineConfig`, reporting every
/// problem with its file, line and field.
public struct PipelineLoader: Sendable {
    public var interpolation: Interpolation

    static let knownKeys: Set<String> = [
        "name", "description", "source", "transforms", "sink", "batch_size", "workers", "mode", "schedule",
        "dead_letters", "retry", "max_in_flight", "checkpoint_interval_ms", "tests", "read_lanes",
    ]

    public init(interpolation: Interpolation = Interpolation()) {
        self.interpolation = interpolation
    }

    /// No pipeline is this long; a bigger file is a mistake (or /dev/zero).
    public static let maxFileBytes = 4 << 20

    public func load(path: String) throws(ConfigErrors) -> PipelineConfig {
        var info = stat()
        if stat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFREG else {
                throw ConfigErrors(errors: [ConfigError(file: path, "not a regular file (a pipeline is a YAML file)")])
            }
            guard info.st_size <= Self.maxFileBytes else {
                throw ConfigErrors(errors: [ConfigError(file: path, "the pipeline file is \(info.st_size) bytes; at most \(Self.maxFileBytes) are read")])
            }
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigErrors(errors: [ConfigError(file: path, "cannot read the pipeline file")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigErrors(errors: [ConfigError(file: path, "the pipeline file is not UTF-8")])
        }
        return try parse(yaml: text, file: path)
    }

    public func parse(yaml: String, file: String) throws(ConfigErrors) -> PipelineConfig {
        var errors: [ConfigError] = []
        func fail(_ line: Int?, _ field: String?, _ message: String) {
            errors.append(ConfigError(file: file, line: line, field: field, message))
        }
        let root: ConfigNode
        do {
            guard let parsed = try ConfigNode.parse(yaml: yaml, file: file) else {
                throw ConfigErrors(errors: [ConfigError(file: file, "the pipeline file is empty")])
            }
            root = parsed
        } catch let error as ConfigError {
            throw ConfigErrors(errors: [error])
        } catch let error as ConfigErrors {
            throw error
        } catch {
            throw ConfigErrors(errors: [ConfigError(file: file, "\(error)")])
        }
        guard case .mapping(let entries, _) = root else {
            throw ConfigErrors(errors: [ConfigError(file: file, line: root.line, "a pipeline is a mapping with source, transforms and sink")])
        }
        for entry in entries where !Self.knownKeys.contains(entry.key) {
            fail(entry.keyLine, entry.key, "unknown field (known: \(Self.knownKeys.sorted().joined(separator: ", ")))")
        }

        let absolute = URL(fileURLWithPath: file).standardizedFileURL
        var interpolation = interpolation
        interpolation.builtins["PIPELINE_DIR"] = absolute.deletingLastPathComponent().path
        // Keys whose value could not be expanded: their error is the one to
        // report, not a second "missing" for the same key.
        var unexpanded: Set<String> = []
        func expanded(_ key: String) -> ConfigNode? {
            guard let node = root[key] else { return nil }
            do {
                return try node.interpolated(interpolation, file: file, path: key)
            } catch {
                if unexpanded.insert(key).inserted { errors.append(error) }
                return nil
            }
        }
        // A value that came from `${…}` may be a secret (`${file:/run/secrets/x}`):
        // messages name the setting, never the value.
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
            guard case .mapping(let stageEntries, let stageLine) = node else {
                fail(node.line, role, "expected a mapping with 'plugin:' and 'config:', got \(node.kindName)")
                return nil
            }
            for entry in stageEntries where entry.key != "plugin" && entry.key != "config" {
                fail(entry.keyLine, "\(role).\(entry.key)", "unknown field (a stage has 'plugin' and 'config')")
            }
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

        func integer(
            _ key: String, default value: Int, minimum: Int, maximum: Int, in node: ConfigNode? = nil, path: String? = nil
        ) -> Int {
            // The unexpanded parent: whether the value came from `${…}` shows only there.
            let rawParent = path.flatMap { root[String($0.prefix { $0 != "." })] } ?? node
            guard let field = (node ?? root)[key] else { return value }
            let fieldPath = path ?? key
            var resolved = field
            if node == nil {
                guard let expandedField = expanded(key) else { return value }
                resolved = expandedField
            }
            guard case .integer(let int) = resolved.json else {
                if let text = resolved.stringValue, !text.isEmpty, text.allSatisfy({ $0.isNumber || $0 == "-" || $0 == "+" }) {
                    fail(field.line, fieldPath, "must be from \(minimum) to \(maximum), got \(shown(key, in: rawParent, resolved))")
                } else {
                    fail(field.line, fieldPath, "expected an integer, got \(resolved.json.typeName)")
                }
                return value
            }
            guard int >= minimum, int <= maximum else {
                let got = shown(key, in: rawParent, resolved)
                fail(field.line, fieldPath, int < minimum ? "must be at least \(minimum), got \(got)" : "must be at most \(maximum), got \(got)")
                return value
            }
            return Int(int)
        }

        let source = stage(expanded("source"), role: "source", line: root.line)
        let sink = stage(expanded("sink"), role: "sink", line: root.line)
        var transforms: [StageConfig] = []
        if let node = expanded("transforms") {
            switch node {
            case .sequence(let items, _):
                for (index, item) in items.enumerated() {
                    if let transform = stage(item, role: "transforms[\(index)]", line: item.line) { transforms.append(transform) }
                }
            case .scalar(let text, _, _) where text.isEmpty: break
            default: fail(node.line, "transforms", "expected a list of stages, got \(node.kindName)")
            }
        }

        let batchSize = integer("batch_size", default: PipelineConfig.defaultBatchSize, minimum: 1, maximum: PipelineConfig.Bounds.batchSize)
        let workers = integer("workers", default: 1, minimum: 1, maximum: PipelineConfig.Bounds.workers)
        var mode = SyncMode.incremental
        if let node = expanded("mode") {
            if let name = node.stringValue, let parsed = SyncMode(name: name) {
                mode = parsed
            } else {
                fail(node.line, "mode", "must be one of full, incremental, missing-only, got \(shown("mode", node))")
            }
        }
        var deadLetters = DeadLetterConfig()
        if let node = expanded("dead_letters") {
            for entry in node.entries where !["path", "sink", "max", "max_ratio"].contains(entry.key) {
                fail(entry.keyLine, "dead_letters.\(entry.key)", "unknown field (known: max, max_ratio, path, sink)")
            }
            if let sinkNode = node["sink"] {
                if node["path"] != nil {
                    fail(sinkNode.line, "dead_letters.sink", "give either 'path' (a JSON Lines file) or 'sink' (a sink plugin), not both")
                }
                deadLetters.sink = stage(sinkNode, role: "dead_letters.sink", line: sinkNode.line)
            }
            if let ratio = node["max_ratio"] {
                if let value = ratio.stringValue.flatMap(Double.init), (0...1).contains(value) {
                    deadLetters.maxRatio = value
                } else {
                    fail(ratio.line, "dead_letters.max_ratio", "expected a number from 0 to 1, got \(shown("max_ratio", in: root["dead_letters"], ratio))")
                }
            }
            deadLetters.path = node["path"]?.stringValue
            deadLetters.maxRecords = integer("max", default: deadLetters.maxRecords, minimum: 0, maximum: PipelineConfig.Bounds.deadLetters, in: node, path: "dead_letters.max")
        }
        var retry = RetryPolicy()
        if let node = expanded("retry") {
            for entry in node.entries where !["attempts", "initial_delay_ms", "max_delay_ms"].contains(entry.key) {
                fail(entry.keyLine, "retry.\(entry.key)", "unknown field (known: attempts, initial_delay_ms, max_delay_ms)")
            }
            retry.attempts = integer("attempts", default: retry.attempts, minimum: 0, maximum: PipelineConfig.Bounds.retryAttempts, in: node, path: "retry.attempts")
            retry.initialDelayMilliseconds = integer("initial_delay_ms", default: retry.initialDelayMilliseconds, minimum: 1, maximum: PipelineConfig.Bounds.retryDelayMilliseconds, in: node, path: "retry.initial_delay_ms")
            retry.maxDelayMilliseconds = integer("max_delay_ms", default: retry.maxDelayMilliseconds, minimum: 1, maximum: PipelineConfig.Bounds.retryDelayMilliseconds, in: node, path: "retry.max_delay_ms")
        }
        let maxInFlight = root["max_in_flight"] == nil ? nil : integer("max_in_flight", default: 0, minimum: 1, maximum: PipelineConfig.Bounds.maxInFlight)
        let checkpointInterval = integer("checkpoint_interval_ms", default: 1000, minimum: 0, maximum: PipelineConfig.Bounds.checkpointIntervalMilliseconds)
        let readLanes = integer("read_lanes", default: 1, minimum: 1, maximum: PipelineConfig.Bounds.readLanes)
        let name = expanded("name")?.stringValue ?? absolute.deletingPathExtension().lastPathComponent
        if name.isEmpty {
            fail(root["name"]?.line, "name", "must not be empty (it names the checkpoint)")
        } else if !name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) {
            fail(root["name"]?.line, "name", "use letters, digits, '-', '_' and '.' only (it names state files)")
        }

        let schedule = expanded("schedule")?.stringValue
        if let schedule, let node = root["schedule"] {
            // Checked here, not first by `ferry serve`: a schedule that cannot
            // fire is a mistake in this file, at this line.
            do {
                _ = try CronSchedule(schedule)
            } catch {
                fail(node.line, "schedule", "\(error)")
            }
        }

        guard errors.isEmpty, let source, let sink else { throw ConfigErrors(errors: errors) }
        return PipelineConfig(
            name: name, file: file, source: source, transforms: transforms, sink: sink, batchSize: batchSize,
            workers: workers, mode: mode, schedule: schedule, deadLetters: deadLetters,
            retry: retry, maxInFlight: maxInFlight, checkpointIntervalMilliseconds: checkpointInterval, readLanes: readLanes,
            readLanesLine: root["read_lanes"]?.line, tests: root["tests"])
    }
}
