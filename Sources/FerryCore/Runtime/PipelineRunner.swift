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

/// Runs one pipeline: a reader, N workers (transforms, then sink writes),
/// and an ordered committer that advances the checkpoint over the contiguous
/// prefix of committed batches only.
///
/// Memory stays flat: the reader takes a permit per batch and the committer
/// gives it back once the batch is retired, so at most `maxInFlight` batches
/// exist at once however slow the sink is.
public final class PipelineRunner: @unchecked Sendable {
    public let plan: PipelinePlan
    public let options: RunOptions
    public let deadLetterPath: String
    let store: any StateStore
    let logger: Logger
    weak var metrics: (any PluginMetricsSink)?
    let cancelFlag = CancelFlag()
    /// Set on a failure: stop reading and skip queued work.
    let abortFlag = CancelFlag()
    let statistics = Mutex(RunStatistics())
    private let started = DispatchTime.now()
    let sampleWanted = Mutex(true)
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
    public func cancel() { cancelFlag.cancel() }

    public var isCancelled: Bool { cancelFlag.isCancelled }

    /// The counters so far (any thread).
    public func snapshot() -> RunStatistics {
        var copy = statistics.withLock { $0 }
        copy.elapsedSeconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        return copy
    }

    // MARK: - Units of work

    final class SourceBatch: @unchecked Sendable {
        let source: PluginInstance
        let sequence: Int
        /// As the source returned it: what goes back to its `release`.
        let batch: UnsafeMutablePointer<ferry_batch>
        /// What the transforms and the sink see: the batch itself, or its first
        /// records when `--limit` cut it.
        let input: UnsafeMutablePointer<ferry_batch>
        let state: [UInt8]
        let records: Int
        /// False for a cut batch: the source's state covers records that were
        /// not written, so the checkpoint must not move to it.
        let checkpointable: Bool

        init(
            source: PluginInstance, sequence: Int, batch: UnsafeMutablePointer<ferry_batch>, input: UnsafeMutablePointer<ferry_batch>? = nil,
            state: [UInt8], records: Int, checkpointable: Bool = true
        ) {
            self.source = source
            self.sequence = sequence
            self.batch = batch
            self.input = input ?? batch
            self.state = state
            self.records = records
            self.checkpointable = checkpointable
        }
    }

    /// Batches produced along a transform chain, released once the sink is done.
    final class Chain: @unchecked Sendable {
        var outputs: [(instance: PluginInstance, batch: UnsafeMutablePointer<ferry_batch>)] = []
        var final: UnsafeMutablePointer<ferry_batch>?
    }

    struct BatchCounts: Sendable {
        var filtered = 0
        var written = 0
        var inserted = 0
        var updated = 0
        var unchanged = 0
        var deadLettered = 0
        var retries = 0
    }

    enum Completion: @unchecked Sendable {
        case done(SourceBatch, BatchCounts, sample: [String])
        /// Transforms done; the single ordered sink writes it in sequence.
        case awaitingWrite(SourceBatch, Chain, BatchCounts, sample: [String])
        case failed(sequence: Int, SourceBatch?, Chain?, String)
        case skipped(SourceBatch, Chain?)
    }

    final class Worker: @unchecked Sendable {
        let transforms: [PluginInstance]
        let sink: PluginInstance?

        init(transforms: [PluginInstance], sink: PluginInstance?) {
            self.transforms = transforms
            self.sink = sink
        }

        func close() {
            transforms.forEach { $0.close() }
            sink?.close()
        }
    }

    // MARK: - Run

    /// Runs to the end of the source, a cancel, or the first failure.
    public func run() -> RunReport {
        let pipeline = plan.pipeline
        let shard = options.shard
        let location = store.location(pipeline: pipeline.name, shard: shard)
        var report = RunReport(
            pipeline: pipeline.name, outcome: .completed, statistics: RunStatistics(), dryRun: options.dryRun,
            checkpoint: nil, checkpointLocation: options.dryRun ? nil : location, deadLetterPath: nil, sample: [],
            sinkPreviewed: false)
        func finish(_ outcome: RunOutcome) -> RunReport {
            report.outcome = outcome
            report.statistics = snapshot()
            return report
        }

        if shard.count > 1 && !plan.source.plugin.capabilities.contains(.shardedRead) {
            return finish(.failed("source plugin '\(plan.source.plugin.name)' cannot read shards (no sharded-read capability); run without --shard"))
        }

        // One run of a pipeline shard at a time: a second would write the same
        // records and race the first one's checkpoint.
        var runLock: (any RunLock)?
        if !options.dryRun {
            do {
                runLock = try store.lockRun(pipeline: pipeline.name, shard: shard)
            } catch {
                return finish(.failed("\(error)"))
            }
        }
        defer { runLock?.release() }

        // Where to resume: the saved state, unless a full run starts over.
        var previous: Checkpoint?
        do {
            previous = try store.load(pipeline: pipeline.name, shard: shard, sourcePlugin: plan.source.plugin.name)
        } catch {
            return finish(.failed("\(error)"))
        }
        let resume: Checkpoint? = pipeline.mode == .full ? nil : previous
        // Found now, not at the first save after every record was written
        // (which the next run would then write all over again).
        if !options.dryRun {
            do {
                try store.checkWritable()
            } catch {
                return finish(.failed("cannot save checkpoints: \(error)"))
            }
        }

        // Open everything before reading anything, so config errors cost no data movement.
        let source: PluginInstance
        var workers: [Worker] = []
        var orderedSink: PluginInstance?
        var deadLetterSink: PluginInstance?
        let sinkIsOrdered = plan.sink.plugin.capabilities.contains(.orderedSink)
        let sinkPreviews = plan.sink.plugin.hasPreview
        report.sinkPreviewed = options.dryRun && sinkPreviews
        let needSink = !options.dryRun || sinkPreviews
        // Never ask the source for more than the limit: a batch cut short
        // cannot be checkpointed. (A lane whose share of the limit is 0 reads
        // nothing, but its source still gets a batch size it can take.)
        let sourceBatchSize = options.limit.map { max(1, min(batchSize, $0)) } ?? batchSize
        func instanceOptions(_ stage: PipelinePlan.Stage, kind: PluginKinds, resume: [UInt8]? = nil) -> InstanceOptions {
            InstanceOptions(
                kind: kind, stage: stage.config.role, configJSON: stage.config.configJSON, resumeState: resume,
                mode: pipeline.mode, batchSize: kind == .source ? sourceBatchSize : batchSize, shardIndex: shard.index,
                shardCount: shard.count, pipelineName: pipeline.name)
        }
        do {
            source = try PluginInstance(
                plugin: plan.source.plugin, options: instanceOptions(plan.source, kind: .source, resume: resume.map { Array($0.state) }),
                cancel: cancelFlag, logger: logger, metrics: metrics)
            if needSink && sinkIsOrdered {
                orderedSink = try PluginInstance(
                    plugin: plan.sink.plugin, options: instanceOptions(plan.sink, kind: .sink), cancel: cancelFlag,
                    logger: logger, metrics: metrics)
            }
            for _ in 0..<workerCount {
                var transforms: [PluginInstance] = []
                for stage in plan.transforms {
                    transforms.append(try PluginInstance(
                        plugin: stage.plugin, options: instanceOptions(stage, kind: .transform), cancel: cancelFlag,
                        logger: logger, metrics: metrics))
                }
                let sink =
                    needSink && !sinkIsOrdered
                    ? try PluginInstance(
                        plugin: plan.sink.plugin, options: instanceOptions(plan.sink, kind: .sink), cancel: cancelFlag,
                        logger: logger, metrics: metrics)
                    : nil
                workers.append(Worker(transforms: transforms, sink: sink))
            }
            // A dry run stores no dead letters, so it does not open their sink either.
            if let stage = plan.deadLetterSink, !options.dryRun {
                var deadLetterOptions = instanceOptions(stage, kind: .sink)
                deadLetterOptions.mode = .incremental  // append: `full` must not replace the dead letters of earlier runs
                deadLetterSink = try PluginInstance(
                    plugin: stage.plugin, options: deadLetterOptions, cancel: cancelFlag, logger: logger, metrics: metrics)
            }
        } catch {
            workers.forEach { $0.close() }
            orderedSink?.close()
            return finish(.failed(error.description))
        }
        let deadLetters = DeadLetterWriter(
            path: deadLetterPath, pipeline: pipeline.name, sink: deadLetterSink, budget: deadLetterBudget)

        let estimate = source.estimate()
        statistics.withLock { $0.estimatedTotal = estimate }
        logger.info(
            "run started",
            metadata: [
                "pipeline": "\(pipeline.name)", "mode": "\(pipeline.mode.name)", "batch_size": "\(batchSize)",
                "workers": "\(workerCount)", "shard": "\(shard)", "dry_run": "\(options.dryRun)",
                "resume": "\(resume != nil ? "from checkpoint (\(resume!.records) records)" : "from the start")",
            ])

        let workQueue = BlockingQueue<SourceBatch>()
        let permits = DispatchSemaphore(value: maxInFlight)
        // Whichever thread finishes a batch applies what is now in order: no
        // committer thread, so no extra wake-up per batch.
        let commitLoop = CommitLoop(
            runner: self, deadLetters: deadLetters, orderedSink: orderedSink, permits: permits, shard: shard,
            resume: resume)
        let group = DispatchGroup()
        let sourceExhausted = Mutex(false)

        // Inline: no worker threads; the reader runs each batch to completion.
        let inline = options.inline && workers.count == 1
        let handOff: @Sendable (SourceBatch) -> Void
        if inline, let worker = workers.first {
            handOff = { [self] item in
                if abortFlag.isCancelled {
                    commitLoop.push(.skipped(item, nil))
                } else {
                    commitLoop.push(process(item, worker: worker, deadLetters: deadLetters, ordered: sinkIsOrdered))
                }
            }
        } else {
            handOff = { item in workQueue.push(item) }
        }

        // Reader: one thread, the only caller of the source instance.
        DispatchQueue(label: "ferry.reader").async(group: group) { [self] in
            defer { workQueue.close() }
            var sequence = 0
            var readRecords = 0
            while !cancelFlag.isCancelled && !abortFlag.isCancelled {
                if let limit = options.limit, readRecords >= limit { break }
                var acquired = false
                while !acquired {
                    if cancelFlag.isCancelled || abortFlag.isCancelled { return }
                    acquired = permits.wait(timeout: .now() + .milliseconds(50)) == .success
                }
                let batch = UnsafeMutablePointer<ferry_batch>.allocate(capacity: 1)
                batch.initialize(to: ferry_batch())
                do {
                    let got = try withRetry(stage: "source", isCancelled: { self.abortFlag.isCancelled }) { _ throws(PluginCallError) in
                        try source.read(&batch.pointee)
                    }.value
                    guard got else {
                        batch.deallocate()
                        permits.signal()
                        sourceExhausted.withLock { $0 = true }
                        return
                    }
                    do {
                        try BatchView(batch.pointee).validateFraming()
                    } catch {
                        source.release(&batch.pointee)
                        throw PluginCallError(
                            plugin: plan.source.plugin.name, stage: "source", call: "read", status: Int32(FERRY_ERR_DATA),
                            message: "returned a malformed batch: \(error)")
                    }
                    var state = batch.pointee.state.map { Array(UnsafeBufferPointer(start: $0, count: Int(batch.pointee.state_size))) } ?? []
                    var records = Int(batch.pointee.count)
                    var input: UnsafeMutablePointer<ferry_batch>?
                    if let limit = options.limit, readRecords + records > limit {
                        records = limit - readRecords
                        input = Self.cut(batch, to: records)
                        state = []
                        logger.notice(
                            "--limit cut the last batch: its records are written, the checkpoint stays before them",
                            metadata: ["pipeline": "\(pipeline.name)", "records": "\(records)"])
                    }
                    readRecords += records
                    statistics.withLock { stats in
                        stats.read += records
                        stats.batchesRead += 1
                        stats.maxInFlight = max(stats.maxInFlight, stats.batchesRead - stats.batchesCommitted)
                    }
                    handOff(SourceBatch(
                        source: source, sequence: sequence, batch: batch, input: input, state: state, records: records,
                        checkpointable: input == nil))
                    sequence += 1
                } catch {
                    batch.deallocate()
                    permits.signal()
                    let callError = error as? PluginCallError
                    if callError?.status == Int32(FERRY_ERR_CANCELLED) && cancelFlag.isCancelled { return }
                    abortFlag.cancel()
                    commitLoop.push(.failed(sequence: sequence, nil, nil, callError?.description ?? "\(error)"))
                    return
                }
            }
        }

        // Workers: each with its own transform chain and (unordered) sink instance.
        for (index, worker) in workers.enumerated() where !inline {
            DispatchQueue(label: "ferry.worker.\(index)").async(group: group) { [self] in
                while let item = workQueue.pop() {
                    if abortFlag.isCancelled {
                        commitLoop.push(.skipped(item, nil))
                        continue
                    }
                    commitLoop.push(process(item, worker: worker, deadLetters: deadLetters, ordered: sinkIsOrdered))
                }
            }
        }

        group.wait()
        let exhausted = sourceExhausted.withLock { $0 }
        let (failure, halted, sample, checkpoint) = commitLoop.finish(exhausted: exhausted)
        report.checkpoint = checkpoint ?? (options.dryRun ? nil : previous)
        workers.forEach { $0.close() }
        orderedSink?.close()
        source.close()
        report.sample = sample
        if deadLetters.written > 0 { report.deadLetterPath = deadLetters.location }

        let outcome: RunOutcome
        if let failure {
            outcome = .failed(failure)
        } else if halted || (cancelFlag.isCancelled && !exhausted) {
            outcome = .cancelled
        } else {
            outcome = .completed
        }
        let result = finish(outcome)
        logger.info(
            "run finished",
            metadata: [
                "pipeline": "\(pipeline.name)", "outcome": "\(outcome)", "read": "\(result.statistics.read)",
                "written": "\(result.statistics.written)", "filtered": "\(result.statistics.filtered)",
                "dead_lettered": "\(result.statistics.deadLettered)",
            ])
        return result
    }

    static func sequence(of completion: Completion) -> Int {
        switch completion {
        case .done(let item, _, _), .awaitingWrite(let item, _, _, _), .skipped(let item, _): item.sequence
        case .failed(let sequence, _, _, _): sequence
        }
    }

    // MARK: - Steps

    /// Transforms one batch and, unless the sink is ordered, writes it.
    private func process(_ item: SourceBatch, worker: Worker, deadLetters: DeadLetterWriter, ordered: Bool) -> Completion {
        var counts = BatchCounts()
        let chain = Chain()
        do {
            var current = UnsafePointer(item.input)
            for (index, transform) in worker.transforms.enumerated() {
                let output = UnsafeMutablePointer<ferry_batch>.allocate(capacity: 1)
                output.initialize(to: ferry_batch())
                var result = ferry_result()
                let stage = plan.transforms[index]
                do {
                    // A transform's dropped connection (a lookup, an enrichment call)
                    // is retried like a source's or a sink's.
                    let input = current
                    counts.retries += try withRetry(stage: stage.config.role, isCancelled: { self.abortFlag.isCancelled }) {
                        _ throws(PluginCallError) in
                        try transform.transform(input, &output.pointee, &result)
                    }.retries
                } catch {
                    output.deallocate()
                    throw error
                }
                chain.outputs.append((transform, output))
                if output.pointee.flags & UInt32(FERRY_BATCH_PASSTHROUGH) != 0 {
                    guard output.pointee.data == current.pointee.data, output.pointee.size == current.pointee.size,
                        output.pointee.count == current.pointee.count
                    else {
                        throw PluginCallError(
                            plugin: stage.plugin.name, stage: stage.config.role, call: "transform", status: Int32(FERRY_ERR_DATA),
                            message: "flagged its output as passthrough but it is not the input")
                    }
                } else {
                    do {
                        try BatchView(output.pointee).validateFraming()
                    } catch {
                        throw PluginCallError(
                            plugin: stage.plugin.name, stage: stage.config.role, call: "transform", status: Int32(FERRY_ERR_DATA),
                            message: "returned a malformed batch: \(error)")
                    }
                }
                let rejected = Int(result.reject_count)
                if rejected > 0 {
                    try deadLetter(result, input: current, stage: stage.config.role, plugin: stage.plugin.name, into: deadLetters)
                }
                counts.deadLettered += rejected
                counts.filtered += max(0, Int(current.pointee.count) - Int(output.pointee.count) - rejected)
                current = UnsafePointer(output)
            }
            chain.final = UnsafeMutablePointer(mutating: current)
            let batchSample = sampleWanted.withLock { $0 } && options.dryRun ? render(current) : []
            if ordered {
                return .awaitingWrite(item, chain, counts, sample: batchSample)
            }
            if let sink = worker.sink {
                try write(UnsafeMutablePointer(mutating: current), to: sink, counts: &counts, deadLetters: deadLetters)
            } else {
                counts.written += Int(current.pointee.count)
            }
            release(item, chain)
            return .done(item, counts, sample: batchSample)
        } catch {
            // A plugin that honours the cancel flag stops a run cleanly: the
            // batch is not committed, and nothing after it either.
            if isCancellation(error) { return .skipped(item, chain) }
            let message = (error as? PluginCallError)?.description ?? "\(error)"
            return .failed(sequence: item.sequence, item, chain, message)
        }
    }

    /// A call that returned FERRY_ERR_CANCELLED after the run was asked to stop.
    func isCancellation(_ error: any Error) -> Bool {
        cancelFlag.isCancelled && (error as? PluginCallError)?.status == Int32(FERRY_ERR_CANCELLED)
    }

    /// The first `count` records of a source batch, as a batch of their own
    /// that shares the source's buffer and carries no state.
    static func cut(_ batch: UnsafeMutablePointer<ferry_batch>, to count: Int) -> UnsafeMutablePointer<ferry_batch> {
        var size = 0
        if let data = batch.pointee.data {
            for _ in 0..<count {
                let length = Int(UInt32(littleEndian: UnsafeRawPointer(data + size).loadUnaligned(as: UInt32.self)))
                size += length
            }
        }
        let view = UnsafeMutablePointer<ferry_batch>.allocate(capacity: 1)
        view.initialize(to: batch.pointee)
        view.pointee.count = UInt32(count)
        view.pointee.size = UInt64(size)
        view.pointee.state = nil
        view.pointee.state_size = 0
        return view
    }

    /// Writes and commits (or previews) one batch, retrying transient failures.
    func write(
        _ batch: UnsafeMutablePointer<ferry_batch>, to sink: PluginInstance, counts: inout BatchCounts,
        deadLetters: DeadLetterWriter
    ) throws {
        let attempt = try withRetry(stage: "sink", isCancelled: { self.abortFlag.isCancelled }) { _ throws(PluginCallError) -> ferry_result in
            var result = ferry_result()
            if options.dryRun {
                try sink.preview(batch, &result)
            } else {
                try sink.write(batch, &result)
                try sink.commit()
            }
            return result
        }
        let result = attempt.value
        counts.retries += attempt.retries
        let rejected = Int(result.reject_count)
        if rejected > 0 {
            try deadLetter(result, input: UnsafePointer(batch), stage: plan.sink.config.role, plugin: plan.sink.plugin.name, into: deadLetters)
        }
        counts.deadLettered += rejected
        counts.written += Int(batch.pointee.count) - rejected
        counts.inserted += Int(result.inserted)
        counts.updated += Int(result.updated)
        counts.unchanged += Int(result.unchanged)
    }

    private func deadLetter(
        _ result: ferry_result, input: UnsafePointer<ferry_batch>, stage: String, plugin: String, into deadLetters: DeadLetterWriter
    ) throws {
        let view = BatchView(input.pointee)
        for offset in 0..<Int(result.reject_count) {
            let reject = result.rejects[offset]
            let reason = reject.reason.map { String(cString: $0) } ?? "(no reason given)"
            let record = view.document(at: Int(reject.index))
            if options.dryRun { continue }
            try deadLetters.write(
                stage: stage, plugin: plugin, reason: record == nil ? "\(reason) [reject index \(reject.index) out of range]" : reason,
                record: record)
        }
    }

    private func render(_ batch: UnsafePointer<ferry_batch>) -> [String] {
        BatchView(batch.pointee).prefix(options.sampleSize).compactMap { ExtendedJSON.render($0) }
    }

    /// Gives every batch of a chain back to its producer, newest first.
    func release(_ item: SourceBatch, _ chain: Chain?) {
        if let chain {
            for (instance, batch) in chain.outputs.reversed() {
                instance.release(&batch.pointee)
                batch.deallocate()
            }
            chain.outputs.removeAll()
        }
        // The ABI lets a batch go back from any thread, even while the source reads.
        if item.input != item.batch { item.input.deallocate() }
        item.source.release(&item.batch.pointee)
        item.batch.deallocate()
    }

    struct Attempt<Value> {
        var value: Value
        var retries: Int
    }

    /// Runs `body`, retrying transient plugin errors with exponential backoff and jitter.
    private func withRetry<Value>(
        stage: String, isCancelled: () -> Bool, _ body: (Int) throws(PluginCallError) -> Value
    ) throws(PluginCallError) -> Attempt<Value> {
        var retries = 0
        while true {
            do {
                return Attempt(value: try body(retries), retries: retries)
            } catch {
                guard error.isTransient, retries < plan.pipeline.retry.attempts, !isCancelled() else { throw error }
                retries += 1
                let delay = plan.pipeline.retry.delay(forRetry: retries)
                logger.warning(
                    "transient failure, retrying",
                    metadata: ["stage": "\(stage)", "attempt": "\(retries)", "delay_s": "\(String(format: "%.2f", delay))", "error": "\(error)"])
                Thread.sleep(forTimeInterval: delay)
            }
        }
    }
}
