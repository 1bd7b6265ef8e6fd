import CFerryPlugin
import Dispatch
import FerryPluginKit
import Logging

/// The reader of one run: the only caller of the source instance. It takes
/// a permit per batch (so at most `maxInFlight` batches exist), checks the
/// batch's framing, cuts the last batch at `--limit`, counts it, and hands
/// it on; a failed read goes to the commit loop as the next sequence.
struct SourceReader {
    let source: HostedInstance
    let plan: PipelinePlan
    let limit: Int?
    let ledger: RunLedger
    let step: BatchStep
    let permits: DispatchSemaphore
    let logger: Logger

    /// Reads until the source runs dry (true), a cancel, a failure, or the limit.
    func run(handOff: (SourceBatch) -> Void, fail: (Int, RunFailure) -> Void) -> Bool {
        var sequence = 0
        var readRecords = 0
        let cancelled = { ledger.cancelFlag.isCancelled || ledger.abortFlag.isCancelled }
        while !cancelled() {
            if let limit, readRecords >= limit { return false }
            var acquired = false
            while !acquired {
                if cancelled() { return false }
                acquired = permits.wait(timeout: .now() + .milliseconds(50)) == .success
            }
            let batch = UnsafeMutablePointer<ferry_batch>.allocate(capacity: 1)
            batch.initialize(to: ferry_batch())
            do {
                let got = try step.withRetry(stage: "source") { _ throws(PluginCallError) in
                    try source.read(&batch.pointee)
                }.value
                guard got else {
                    batch.deallocate()
                    permits.signal()
                    return true
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
                if let limit, readRecords + records > limit {
                    records = limit - readRecords
                    input = Self.cut(batch, to: records)
                    state = []
                    logger.notice(
                        "--limit cut the last batch: its records are written, the checkpoint stays before them",
                        metadata: ["pipeline": "\(plan.pipeline.name)", "records": "\(records)"])
                }
                readRecords += records
                ledger.recordRead(records: records)
                handOff(SourceBatch(
                    source: source, sequence: sequence, batch: batch, input: input, state: state, records: records,
                    checkpointable: input == nil))
                sequence += 1
            } catch {
                batch.deallocate()
                permits.signal()
                if step.isCancellation(error) { return false }
                ledger.abortFlag.cancel()
                fail(sequence, RunFailure(error, otherwise: .internal))
                return false
            }
        }
        return false
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
}
