import Foundation

/// How a run ended.
public enum RunOutcome: Sendable, Equatable {
    case completed
    /// Stopped by a signal or `cancel()`; what was in flight was drained and committed.
    case cancelled
    case failed(String)
}

/// What a run did: its outcome, counters, checkpoint and dead letters.
public struct RunReport: Sendable {
    public var pipeline: String
    public var outcome: RunOutcome
    public var statistics: RunStatistics
    public var dryRun: Bool
    /// The checkpoint saved at the end (nil in a dry run or if nothing was committed).
    public var checkpoint: Checkpoint?
    public var checkpointLocation: String?
    public var deadLetterPath: String?
    /// Dry runs: the first records exactly as they would be written (relaxed extended JSON).
    public var sample: [String]
    /// Dry runs: false when the sink cannot preview, so the counts are of records only.
    public var sinkPreviewed: Bool

    public var failureMessage: String? {
        if case .failed(let message) = outcome { return message }
        return nil
    }
}
