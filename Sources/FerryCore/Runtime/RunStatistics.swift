import Foundation

/// Counters of one run. Written by the runner's threads under a lock; read
/// as snapshots by progress reporting and the run report.
public struct RunStatistics: Sendable, Codable, Equatable {
    /// Records the source produced.
    public var read = 0
    /// Records transforms left out.
    public var filtered = 0
    /// Records the sink accepted (committed, or previewed in a dry run).
    public var written = 0
    public var inserted = 0
    public var updated = 0
    public var unchanged = 0
    /// Records rejected by a transform or the sink, sent to the dead-letter output.
    public var deadLettered = 0
    /// Batches read, and batches committed in order.
    public var batchesRead = 0
    public var batchesCommitted = 0
    /// Records covered by the saved checkpoint (committed in order).
    public var committedRecords = 0
    /// Transient failures retried.
    public var retries = 0
    /// The most batches that were between read and commit at once.
    public var maxInFlight = 0
    /// The source's estimate of its total, when it has one.
    public var estimatedTotal: UInt64?
    public var elapsedSeconds: Double = 0

    public init() {}

    /// Records per second over the run so far.
    public var rate: Double { elapsedSeconds > 0 ? Double(read) / elapsedSeconds : 0 }

    /// Seconds left, when the source gave an estimate.
    public var etaSeconds: Double? {
        guard let total = estimatedTotal, rate > 0, Double(total) >= Double(read) else { return nil }
        return (Double(total) - Double(read)) / rate
    }
}
