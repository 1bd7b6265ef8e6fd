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
    /// What `finish` hands back to the run.
    struct Result {
        var failure: RunFailure?
        /// A batch was given up because the run was cancelled.
        var halted: Bool
        var sample: [String]
        /// The last checkpoint saved by this run.
        var checkpoint: Checkpoint?
    }

    private let step: BatchStep
    private let ledger: RunLedger
    private let store: any StateStore
    private let orderedSink: HostedInstance?
    private let permits: DispatchSemaphore
    private let shard: ShardSpec

    private let lock = NSLock()
    private var inbox: [Completion] = []
    private var spare: [Completion] = []
    private var applying = false

    // Owned by the current applier only; the lock hand-off orders the accesses.
    private var committer = OrderedCommitter<Completion>()
    private var failure: RunFailure?
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
        step: BatchStep, ledger: RunLedger, store: any StateStore, orderedSink: HostedInstance?, permits: DispatchSemaphore,
        shard: ShardSpec, resume: Checkpoint?
    ) {
        self.step = step
        self.ledger = ledger
        self.store = store
        self.orderedSink = orderedSink
        self.permits = permits
        self.shard = shard
        lastState = resume.map { Array($0.state) }
        committedRecords = resume?.records ?? 0
        checkpointInterval = UInt64(step.plan.pipeline.checkpointIntervalMilliseconds) * 1_000_000
    }

    private var pipeline: PipelineConfig { step.plan.pipeline }
    private var deadLetters: DeadLetterWriter { step.deadLetters }

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
    func finish(exhausted: Bool) -> Result {
        lock.lock()
        defer { lock.unlock() }
        precondition(!applying && inbox.isEmpty, "finish called while batches are still being applied")
        if failure == nil {
            let stats = ledger.snapshot()
            if let reason = pipeline.deadLetters.exceeded(rejected: stats.deadLettered, read: stats.read, final: true) {
                failure = RunFailure(.deadLetters, "dead-letter budget exceeded: \(reason) (see \(deadLetters.location))")
            }
        }
        // The last save marks the checkpoint complete even if nothing moved since.
        let complete = exhausted && failure == nil && !halted
        if complete && lastState != nil { dirty = true }
        saveCheckpoint(complete: complete)
        // Dead letters of batches that never reached a checkpoint still go out
        // (their records come again on the next run, and are rejected again).
        if !step.options.dryRun {
            do {
                try deadLetters.sync()
            } catch {
                failure = failure ?? RunFailure(error, otherwise: .deadLetters)
            }
        }
        return Result(failure: failure, halted: halted, sample: sample, checkpoint: checkpoint)
    }

    private func apply(_ completion: Completion) {
        for (_, ready) in committer.complete(completion.sequence, completion) {
            retire(ready)
            permits.signal()
            if checkpointInterval == 0
                || DispatchTime.now().uptimeNanoseconds - lastSave.uptimeNanoseconds >= checkpointInterval
            {
                saveCheckpoint(complete: false)
            }
        }
    }

    /// Records the first failure and stops the run's reading and queued work.
    private func fail(_ reason: RunFailure) {
        failure = failure ?? reason
        ledger.abortFlag.cancel()
    }

    /// An ordered sink's turn: the batch is written now, in sequence. Nil when
    /// a cancel stopped the write: the batch is released and the run halted.
    private func writeInOrder(_ item: SourceBatch, _ chain: Chain, _ counts: BatchCounts, sample: [String]) -> Completion? {
        if failure != nil || halted { return .skipped(item, chain) }
        var counts = counts
        defer { step.release(item, chain) }
        do {
            if let orderedSink, let final = chain.final {
                try step.write(final, to: orderedSink, counts: &counts)
            } else if let final = chain.final {
                counts.written += Int(final.pointee.count)
            }
            return .done(item, counts, sample: sample)
        } catch {
            // Released by the defer above; neither outcome carries a batch to release twice.
            if step.isCancellation(error) {
                halted = true
                return nil
            }
            return .failed(sequence: item.sequence, nil, nil, RunFailure(error, otherwise: .deadLetters))
        }
    }

    private func retire(_ ready: Completion) {
        var outcome = ready
        if case .awaitingWrite(let item, let chain, let counts, let batchSample) = ready {
            guard let written = writeInOrder(item, chain, counts, sample: batchSample) else { return }
            outcome = written
        }
        switch outcome {
        case .done(let item, let counts, let batchSample):
            guard failure == nil, !halted else { return }
            if item.checkpointable {
                lastState = item.state.isEmpty ? lastState : item.state
                committedRecords += item.records
                dirty = true
            }
            let sampleSize = step.options.sampleSize
            if sample.count < sampleSize {
                sample += batchSample.prefix(sampleSize - sample.count)
                if sample.count >= sampleSize { ledger.sampleWanted.withLock { $0 = false } }
            }
            let (rejected, read) = ledger.recordCommitted(counts, committedRecords: committedRecords)
            if let reason = pipeline.deadLetters.exceeded(rejected: rejected, read: read, final: false) {
                fail(RunFailure(.deadLetters, "dead-letter budget exceeded: \(reason) (see \(deadLetters.location))"))
            }
        case .failed(_, let item, let chain, let reason):
            if let item { step.release(item, chain) }
            fail(reason)
        case .skipped(let item, let chain):
            // Past a failure the run is over anyway; otherwise a cancel gave this batch up.
            if failure == nil { halted = true }
            step.release(item, chain)
        case .awaitingWrite:
            break
        }
    }

    private func saveCheckpoint(complete: Bool) {
        guard !step.options.dryRun, dirty, let lastState else { return }
        do {
            try deadLetters.sync()
        } catch {
            fail(RunFailure(error, otherwise: .deadLetters))
            return
        }
        let next = Checkpoint(
            pipeline: pipeline.name, sourcePlugin: step.plan.source.plugin.name, shardIndex: shard.index,
            shardCount: shard.count, state: Data(lastState), records: committedRecords, complete: complete)
        do {
            try store.save(next)
            checkpoint = next
            dirty = false
            lastSave = DispatchTime.now()
        } catch {
            fail(RunFailure(.stateStore, "cannot save the checkpoint: \(error)"))
        }
    }
}
