import Logging

/// What `deletes: propagate` did after a completed run: the repair's counts,
/// or why it deleted nothing.
public struct DeletePropagation: Codable, Sendable, Equatable {
    public var missing = 0
    public var extra = 0
    public var changed = 0
    public var written = 0
    public var deleted = 0
    public var deletesRefused: String?
    public var error: String?

    public init() {}

    /// True when something was left for an operator to look at.
    public var needsAttention: Bool { deletesRefused != nil || error != nil }

    /// Repairs the target after a run, when the pipeline asks for it and the
    /// run read the whole source: a dry run, a `--limit` or one shard saw
    /// only part of it, and deleting what they did not see would be wrong.
    public static func after(
        _ report: RunReport, plan: PipelinePlan, options: RunOptions, store: (any StateStore)?, deadLetterPath: String, logger: Logger
    ) -> DeletePropagation? {
        guard plan.pipeline.deletes == .propagate, case .completed = report.outcome, !options.dryRun, options.limit == nil,
            options.shard == .whole
        else { return nil }
        let runner = DiffRunner(
            plan: plan, options: DiffOptions(sampleSize: 0, repair: RepairOptions(maxDeletes: plan.pipeline.maxDeletes)),
            logger: logger, store: store, deadLetterPath: deadLetterPath)
        let diff = runner.run()
        var outcome = DeletePropagation()
        outcome.missing = diff.missing
        outcome.extra = diff.extra
        outcome.changed = diff.changed
        outcome.written = diff.repair?.written ?? 0
        outcome.deleted = diff.repair?.deleted ?? 0
        outcome.deletesRefused = diff.repair?.deletesRefused
        outcome.error = diff.failure?.description
        if outcome.needsAttention {
            logger.warning(
                "deletes: propagate left the target unrepaired",
                metadata: ["pipeline": "\(plan.pipeline.name)", "reason": "\(outcome.error ?? outcome.deletesRefused ?? "")"])
        }
        return outcome
    }
}
