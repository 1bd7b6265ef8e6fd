import CFerryPlugin

/// A batch as the source returned it, on its way to the checkpoint.
final class SourceBatch: @unchecked Sendable {
    let source: HostedInstance
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
        source: HostedInstance, sequence: Int, batch: UnsafeMutablePointer<ferry_batch>, input: UnsafeMutablePointer<ferry_batch>? = nil,
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
    var outputs: [(instance: HostedInstance, batch: UnsafeMutablePointer<ferry_batch>)] = []
    var final: UnsafeMutablePointer<ferry_batch>?
}

/// How a batch left a worker (or the reader, for a failed read).
enum Completion: @unchecked Sendable {
    case done(SourceBatch, BatchCounts, sample: [String])
    /// Transforms done; the single ordered sink writes it in sequence.
    case awaitingWrite(SourceBatch, Chain, BatchCounts, sample: [String])
    case failed(sequence: Int, SourceBatch?, Chain?, RunFailure)
    case skipped(SourceBatch, Chain?)

    var sequence: Int {
        switch self {
        case .done(let item, _, _), .awaitingWrite(let item, _, _, _), .skipped(let item, _): item.sequence
        case .failed(let sequence, _, _, _): sequence
        }
    }
}

/// One worker's instances: its transform chain and, for an unordered sink, its own sink.
final class Worker: @unchecked Sendable {
    let transforms: [HostedInstance]
    let sink: HostedInstance?

    init(transforms: [HostedInstance], sink: HostedInstance?) {
        self.transforms = transforms
        self.sink = sink
    }

    func close() {
        transforms.forEach { $0.close() }
        sink?.close()
    }
}
