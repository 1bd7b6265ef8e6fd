import ArgumentParser
import FerryCore
import Foundation
import FerryPostgresStore
import Logging

/// Options every command that loads plugins shares.
struct PluginOptions: ParsableArguments {
    @Option(name: .customLong("plugins"), help: ArgumentHelp("Plugin directory (repeatable, or colon-separated).", valueName: "DIR"))
    var directories: [String] = []

    /// Loads nothing until a pipeline names a plugin; print its `loadWarnings` after.
    func catalog() -> PluginCatalog {
        PluginCatalog(directories: PluginCatalog.defaultDirectories(explicit: directories))
    }

    /// Every `*.so` in the directories, loaded (for `ferry plugins`), its warnings printed.
    func scanningCatalog() -> PluginCatalog {
        let catalog = PluginCatalog.scanning(directories: PluginCatalog.defaultDirectories(explicit: directories))
        printWarnings(catalog)
        return catalog
    }
}

struct LogOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "warning"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
    }

    var level: Logger.Level { Logger.Level(rawValue: logLevel) ?? .warning }

    func makeLogger() -> Logger {
        var logger = Logger(label: "ferry") { label in StreamLogHandler.standardError(label: label) }
        logger.logLevel = level
        return logger
    }
}

func printWarnings(_ catalog: PluginCatalog) {
    for warning in catalog.loadWarnings { printError("warning: \(warning)") }
}

/// Writes to stderr without going through C's `stderr` global.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Loads and resolves a pipeline, printing every problem; exits 2 if invalid.
func loadPlan(_ path: String, plugins: PluginOptions) throws -> PipelinePlan {
    let catalog = plugins.catalog()
    defer { printWarnings(catalog) }
    do {
        let pipeline = try PipelineLoader().load(path: path)
        return try PipelinePlan.resolve(pipeline, catalog: catalog)
    } catch {
        for problem in error.errors { printError("error: \(problem)") }
        throw FerryExit.invalid
    }
}

/// Where checkpoints live, for every command that reads or writes them.
struct StateOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Checkpoint directory (default: $FERRY_STATE_DIR, else .ferry/ beside the pipeline).", valueName: "DIR"))
    var stateDir: String?

    @Option(help: ArgumentHelp("Keep checkpoints in PostgreSQL instead of files (default: $FERRY_STATE_STORE).", valueName: "DSN"))
    var stateStore: String?

    /// The store setting after the environment's default.
    var storeSetting: String? { stateStore ?? ProcessInfo.processInfo.environment[StateStores.environmentVariable] }

    var launcher: RunLauncher { RunLauncher(stateDirectory: stateDir, stateStore: storeSetting) }
}

/// The child side of a process the daemon starts (a run, a diff, a readiness
/// check): die with the daemon, and name the plugin of a crash on `crashFd`
/// (docs/run-protocol.md's crash line). A failure is printed, then `failure`.
func enterDaemonChild(crashFd: Int32, failure: ExitCode) throws {
    let parent = ProcessInfo.processInfo.environment[ChildRunProcess.parentVariable].flatMap { Int32($0) } ?? getppid()
    do {
        try ChildRunProcess.dieWithParent(expectedParent: parent)
    } catch {
        printError("error: \(error)")
        throw failure
    }
    ChildRunProcess.reportCrashes(to: crashFd)
}
