import Dispatch
import FerryCore
import FerryPluginKit
import FerryPostgresStore
import Foundation
import Logging

/// Starts pipeline runs (each in a child process, or on a thread with
/// `--run-isolation thread`), never two of one pipeline at once, and
/// remembers recent runs for the API. Thread-safe.
public final class RunRegistry: @unchecked Sendable {
    public enum Trigger: String, Sendable { case api, schedule }

    public enum StartError: Error, Sendable, Equatable {
        case unknownPipeline(String)
        case alreadyRunning(runID: String)
        /// Another replica holds the pipeline's run lock.
        case runningElsewhere
        /// The shared state store could not be asked (it is down, say).
        case coordinationFailed(String)
        case shuttingDown
    }

    /// What a run record is for: a run of the pipeline, or a diff of its
    /// source with its target (which writes nothing).
    enum Work: Sendable {
        case run(any RunExecution)
        case diff(any DiffExecution, DiffRequest)

        var kind: String {
            switch self {
            case .run: "run"
            case .diff: "diff"
            }
        }

        func cancel() {
            switch self {
            case .run(let execution): execution.cancel()
            case .diff(let execution, _): execution.cancel()
            }
        }
    }

    /// One run, as the API shows it.
    final class Run: @unchecked Sendable {
        let id: String
        let pipeline: String
        let trigger: Trigger
        let dryRun: Bool
        let limit: Int?
        /// The schedule tick a scheduled run is for.
        var tick: Date?
        let startedAt: Date
        let work: Work
        // Guarded by the registry's lock.
        var finishedAt: Date?
        var report: RunReport?
        var diff: DiffResult?

        init(id: String, pipeline: String, trigger: Trigger, dryRun: Bool = false, limit: Int? = nil, work: Work) {
            self.id = id
            self.pipeline = pipeline
            self.trigger = trigger
            self.dryRun = dryRun
            self.limit = limit
            self.work = work
            startedAt = Date()
        }
    }

    let pipelines: [String: PipelinePlan]
    let launcher: RunLauncher
    /// Set when checkpoints live in PostgreSQL: runs then also hold a cluster-wide lock.
    let locks: (any RunLocks)?
    let isolation: RunIsolation
    /// How a child run is started, less its per-run arguments.
    let childCommand: ChildProcessRun.Command?
    /// How a diff's child is started, less the pipeline file and the diff's options.
    let diffCommand: ChildProcessRun.Command?
    let limits: [String: RunLimits]
    let gracePeriod: Double
    /// A run process started ahead of time, so a trigger does not wait for one.
    let spares: SpareRunPool?
    let logger: Logger
    let metrics: ServerMetrics
    let history: Int
    private let lock = NSLock()
    private var runs: [String: Run] = [:]
    private var order: [String] = []
    private var running: [String: String] = [:]
    private var lastRun: [String: String] = [:]
    private var shuttingDown = false
    var shutdownRequested: Bool { lock.withLock { shuttingDown } }
    private let idle = NSCondition()

    init(
        pipelines: [String: PipelinePlan], launcher: RunLauncher, locks: (any RunLocks)? = nil, isolation: RunIsolation = .thread,
        childCommand: ChildProcessRun.Command? = nil, diffCommand: ChildProcessRun.Command? = nil, limits: [String: RunLimits] = [:],
        gracePeriod: Double = 25,
        history: Int, logger: Logger, metrics: ServerMetrics
    ) {
        self.pipelines = pipelines
        self.launcher = launcher
        self.locks = locks
        self.isolation = childCommand == nil ? .thread : isolation
        self.childCommand = childCommand
        self.diffCommand = diffCommand
        self.limits = limits
        self.gracePeriod = gracePeriod
        spares = self.isolation == .process ? childCommand.map { SpareRunPool(command: $0, logger: logger) } : nil
        self.history = history
        self.logger = logger
        self.metrics = metrics
    }

    func store(for plan: PipelinePlan) throws -> any StateStore {
        try launcher.store(for: plan)
    }

    /// How this run is carried out: the child process gets the pipeline file,
    /// the run's id and options; the state store comes in its environment.
    private func execution(
        plan: PipelinePlan, id: String, options: RunOptions, logger: Logger
    ) throws -> any RunExecution {
        guard isolation == .process, var command = childCommand else {
            let launcher = launcher
            return ThreadRun(runner: try launcher.launch(plan: plan, options: options, logger: logger)) { report in
                DeletePropagation.after(
                    report, plan: plan, options: options, store: try? launcher.store(for: plan),
                    deadLetterPath: launcher.locations(of: plan).deadLetterPath, logger: logger)
            }
        }
        // The command line without the executable: a pre-started process gets it on stdin.
        command.arguments = ["run", plan.pipeline.file] + command.arguments + ["--run-id", id]
        if options.dryRun { command.arguments.append("--dry-run") }
        if let limit = options.limit { command.arguments += ["--limit", "\(limit)"] }
        let limits = limits[plan.pipeline.name] ?? RunLimits()
        if let megabytes = limits.maxMemoryMB { command.arguments += ["--max-memory-mb", "\(megabytes)"] }
        return ChildProcessRun(
            command: command, spares: spares, pipeline: plan.pipeline.name, dryRun: options.dryRun, limits: limits, gracePeriod: gracePeriod,
            logger: logger)
    }

    /// Starts a run, or says why not. Returns at once; the run goes on in the background.
    func start(pipeline name: String, trigger: Trigger, tick: Date? = nil, dryRun: Bool = false, limit: Int? = nil) throws(StartError) -> String {
        guard let plan = pipelines[name] else { throw .unknownPipeline(name) }
        var options = RunOptions()
        options.dryRun = dryRun
        options.limit = limit
        let id = UUID().uuidString.lowercased()
        var runLogger = logger
        runLogger[metadataKey: "run_id"] = "\(id)"

        // Reserve the pipeline here first (cheap, and answers a burst of
        // triggers without a round trip), then take the cluster-wide lock.
        try reserve(name, id: id)
        var lease: (any RunLock)?
        // A dry run writes nothing, so it need not exclude runs elsewhere.
        if let locks, !dryRun {
            do {
                lease = try locks.acquire(pipeline: name)
            } catch {
                cancelReservation(name)
                throw .coordinationFailed("\(error)")
            }
            if lease == nil {
                cancelReservation(name)
                throw .runningElsewhere
            }
        }
        let execution: any RunExecution
        do {
            execution = try self.execution(plan: plan, id: id, options: options, logger: runLogger)
        } catch {
            lease?.release()
            cancelReservation(name)
            throw .coordinationFailed("\(error)")
        }
        let run = Run(id: id, pipeline: name, trigger: trigger, dryRun: dryRun, limit: limit, work: .run(execution))
        run.tick = tick
        record(run)
        if shutdownRequested { execution.cancel() }

        metrics.runStarted(pipeline: name)
        runLogger.info(
            "run started",
            metadata: ["pipeline": "\(name)", "trigger": "\(trigger.rawValue)", "dry_run": "\(dryRun)", "isolation": "\(isolation.rawValue)"])
        let heldLease = lease
        // The cluster lock is held for the run's whole life, the child's
        // included: released only once the child has been reaped.
        let thread = Thread { [self] in
            let report = execution.run()
            heldLease?.release()
            finish(run, report: report)
        }
        thread.name = "ferry.run.\(name)"
        thread.start()
        return id
    }

    /// Holds the pipeline for run `id`, or says why it cannot.
    func reserve(_ name: String, id: String) throws(StartError) {
        lock.lock()
        defer { lock.unlock() }
        if shuttingDown { throw .shuttingDown }
        if let current = running[name] { throw .alreadyRunning(runID: current) }
        running[name] = id
    }

    /// Keeps the record for the API, dropping the oldest finished ones past `history`.
    func record(_ run: Run, isRun: Bool = true) {
        lock.withLock {
            runs[run.id] = run
            order.append(run.id)
            if isRun { lastRun[run.pipeline] = run.id }
            while order.count > history, let oldest = order.first, runs[oldest]?.finishedAt != nil {
                order.removeFirst()
                runs[oldest] = nil
            }
        }
    }

    /// Stores a run's result (under the lock), marks it finished and frees its pipeline.
    func settle(_ run: Run, _ store: (Run) -> Void) {
        lock.withLock {
            store(run)
            run.finishedAt = Date()
            running[run.pipeline] = nil
        }
        idle.lock()
        idle.broadcast()
        idle.unlock()
    }

    /// Undoes `start`'s reservation when the run did not start after all.
    private func cancelReservation(_ name: String) {
        lock.withLock { running[name] = nil }
        idle.lock()
        idle.broadcast()
        idle.unlock()
    }

    private func finish(_ run: Run, report: RunReport) {
        settle(run) { $0.report = report }
        metrics.runFinished(pipeline: run.pipeline, report: report, duration: run.finishedAt!.timeIntervalSince(run.startedAt))
        var metadata: Logger.Metadata = [
            "pipeline": "\(run.pipeline)", "outcome": "\(report.outcome.name)", "read": "\(report.statistics.read)",
            "written": "\(report.statistics.written)", "dead_lettered": "\(report.statistics.deadLettered)",
        ]
        if let failure = report.failure {
            metadata["error"] = "\(failure)"
            metadata["failure_kind"] = "\(failure.kind.rawValue)"
            if let plugin = failure.plugin { metadata["plugin"] = "\(plugin)" }
            if let call = failure.call { metadata["call"] = "\(call)" }
            if let signal = failure.signal { metadata["signal"] = "\(ChildProcessRun.name(of: signal))" }
        }
        let level: Logger.Level = report.failure.map { $0.kind == .crash || $0.kind == .stall ? .error : .warning } ?? .info
        logger.log(level: level, "run finished", metadata: metadata.merging(["run_id": "\(run.id)"]) { $1 })
    }

    /// Asks a running run to stop (it drains and commits). False when it is not running.
    func cancel(id: String) -> Bool? {
        lock.lock()
        defer { lock.unlock() }
        guard let run = runs[id] else { return nil }
        guard run.finishedAt == nil else { return false }
        run.work.cancel()
        return true
    }

    func isRunning(pipeline: String) -> Bool { lock.withLock { running[pipeline] != nil } }

    var inFlight: Int { lock.withLock { running.count } }

    /// Refuses new runs, cancels the running ones, and waits for them to commit
    /// and stop, at most `timeout` seconds. True when all stopped in time.
    func drain(timeout: Double) -> Bool {
        lock.lock()
        shuttingDown = true
        let active = running.values.compactMap { runs[$0] }
        lock.unlock()
        active.forEach { $0.work.cancel() }
        spares?.stop()
        let deadline = Date().addingTimeInterval(timeout)
        idle.lock()
        defer { idle.unlock() }
        while inFlight > 0 {
            if !idle.wait(until: deadline) { return inFlight == 0 }
        }
        return true
    }

    // MARK: - What the API shows

    func json(id: String) -> JSONValue? {
        lock.withLock { runs[id].map(describe) }
    }

    func list(pipeline: String?, limit: Int) -> [JSONValue] {
        lock.withLock {
            order.reversed().compactMap { runs[$0] }.filter { pipeline == nil || $0.pipeline == pipeline }.prefix(limit).map(describe)
        }
    }

    func lastRunSummary(pipeline: String) -> JSONValue? {
        lock.withLock {
            guard let id = lastRun[pipeline], let run = runs[id] else { return nil }
            var summary: [String: JSONValue] = [
                "id": .string(run.id), "status": .string(Self.status(of: run)), "startedAt": .string(Self.time(run.startedAt)),
            ]
            if let finished = run.finishedAt { summary["finishedAt"] = .string(Self.time(finished)) }
            return .object(summary)
        }
    }

    /// Caller holds the lock.
    private func describe(_ run: Run) -> JSONValue {
        guard case .run(let execution) = run.work else { return describeDiff(run) }
        let stats = run.report?.statistics ?? execution.snapshot()
        var progress: [String: JSONValue] = [
            "read": .integer(Int64(stats.read)), "written": .integer(Int64(stats.written)),
            "filtered": .integer(Int64(stats.filtered)), "deadLettered": .integer(Int64(stats.deadLettered)),
            "inserted": .integer(Int64(stats.inserted)), "updated": .integer(Int64(stats.updated)),
            "unchanged": .integer(Int64(stats.unchanged)), "recordsPerSecond": .number(stats.rate.rounded()),
        ]
        if let total = stats.estimatedTotal { progress["estimatedTotal"] = .integer(Int64(total)) }
        if run.finishedAt == nil, let eta = stats.etaSeconds { progress["etaSeconds"] = .number(eta.rounded()) }
        var object: [String: JSONValue] = [
            "id": .string(run.id), "kind": .string(run.work.kind), "pipeline": .string(run.pipeline), "trigger": .string(run.trigger.rawValue),
            "dryRun": .bool(run.dryRun), "status": .string(Self.status(of: run)), "startedAt": .string(Self.time(run.startedAt)),
            "progress": .object(progress),
        ]
        if let limit = run.limit { object["limit"] = .integer(Int64(limit)) }
        if let tick = run.tick { object["tick"] = .string(Self.time(tick)) }
        if let finished = run.finishedAt { object["finishedAt"] = .string(Self.time(finished)) }
        if let report = run.report {
            object["report"] = report.jsonValue
            if let failure = report.failure {
                object["error"] = .string(failure.description)
                object["failure"] = failure.jsonValue
            }
        }
        return .object(object)
    }

    static func status(of run: Run) -> String {
        if let diff = run.diff { return diff.status }
        guard let report = run.report else { return "running" }
        return status(of: report)
    }

    static func status(of report: RunReport) -> String { report.outcome.name }

    static func time(_ date: Date) -> String {
        Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(date)
    }
}
