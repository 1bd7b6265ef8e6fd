import ArgumentParser
import FerryCore

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check pipeline files: YAML, fields, plugins, each stage's config against its plugin's schema, and that every transform opens.")

    @Argument(help: "Pipeline files to check.")
    var pipelines: [String]

    @OptionGroup var plugins: PluginOptions
    @OptionGroup var logging: LogOptions

    func run() throws {
        var invalid = false
        for path in pipelines {
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
