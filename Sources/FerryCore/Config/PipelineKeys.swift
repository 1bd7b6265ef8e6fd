import FerryPluginKit
import Foundation

/// The pipeline file's keys, section by section: bounds, defaults and the docs'
/// rows, and for the top level how each key is read. `PipelineLoader.parse`
/// reads the keys in this order; docs/08-quick-reference.md lists them in it.
enum PipelineKeys {
    struct Row: Sendable {
        let key: ConfigKey
        let read: @Sendable (inout PipelineDraft, PipelineParse) -> Void
    }

    static let topLevel = ConfigKeyTable("pipeline", rows.map(\.key))

    static let stage = ConfigKeyTable("pipeline.stage", describedInRow: "source", [
        ConfigKey("plugin", default: "(required)", "a plugin name from the plugins directory, or a path to a `.so`"),
        ConfigKey("config", default: "`{}`", "the plugin's settings, checked against its schema"),
    ])

    static let deadLetters = ConfigKeyTable("pipeline.dead_letters", describedInRow: "dead_letters", [
        ConfigKey("path", default: "`<state dir>/<name>.dead-letters.jsonl`", "a JSON Lines file for rejected records"),
        ConfigKey("sink", default: "—", "a sink plugin for rejected records instead of the file"),
        ConfigKey("max", default: "\(DeadLetterConfig().maxRecords)", bounds: .integer(0...PipelineConfig.Bounds.deadLetters),
            "the run fails once more records than this are rejected"),
        ConfigKey("max_ratio", default: "—", bounds: .number(0...1), "the run fails once more than this share of the records read is rejected"),
    ])

    static let retry = ConfigKeyTable("pipeline.retry", describedInRow: "retry", [
        ConfigKey("attempts", default: "\(RetryPolicy().attempts)", bounds: .integer(0...PipelineConfig.Bounds.retryAttempts), "retries of one call"),
        ConfigKey("initial_delay_ms", default: "\(RetryPolicy().initialDelayMilliseconds)",
            bounds: .integer(1...PipelineConfig.Bounds.retryDelayMilliseconds), "the first retry's delay"),
        ConfigKey("max_delay_ms", default: "\(RetryPolicy().maxDelayMilliseconds)",
            bounds: .integer(1...PipelineConfig.Bounds.retryDelayMilliseconds), "the longest delay"),
    ])

    static let rows: [Row] = [
        Row(key: ConfigKey("name", default: "the file name without extension", "names the checkpoint; letters, digits, `-`, `_`, `.`")) { draft, parse in
            let node = parse.root["name"]
            draft.name = parse.expanded("name")?.stringValue ?? parse.absolute.deletingPathExtension().lastPathComponent
            if draft.name.isEmpty {
                parse.fail(node?.line, "name", "must not be empty (it names the checkpoint)")
            } else if !draft.name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) {
                parse.fail(node?.line, "name", "use letters, digits, '-', '_' and '.' only (it names state files)")
            }
        },
        Row(key: ConfigKey("description", default: "—", "free text; accepted and not used")) { _, _ in },
        Row(key: ConfigKey("source", default: "(required)", "`{plugin: NAME or path to .so, config: {…}}`")) { draft, parse in
            draft.source = parse.stage(parse.expanded("source"), role: "source", line: parse.root.line)
        },
        Row(key: ConfigKey("transforms", default: "none", "list of `{plugin, config}`, applied in order")) { draft, parse in
            guard let node = parse.expanded("transforms") else { return }
            switch node {
            case .sequence(let items, _):
                for (index, item) in items.enumerated() {
                    if let transform = parse.stage(item, role: "transforms[\(index)]", line: item.line) { draft.transforms.append(transform) }
                }
            case .scalar(let text, _, _) where text.isEmpty: break
            default: parse.fail(node.line, "transforms", "expected a list of stages, got \(node.kindName)")
            }
        },
        Row(key: ConfigKey("sink", default: "(required)", "`{plugin, config}`")) { draft, parse in
            draft.sink = parse.stage(parse.expanded("sink"), role: "sink", line: parse.root.line)
        },
        Row(key: ConfigKey("batch_size", default: "\(PipelineConfig.defaultBatchSize)", bounds: .integer(1...PipelineConfig.Bounds.batchSize),
            "records per batch")) { draft, parse in
            if let value = parse.integer(topLevel["batch_size"]) { draft.batchSize = value }
        },
        Row(key: ConfigKey("workers", default: "1", bounds: .integer(1...PipelineConfig.Bounds.workers),
            "parallel workers, each with its own transform and sink instances")) { draft, parse in
            if let value = parse.integer(topLevel["workers"]) { draft.workers = value }
        },
        Row(key: ConfigKey("mode", default: "`incremental`", "`full`, `incremental`, `missing-only` (also `missing_only`); handed to every plugin")) { draft, parse in
            guard let node = parse.expanded("mode") else { return }
            if let name = node.stringValue, let mode = SyncMode(name: name) {
                draft.mode = mode
            } else {
                parse.fail(node.line, "mode", "must be one of full, incremental, missing-only, got \(parse.shown("mode", node))")
            }
        },
        Row(key: ConfigKey("max_in_flight", default: "2 × workers + 2", bounds: .integer(1...PipelineConfig.Bounds.maxInFlight),
            "batches between read and retire at once: the backpressure bound")) { draft, parse in
            draft.maxInFlight = parse.integer(topLevel["max_in_flight"])
        },
        Row(key: ConfigKey("read_lanes", default: "1", bounds: .integer(1...PipelineConfig.Bounds.readLanes),
            "sharded sources: lanes read in parallel in one process, workers split among them")) { draft, parse in
            if let value = parse.integer(topLevel["read_lanes"]) { draft.readLanes = value }
            draft.readLanesLine = parse.root["read_lanes"]?.line
        },
        Row(key: ConfigKey("checkpoint_interval_ms", default: "1000", bounds: .integer(0...PipelineConfig.Bounds.checkpointIntervalMilliseconds),
            "how often the checkpoint is saved during a run (0: after every batch); always at the end")) { draft, parse in
            if let value = parse.integer(topLevel["checkpoint_interval_ms"]) { draft.checkpointIntervalMilliseconds = value }
        },
        Row(key: ConfigKey("dead_letters", default: "`{path: <state dir>/<name>.dead-letters.jsonl, max: \(DeadLetterConfig().maxRecords)}`",
            "where rejected records go: a JSON Lines file (`path`) or a sink plugin (`sink: {plugin, config}`, e.g. a PostgreSQL table with columns time, pipeline, stage, plugin, reason, record; appended to, before each checkpoint); the run fails once more than `max` are rejected, or (with `max_ratio`, 0 to 1) more than that share of the records read, checked from 100 records on and at the end"
        )) { draft, parse in
            guard let node = parse.expanded("dead_letters") else { return }
            parse.rejectUnknown(node, deadLetters, path: "dead_letters")
            if let sinkNode = node["sink"] {
                if node["path"] != nil {
                    parse.fail(sinkNode.line, "dead_letters.sink", "give either 'path' (a JSON Lines file) or 'sink' (a sink plugin), not both")
                }
                draft.deadLetters.sink = parse.stage(sinkNode, role: "dead_letters.sink", line: sinkNode.line)
            }
            if let ratio = node["max_ratio"] {
                let bounds = deadLetters["max_ratio"].numberBounds
                if let value = ratio.stringValue.flatMap(Double.init), bounds.contains(value) {
                    draft.deadLetters.maxRatio = value
                } else {
                    let got = parse.shown("max_ratio", in: parse.root["dead_letters"], ratio)
                    parse.fail(ratio.line, "dead_letters.max_ratio", "expected a number from \(ConfigKey.plain(bounds.lowerBound)) to \(ConfigKey.plain(bounds.upperBound)), got \(got)")
                }
            }
            draft.deadLetters.path = node["path"]?.stringValue
            if let max = parse.integer(deadLetters["max"], in: node, path: "dead_letters.max") { draft.deadLetters.maxRecords = max }
        },
        Row(key: ConfigKey("retry", default: "`{attempts: \(RetryPolicy().attempts), initial_delay_ms: \(RetryPolicy().initialDelayMilliseconds), max_delay_ms: \(RetryPolicy().maxDelayMilliseconds)}`",
            "transient errors of source reads and sink writes: retry *n* waits a random time in [½, 1] × min(initial · 2ⁿ⁻¹, max)"
        )) { draft, parse in
            guard let node = parse.expanded("retry") else { return }
            parse.rejectUnknown(node, retry, path: "retry")
            if let value = parse.integer(retry["attempts"], in: node, path: "retry.attempts") { draft.retry.attempts = value }
            if let value = parse.integer(retry["initial_delay_ms"], in: node, path: "retry.initial_delay_ms") {
                draft.retry.initialDelayMilliseconds = value
            }
            if let value = parse.integer(retry["max_delay_ms"], in: node, path: "retry.max_delay_ms") { draft.retry.maxDelayMilliseconds = value }
        },
        Row(key: ConfigKey("schedule", default: "—", "a cron schedule (UTC) `ferry serve` uses when the daemon file gives this pipeline none; `ferry run` ignores it")) { draft, parse in
            draft.schedule = parse.expanded("schedule")?.stringValue
            // Checked here, not first by `ferry serve`: a schedule that cannot
            // fire is a mistake in this file, at this line.
            if let schedule = draft.schedule, let node = parse.root["schedule"] {
                do {
                    _ = try CronSchedule(schedule)
                } catch {
                    parse.fail(node.line, "schedule", "\(error)")
                }
            }
        },
        Row(key: ConfigKey("deletes", default: "`ignore`",
            "`propagate`: after each completed run (not a dry run, not `--limit`, not a shard), repair the target as `ferry repair` does: write what differs and delete the records the source no longer has, up to `max_deletes`")) { draft, parse in
            guard let node = parse.expanded("deletes") else { return }
            draft.deletesLine = node.line
            if let name = node.stringValue, let policy = DeletePolicy(rawValue: name) {
                draft.deletes = policy
            } else {
                parse.fail(node.line, "deletes", "must be ignore or propagate, got \(parse.shown("deletes", node))")
            }
        },
        Row(key: ConfigKey("max_deletes", default: "\(DeletePolicy.defaultMaxDeletes)", bounds: .integer(0...PipelineConfig.Bounds.maxDeletes),
            "with `deletes: propagate`, the most records one run deletes; with more extra records it deletes none and says so")) { draft, parse in
            if let value = parse.integer(topLevel["max_deletes"]) { draft.maxDeletes = value }
        },
        Row(key: ConfigKey("tests", default: "—", "for `ferry test`")) { draft, parse in
            draft.tests = parse.root["tests"]
        },
    ]
}
