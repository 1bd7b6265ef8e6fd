import ArgumentParser
import FerryCore

struct TestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run the `tests:` declared in pipeline files through their transforms and compare the output.",
        discussion: """
            Each test feeds `input` records to the pipeline's transforms (all, or the indexes in `transforms`) and \
            checks `expect` (the output records, field by field), `expect_dropped` and `expect_dead_lettered`. \
            Exits 1 if a test fails, 2 if a file is invalid.
            """)

    @Argument(help: "Pipeline files with a `tests:` block.")
    var pipelines: [String]

    @OptionGroup var plugins: PluginOptions
    @OptionGroup var logging: LogOptions

    func run() throws {
        var passed = 0
        var failed = 0
        for path in pipelines {
            let plan = try loadPlan(path, plugins: plugins)
            let tests: [TransformTestCase]
            do {
                tests = try TransformTestCase.parse(plan.pipeline.tests, pipeline: plan.pipeline)
            } catch {
                for problem in error.errors { printError("error: \(problem)") }
                throw FerryExit.invalid
            }
            if tests.isEmpty { print("\(path): no tests") }
            for outcome in TransformTestRunner(plan: plan, logger: logging.makeLogger()).run(tests) {
                if outcome.passed {
                    passed += 1
                    print("ok    \(path):\(outcome.line): \(outcome.name)")
                } else {
                    failed += 1
                    print("FAIL  \(path):\(outcome.line): \(outcome.name)")
                    for failure in outcome.failures { print("        \(failure)") }
                }
            }
        }
        print("\(passed) passed, \(failed) failed")
        if failed > 0 { throw FerryExit.runFailed }
    }
}
