import ArgumentParser
import FerryCore
import FerryServer
import Foundation

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check pipeline files: YAML, fields, plugins, each stage's config against its plugin's schema, and that every transform opens.",
        discussion: "A daemon file (one with `pipelines:`) is checked with every pipeline it lists, as `ferry serve` would load it.")

    @Argument(help: "Pipeline files (or daemon files) to check.")
    var pipelines: [String]

    @OptionGroup var plugins: PluginOptions
    @OptionGroup var logging: LogOptions

    func run() throws {
        var invalid = false
        for path in pipelines {
            if let text = try? String(contentsOfFile: path, encoding: .utf8), DaemonConfig.looksLikeDaemonFile(text) {
                do {
                    let daemon = try FerryDaemon.load(configPath: path, pluginDirectories: plugins.directories)
                    print("\(path): ok (daemon: \(daemon.plans.count) pipelines, \(daemon.schedules.count) scheduled)")
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
                print("\(path): ok (\(plan.pipeline.name): \(stages))")
            } catch {
                invalid = true
            }
        }
        if invalid { throw FerryExit.invalid }
    }
}
