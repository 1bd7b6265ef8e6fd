import CFerryPlugin
import Dispatch
import Foundation

/// Applies batch completions in sequence order and advances the checkpoint.
///
/// There is no committer thread: whichever thread pushes a completion while
/// nobody else is applying becomes the applier and drains the inbox, while
/// other threads only append and go back to work (flat combining). That saves
/// two thread wake-ups per batch, which at small batch sizes was a quarter of
/// the engine's per-batch cost, and it never blocks a worker behind a slow
/// ordered sink write.
final class CommitLoop: @unchecked Sendable {
    typealias Completion = PipelineRunner.Completion

    private unowned let runner: PipelineRunner
    private let deadLetters: DeadLetterWriter
    private let orderedSink: PluginInstance?
    private let permits: DispatchSemaphore
    private let shard: ShardSpec

    private let lock = NSLock()
    private var inbox: [Completion] = []
    private var spare: [Completion] = []
    private var applying = false

    // Owned by the current applier only; the lock hand-off orders the accesses.
    private var committer = OrderedCommitter<Completion>()
    private var failure: String?
    /// A batch was given up because the run was cancelled: nothing after it
    /// may move the checkpoint, or its records would be skipped for good.
    private var halted = false
    private var lastState: [UInt8]?
    private var committedRecords: Int
    private var lastSave = DispatchTime.now()
    private var dirty = false
    private var sample: [String] = []
    private var checkpoint: Checkpoint?
    private let checkpointInterval: UInt64

    init(
        runner: PipelineRunner, deadLetters: DeadLetterWriter, orderedSink: PluginInstance?, permits: DispatchSemaphore,
        shard: ShardSpec, resume: Checkpoint?
    ) {
        self.runner = runner
        self.deadLetters = deadLetters
        self.orderedSink = orderedSink
        self.permits = permits
        self.shard = shard
        lastState = resume.map { Array($0.state) }
        committedRecords = resume?.records ?? 0
        checkpointInterval = UInt64(runner.plan.pipeline.checkpointIntervalMilliseconds) * 1_000_000
    }

    /// Hands over a finished (or failed, or skipped) batch; any thread.
    func push(_ completion: Completion) {
        lock.lock()
        inbox.append(completion)
        if applying {
            lock.unlock()
            return
        }
        applying = true
        while !inbox.isEmpty {
            swap(&inbox, &spare)
            lock.unlock()
            for item in spare { apply(item) }
            spare.removeAll(keepingCapacity: true)
            lock.lock()
        }
        applying = false
        lock.unlock()
    }

    /// After every reader and worker has stopped: the final save, complete
    /// when the source ran dry without a failure.
    func finish(exhausted: Bool) -> (failure: String?, halted: Bool, sample: [String], checkpoint: Checkpoint?) {
        lock.lock()
        defer { lock.unlock() }
        precondition(!applying && inbox.isEmpty, "finish called while batches are still being applied")
        if failure == nil {
            let stats = runner.statistics.withLock { $0 }
            if let reason = runner.plan.pipeline.deadLetters.exceeded(rejected: stats.deadLettered, read: stats.read, final: true) {
                failure = "dead-letter budget exceeded: \(reason) (see \(deadLetters.location))"
            }
        }
        // The last save marks the checkpoint complete even if nothing moved since.
        let complete = exhausted && failure == nil && !halted
        if complete && lastState != nil { dirty = true }
        saveCheckpoint(complete: complete)
        // Dead letters of batches that never reached a checkpoint still go out
        // (their records come again on the next run, and are rejected again).
        if !runner.options.dryRun {
            do {
                try deadLetters.sync()
            } catch {
                failure = failure ?? "\(error)"
            }
        }
        return (failure, halted, sample, checkpoint)
    }

    private func apply(_ completion: Completion) {
        for (_, ready) in committer.complete(PipelineRunner.sequence(of: completion), completion) {
            retire(ready)
            permits.signal()
            if checkpointInterval == 0
                || DispatchTime.now().uptimeNanoseconds - lastSave.uptimeNanoseconds >= checkpointInterval
            {
                saveCheckpoint(complete: false)
            }
        }
    }

    private func retire(_ ready: Completion) {
        var outcome = ready
        if case .awaitingWrite(let item, let chain, var counts, let batchSample) = ready {
            if failure != nil || halted {
                outcome = .skipped(item, chain)
            } else {
                do {
                    if let orderedSink, let final = chain.final {
                        try runner.write(final, to: orderedSink, counts: &counts, deadLetters: deadLetters)
                    } else if let final = chain.final {
                        counts.written += Int(final.pointee.count)
                    }
                    outcome = .done(item, counts, sample: batchSample)
                } catch {
                    // Released just below; neither outcome carries a batch to release twice.
                    if runner.isCancellation(error) {
                        halted = true
                        outcome = .skipped(item, nil)
                        runner.release(item, chain)
                        return
                    }
                    outcome = .failed(
                        sequence: item.sequence, nil, nil, (error as? PluginCallError)?.description ?? "\(error)")
                }
                runner.release(item, chain)
            }
        }
        switch outcome {
        case .done(let item, let counts, let batchSample):
            guard failure == nil, !halted else { return }
            if item.checkpointable {
                lastState = item.state.isEmpty ? lastState : item.state
                committedRecords += item.records
                dirty = true
            }
            let sampleSize = runner.options.sampleSize
            if sample.count < sampleSize {
                sample += batchSample.prefix(sampleSize - sample.count)
                if sample.count >= sampleSize { runner.sampleWanted.withLock { $0 = false } }
            }
            let records = committedRecords
            let (total, read) = runner.statistics.withLock { stats in
                stats.filtered += counts.filtered
                stats.written += counts.written
                stats.inserted += counts.inserted
                stats.updated += counts.updated
                stats.unchanged += counts.unchanged
                stats.deadLettered += counts.deadLettered
                stats.retries += counts.retries
                stats.batchesCommitted += 1
                stats.committedRecords = records
                return (stats.deadLettered, stats.read)
            }
            if let reason = runner.plan.pipeline.deadLetters.exceeded(rejected: total, read: read, final: false) {
                failure = "dead-letter budget exceeded: \(reason) (see \(deadLetters.location))"
                runner.abortFlag.cancel()
            }
        case .failed(_, let item, let chain, let message):
            if let item { runner.release(item, chain) }
            failure = failure ?? message
            runner.abortFlag.cancel()
        case .skipped(let item, let chain):
            // Past a failure the run is over anyway; otherwise a cancel gave this batch up.
            if failure == nil { halted = true }
            runner.release(item, chain)
        case .awaitingWrite:
            break
        }
    }

    private func saveCheckpoint(complete: Bool) {
        guard !runner.options.dryRun, dirty, let lastState else { return }
        do {
            try deadLetters.sync()
        } catch {
            failure = failure ?? "\(error)"
            runner.abortFlag.cancel()
            return
        }
        let pipeline = runner.plan.pipeline
        let next = Checkpoint(
            pipeline: pipeline.name, sourcePlugin: runner.plan.source.plugin.name, shardIndex: shard.index,
            shardCount: shard.count, state: Data(lastState), records: committedRecords, complete: complete)
        do {
            try runner.store.save(next)
            checkpoint = next
            dirty = false
            lastSave = DispatchTime.now()
        } catch {
            failure = failure ?? "cannot save the checkpoint: \(error)"
            runner.abortFlag.cancel()
        }
    }
}
