import CFerryPlugin
import FerryPluginKit
import Foundation
import Logging

/// What happens to one batch between the source and the checkpoint: the
/// transform chain, the sink write (or preview), dead letters, retries of
/// transient failures, and giving every batch back to its producer. The
/// workers call it, and the commit loop calls `write` for an ordered sink.
final class BatchStep: @unchecked Sendable {
    let plan: PipelinePlan
    let options: RunOptions
    let ledger: RunLedger
    let deadLetters: DeadLetterWriter
    let logger: Logger

    init(plan: PipelinePlan, options: RunOptions, ledger: RunLedger, deadLetters: DeadLetterWriter, logger: Logger) {
        self.plan = plan
        self.options = options
        self.ledger = ledger
        self.deadLetters = deadLetters
        self.logger = logger
    }

    /// Transforms one batch and, unless the sink is ordered, writes it.
    func process(_ item: SourceBatch, worker: Worker, ordered: Bool) -> Completion {
        var counts = BatchCounts()
        let chain = Chain()
        do {
            var current = UnsafePointer(item.input)
            for (index, transform) in worker.transforms.enumerated() {
                let stage = plan.transforms[index]
                let output = try self.transform(current, with: transform, stage: stage, counts: &counts)
                chain.outputs.append((transform, output))
                current = UnsafePointer(output)
            }
            chain.final = UnsafeMutablePointer(mutating: current)
            let batchSample = ledger.sampleWanted.withLock { $0 } && options.dryRun ? render(current) : []
            if ordered {
                return .awaitingWrite(item, chain, counts, sample: batchSample)
            }
            if let sink = worker.sink {
                try write(UnsafeMutablePointer(mutating: current), to: sink, counts: &counts)
            } else {
                counts.written += Int(current.pointee.count)
            }
            release(item, chain)
            return .done(item, counts, sample: batchSample)
        } catch {
            // A plugin that honours the cancel flag stops a run cleanly: the
            // batch is not committed, and nothing after it either.
            if isCancellation(error) { return .skipped(item, chain) }
            return .failed(sequence: item.sequence, item, chain, RunFailure(error, otherwise: .deadLetters))
        }
    }

    /// One transform over `input`; its output batch, checked, and its rejects dead-lettered.
    private func transform(
        _ input: UnsafePointer<ferry_batch>, with transform: HostedInstance, stage: PipelinePlan.Stage, counts: inout BatchCounts
    ) throws -> UnsafeMutablePointer<ferry_batch> {
        let output = UnsafeMutablePointer<ferry_batch>.allocate(capacity: 1)
        output.initialize(to: ferry_batch())
        var result = ferry_result()
        do {
            // A transform's dropped connection (a lookup, an enrichment call)
            // is retried like a source's or a sink's.
            counts.retries += try withRetry(stage: stage.config.role) { _ throws(PluginCallError) in
                try transform.transform(input, &output.pointee, &result)
            }.retries
        } catch {
            output.deallocate()
            throw error
        }
        // From here the output belongs to the chain's caller, which releases it
        // even when a check below fails.
        do {
            try Self.check(output.pointee, of: input.pointee, stage: stage)
        } catch {
            transform.release(&output.pointee)
            output.deallocate()
            throw error
        }
        let rejected = Int(result.reject_count)
        if rejected > 0 {
            do {
                try deadLetter(result, input: input, stage: stage.config.role, plugin: stage.plugin.name)
            } catch {
                transform.release(&output.pointee)
                output.deallocate()
                throw error
            }
        }
        counts.deadLettered += rejected
        counts.filtered += max(0, Int(input.pointee.count) - Int(output.pointee.count) - rejected)
        return output
    }

    /// A transform's output can be used: a passthrough is exactly its input,
    /// anything else is well framed. (`ferry diff` runs transforms too.)
    static func check(_ output: ferry_batch, of input: ferry_batch, stage: PipelinePlan.Stage) throws(PluginCallError) {
        func refuse(_ message: String) -> PluginCallError {
            PluginCallError(
                plugin: stage.plugin.name, stage: stage.config.role, call: "transform", status: Int32(FERRY_ERR_DATA), message: message)
        }
        if output.flags & UInt32(FERRY_BATCH_PASSTHROUGH) != 0 {
            guard output.data == input.data, output.size == input.size, output.count == input.count else {
                throw refuse("flagged its output as passthrough but it is not the input")
            }
        } else {
            do {
                try BatchView(output).validateFraming()
            } catch {
                throw refuse("returned a malformed batch: \(error)")
            }
        }
    }

    /// A call that returned FERRY_ERR_CANCELLED after the run was asked to stop.
    func isCancellation(_ error: any Error) -> Bool {
        ledger.cancelFlag.isCancelled && (error as? PluginCallError)?.status == Int32(FERRY_ERR_CANCELLED)
    }

    /// Writes and commits (or previews) one batch, retrying transient failures.
    func write(_ batch: UnsafeMutablePointer<ferry_batch>, to sink: HostedInstance, counts: inout BatchCounts) throws {
        let attempt = try withRetry(stage: "sink") { _ throws(PluginCallError) -> ferry_result in
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
            try deadLetter(result, input: UnsafePointer(batch), stage: plan.sink.config.role, plugin: plan.sink.plugin.name)
        }
        counts.deadLettered += rejected
        counts.written += Int(batch.pointee.count) - rejected
        counts.inserted += Int(result.inserted)
        counts.updated += Int(result.updated)
        counts.unchanged += Int(result.unchanged)
    }

    private func deadLetter(_ result: ferry_result, input: UnsafePointer<ferry_batch>, stage: String, plugin: String) throws {
        if options.dryRun { return }
        let view = BatchView(input.pointee)
        for offset in 0..<Int(result.reject_count) {
            let reject = result.rejects[offset]
            let reason = reject.reason.map { String(cString: $0) } ?? "(no reason given)"
            let record = view.document(at: Int(reject.index))
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

    /// Runs `body`, retrying transient plugin errors with exponential backoff
    /// and jitter, until the retries run out or the run is aborted.
    func withRetry<Value>(stage: String, _ body: (Int) throws(PluginCallError) -> Value) throws(PluginCallError) -> Attempt<Value> {
        var retries = 0
        while true {
            do {
                return Attempt(value: try body(retries), retries: retries)
            } catch {
                guard error.isTransient, retries < plan.pipeline.retry.attempts, !ledger.abortFlag.isCancelled else { throw error }
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
