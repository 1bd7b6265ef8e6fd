import ArgumentParser
import FerryCore
import FerryPluginKit
import Foundation

/// Options `ferry diff` and `ferry repair` share.
struct DiffArguments: ParsableArguments {
    @Argument(help: "The pipeline file (YAML).")
    var pipeline: String

    @Option(help: "How to compare: auto (digests where both plugins can, else read), digest, or read.")
    var method: String = "auto"

    @Option(help: ArgumentHelp("How many missing, extra and changed records to show, of each.", valueName: "N"))
    var sample: Int = 10

    @Option(name: .customLong("ignore-field"), help: ArgumentHelp("A field never compared (repeatable).", valueName: "NAME"))
    var ignoredFields: [String] = []

    @Option(help: "Report format: text or json.")
    var output: String = "text"

    @OptionGroup var state: StateOptions
    @OptionGroup var plugins: PluginOptions
    @OptionGroup var logging: LogOptions

    func validate() throws {
        guard DiffOptions.Method(rawValue: method) != nil else { throw ValidationError("--method must be auto, digest or read") }
        if sample < 0 { throw ValidationError("--sample must be 0 or more") }
        if output != "text" && output != "json" { throw ValidationError("--output must be text or json") }
    }

    /// Loads the pipeline, compares (and repairs), prints the report.
    func run(repair: RepairOptions?) throws -> DiffReport {
        let plan = try loadPlan(pipeline, plugins: plugins)
        let launcher = state.launcher
        let store = repair.map { !$0.dryRun } == true ? try launcher.store(for: plan) : nil
        let options = DiffOptions(
            method: DiffOptions.Method(rawValue: method) ?? .auto, sampleSize: sample, ignoredFields: ignoredFields, repair: repair)
        let runner = DiffRunner(
            plan: plan, options: options, logger: logging.makeLogger(), store: store,
            deadLetterPath: launcher.locations(of: plan).deadLetterPath)
        let report = runner.run()
        if output == "json" {
            print(report.jsonValue().jsonText)
        } else {
            print(DiffReportFormatter.text(report))
        }
        if let failure = report.failure {
            if output == "json" { printError("error: \(failure.description)") }
            throw failure.kind == .config ? FerryExit.invalid : FerryExit.diffFailed
        }
        return report
    }
}

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare what a pipeline's source would produce with what its sink's target holds, by key.",
        discussion: """
            Reads the source through the pipeline's transforms, as a run would, and the target through the sink \
            (plugins with read-back, ABI 1.1), and reports keys missing from the target, keys only the target has, \
            and records whose fields differ. Where source and sink share a digest scheme and there are no transforms, \
            both sides hash their records per key bucket where the data lives and only differing buckets are read. \
            Changes nothing. Exit status: 0 equal, 1 different, 2 invalid pipeline or a pair that cannot be compared, \
            4 a plugin or system failure.
            """)

    @OptionGroup var arguments: DiffArguments

    /// Set by `ferry serve` for a diff it starts: die with the daemon, and name
    /// the plugin of a crash on this fd (docs/run-protocol.md's crash line).
    @Option(help: .hidden)
    var crashFd: Int32?

    func run() throws {
        if let crashFd { try enterDaemonChild(crashFd: crashFd, failure: FerryExit.diffFailed) }
        let report = try arguments.run(repair: nil)
        if !report.isEqual { throw FerryExit.different }
    }
}

struct RepairCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repair",
        abstract: "Bring a pipeline's target in line with its source: write what is missing or different, delete extras.",
        discussion: """
            Compares as ferry diff does, then writes missing and changed records through the sink's normal write path \
            (rejects go to the dead letters) and deletes the target's extra records by key, but only when there are no \
            more of them than --max-deletes (default 0: it deletes nothing and says how many it left). It takes the \
            pipeline's run lock while it writes. Exit status: 0 the target now matches (with --dry-run: would match), 1 something was left \
            (deletes refused, records rejected, a source record without its key), 2 invalid, 4 a plugin or system failure.
            """)

    @OptionGroup var arguments: DiffArguments

    @Flag(help: "Show what it would write and delete; change nothing.")
    var dryRun = false

    @Option(help: ArgumentHelp("Delete at most N extra records; with more, delete none.", valueName: "N"))
    var maxDeletes: Int = 0

    func validate() throws {
        if maxDeletes < 0 { throw ValidationError("--max-deletes must be 0 or more") }
    }

    func run() throws {
        let report = try arguments.run(repair: RepairOptions(dryRun: dryRun, maxDeletes: maxDeletes))
        if !DiffReportFormatter.repairedEverything(report) { throw FerryExit.different }
    }
}
