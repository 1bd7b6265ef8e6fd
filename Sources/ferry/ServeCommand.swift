import ArgumentParser
import FerryCore
import FerryServer
import Logging

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the daemon: HTTP API, cron schedules, manual triggers, health, readiness and metrics.",
        discussion: """
            Reads the daemon file (listen address, pipelines with optional schedules, state directory, API token \
            source); every file is checked before anything starts, and an invalid one exits 2 with file/line errors. \
            Logs are JSON lines on stderr. SIGTERM or SIGINT: refuse new runs, stop running ones at a committed \
            checkpoint within grace_period_seconds (default 25), exit 0. Network limits (daemon file): \
            header_timeout_seconds (10), idle_timeout_seconds (60), max_connections (512, at most half the \
            file-descriptor limit, which is raised to the hard limit at start), max_body_bytes (1 MiB, else 413). \
            Endpoints: docs/openapi.yaml.
            """)

    @Option(help: ArgumentHelp("The daemon file (YAML).", valueName: "FILE"))
    var config: String

    @OptionGroup var plugins: PluginOptions

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(help: ArgumentHelp("Where runs execute: process (a child ferry per run; a crashing plugin ends only its run) or thread (inside the daemon).", valueName: "MODE"))
    var runIsolation: String = "process"

    func validate() throws {
        guard RunIsolation(rawValue: runIsolation) != nil else { throw ValidationError("--run-isolation must be process or thread") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = JSONLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
        let daemon: FerryDaemon
        do {
            daemon = try FerryDaemon.load(configPath: config, pluginDirectories: plugins.directories)
        } catch {
            for problem in error.errors { printError("error: \(problem)") }
            throw FerryExit.invalid
        }
        try await daemon.run(logger: Logger(label: "ferry.serve"), isolation: RunIsolation(rawValue: runIsolation) ?? .process)
    }
}
