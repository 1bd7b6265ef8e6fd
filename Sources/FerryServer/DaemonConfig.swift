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
///     max_memory_mb: 2048                 # optional: RLIMIT_DATA of each run's process
///     stall_timeout_seconds: 600          # optional: a run without progress this long is stopped
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
        /// A run's memory limit in MB (RLIMIT_DATA of its process); nil: none.
        public var maxMemoryMB: Int?
        /// A run with no record read, written or committed for this long is stopped; nil: never.
        public var stallTimeoutSeconds: Int?
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

    /// The daemon file's key tables: the top level and one entry of `pipelines:`.
    public static var keyTables: [ConfigKeyTable] { [DaemonKeys.topLevel, DaemonKeys.pipelineEntry] }

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
        let root: ConfigNode?
        do {
            root = try ConfigNode.parse(yaml: yaml, file: file)
        } catch {
            throw ConfigErrors(errors: [error])
        }
        guard case .mapping(let entries, _)? = root else {
            throw ConfigErrors(errors: [ConfigError(file: file, line: root?.line, "a daemon file is a mapping with `pipelines:` and settings")])
        }
        var config = DaemonConfig(file: file)
        let parse = DaemonParse(file: file, environment: environment)
        for (key, keyLine, value) in entries {
            guard let row = DaemonKeys.row(key) else {
                parse.fail(keyLine, key, "unknown key (known: \(DaemonKeys.topLevel.knownList))")
                continue
            }
            row.read(&config, value, parse)
        }
        if !entries.contains(where: { $0.key == "pipelines" }) { parse.fail(root?.line, "pipelines", "required") }
        guard parse.errors.isEmpty else { throw ConfigErrors(errors: parse.errors) }
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
