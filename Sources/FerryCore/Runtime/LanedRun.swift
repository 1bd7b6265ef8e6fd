import Dispatch
import FerryPluginKit
import Foundation
import Logging
import Synchronization

/// Runs a pipeline as one or more read lanes in one process.
///
/// One reader feeds every worker, so a source that costs as much CPU as the
/// rest of the pipeline caps a run at one core. A source that can read shards
/// can instead be read by `read_lanes` lanes: lane l of shard i/N reads shard
/// i·L+l of N·L, with its own workers, ordered committer and checkpoint, so
/// lanes never wait on each other and a crash replays each lane from its own
/// checkpoint. Changing the lane count while checkpoints exist is refused
/// (they would no longer line up with the shards) until the state is reset.
public final class LanedRun: @unchecked Sendable {
    public let runners: [PipelineRunner]
    public let lanes: Int
    let setupFailure: RunFailure?
    let pipelineName: String
    let dryRun: Bool

    public init(plan: PipelinePlan, options: RunOptions, store: any StateStore, deadLetterPath: String, logger: Logger) {
        let lanes = max(1, options.readLanes ?? plan.pipeline.readLanes)
        self.lanes = lanes
        pipelineName = plan.pipeline.name
        dryRun = options.dryRun
        var failure: RunFailure?
        if lanes > 1, let problem = plan.laneProblem(lanes: lanes) {
            failure = RunFailure(.config, problem)
        }
        let expectedCount = options.shard.count * lanes
        if failure == nil, plan.pipeline.mode != .full, let saved = try? store.savedShards(pipeline: plan.pipeline.name),
            let stray = saved.first(where: { $0.count != expectedCount })
        {
            failure = RunFailure(.config, "pipeline '\(plan.pipeline.name)' has a checkpoint for shard \(stray), but this run reads \(expectedCount) shard(s) (\(options.shard.count) × \(lanes) read lanes); run with the lane count and --shard it was saved with, or `ferry state reset` it")
        }
        setupFailure = failure
        let totalWorkers = max(1, options.workers ?? plan.pipeline.workers)
        let budget = DeadLetterBudget(maxRecords: plan.pipeline.deadLetters.maxRecords)
        runners = (0..<lanes).map { lane in
            var laneOptions = options
            laneOptions.workers = max(1, totalWorkers / lanes)
            // One worker a lane: the lanes are the parallelism, so each runs its
            // batches on its reader thread. A reader and a worker per lane meant
            // twice the threads of the cores in use and a wake-up per batch
            // (1.1x one worker at batch 100 on 2 cores; inline: see docs/04).
            laneOptions.inline = lanes > 1 && laneOptions.workers == 1
            laneOptions.shard = ShardSpec(index: options.shard.index * lanes + lane, count: expectedCount)
            // The limit split so the lanes' shares add up to it exactly; a lane
            // whose share is 0 reads nothing.
            if lanes > 1, let limit = options.limit { laneOptions.limit = limit / lanes + (lane < limit % lanes ? 1 : 0) }
            return PipelineRunner(
                plan: plan, options: laneOptions, store: store, deadLetterPath: deadLetterPath, logger: logger,
                deadLetterBudget: budget)
        }
    }

    public func cancel() { runners.forEach { $0.cancel() } }

    /// The lanes' counters added up.
    public func snapshot() -> RunStatistics {
        Self.combine(runners.map { $0.snapshot() })
    }

    static func combine(_ all: [RunStatistics]) -> RunStatistics {
        guard var total = all.first else { return RunStatistics() }
        for stats in all.dropFirst() { total.add(stats) }
        return total
    }

    /// Runs every lane at once and merges their reports.
    public func run() -> RunReport {
        if let setupFailure {
            return RunReport(pipeline: pipelineName, outcome: .failed(setupFailure), dryRun: dryRun)
        }
        if runners.count == 1 { return runners[0].run() }
        let reports = Mutex<[Int: RunReport]>([:])
        DispatchQueue.concurrentPerform(iterations: runners.count) { lane in
            let report = runners[lane].run()
            // One lane failing stops the others: they drain and checkpoint.
            if report.failure != nil { cancel() }
            reports.withLock { $0[lane] = report }
        }
        let ordered = reports.withLock { values in (0..<runners.count).compactMap { values[$0] } }
        var merged = ordered[0]
        merged.statistics = Self.combine(ordered.map(\.statistics))
        // The first lane's failure, typed as it happened; the others named in its message.
        let failures = ordered.enumerated().compactMap { lane, report in
            report.failure.map { failure in
                var failure = failure
                failure.lane = lane
                return failure
            }
        }
        if var first = failures.first {
            if failures.count > 1 {
                first.message += " (and \(failures.count - 1) more lane(s) failed: \(failures.dropFirst().map(\.description).joined(separator: "; ")))"
            }
            merged.outcome = .failed(first)
        } else if ordered.contains(where: { $0.outcome == .cancelled }) {
            merged.outcome = .cancelled
        }
        merged.sample = Array(ordered.flatMap(\.sample).prefix(ordered[0].sample.count))
        merged.deadLetterPath = ordered.compactMap(\.deadLetterPath).first
        if var checkpoint = merged.checkpoint {
            checkpoint.records = ordered.compactMap(\.checkpoint).reduce(0) { $0 + $1.records }
            merged.checkpoint = checkpoint
            merged.checkpointLocation = "\(runners.count) lane checkpoints beside \(merged.checkpointLocation ?? "?")"
        }
        return merged
    }
}
