import FerryCore
import FerryPostgresStore
import Foundation

/// One parse of a daemon file: where relative paths start, the environment
/// `${VAR}` reads, the errors so far and the value checks keys share.
final class DaemonParse {
    let file: String
    let environment: [String: String]
    private let base: URL
    private(set) var errors: [ConfigError] = []

    init(file: String, environment: [String: String]) {
        self.file = file
        self.environment = environment
        base = URL(fileURLWithPath: file).deletingLastPathComponent()
    }

    func fail(_ line: Int?, _ field: String?, _ message: String) {
        errors.append(ConfigError(file: file, line: line, field: field, message))
    }

    func resolve(_ path: String) -> String {
        path.hasPrefix("/") ? path : base.appendingPathComponent(path).standardizedFileURL.path
    }

    /// Bounded above too: `1e300` or `inf` must be an error here, not a trap
    /// where the value becomes an Int or a deadline.
    func number(_ node: ConfigNode, _ field: String, _ key: ConfigKey) -> Double? {
        let bounds = key.numberBounds
        guard let text = node.stringValue, let value = Double(text), value.isFinite, bounds.contains(value) else {
            fail(node.line, field, "expected a number from \(bounds.lowerBound) to \(bounds.upperBound)")
            return nil
        }
        return value
    }

    /// A whole number within the key's bounds; `wholeNumbers` also takes one
    /// written as a number (`30.0`).
    func count(_ node: ConfigNode, _ field: String, _ key: ConfigKey, wholeNumbers: Bool = false) -> Int? {
        let bounds = key.integerBounds
        let text = node.stringValue ?? ""
        var value = Int(text)
        if value == nil, wholeNumbers, let number = Double(text), number.isFinite, number == number.rounded(), abs(number) < 1e15 {
            value = Int(number)
        }
        guard let value, bounds.contains(value) else {
            fail(node.line, field, "expected a whole number from \(bounds.lowerBound) to \(bounds.upperBound)")
            return nil
        }
        return value
    }
}

/// The daemon file's keys: bounds, defaults and the docs' rows, and how each
/// top-level key is read. docs/08-quick-reference.md lists them in this order.
enum DaemonKeys {
    struct Row: Sendable {
        let key: ConfigKey
        let read: @Sendable (inout DaemonConfig, ConfigNode, DaemonParse) -> Void
    }

    static let topLevel = ConfigKeyTable("daemon", rows.map(\.key))

    static func row(_ name: String) -> Row? { rowsByName[name] }
    private static let rowsByName = Dictionary(rows.map { ($0.key.name, $0) }, uniquingKeysWith: { first, _ in first })

    /// One entry of `pipelines:`.
    static let pipelineEntry = ConfigKeyTable("daemon.pipelines", [
        ConfigKey("file", default: "—", "a pipeline file, relative to the daemon file; `file:` or `dir:` is required"),
        ConfigKey("dir", default: "—", "every `*.yaml`/`*.yml` in this folder, each on its own file's `schedule:` if it has one, else on triggers only"),
        ConfigKey("schedule", default: "the file's own `schedule:`", "a cron schedule for this `file:` (not for a `dir:`)"),
        ConfigKey("timezone", default: "`UTC`", "the IANA time zone the schedule is read in"),
        ConfigKey("max_memory_mb", default: "— (no limit)", bounds: .integer(16...1_048_576),
            "a run's memory limit in MB (RLIMIT_DATA of its process); past it the run ends `crashed`"),
        ConfigKey("stall_timeout_seconds", default: "— (none)", bounds: .integer(1...86_400),
            "a run with no record read, written or committed for this long is stopped (`stalled`)"),
    ])

    private static let defaults = DaemonConfig(file: "")

    static let rows: [Row] = [
        Row(key: ConfigKey("listen", default: "`\(defaults.host):\(defaults.port)`", "`host:port`; port 0 picks a free port (logged as `listening`)")) { config, value, parse in
            guard let text = value.stringValue, let colon = text.lastIndex(of: ":"),
                let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port), colon != text.startIndex
            else {
                parse.fail(value.line, "listen", "expected host:port, e.g. 0.0.0.0:8080")
                return
            }
            config.host = String(text[..<colon])
            config.port = port
        },
        Row(key: ConfigKey("pipelines", default: "(required)",
            "list of `{file: PATH, schedule: CRON, timezone: ZONE}` or `{dir: PATH}` (every `*.yaml`/`*.yml` in it, each on its own file's `schedule:` if it has one, else on triggers only); paths relative to the daemon file")) { config, value, parse in
            guard case .sequence(let items, _) = value, !items.isEmpty else {
                parse.fail(value.line, "pipelines", "expected a non-empty list of {file: …} or {dir: …}")
                return
            }
            for (index, item) in items.enumerated() {
                config.pipelines += pipelines(item, field: "pipelines[\(index)]", parse)
            }
        },
        Row(key: ConfigKey("state_dir", default: "`$FERRY_STATE_DIR`, else `.ferry/` beside each pipeline", "checkpoints (and default dead-letter files)")) { config, value, parse in
            if let text = value.stringValue { config.stateDirectory = parse.resolve(text) } else { parse.fail(value.line, "state_dir", "expected a path") }
        },
        Row(key: ConfigKey("state_store", default: "— (files)",
            "a PostgreSQL DSN (`${VAR}` allowed): checkpoints in `ferry_state`, run locks and schedule tick claims shared by replicas")) { config, value, parse in
            // `${VAR}` is read from the environment, so the DSN (and its password) stays in a Secret.
            guard let text = value.stringValue else {
                parse.fail(value.line, "state_store", "expected a PostgreSQL DSN, e.g. ${FERRY_STATE_DSN}")
                return
            }
            do {
                let expanded = try Interpolation(environment: parse.environment).expand(text)
                guard PostgresDSN.looksLikeDSN(expanded) else {
                    parse.fail(value.line, "state_store", "expected a PostgreSQL DSN (postgresql://… or host=… dbname=…); checkpoint files go in state_dir")
                    return
                }
                config.stateStore = try PostgresDSN(parsing: expanded)
            } catch {
                parse.fail(value.line, "state_store", "\(error)")
            }
        },
        Row(key: ConfigKey("replica_id", default: "`hostname-pid`", "who fired a tick, in `ferry_schedule_fires` (`${POD_NAME}`)")) { config, value, parse in
            do {
                if let text = value.stringValue { config.replicaID = try Interpolation(environment: parse.environment).expand(text) }
            } catch {
                parse.fail(value.line, "replica_id", "\(error)")
            }
        },
        Row(key: ConfigKey("plugins", default: "`$FERRY_PLUGIN_PATH`, else beside the executable", "a path or a list of paths")) { config, value, parse in
            switch value {
            case .scalar(let text, _, _): config.pluginDirectories = [parse.resolve(text)]
            case .sequence(let items, _): config.pluginDirectories = items.compactMap(\.stringValue).map(parse.resolve)
            default: parse.fail(value.line, "plugins", "expected a path or a list of paths")
            }
        },
        Row(key: ConfigKey("api_token_env", default: "`\(defaults.tokenEnvironmentVariable)`", "variable holding the API token")) { config, value, parse in
            if let text = value.stringValue, !text.isEmpty { config.tokenEnvironmentVariable = text } else { parse.fail(value.line, "api_token_env", "expected a variable name") }
        },
        Row(key: ConfigKey("api_token_file", default: "—", "file holding the token, used when the variable is unset or empty")) { config, value, parse in
            if let text = value.stringValue { config.tokenFile = parse.resolve(text) } else { parse.fail(value.line, "api_token_file", "expected a path") }
        },
        Row(key: ConfigKey("grace_period_seconds", default: ConfigKey.plain(defaults.gracePeriodSeconds), bounds: .number(1...86_400),
            "SIGTERM: how long runs get to stop at a committed checkpoint")) { config, value, parse in
            if let seconds = parse.number(value, "grace_period_seconds", topLevel["grace_period_seconds"]) { config.gracePeriodSeconds = seconds }
        },
        Row(key: ConfigKey("readiness_timeout_seconds", default: ConfigKey.plain(defaults.readinessTimeoutSeconds), bounds: .number(0.1...86_400),
            "per plugin open/check in `/readyz`")) { config, value, parse in
            if let seconds = parse.number(value, "readiness_timeout_seconds", topLevel["readiness_timeout_seconds"]) { config.readinessTimeoutSeconds = seconds }
        },
        Row(key: ConfigKey("run_history", default: "\(defaults.runHistory)", bounds: .integer(1...1_000_000),
            "finished runs kept for `GET /runs`")) { config, value, parse in
            if let count = parse.count(value, "run_history", topLevel["run_history"]) { config.runHistory = count }
        },
        Row(key: ConfigKey("header_timeout_seconds", default: ConfigKey.plain(defaults.connectionLimits.headerTimeoutSeconds), bounds: .number(0.1...86_400),
            "a request's head must be complete within this, or the connection is closed")) { config, value, parse in
            if let seconds = parse.number(value, "header_timeout_seconds", topLevel["header_timeout_seconds"]) { config.connectionLimits.headerTimeoutSeconds = seconds }
        },
        Row(key: ConfigKey("idle_timeout_seconds", default: ConfigKey.plain(defaults.connectionLimits.idleTimeoutSeconds), bounds: .number(0.1...86_400),
            "a keep-alive connection with no request is closed after this")) { config, value, parse in
            if let seconds = parse.number(value, "idle_timeout_seconds", topLevel["idle_timeout_seconds"]) { config.connectionLimits.idleTimeoutSeconds = seconds }
        },
        Row(key: ConfigKey("max_connections", default: "\(defaults.connectionLimits.maxConnections)", bounds: .integer(1...1_000_000),
            "HTTP connections held at once, at most half the file-descriptor limit; over it, a newcomer replaces the connection stalled longest without a request, else is closed")) { config, value, parse in
            if let count = parse.count(value, "max_connections", topLevel["max_connections"]) { config.connectionLimits.maxConnections = count }
        },
        Row(key: ConfigKey("max_body_bytes", default: "\(defaults.connectionLimits.maxBodyBytes)", bounds: .integer(1024...(1 << 30)),
            "larger request bodies get 413 with a JSON error")) { config, value, parse in
            if let count = parse.count(value, "max_body_bytes", topLevel["max_body_bytes"]) { config.connectionLimits.maxBodyBytes = count }
        },
    ]

    /// The pipelines one entry of `pipelines:` names: one `file:`, or every YAML file in a `dir:`.
    static func pipelines(_ item: ConfigNode, field: String, _ parse: DaemonParse) -> [DaemonConfig.PipelineEntry] {
        guard case .mapping = item else {
            parse.fail(item.line, field, "expected a mapping with `file:` or `dir:`")
            return []
        }
        for entry in pipelineEntry.unknown(in: item.entries) {
            parse.fail(item.line, "\(field).\(entry.key)", "unknown key (known: \(pipelineEntry.names.joined(separator: ", ")))")
        }
        var zone = TimeZone(identifier: "UTC")!
        if let tz = item["timezone"] {
            if let name = tz.stringValue, let found = TimeZone(identifier: name) {
                zone = found
            } else {
                parse.fail(tz.line, "\(field).timezone", "unknown time zone '\(tz.stringValue ?? "")' (use an IANA name such as Europe/Berlin)")
            }
        }
        var schedule: CronSchedule?
        if let expression = item["schedule"] {
            do {
                schedule = try CronSchedule(expression.stringValue ?? "", timeZone: zone)
            } catch {
                parse.fail(expression.line, "\(field).schedule", "\(error)")
            }
        }
        let maxMemoryMB = item["max_memory_mb"].flatMap { parse.count($0, "\(field).max_memory_mb", pipelineEntry["max_memory_mb"]) }
        let stallTimeoutSeconds = item["stall_timeout_seconds"].flatMap {
            parse.count($0, "\(field).stall_timeout_seconds", pipelineEntry["stall_timeout_seconds"], wholeNumbers: true)
        }
        func entry(_ file: String, _ schedule: CronSchedule?) -> DaemonConfig.PipelineEntry {
            DaemonConfig.PipelineEntry(
                file: file, schedule: schedule, line: item.line, maxMemoryMB: maxMemoryMB, stallTimeoutSeconds: stallTimeoutSeconds)
        }
        if let path = item["file"]?.stringValue {
            return [entry(parse.resolve(path), schedule)]
        }
        guard let directory = item["dir"]?.stringValue else {
            parse.fail(item.line, field, "expected `file:` or `dir:`")
            return []
        }
        if schedule != nil { parse.fail(item.line, "\(field).schedule", "a schedule belongs to one `file:`, not a `dir:`") }
        let resolved = parse.resolve(directory)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: resolved) else {
            parse.fail(item.line, "\(field).dir", "cannot list \(resolved)")
            return []
        }
        return names.sorted().filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.map { entry("\(resolved)/\($0)", nil) }
    }
}
