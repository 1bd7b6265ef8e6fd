import Foundation

/// How a run ended.
public enum RunOutcome: Sendable, Equatable {
    case completed
    /// Stopped by a signal or `cancel()`; what was in flight was drained and committed.
    case cancelled
    case failed(RunFailure)

    /// The one word for it everywhere: the CLI, the JSON report, the daemon's
    /// run records, the metrics' `outcome` label and the docs.
    public var name: String {
        switch self {
        case .completed: "completed"
        case .cancelled: "cancelled"
        case .failed(let failure):
            switch failure.kind {
            case .crash: "crashed"
            case .stall: "stalled"
            default: "failed"
            }
        }
    }

    /// Every value `name` takes.
    public static let names = ["completed", "cancelled", "failed", "crashed", "stalled"]
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
    /// `deletes: propagate`: the repair that followed the run.
    public var propagation: DeletePropagation?

    public init(
        pipeline: String, outcome: RunOutcome = .completed, statistics: RunStatistics = RunStatistics(), dryRun: Bool,
        checkpoint: Checkpoint? = nil, checkpointLocation: String? = nil, deadLetterPath: String? = nil, sample: [String] = [],
        sinkPreviewed: Bool = false
    ) {
        self.pipeline = pipeline
        self.outcome = outcome
        self.statistics = statistics
        self.dryRun = dryRun
        self.checkpoint = checkpoint
        self.checkpointLocation = checkpointLocation
        self.deadLetterPath = deadLetterPath
        self.sample = sample
        self.sinkPreviewed = sinkPreviewed
    }

    public var failure: RunFailure? {
        if case .failed(let failure) = outcome { return failure }
        return nil
    }

    public var failureMessage: String? { failure?.description }
}
