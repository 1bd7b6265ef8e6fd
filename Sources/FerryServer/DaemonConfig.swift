import FerryCore
import FerryPostgresStore
import Foundation

/// The daemon file `ferry serve --config` reads: where to listen, which
/// pipelines (each with an optional schedule), where state goes, the API token.
///
/// ```yaml
/// listen: 0.0.0.0:8080
/// pipelines:
///   - file: pipelines/products.yaml      # relative to this file
///     schedule: "*/15 * * * *"
///     timezone: Europe/Berlin             # default UTC
///   - dir: pipelines/manual/              # every *.yaml in it, no schedule
/// state_dir: /var/lib/ferry/state         # default: $FERRY_STATE_DIR, else .ferry/ beside each pipeline
/// state_store: ${FERRY_STATE_DSN}          # PostgreSQL instead: shared checkpoints + run locks for replicas
/// replica_id: ${POD_NAME}                  # default: hostname-pid; recorded with each schedule tick claimed
/// plugins: [/opt/ferry/plugins]           # default: $FERRY_PLUGIN_PATH, else beside the executable
/// api_token_env: FERRY_API_TOKEN          # default
/// api_token_file: /var/run/secrets/ferry/token
/// grace_period_seconds: 25
/// readiness_timeout_seconds: 5
/// run_history: 200
/// header_timeout_seconds: 10               # a request's head must arrive within this
/// idle_timeout_seconds: 60                 # a keep-alive connection with no request is closed after this
/// max_connections: 512                     # at most half the file-descriptor limit
/// max_body_bytes: 1048576                  # larger request bodies get 413
/// ```
public struct DaemonConfig: Sendable {
    public struct PipelineEntry: Sendable {
        public var file: String
        public var schedule: CronSchedule?
        public var line: Int
    }

    public var file: String
    public var host = "127.0.0.1"
    public var port = 8080
    public var pipelines: [PipelineEntry] = []
    public var stateDirectory: String?
    /// A PostgreSQL DSN: checkpoints in a table, and runs coordinated across replicas.
    public var stateStore: PostgresDSN?
    public var replicaID = "\(ProcessInfo.processInfo.hostName)-\(getpid())"
    public var pluginDirectories: [String] = []
    public var tokenEnvironmentVariable = "FERRY_API_TOKEN"
    public var tokenFile: String?
    public var gracePeriodSeconds = 25.0
    public var readinessTimeoutSeconds = 5.0
    public var runHistory = 200
    /// The HTTP server's limits against slow or greedy clients.
    public var connectionLimits = ConnectionLimits()

    static let keys: Set<String> = [
        "listen", "pipelines", "state_dir", "state_store", "replica_id", "plugins", "api_token_env", "api_token_file", "grace_period_seconds",
        "readiness_timeout_seconds", "run_history", "header_timeout_seconds", "idle_timeout_seconds", "max_connections", "max_body_bytes",
    ]

    /// Is this YAML a daemon file (rather than a pipeline)? `ferry validate` asks.
    public static func looksLikeDaemonFile(_ yaml: String) -> Bool {
        guard case .mapping(let entries, _)? = try? ConfigNode.parse(yaml: yaml, file: "") else { return false }
        let keys = Set(entries.map(\.key))
        return keys.contains("pipelines") && !keys.contains("source") && !keys.contains("sink")
    }

    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigErrors) -> DaemonConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigErrors(errors: [ConfigError(file: path, "cannot read the daemon file")])
        }
        return try parse(yaml: String(decoding: data, as: UTF8.self), file: path, environment: environment)
    }

    public static func parse(
        yaml: String, file: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigErrors) -> DaemonConfig {
        var config = DaemonConfig(file: file)
        var errors: [ConfigError] = []
        func fail(_ line: Int?, _ field: String?, _ message: String) {
            errors.append(ConfigError(file: file, line: line, field: field, message))
        }
        let root: ConfigNode?
        do {
            root = try ConfigNode.parse(yaml: yaml, file: file)
        } catch {
            throw ConfigErrors(errors: [error])
        }
        guard case .mapping(let entries, _)? = root else {
            throw ConfigErrors(errors: [ConfigError(file: file, line: root?.line, "a daemon file is a mapping with `pipelines:` and settings")])
        }
        let base = URL(fileURLWithPath: file).deletingLastPathComponent()
        func resolve(_ path: String) -> String {
            path.hasPrefix("/") ? path : base.appendingPathComponent(path).standardizedFileURL.path
        }
        // Bounded above too: `1e300` or `inf` must be an error here, not a trap
        // where the value becomes an Int or a deadline.
        func number(_ node: ConfigNode, _ key: String, minimum: Double, maximum: Double = 86_400) -> Double? {
            guard let text = node.stringValue, let value = Double(text), value.isFinite, value >= minimum, value <= maximum else {
                fail(node.line, key, "expected a number from \(minimum) to \(maximum)")
                return nil
            }
            return value
        }
        func count(_ node: ConfigNode, _ key: String, minimum: Int, maximum: Int) -> Int? {
            guard let text = node.stringValue, let value = Int(text), value >= minimum, value <= maximum else {
                fail(node.line, key, "expected a whole number from \(minimum) to \(maximum)")
                return nil
            }
            return value
        }

        for (key, keyLine, value) in entries {
            switch key {
            case "listen":
                guard let text = value.stringValue, let colon = text.lastIndex(of: ":"),
                    let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port), colon != text.startIndex
                else {
                    fail(value.line, key, "expected host:port, e.g. 0.0.0.0:8080")
                    continue
                }
                config.host = String(text[..<colon])
                config.port = port
            case "pipelines":
                guard case .sequence(let items, _) = value, !items.isEmpty else {
                    fail(value.line, key, "expected a non-empty list of {file: …} or {dir: …}")
                    continue
                }
                for (index, item) in items.enumerated() {
                    let field = "pipelines[\(index)]"
                    guard case .mapping(let itemEntries, _) = item else {
                        fail(item.line, field, "expected a mapping with `file:` or `dir:`")
                        continue
                    }
                    let unknown = itemEntries.map(\.key).filter { !["file", "dir", "schedule", "timezone"].contains($0) }
                    for name in unknown { fail(item.line, "\(field).\(name)", "unknown key (known: file, dir, schedule, timezone)") }
                    var schedule: CronSchedule?
                    var zone = TimeZone(identifier: "UTC")!
                    if let tz = item["timezone"] {
                        if let name = tz.stringValue, let found = TimeZone(identifier: name) {
                            zone = found
                        } else {
                            fail(tz.line, "\(field).timezone", "unknown time zone '\(tz.stringValue ?? "")' (use an IANA name such as Europe/Berlin)")
                        }
                    }
                    if let expression = item["schedule"] {
                        do {
                            schedule = try CronSchedule(expression.stringValue ?? "", timeZone: zone)
                        } catch {
                            fail(expression.line, "\(field).schedule", "\(error)")
                        }
                    }
                    if let path = item["file"]?.stringValue {
                        config.pipelines.append(PipelineEntry(file: resolve(path), schedule: schedule, line: item.line))
                    } else if let directory = item["dir"]?.stringValue {
                        if schedule != nil { fail(item.line, "\(field).schedule", "a schedule belongs to one `file:`, not a `dir:`") }
                        let resolved = resolve(directory)
                        guard let names = try? FileManager.default.contentsOfDirectory(atPath: resolved) else {
                            fail(item.line, "\(field).dir", "cannot list \(resolved)")
                            continue
                        }
                        for name in names.sorted() where name.hasSuffix(".yaml") || name.hasSuffix(".yml") {
                            config.pipelines.append(PipelineEntry(file: "\(resolved)/\(name)", schedule: nil, line: item.line))
                        }
                    } else {
                        fail(item.line, field, "expected `file:` or `dir:`")
                    }
                }
            case "state_dir":
                if let text = value.stringValue { config.stateDirectory = resolve(text) } else { fail(value.line, key, "expected a path") }
            case "state_store":
                // `${VAR}` is read from the environment, so the DSN (and its password) stays in a Secret.
                guard let text = value.stringValue else {
                    fail(value.line, key, "expected a PostgreSQL DSN, e.g. ${FERRY_STATE_DSN}")
                    continue
                }
                do {
                    let expanded = try Interpolation(environment: environment).expand(text)
                    guard PostgresDSN.looksLikeDSN(expanded) else {
                        fail(value.line, key, "expected a PostgreSQL DSN (postgresql://… or host=… dbname=…); checkpoint files go in state_dir")
                        continue
                    }
                    config.stateStore = try PostgresDSN(parsing: expanded)
                } catch {
                    fail(value.line, key, "\(error)")
                }
            case "replica_id":
                do {
                    if let text = value.stringValue { config.replicaID = try Interpolation(environment: environment).expand(text) }
                } catch {
                    fail(value.line, key, "\(error)")
                }
            case "plugins":
                switch value {
                case .scalar(let text, _, _): config.pluginDirectories = [resolve(text)]
                case .sequence(let items, _): config.pluginDirectories = items.compactMap(\.stringValue).map(resolve)
                default: fail(value.line, key, "expected a path or a list of paths")
                }
            case "api_token_env":
                if let text = value.stringValue, !text.isEmpty { config.tokenEnvironmentVariable = text } else { fail(value.line, key, "expected a variable name") }
            case "api_token_file":
                if let text = value.stringValue { config.tokenFile = resolve(text) } else { fail(value.line, key, "expected a path") }
            case "grace_period_seconds":
                if let seconds = number(value, key, minimum: 1) { config.gracePeriodSeconds = seconds }
            case "readiness_timeout_seconds":
                if let seconds = number(value, key, minimum: 0.1) { config.readinessTimeoutSeconds = seconds }
            case "run_history":
                if let count = count(value, key, minimum: 1, maximum: 1_000_000) { config.runHistory = count }
            case "header_timeout_seconds":
                if let seconds = number(value, key, minimum: 0.1) { config.connectionLimits.headerTimeoutSeconds = seconds }
            case "idle_timeout_seconds":
                if let seconds = number(value, key, minimum: 0.1) { config.connectionLimits.idleTimeoutSeconds = seconds }
            case "max_connections":
                if let count = count(value, key, minimum: 1, maximum: 1_000_000) { config.connectionLimits.maxConnections = count }
            case "max_body_bytes":
                if let count = count(value, key, minimum: 1024, maximum: 1 << 30) { config.connectionLimits.maxBodyBytes = count }
            default:
                fail(keyLine, key, "unknown key (known: \(keys.sorted().joined(separator: ", ")))")
            }
        }
        if !entries.contains(where: { $0.key == "pipelines" }) { fail(root?.line, "pipelines", "required") }
        guard errors.isEmpty else { throw ConfigErrors(errors: errors) }
        return config
    }

    /// The API token: the environment variable, else the token file. Nil: POSTs are refused.
    public func apiToken(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String? {
        // A token pasted into a Secret often ends in a newline; a client never sends one.
        if let token = environment[tokenEnvironmentVariable]?.trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty {
            return token
        }
        guard let tokenFile else { return nil }
        guard let data = FileManager.default.contents(atPath: tokenFile) else {
            throw ConfigErrors(errors: [ConfigError(file: file, field: "api_token_file", "cannot read \(tokenFile)")])
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return token.isEmpty ? nil : token
    }
}
