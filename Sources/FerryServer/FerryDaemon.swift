import FerryCore
import FerryPostgresStore
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// `ferry serve`: loads every pipeline up front (refusing to start on any
/// error), then runs the HTTP API, the scheduler and the shutdown drainer in
/// one ServiceGroup. SIGTERM/SIGINT: the drainer stops runs at a committed
/// checkpoint, the scheduler stops, the HTTP server finishes open requests.
public struct FerryDaemon: Sendable {
    public let config: DaemonConfig
    public let plans: [String: PipelinePlan]
    /// Each scheduled pipeline's schedule: the daemon file's, else the pipeline file's own `schedule:` (UTC).
    public let schedules: [String: CronSchedule]
    /// Each pipeline's limits on its child run (`max_memory_mb`, `stall_timeout_seconds`).
    public var limits: [String: RunLimits] = [:]
    let token: String?
    let catalogFailures: Int
    /// The plugin folders the pipelines were resolved from; a child run gets the same.
    var pluginDirectories: [String] = []
    /// What plugin files printed while loading (`PluginCatalog.loadWarnings`), logged at start.
    var loadWarnings: [String] = []

    /// Loads the daemon file, its pipelines and their plugins: every problem, with file and line.
    public static func load(configPath: String, pluginDirectories: [String] = []) throws(ConfigErrors) -> FerryDaemon {
        let config = try DaemonConfig.load(path: configPath)
        let directories = PluginCatalog.defaultDirectories(explicit: pluginDirectories.isEmpty ? config.pluginDirectories : pluginDirectories)
        let catalog = PluginCatalog(directories: directories)
        var plans: [String: PipelinePlan] = [:]
        var schedules: [String: CronSchedule] = [:]
        var limits: [String: RunLimits] = [:]
        var errors: [ConfigError] = []
        for entry in config.pipelines {
            do {
                let pipeline = try PipelineLoader().load(path: entry.file)
                let plan = try PipelinePlan.resolve(pipeline, catalog: catalog)
                if let other = plans[pipeline.name] {
                    errors.append(ConfigError(file: config.file, line: entry.line, "pipeline name '\(pipeline.name)' is used by both \(other.pipeline.file) and \(entry.file)"))
                }
                plans[pipeline.name] = plan
                if entry.maxMemoryMB != nil || entry.stallTimeoutSeconds != nil {
                    limits[pipeline.name] = RunLimits(maxMemoryMB: entry.maxMemoryMB, stallTimeoutSeconds: entry.stallTimeoutSeconds)
                }
                if let schedule = entry.schedule {
                    schedules[pipeline.name] = schedule
                } else if let expression = pipeline.schedule {
                    do {
                        schedules[pipeline.name] = try CronSchedule(expression)
                    } catch {
                        errors.append(ConfigError(file: pipeline.file, field: "schedule", "\(error)"))
                    }
                }
            } catch {
                errors += error.errors
            }
        }
        let token: String?
        do {
            token = try config.apiToken()
        } catch let error as ConfigErrors {
            throw error
        } catch {
            throw ConfigErrors(errors: [ConfigError(file: config.file, "\(error)")])
        }
        guard errors.isEmpty else { throw ConfigErrors(errors: errors) }
        var daemon = FerryDaemon(config: config, plans: plans, schedules: schedules, token: token, catalogFailures: catalog.failures.count)
        daemon.loadWarnings = catalog.loadWarnings
        daemon.pluginDirectories = directories
        daemon.limits = limits
        return daemon
    }

    /// How a child run is started: this same binary (never a shell, never a
    /// lookup on PATH), with the daemon's plugin folders, state directory and
    /// log level; the state store setting goes in the environment, where `ps`
    /// does not show a password.
    func childCommand(logLevel: Logger.Level) -> ChildProcessRun.Command? {
        guard let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        var arguments = ["--output", "json", "--no-progress", "--protocol-fd", "\(ChildRunProcess.protocolFD)", "--log-level", logLevel.rawValue]
        arguments += pluginArguments
        if let directory = config.stateDirectory { arguments += ["--state-dir", directory] }
        var environment = ProcessInfo.processInfo.environment
        environment[ChildRunProcess.parentVariable] = "\(getpid())"
        environment["FERRY_STATE_STORE"] = config.stateStore?.setting
        // A crash is reported by the daemon; a backtrace of the child would only slow its exit.
        if environment["SWIFT_BACKTRACE"] == nil { environment["SWIFT_BACKTRACE"] = "enable=no" }
        return ChildProcessRun.Command(executable: executable, arguments: arguments, environment: environment)
    }

    /// How a diff's child is started: as a run's (`childCommand`), with the
    /// options `ferry diff` takes; the per-diff ones come after the pipeline file.
    func diffCommand(logLevel: Logger.Level) -> ChildProcessRun.Command? {
        guard var command = childCommand(logLevel: logLevel) else { return nil }
        var arguments = ["--output", "json", "--crash-fd", "\(ChildRunProcess.protocolFD)", "--log-level", logLevel.rawValue]
        arguments += pluginArguments
        if let directory = config.stateDirectory { arguments += ["--state-dir", directory] }
        command.arguments = arguments
        return command
    }

    /// `--plugins DIR` for each of the daemon's plugin folders, for its children.
    private var pluginArguments: [String] { pluginDirectories.flatMap { ["--plugins", $0] } }

    /// How a readiness check's child is started: as a run's (`childCommand`),
    /// with the options `ferry validate` takes after its own.
    func checkCommand(logLevel: Logger.Level) -> ChildProcessRun.Command? {
        guard var command = childCommand(logLevel: logLevel) else { return nil }
        command.arguments = ["--log-level", logLevel.rawValue] + pluginArguments
        return command
    }

    /// Runs until SIGTERM or SIGINT; returns after a graceful shutdown.
    public func run(logger: Logger, isolation: RunIsolation = .process) async throws {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Runs last minutes to hours, not the request latencies the default buckets are for.
        factory.durationHistogramBuckets["ferry_run_duration_seconds"] = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600]
            .map { Duration.seconds($0) }
        MetricsSystem.bootstrap(factory)
        let metrics = ServerMetrics(registry: registry)
        metrics.pluginLoadFailures.increment(by: catalogFailures)
        for warning in loadWarnings { logger.warning("\(warning)") }
        plans.keys.forEach(metrics.register(pipeline:))

        let locks: (any RunLocks)? = config.stateStore.map { PostgresRunLocks(dsn: $0, replica: config.replicaID) }
        let command = isolation == .process ? childCommand(logLevel: logger.logLevel) : nil
        if isolation == .process && command == nil {
            logger.warning("cannot find this executable (/proc/self/exe): runs go on threads of the daemon, without isolation")
        }
        let runs = RunRegistry(
            pipelines: plans, launcher: RunLauncher(stateDirectory: config.stateDirectory, stateStore: config.stateStore?.setting),
            locks: locks, isolation: isolation, childCommand: command,
            diffCommand: isolation == .process ? diffCommand(logLevel: logger.logLevel) : nil, limits: limits, gracePeriod: config.gracePeriodSeconds,
            history: config.runHistory, logger: logger, metrics: metrics)
        let heartbeat = Heartbeat()
        let scheduler = Scheduler(schedules: schedules.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, registry: runs, locks: locks, metrics: metrics, heartbeat: heartbeat, logger: logger)
        let readiness = ReadinessProbe(
            registry: runs, timeout: config.readinessTimeoutSeconds, logger: logger,
            childCommand: isolation == .process ? checkCommand(logLevel: logger.logLevel) : nil)
        let router = APIRoutes.router(
            .init(
                registry: runs, scheduler: scheduler, metrics: metrics, readiness: readiness, heartbeat: heartbeat,
                token: BearerToken(token), config: config))
        let limits = config.connectionLimits
        let budget = FileDescriptorBudget.claim(requestedConnections: limits.maxConnections)
        logger.info(
            "file descriptors",
            metadata: [
                "fd_limit_at_start": "\(budget.before)", "fd_limit": "\(budget.limit)", "fd_hard_limit": "\(budget.hard)",
                "max_connections": "\(budget.connectionCap)", "fds_kept_for_runs": "\(budget.reserved)",
                "header_timeout_seconds": "\(limits.headerTimeoutSeconds)", "idle_timeout_seconds": "\(limits.idleTimeoutSeconds)",
                "max_body_bytes": "\(limits.maxBodyBytes)",
            ])
        if budget.connectionCap < limits.maxConnections {
            logger.warning(
                "max_connections \(limits.maxConnections) lowered to \(budget.connectionCap): half of the \(budget.limit) file descriptors stay for runs")
        }
        let app = Application(
            router: router,
            server: .guardedHTTP1(limits, limiter: ConnectionLimiter(cap: budget.connectionCap)),
            // A deep accept queue (the kernel caps it at net.core.somaxconn): during a burst of
            // connections a probe's waits its turn instead of being dropped and retried a second later.
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: "ferry", backlog: 4096),
            onServerRunning: { channel in
                logger.info("listening", metadata: ["address": "\(channel.localAddress?.description ?? "?")"])
            },
            logger: logger)
        if token == nil {
            logger.warning("no API token configured (\(config.tokenEnvironmentVariable) or api_token_file): POST endpoints answer 401")
        }
        logger.info(
            "ferry serve starting",
            metadata: [
                "pipelines": "\(plans.keys.sorted().joined(separator: ","))", "scheduled": "\(schedules.count)", "config": "\(config.file)",
                "state": "\(config.stateStore?.description ?? config.stateDirectory ?? "files beside each pipeline")",
                "replica": "\(config.replicaID)", "isolation": "\(runs.isolation.rawValue)",
            ])
        // Shutdown runs in reverse: drainer first, then the scheduler, then HTTP.
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: app),
                    .init(service: scheduler),
                    .init(service: RunDrainer(registry: runs, gracePeriod: config.gracePeriodSeconds, logger: logger)),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
        logger.info("ferry serve stopped")
    }
}
