#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Dispatch
import FerryCore
import FerryPostgresStore
import FerryPluginKit
import Foundation

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a pipeline once: read, transform, write, checkpoint.",
        discussion: """
            Ctrl-C or SIGTERM stops reading, finishes the batches in flight, saves the checkpoint and exits 130; \
            a second signal exits at once (the checkpoint stays at the last commit). --dry-run writes nothing and \
            saves no state: it shows sample records as they would be written and the sink's would-insert/update counts. \
            With deletes: propagate, a completed run is followed by a repair (see ferry repair); it exits 1 when that \
            repair left something (deletes above max_deletes, or a failure).
            """)

    @Argument(help: "The pipeline file (YAML).")
    var pipeline: String

    @Flag(help: "Read and transform, ask the sink to preview; write nothing, save no state.")
    var dryRun = false

    @Option(help: ArgumentHelp("Read and write exactly this many records (at most); a last batch cut short is not checkpointed.", valueName: "N"))
    var limit: Int?

    @Option(help: ArgumentHelp("Dry run: how many sample records to print.", valueName: "N"))
    var sample: Int = 5

    @Option(help: ArgumentHelp("Records per batch (overrides batch_size).", valueName: "N"))
    var batchSize: Int?

    @Option(help: ArgumentHelp("Parallel workers (overrides workers).", valueName: "N"))
    var workers: Int?

    @Option(help: ArgumentHelp("Read lanes: sharded sources read in parallel in this process (overrides read_lanes).", valueName: "N"))
    var readLanes: Int?

    @Option(help: ArgumentHelp("Read only shard i of N (each shard keeps its own checkpoint).", valueName: "i/N"))
    var shard: String?

    @OptionGroup var state: StateOptions

    @Option(help: "Report format: text or json.")
    var output: String = "text"

    @Flag(help: "No progress display.")
    var noProgress = false

    @OptionGroup var plugins: PluginOptions
    @OptionGroup var logging: LogOptions

    // Set by `ferry serve`, which runs each run as a child process; see docs/run-protocol.md.
    @Option(help: .hidden) var protocolFd: Int32?
    @Option(help: .hidden) var runId: String?
    @Option(help: .hidden) var maxMemoryMb: Int?

    func validate() throws {
        typealias Bounds = PipelineConfig.Bounds
        if let batchSize, !(1...Bounds.batchSize).contains(batchSize) {
            throw ValidationError("--batch-size must be from 1 to \(Bounds.batchSize)")
        }
        if let workers, !(1...Bounds.workers).contains(workers) { throw ValidationError("--workers must be from 1 to \(Bounds.workers)") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if let readLanes, !(1...Bounds.readLanes).contains(readLanes) {
            throw ValidationError("--read-lanes must be from 1 to \(Bounds.readLanes)")
        }
        if let shard, ShardSpec(parsing: shard) == nil { throw ValidationError("--shard must be i/N with 0 ≤ i < N") }
        if output != "text" && output != "json" { throw ValidationError("--output must be text or json") }
    }

    func run() throws {
        let child = try protocolFd.map { fd in try enterChildRun(fd: fd) }
        // Before the plan loads: libdispatch installs its signal handler
        // asynchronously, and a SIGTERM in that window would be lost. The
        // pipeline load gives it the time; a signal before the run exists
        // cancels the run as soon as it does.
        let stop = RunCancellation()
        let signals = SignalHandler(quiet: child != nil) { stop.cancel() }
        let plan = try loadPlan(pipeline, plugins: plugins)
        var options = RunOptions()
        options.dryRun = dryRun
        options.limit = limit
        options.sampleSize = sample
        options.batchSize = batchSize
        options.workers = workers
        options.shard = shard.flatMap(ShardSpec.init(parsing:)) ?? .whole
        options.readLanes = readLanes
        // The same refusal `read_lanes` in the file gets from validate: a
        // usage error (exit 2), which no retry of the run can fix.
        if let problem = plan.laneProblem(lanes: readLanes ?? plan.pipeline.readLanes) {
            printError("error: \(plan.pipeline.file): \(problem)")
            throw FerryExit.invalid
        }
        let runner: LanedRun
        do {
            runner = try state.launcher.launch(plan: plan, options: options, logger: child?.logger(level: logging.level) ?? logging.makeLogger())
        } catch {
            printError("error: \(error)")
            throw FerryExit.invalid
        }

        stop.attach(runner)
        // Only now: the daemon holds a cancel back until the hello, so a
        // SIGTERM always finds the handler that stops at a checkpoint.
        child?.hello(runID: runId ?? "")
        let progress = ProgressDisplay(runner: runner, enabled: !noProgress && output == "text" && child == nil)
        child?.startProgress(every: 0.2) { runner.snapshot() }
        var report = runner.run()
        progress.stop()
        report.propagation = DeletePropagation.after(
            report, plan: plan, options: options, store: try? state.launcher.store(for: plan),
            deadLetterPath: state.launcher.locations(of: plan).deadLetterPath, logger: child?.logger(level: logging.level) ?? logging.makeLogger())
        signals.stop()

        if let child {
            child.finish(report)
        } else if output == "json" {
            print(RunReportFormatter.json(report))
        } else {
            print(RunReportFormatter.text(report))
        }
        switch report.outcome {
        case .completed:
            if report.statistics.deadLettered > 0 && !dryRun { throw FerryExit.deadLettered }
            // The run did its part; the repair after it did not, and an operator should know.
            if report.propagation?.needsAttention == true { throw FerryExit.runFailed }
        case .cancelled:
            throw FerryExit.cancelled
        case .failed(let failure):
            if output == "text" && child == nil { printError("error: \(failure)") }
            throw FerryExit.runFailed
        }
    }
}

extension RunCommand {
    /// The child side of a daemon's run: die with the daemon, report crashes
    /// and everything else on the protocol fd, keep to the memory limit.
    func enterChildRun(fd: Int32) throws -> ChildRunReporter {
        let reporter = ChildRunReporter(fd: fd)
        try enterDaemonChild(crashFd: fd, failure: FerryExit.runFailed)
        do {
            if let maxMemoryMb { try ChildRunProcess.limitMemory(megabytes: maxMemoryMb) }
        } catch {
            printError("error: \(error)")
            throw FerryExit.runFailed
        }
        return reporter
    }
}

/// Holds a cancel that may come before the run it is for exists.
final class RunCancellation: @unchecked Sendable {
    private let lock = NSLock()
    private var runner: LanedRun?
    private var requested = false

    func cancel() {
        let target = lock.withLock { () -> LanedRun? in
            requested = true
            return runner
        }
        target?.cancel()
    }

    func attach(_ runner: LanedRun) {
        let cancelNow = lock.withLock { () -> Bool in
            self.runner = runner
            return requested
        }
        if cancelNow { runner.cancel() }
    }
}

/// SIGINT/SIGTERM: the first asks the run to stop cleanly, the second exits.
final class SignalHandler: @unchecked Sendable {
    private var sources: [any DispatchSourceSignal] = []
    private var count = 0

    /// `quiet`: a daemon's child, whose stderr is the daemon's log, prints nothing.
    init(quiet: Bool = false, onFirst: @escaping @Sendable () -> Void) {
        let queue = DispatchQueue(label: "ferry.signals")
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
            source.setEventHandler { [weak self] in
                guard let self else { return }
                self.count += 1
                if self.count == 1 {
                    if !quiet { printError("\nstopping: finishing batches in flight and saving the checkpoint (signal again to exit now)") }
                    onFirst()
                } else {
                    exit(130)
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    func stop() {
        sources.forEach { $0.cancel() }
    }
}
