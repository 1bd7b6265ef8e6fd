@testable import FerryCore
import Foundation

/// One counterexample: what rule broke, in which run.
struct ModelViolation: CustomStringConvertible {
    var kind: String
    var detail: String
    var description: String { "[\(kind)] \(detail)" }
}

/// Runs one schedule in process against the model plugins and checks every
/// run, and the end state after the clean rerun, against the model.
final class ModelCase {
    let schedule: ModelSchedule
    let catalog: PluginCatalog
    let directory: String
    private(set) var violations: [ModelViolation] = []
    /// Keys committed again by a run after a run that stopped early (allowed: a replay).
    private(set) var replays = 0
    private(set) var deadLetterReplays = 0
    private(set) var runsMade = 0

    init(schedule: ModelSchedule, catalog: PluginCatalog, directory: String) {
        self.schedule = schedule
        self.catalog = catalog
        self.directory = directory
    }

    private func fail(_ kind: String, _ run: Int?, _ detail: String) {
        violations.append(ModelViolation(kind: kind, detail: (run.map { "run \($0): " } ?? "") + detail))
    }

    func yaml(_ settings: ModelRunSettings, run: Int) -> String {
        func stageConfig(_ stage: ModelStage) -> String {
            var cancelKey = -1, failKey = -1, failTransient = 0
            switch settings.disturbance {
            case .cancel(let at, let key) where at == stage: cancelKey = key
            case .fail(let at, let key, let transient) where at == stage: failKey = key; failTransient = transient ? 1 : 0
            default: break
            }
            return "seed: \(settings.pluginSeed), transient_pct: \(settings.transientPercent[stage] ?? 0), "
                + "transient_max: \(settings.transientMax), fail_key: \(failKey), fail_transient: \(failTransient), "
                + "cancel_key: \(cancelKey), cancel_aware: \(settings.cancelAware ? 1 : 0)"
        }
        var budget = 1_000_000_000
        if case .deadLetterBudget(let max) = settings.disturbance { budget = max }
        return """
            name: model
            source: {plugin: model-source, config: {n: \(schedule.keys), \(stageConfig(.source))}}
            transforms:
              - plugin: model-transform
                config: {rule_seed: \(schedule.ruleSeed), filter_pct: \(schedule.filterPercent), reject_pct: \(schedule.rejectPercent), \(stageConfig(.transform))}
            sink:
              plugin: \(settings.ordered ? "model-sink-ordered" : "model-sink")
              config: {log: "\(directory)/sink.log", run: \(run), rule_seed: \(schedule.ruleSeed), reject_pct: \(schedule.sinkRejectPercent), \(stageConfig(.sink))}
            batch_size: \(settings.batchSize)
            workers: \(settings.workers)
            read_lanes: \(schedule.lanes)
            \(settings.maxInFlight.map { "max_in_flight: \($0)" } ?? "")
            checkpoint_interval_ms: \(settings.checkpointIntervalMs)
            dead_letters: {max: \(budget)}
            retry: {attempts: \(settings.retryAttempts), initial_delay_ms: 1, max_delay_ms: 2}
            """
    }

    func run() {
        let target = ModelTarget(sinkLog: "\(directory)/sink.log", deadLetterFile: "\(directory)/dead.jsonl")
        let store = ModelStateStore(schedule: schedule, target: target)
        for (index, settings) in schedule.runs.enumerated() {
            runOnce(index, settings, target: target, store: store)
            if violations.contains(where: { $0.kind == "setup" }) { return }
        }
        checkEnd(target: target, store: store)
        // Once complete, another run finds nothing to do.
        var idle = schedule.runs.last!
        idle.disturbance = .none
        let index = schedule.runs.count
        let before = writesAndDeadLetters(target, run: index)
        guard let report = runOnce(index, idle, target: target, store: store) else { return }
        let after = writesAndDeadLetters(target, run: index)
        if report.statistics.read != 0 || after.writes != before.writes || after.deadLetters != before.deadLetters {
            fail("rerun after completion", index, "read \(report.statistics.read), wrote \(after.writes.count - before.writes.count), dead-lettered \(after.deadLetters.count - before.deadLetters.count); expected nothing")
        }
        violations += store.violations.map { ModelViolation(kind: "checkpoint", detail: $0) }
        if !target.unreadable.isEmpty {
            fail("dead letters", nil, "unreadable dead-letter lines: \(target.unreadable.prefix(2))")
        }
    }

    private func writesAndDeadLetters(_ target: ModelTarget, run: Int) -> (writes: [Int], deadLetters: [Int]) {
        target.refresh()
        return (target.writes.filter { $0.run == run }.map(\.key), target.deadLetters.filter { $0.run == run }.map(\.key))
    }

    @discardableResult
    private func runOnce(_ index: Int, _ settings: ModelRunSettings, target: ModelTarget, store: ModelStateStore) -> RunReport? {
        runsMade += 1
        let starts = store.positions()
        let checkpointsBefore = (0..<schedule.lanes).map { store.checkpoint(shard: $0) }
        let remaining = (0..<schedule.lanes).flatMap { Array(schedule.keys(shard: $0, from: starts[$0])) }
        target.startRun(index)
        let refused = settings.ordered && schedule.lanes > 1
        let plan: PipelinePlan
        do {
            let pipeline = try PipelineLoader().parse(yaml: yaml(settings, run: index), file: "\(directory)/model.yaml")
            plan = try PipelinePlan.resolve(pipeline, catalog: catalog)
        } catch {
            if !refused { fail("setup", index, "the pipeline did not load: \(error)") }
            return nil
        }
        var options = RunOptions()
        if case .limit(let limit) = settings.disturbance { options.limit = limit }
        let cancelSwitch = ModelCancelSwitch()
        let laned = LanedRun(
            plan: plan, options: options, store: store, deadLetterPath: target.deadLetterFile, logger: cancelSwitch.logger)
        cancelSwitch.arm(laned)
        let report = laned.run()
        cancelSwitch.arm(nil)
        let (written, deadLettered) = writesAndDeadLetters(target, run: index)
        let stats = report.statistics

        if refused {
            if report.failureMessage == nil || stats.read > 0 || !written.isEmpty {
                fail("ordered sink with read lanes", index, "an ordered sink with read_lanes \(schedule.lanes) was not refused: outcome \(report.outcome), read \(stats.read), committed \(written.count) writes")
            } else {
                return report
            }
        }

        // What the sink committed and what went to the dead letters in this run.
        var seen = Set<Int>()
        var last = -1
        for key in written {
            if !seen.insert(key).inserted { fail("duplicate in a run", index, "key \(key) committed twice by one run"); break }
            let shard = key % schedule.lanes
            if key < starts[shard] { fail("re-read before the checkpoint", index, "key \(key) committed again though the checkpoint of shard \(shard) was past it (position \(starts[shard]))"); break }
            if schedule.fate(key) != .written { fail("wrong key written", index, "key \(key) committed though its fate is \(schedule.fate(key))"); break }
            if settings.ordered && key <= last { fail("ordered sink out of order", index, "the ordered sink committed key \(key) after key \(last)"); break }
            last = key
            if let runs = target.writtenIn[key], runs.contains(where: { $0 < index }) { replays += 1 }
        }
        var seenDead = Set<Int>()
        for entry in target.deadLetters where entry.run == index {
            let fate = schedule.fate(entry.key)
            let expectedStage = fate == .rejectedByTransform ? "transforms[0]" : fate == .rejectedBySink ? "sink" : nil
            if entry.stage != expectedStage { fail("dead letters", index, "key \(entry.key) dead-lettered by '\(entry.stage)' though its fate is \(fate)"); break }
            if !seenDead.insert(entry.key).inserted { fail("dead letters", index, "key \(entry.key) dead-lettered twice by one run"); break }
            if entry.key < starts[entry.key % schedule.lanes] { fail("re-read before the checkpoint", index, "key \(entry.key) dead-lettered again though the checkpoint was past it"); break }
            if let runs = target.deadLetteredIn[entry.key], runs.contains(where: { $0 < index }) { deadLetterReplays += 1 }
        }
        if written.count < stats.written {
            fail("report", index, "the report says \(stats.written) written, the sink committed \(written.count)")
        }
        if deadLettered.count < stats.deadLettered {
            fail("report", index, "the report says \(stats.deadLettered) dead-lettered, the file got \(deadLettered.count)")
        }

        // The outcome the model expects.
        func reaches(_ stage: ModelStage, _ key: Int) -> Bool {
            guard key < schedule.keys, key >= starts[key % schedule.lanes] else { return false }
            switch stage {
            case .source, .transform: return true
            case .sink: return [.written, .rejectedBySink].contains(schedule.fate(key))
            }
        }
        let rejectedRemaining = remaining.filter { [.rejectedByTransform, .rejectedBySink].contains(schedule.fate($0)) }.count
        var allowed: [String]
        switch settings.disturbance {
        case .none, .limit: allowed = ["completed"]
        case .fail(let stage, let key, _): allowed = reaches(stage, key) ? ["failed"] : ["completed"]
        case .cancel(let stage, let key): allowed = reaches(stage, key) ? ["cancelled", "completed"] : ["completed"]
        case .deadLetterBudget(let max):
            allowed = rejectedRemaining > max ? ["failed"] : ["completed"]
            if deadLettered.count > max {
                fail("dead-letter budget", index, "dead_letters.max is \(max) and the run wrote \(deadLettered.count) dead letters (outcome \(report.outcome))")
            }
            if rejectedRemaining > max, let message = report.failureMessage, !message.contains("dead-letter budget") {
                fail("dead-letter budget", index, "expected the budget error, got: \(message)")
            }
        }
        let outcome: String
        switch report.outcome {
        case .completed: outcome = "completed"
        case .cancelled: outcome = "cancelled"
        case .failed: outcome = "failed"
        }
        if !allowed.contains(outcome) {
            fail("outcome", index, "expected \(allowed.joined(separator: " or ")), got \(report.outcome)")
        }

        // A run that says it succeeded wrote what its report says.
        if report.outcome == .completed {
            let counts = (
                filtered: remaining.filter { schedule.fate($0) == .filtered }.count,
                dead: rejectedRemaining, written: remaining.filter { schedule.fate($0) == .written }.count)
            if stats.read != stats.written + stats.filtered + stats.deadLettered {
                fail("report", index, "completed with read \(stats.read) ≠ written \(stats.written) + filtered \(stats.filtered) + dead-lettered \(stats.deadLettered)")
            }
            if written.count != stats.written || deadLettered.count != stats.deadLettered {
                fail("report", index, "completed; the report says \(stats.written) written and \(stats.deadLettered) dead-lettered, the sink committed \(written.count) and the file got \(deadLettered.count)")
            }
            let after = store.positions()
            if case .limit(let limit) = settings.disturbance {
                let shareEach = (limit + schedule.lanes - 1) / schedule.lanes
                let enough = (0..<schedule.lanes).allSatisfy { Array(schedule.keys(shard: $0, from: starts[$0])).count >= shareEach }
                let expected = min(limit, remaining.count)
                if schedule.lanes == 1 || enough ? stats.read != expected : stats.read > limit {
                    fail("limit", index, "--limit \(limit) with \(remaining.count) records left read \(stats.read) records")
                }
                let advanced = (0..<schedule.lanes).map { schedule.count(shard: $0, below: after[$0]) - schedule.count(shard: $0, below: starts[$0]) }.reduce(0, +)
                // A last batch cut at the limit is written but not checkpointed (its
                // state covers the whole batch): the checkpoints may lag, never lead.
                if advanced > stats.read {
                    fail("limit", index, "--limit \(limit): read \(stats.read) but the checkpoints moved over \(advanced) records")
                }
            } else {
                if stats.read != remaining.count || stats.filtered != counts.filtered || stats.deadLettered != counts.dead || stats.written != counts.written {
                    fail("report", index, "completed with read \(stats.read), filtered \(stats.filtered), dead-lettered \(stats.deadLettered), written \(stats.written); the model expects \(remaining.count), \(counts.filtered), \(counts.dead), \(counts.written)")
                }
                for shard in 0..<schedule.lanes {
                    let checkpoint = store.checkpoint(shard: shard)
                    let hasKeys = schedule.hasKeys(shard: shard, from: 0)
                    if let checkpoint, !checkpoint.complete || schedule.hasKeys(shard: shard, from: after[shard]) {
                        fail("checkpoint", index, "completed but shard \(shard)'s checkpoint is at position \(after[shard]), complete: \(checkpoint.complete)")
                    } else if checkpoint == nil && hasKeys {
                        fail("checkpoint", index, "completed but shard \(shard) has no checkpoint")
                    }
                }
            }
        }
        // A stop never loses the checkpoint of an earlier run.
        for shard in 0..<schedule.lanes where checkpointsBefore[shard] != nil && store.checkpoint(shard: shard) == nil {
            fail("checkpoint", index, "shard \(shard) lost its checkpoint")
        }
        return report
    }

    private func checkEnd(target: ModelTarget, store: ModelStateStore) {
        target.refresh()
        let all = 0..<schedule.keys
        let expectedWritten = Set(all.filter { schedule.fate($0) == .written })
        let expectedDead = Set(all.filter { [.rejectedByTransform, .rejectedBySink].contains(schedule.fate($0)) })
        let written = Set(target.writtenIn.keys)
        let dead = Set(target.deadLetteredIn.keys)
        if written != expectedWritten {
            let lost = expectedWritten.subtracting(written).sorted(), extra = written.subtracting(expectedWritten).sorted()
            fail("final target", nil, "after the rerun to completion the target lacks \(lost.count) keys (first \(lost.prefix(5))) and has \(extra.count) it should not (first \(extra.prefix(5)))")
        }
        if dead != expectedDead {
            let lost = expectedDead.subtracting(dead).sorted(), extra = dead.subtracting(expectedDead).sorted()
            fail("final dead letters", nil, "after the rerun the dead letters lack \(lost.count) rejected keys (first \(lost.prefix(5))) and hold \(extra.count) others (first \(extra.prefix(5)))")
        }
        let positions = store.positions()
        for shard in 0..<schedule.lanes where schedule.hasKeys(shard: shard, from: positions[shard]) {
            fail("final checkpoint", nil, "after the rerun shard \(shard)'s checkpoint is at position \(positions[shard]), before its end")
        }
    }
}
