import CFerryPlugin
import Dispatch
import FerryPluginKit
import Foundation
import Logging
import Synchronization

/// Per-run choices that override or add to the pipeline file.
public struct RunOptions: Sendable {
    /// Read and transform, ask the sink to preview, write nothing, save no state.
    public var dryRun = false
    /// Read, write and checkpoint at most this many records. The source is asked
    /// for batches no larger than the limit; a last batch that would cross it
    /// is cut, and its records are written but not checkpointed (the source's
    /// position covers the whole batch), so the next run reads them again.
    public var limit: Int?
    /// Dry runs: how many records to show.
    public var sampleSize = 5
    public var batchSize: Int?
    public var workers: Int?
    public var shard = ShardSpec.whole
    /// Overrides the pipeline's `read_lanes` (used by `LanedRun`).
    public var readLanes: Int?
    /// With one worker: the reader thread transforms and writes each batch
    /// itself instead of handing it over (set by `LanedRun` for lanes of one
    /// worker, where the lanes already keep the cores busy).
    public var inline = false

    public init() {}
}

/// Runs one pipeline (or one read lane of it): checks it may start, opens
/// its instances, then runs a reader, N workers and the commit loop. The
/// pieces it wires, and the only arrows between them:
///
///     SourceReader ─▶ workers ─▶ BatchStep ─▶ CommitLoop ─▶ StateStore
///                                     ▲            │
///                                     └────────────┘ (ordered sink writes)
///
/// Every piece shares the `RunLedger` (counters, flags); none knows the runner.
/// Memory stays flat: the reader takes a permit per batch and the commit loop
/// gives it back once the batch is retired, so at most `maxInFlight` batches
/// exist at once however slow the sink is.
public final class PipelineRunner: @unchecked Sendable {
    public let plan: PipelinePlan
    public let options: RunOptions
    public let deadLetterPath: String
    let store: any StateStore
    let logger: Logger
    weak var metrics: (any PluginMetricsSink)?
    let ledger = RunLedger()
    /// Shared by the lanes of one run, so `dead_letters.max` bounds the run, not each lane.
    let deadLetterBudget: DeadLetterBudget

    public let batchSize: Int
    public let workerCount: Int
    public let maxInFlight: Int

    public init(
        plan: PipelinePlan, options: RunOptions = RunOptions(), store: any StateStore, deadLetterPath: String,
        logger: Logger, metrics: (any PluginMetricsSink)? = nil, deadLetterBudget: DeadLetterBudget? = nil
    ) {
        self.plan = plan
        self.deadLetterBudget = deadLetterBudget ?? DeadLetterBudget(maxRecords: plan.pipeline.deadLetters.maxRecords)
        self.options = options
        self.store = store
        self.deadLetterPath = deadLetterPath
        self.logger = logger
        self.metrics = metrics
        batchSize = options.batchSize ?? plan.pipeline.batchSize
        workerCount = max(1, options.workers ?? plan.pipeline.workers)
        maxInFlight = max(1, plan.pipeline.maxInFlight ?? workerCount * 2 + 2)
    }

    /// Stops reading; batches in flight are finished and committed.
    public func cancel() { ledger.cancelFlag.cancel() }

    public var isCancelled: Bool { ledger.cancelFlag.isCancelled }

    /// The counters so far (any thread).
    public func snapshot() -> RunStatistics { ledger.snapshot() }

    /// Runs to the end of the source, a cancel, or the first failure.
    public func run() -> RunReport {
        let pipeline = plan.pipeline
        let shard = options.shard
        var report = RunReport(
            pipeline: pipeline.name, dryRun: options.dryRun,
            checkpointLocation: options.dryRun ? nil : store.location(pipeline: pipeline.name, shard: shard))
        func finish(_ outcome: RunOutcome) -> RunReport {
            report.outcome = outcome
            report.statistics = snapshot()
            return report
        }

        let start: Start
        switch prepare() {
        case .failure(let failure): return finish(.failed(failure))
        case .success(let prepared): start = prepared
        }
        defer { start.lock?.release() }

        // Never ask the source for more than the limit: a batch cut short
        // cannot be checkpointed. (A lane whose share of the limit is 0 reads
        // nothing, but its source still gets a batch size it can take.)
        let sourceBatchSize = options.limit.map { max(1, min(batchSize, $0)) } ?? batchSize
        let instances: RunInstances
        do {
            instances = try RunInstances(
                plan: plan, options: options, resume: start.resume, workerCount: workerCount, batchSize: batchSize,
                sourceBatchSize: sourceBatchSize, cancel: ledger.cancelFlag, logger: logger, metrics: metrics)
        } catch {
            return finish(.failed(RunFailure(error)))
        }
        report.sinkPreviewed = options.dryRun && plan.sink.plugin.hasPreview
        let deadLetters = DeadLetterWriter(
            path: deadLetterPath, pipeline: pipeline.name, sink: instances.deadLetterSink, budget: deadLetterBudget)

        let estimate = instances.source.estimate()
        ledger.statistics.withLock { $0.estimatedTotal = estimate }
        logger.info(
            "run started",
            metadata: [
                "pipeline": "\(pipeline.name)", "mode": "\(pipeline.mode.name)", "batch_size": "\(batchSize)",
                "workers": "\(workerCount)", "shard": "\(shard)", "dry_run": "\(options.dryRun)",
                "resume": "\(start.resume.map { "from checkpoint (\($0.records) records)" } ?? "from the start")",
            ])

        let step = BatchStep(plan: plan, options: options, ledger: ledger, deadLetters: deadLetters, logger: logger)
        let permits = DispatchSemaphore(value: maxInFlight)
        // Whichever thread finishes a batch applies what is now in order: no
        // committer thread, so no extra wake-up per batch.
        let commitLoop = CommitLoop(
            step: step, ledger: ledger, store: store, orderedSink: instances.orderedSink, permits: permits, shard: shard,
            resume: start.resume)
        let exhausted = runBatches(instances: instances, step: step, commitLoop: commitLoop, permits: permits, sourceBatchSize: sourceBatchSize)

        let result = commitLoop.finish(exhausted: exhausted)
        report.checkpoint = result.checkpoint ?? (options.dryRun ? nil : start.previous)
        instances.close()
        report.sample = result.sample
        if deadLetters.written > 0 { report.deadLetterPath = deadLetters.location }

        let outcome: RunOutcome
        if let failure = result.failure {
            outcome = .failed(failure)
        } else if result.halted || (ledger.cancelFlag.isCancelled && !exhausted) {
            outcome = .cancelled
        } else {
            outcome = .completed
        }
        let finished = finish(outcome)
        logger.info(
            "run finished",
            metadata: [
                "pipeline": "\(pipeline.name)", "outcome": "\(outcome.name)", "read": "\(finished.statistics.read)",
                "written": "\(finished.statistics.written)", "filtered": "\(finished.statistics.filtered)",
                "dead_lettered": "\(finished.statistics.deadLettered)",
            ])
        return finished
    }

    /// What a run starts from, once it may start.
    private struct Start {
        var lock: (any RunLock)?
        var previous: Checkpoint?
        /// Where the source resumes: the saved state, unless a full run starts over.
        var resume: Checkpoint?
    }

    /// The checks before anything is opened: the source can read the shard, no
    /// other run holds the pipeline shard, the checkpoint loads, and the store
    /// takes writes (found now, not at the first save after every record was
    /// written, which the next run would then write all over again).
    private func prepare() -> Result<Start, RunFailure> {
        let pipeline = plan.pipeline
        let shard = options.shard
        if shard.count > 1 && !plan.source.plugin.capabilities.contains(.shardedRead) {
            return .failure(RunFailure(
                .config, "source plugin '\(plan.source.plugin.name)' cannot read shards (no sharded-read capability); run without --shard"))
        }
        var start = Start()
        // One run of a pipeline shard at a time: a second would write the same
        // records and race the first one's checkpoint.
        if !options.dryRun {
            do {
                start.lock = try store.lockRun(pipeline: pipeline.name, shard: shard)
            } catch {
                return .failure(RunFailure(.stateStore, "\(error)"))
            }
        }
        do {
            start.previous = try store.load(pipeline: pipeline.name, shard: shard, sourcePlugin: plan.source.plugin.name)
        } catch {
            start.lock?.release()
            return .failure(RunFailure(.stateStore, "\(error)"))
        }
        if !options.dryRun {
            do {
                try store.checkWritable()
            } catch {
                start.lock?.release()
                return .failure(RunFailure(.stateStore, "cannot save checkpoints: \(error)"))
            }
        }
        start.resume = pipeline.mode == .full ? nil : start.previous
        return .success(start)
    }

    /// Reads, transforms and writes until the source runs dry (true), a
    /// cancel, a failure or the limit; every batch has reached the commit loop
    /// when it returns.
    private func runBatches(
        instances: RunInstances, step: BatchStep, commitLoop: CommitLoop, permits: DispatchSemaphore, sourceBatchSize: Int
    ) -> Bool {
        let ordered = plan.sink.plugin.capabilities.contains(.orderedSink)
        let workQueue = BlockingQueue<SourceBatch>()
        let group = DispatchGroup()
        let exhausted = Mutex(false)
        let ledger = ledger

        // Inline: no worker threads; the reader runs each batch to completion.
        let inline = options.inline && instances.workers.count == 1
        let handOff: @Sendable (SourceBatch) -> Void
        if inline, let worker = instances.workers.first {
            handOff = { item in
                commitLoop.push(ledger.abortFlag.isCancelled ? .skipped(item, nil) : step.process(item, worker: worker, ordered: ordered))
            }
        } else {
            handOff = { item in workQueue.push(item) }
        }

        let reader = SourceReader(
            source: instances.source, plan: plan, limit: options.limit, ledger: ledger, step: step, permits: permits, logger: logger)
        DispatchQueue(label: "ferry.reader").async(group: group) {
            defer { workQueue.close() }
            let dry = reader.run(handOff: handOff) { sequence, failure in
                commitLoop.push(.failed(sequence: sequence, nil, nil, failure))
            }
            exhausted.withLock { $0 = dry }
        }

        // Workers: each with its own transform chain and (unordered) sink instance.
        for (index, worker) in instances.workers.enumerated() where !inline {
            DispatchQueue(label: "ferry.worker.\(index)").async(group: group) {
                while let item = workQueue.pop() {
                    commitLoop.push(ledger.abortFlag.isCancelled ? .skipped(item, nil) : step.process(item, worker: worker, ordered: ordered))
                }
            }
        }
        group.wait()
        return exhausted.withLock { $0 }
    }
}
