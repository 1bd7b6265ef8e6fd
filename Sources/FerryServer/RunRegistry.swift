import Dispatch
import FerryCore
import FerryPluginKit
import FerryPostgresStore
import Foundation
import Logging

/// Starts pipeline runs on their own threads, never two of one pipeline at
/// once, and remembers recent runs for the API. Thread-safe.
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
        let runner: LanedRun
        // Guarded by the registry's lock.
        var finishedAt: Date?
        var report: RunReport?

        init(id: String, pipeline: String, trigger: Trigger, dryRun: Bool, limit: Int?, runner: LanedRun) {
            self.id = id
            self.pipeline = pipeline
            self.trigger = trigger
            self.dryRun = dryRun
            self.limit = limit
            self.runner = runner
            startedAt = Date()
        }
    }

    let pipelines: [String: PipelinePlan]
    let stateDirectory: String?
    /// Set when checkpoints live in PostgreSQL: runs then also hold a cluster-wide lock.
    let stateStore: PostgresStateStore?
    let locks: PostgresRunLocks?
    let logger: Logger
    let metrics: ServerMetrics
    let history: Int
    private let lock = NSLock()
    private var runs: [String: Run] = [:]
    private var order: [String] = []
    private var running: [String: String] = [:]
    private var lastRun: [String: String] = [:]
    private var shuttingDown = false
    private var shutdownRequested: Bool { lock.withLock { shuttingDown } }
    private let idle = NSCondition()

    init(
        pipelines: [String: PipelinePlan], stateDirectory: String?, stateStore: PostgresStateStore? = nil, locks: PostgresRunLocks? = nil,
        history: Int, logger: Logger, metrics: ServerMetrics
    ) {
        self.pipelines = pipelines
        self.stateDirectory = stateDirectory
        self.stateStore = stateStore
        self.locks = locks
        self.history = history
        self.logger = logger
        self.metrics = metrics
    }

    func store(for plan: PipelinePlan) -> any StateStore {
        stateStore ?? FileStateStore(directory: PipelineLocations(pipeline: plan.pipeline, stateDirectory: stateDirectory).stateDirectory)
    }

    /// Starts a run, or says why not. Returns at once; the run goes on in the background.
    func start(pipeline name: String, trigger: Trigger, tick: Date? = nil, dryRun: Bool = false, limit: Int? = nil) throws(StartError) -> String {
        guard let plan = pipelines[name] else { throw .unknownPipeline(name) }
        var options = RunOptions()
        options.dryRun = dryRun
        options.limit = limit
        let locations = PipelineLocations(pipeline: plan.pipeline, stateDirectory: stateDirectory)
        let saved = store(for: plan)
        let store: any StateStore =
            dryRun ? MemoryStateStore.dryRun(copying: saved, pipeline: name, sourcePlugin: plan.source.plugin.name) : saved
        let id = UUID().uuidString.lowercased()
        var runLogger = logger
        runLogger[metadataKey: "run_id"] = "\(id)"

        // Reserve the pipeline here first (cheap, and answers a burst of
        // triggers without a round trip), then take the cluster-wide lock.
        lock.lock()
        if shuttingDown {
            lock.unlock()
            throw .shuttingDown
        }
        if let current = running[name] {
            lock.unlock()
            throw .alreadyRunning(runID: current)
        }
        running[name] = id
        lock.unlock()
        var lease: PostgresRunLocks.Lease?
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
        let runner = LanedRun(plan: plan, options: options, store: store, deadLetterPath: locations.deadLetterPath, logger: runLogger)
        let run = Run(id: id, pipeline: name, trigger: trigger, dryRun: dryRun, limit: limit, runner: runner)
        run.tick = tick
        lock.withLock {
            runs[id] = run
            order.append(id)
            lastRun[name] = id
            while order.count > history, let oldest = order.first, runs[oldest]?.finishedAt != nil {
                order.removeFirst()
                runs[oldest] = nil
            }
        }
        if shutdownRequested { runner.cancel() }

        metrics.runStarted(pipeline: name)
        runLogger.info("run started", metadata: ["pipeline": "\(name)", "trigger": "\(trigger.rawValue)", "dry_run": "\(dryRun)"])
        let heldLease = lease
        let thread = Thread { [self] in
            let report = runner.run()
            heldLease?.release()
            finish(run, report: report)
        }
        thread.name = "ferry.run.\(name)"
        thread.start()
        return id
    }

    /// Undoes `start`'s reservation when the run did not start after all.
    private func cancelReservation(_ name: String) {
        lock.withLock { running[name] = nil }
        idle.lock()
        idle.broadcast()
        idle.unlock()
    }

    private func finish(_ run: Run, report: RunReport) {
        lock.lock()
        run.report = report
        run.finishedAt = Date()
        running[run.pipeline] = nil
        lock.unlock()
        idle.lock()
        idle.broadcast()
        idle.unlock()
        metrics.runFinished(pipeline: run.pipeline, report: report, duration: run.finishedAt!.timeIntervalSince(run.startedAt))
        var metadata: Logger.Metadata = [
            "pipeline": "\(run.pipeline)", "outcome": "\(Self.status(of: report))", "read": "\(report.statistics.read)",
            "written": "\(report.statistics.written)", "dead_lettered": "\(report.statistics.deadLettered)",
        ]
        if let message = report.failureMessage { metadata["error"] = "\(message)" }
        logger.info("run finished", metadata: metadata.merging(["run_id": "\(run.id)"]) { $1 })
    }

    /// Asks a running run to stop (it drains and commits). False when it is not running.
    func cancel(id: String) -> Bool? {
        lock.lock()
        defer { lock.unlock() }
        guard let run = runs[id] else { return nil }
        guard run.finishedAt == nil else { return false }
        run.runner.cancel()
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
        active.forEach { $0.runner.cancel() }
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
        let stats = run.report?.statistics ?? run.runner.snapshot()
        var progress: [String: JSONValue] = [
            "read": .integer(Int64(stats.read)), "written": .integer(Int64(stats.written)),
            "filtered": .integer(Int64(stats.filtered)), "deadLettered": .integer(Int64(stats.deadLettered)),
            "inserted": .integer(Int64(stats.inserted)), "updated": .integer(Int64(stats.updated)),
            "unchanged": .integer(Int64(stats.unchanged)), "recordsPerSecond": .number(stats.rate.rounded()),
        ]
        if let total = stats.estimatedTotal { progress["estimatedTotal"] = .integer(Int64(total)) }
        if run.finishedAt == nil, let eta = stats.etaSeconds { progress["etaSeconds"] = .number(eta.rounded()) }
        var object: [String: JSONValue] = [
            "id": .string(run.id), "pipeline": .string(run.pipeline), "trigger": .string(run.trigger.rawValue),
            "dryRun": .bool(run.dryRun), "status": .string(Self.status(of: run)), "startedAt": .string(Self.time(run.startedAt)),
            "progress": .object(progress),
        ]
        if let limit = run.limit { object["limit"] = .integer(Int64(limit)) }
        if let tick = run.tick { object["tick"] = .string(Self.time(tick)) }
        if let finished = run.finishedAt { object["finishedAt"] = .string(Self.time(finished)) }
        if let report = run.report {
            object["report"] = report.jsonValue
            if let message = report.failureMessage { object["error"] = .string(message) }
        }
        return .object(object)
    }

    static func status(of run: Run) -> String {
        guard let report = run.report else { return "running" }
        return status(of: report)
    }

    static func status(of report: RunReport) -> String {
        switch report.outcome {
        case .completed: "completed"
        case .cancelled: "cancelled"
        case .failed: "failed"
        }
    }

    static func time(_ date: Date) -> String {
        Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(date)
    }
}
