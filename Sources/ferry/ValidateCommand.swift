import ArgumentParser
import FerryCore
import FerryPluginKit
import FerryServer
import Foundation

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check pipeline files: YAML, fields, plugins, each stage's config against its plugin's schema, and that every transform opens.",
        discussion: """
            A daemon file (one with `pipelines:`) is checked with every pipeline it lists, as `ferry serve` would load it.

            With --connect, each pipeline's source is also opened, and its sink and dead-letter sink are opened and \
            checked, as the daemon's /readyz does: this connects to their servers. Exit 1 if one of them fails.
            """)

    @Argument(help: "Pipeline files (or daemon files) to check.")
    var pipelines: [String]

    @Flag(help: "Also open each source, and open and check each sink and dead-letter sink (connects to their servers).")
    var connect = false

    @Option(help: "With --connect: text, or json (one line per stage: pipeline, subject, ok, detail).")
    var output: String = "text"

    @OptionGroup var plugins: PluginOptions
    @OptionGroup var logging: LogOptions

    /// Set by `ferry serve` for its readiness checks: die with the daemon, and
    /// name the plugin of a crash on this fd (docs/run-protocol.md's crash line).
    @Option(help: .hidden)
    var crashFd: Int32?

    func validate() throws {
        if output != "text" && output != "json" { throw ValidationError("--output must be text or json") }
        if output == "json" && !connect { throw ValidationError("--output json goes with --connect") }
    }

    func run() throws {
        if let crashFd { try enterDaemonChild(crashFd: crashFd, failure: FerryExit.invalid) }
        var invalid = false
        var unreachable = false
        for path in pipelines {
            if let text = try? String(contentsOfFile: path, encoding: .utf8), DaemonConfig.looksLikeDaemonFile(text) {
                do {
                    let daemon = try FerryDaemon.load(configPath: path, pluginDirectories: plugins.directories)
                    if output == "text" { print("\(path): ok (daemon: \(daemon.plans.count) pipelines, \(daemon.schedules.count) scheduled)") }
                    // --connect on a daemon file tries every pipeline it lists, as its /readyz would.
                    for plan in daemon.plans.values.sorted(by: { $0.pipeline.name < $1.pipeline.name }) where connect {
                        if !self.connect(plan, path: plan.pipeline.file) { unreachable = true }
                    }
                } catch {
                    for problem in error.errors { printError("error: \(problem)") }
                    invalid = true
                }
                continue
            }
            do {
                let plan = try loadPlan(path, plugins: plugins)
                let problems = plan.openTransforms(logger: logging.makeLogger())
                for problem in problems { printError("error: \(problem)") }
                if !problems.isEmpty {
                    invalid = true
                    continue
                }
                let stages = ([plan.source] + plan.transforms + [plan.sink]).map { "\($0.plugin.name)" }.joined(separator: " → ")
                if output == "text" { print("\(path): ok (\(plan.pipeline.name): \(stages))") }
                if connect && !self.connect(plan, path: path) { unreachable = true }
            } catch {
                invalid = true
            }
        }
        if invalid { throw FerryExit.invalid }
        if unreachable { throw FerryExit.runFailed }
    }

    /// Tries each stage in turn and prints how it went as it goes (a reader of
    /// the JSON lines knows which stage hung or crashed: the one after the last line).
    private func connect(_ plan: PipelinePlan, path: String) -> Bool {
        var allPassed = true
        for check in plan.connectChecks(logger: logging.makeLogger()) {
            var detail: String?
            do { try check.body() } catch { detail = "\(error)" }
            if detail != nil { allPassed = false }
            if output == "json" {
                var line: [String: JSONValue] = [
                    "pipeline": .string(plan.pipeline.name), "subject": .string(check.subject), "ok": .bool(detail == nil),
                ]
                if let detail { line["detail"] = .string(detail) }
                // Unbuffered: the line must be out before the next stage can hang or crash.
                FileHandle.standardOutput.write(Data((JSONValue.object(line).jsonText + "\n").utf8))
            } else if let detail {
                printError("error: \(path): \(check.subject): \(detail)")
            } else {
                print("\(path): \(check.subject): opens\(check.runsCheck ? " and passes its check" : "")")
            }
        }
        return allPassed
    }
}
