@testable import FerryCore
import Foundation

/// The real `ferry` binary running the model pipeline, killed with SIGKILL at
/// random moments and then rerun to completion. After every kill the saved
/// checkpoints must cover only records that are committed or dead-lettered;
/// after the rerun the target and the dead letters must be exact, and a key
/// written twice must lie past the checkpoint its second run resumed from.
struct ModelKillCase {
    var seed: UInt64
    var plugins: String
    var directory: String

    struct Outcome {
        var violations: [ModelViolation] = []
        var kills = 0
        var replays = 0
        var description = ""
    }

    func run() throws -> Outcome {
        var random = ModelRandom(seed: seed)
        let lanes = Int.random(in: 1...2, using: &random)
        let schedule = ModelSchedule(
            seed: seed, keys: Int.random(in: 20_000...100_000, using: &random), lanes: lanes,
            ruleSeed: Int.random(in: 1...1_000_000, using: &random), filterPercent: Int.random(in: 0...20, using: &random),
            rejectPercent: Int.random(in: 0...3, using: &random), sinkRejectPercent: Int.random(in: 0...3, using: &random), runs: [])
        // Batches of 50 and up, and a checkpoint per batch only for large ones,
        // keep the rerun to completion within seconds in a debug build.
        let batchSize = 49 + random.logUniform(2000)
        let workers = Int.random(in: 1...4, using: &random)
        let ordered = lanes == 1 && random.chance(40)
        let interval = (batchSize >= 500 ? [0, 20, 1000] : [20, 1000]).randomElement(using: &random)!
        let attempts = Int.random(in: 2...4, using: &random)
        var outcome = Outcome()
        outcome.description = "seed \(seed): \(schedule.keys) keys, read_lanes \(lanes), batch_size \(batchSize), workers \(workers), "
            + "\(ordered ? "ordered" : "unordered") sink, checkpoint_interval_ms \(interval), filter \(schedule.filterPercent)%, "
            + "rejects \(schedule.rejectPercent)%+\(schedule.sinkRejectPercent)%, \(attempts) attempts"
        let target = ModelTarget(sinkLog: "\(directory)/sink.log", deadLetterFile: "\(directory)/dead.jsonl")
        let store = FileStateStore(directory: "\(directory)/state")
        func positions() -> [Int] {
            (0..<lanes).map { shard in
                let checkpoint = try? store.load(pipeline: "model", shard: ShardSpec(index: shard, count: lanes), sourcePlugin: "model-source")
                return checkpoint.flatMap(ModelPosition.of) ?? 0
            }
        }
        func violation(_ kind: String, _ detail: String) { outcome.violations.append(ModelViolation(kind: kind, detail: detail)) }

        let expectedWrites = (0..<schedule.keys).filter { schedule.fate($0) == .written }.count
        let killPoints = (0..<attempts).map { _ in Double.random(in: 0.02...0.95, using: &random) }.sorted()
        for attempt in 0..<attempts {
            let last = attempt == attempts - 1
            let starts = positions()
            let pipeline = "\(directory)/model.yaml"
            try """
                name: model
                source: {plugin: model-source, config: {n: \(schedule.keys), seed: \(attempt + 1), transient_pct: 5, transient_max: 1}}
                transforms:
                  - plugin: model-transform
                    config: {rule_seed: \(schedule.ruleSeed), filter_pct: \(schedule.filterPercent), reject_pct: \(schedule.rejectPercent)}
                sink:
                  plugin: \(ordered ? "model-sink-ordered" : "model-sink")
                  config: {log: "\(directory)/sink.log", run: \(attempt), rule_seed: \(schedule.ruleSeed), reject_pct: \(schedule.sinkRejectPercent), seed: \(attempt + 7), transient_pct: 5, transient_max: 1}
                batch_size: \(batchSize)
                workers: \(workers)
                read_lanes: \(lanes)
                checkpoint_interval_ms: \(interval)
                dead_letters: {path: "\(directory)/dead.jsonl", max: 1000000000}
                retry: {attempts: 2, initial_delay_ms: 1, max_delay_ms: 2}
                """.write(toFile: pipeline, atomically: true, encoding: .utf8)
            target.startRun(attempt)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: TestSupport.ferryExecutable)
            process.arguments = ["run", pipeline, "--plugins", plugins, "--state-dir", "\(directory)/state", "--no-progress", "--log-level", "error"]
            let errors = Pipe()
            process.standardOutput = FileHandle.nullDevice
            process.standardError = errors
            try process.run()
            if !last {
                // Killed once the target holds a given share of the records: mid-run
                // however fast the build is.
                let threshold = UInt64(Double(expectedWrites) * killPoints[attempt]) * 16
                while process.isRunning {
                    let size = (try? FileManager.default.attributesOfItem(atPath: target.sinkLog)[.size] as? UInt64) ?? 0
                    if size >= threshold {
                        kill(process.processIdentifier, SIGKILL)
                        outcome.kills += 1
                        break
                    }
                    usleep(500)
                }
            }
            let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            let killed = process.terminationReason == .uncaughtSignal
            // 3: completed with dead letters.
            if !killed && ![0, 3].contains(process.terminationStatus) {
                violation("ferry run", "attempt \(attempt) exited \(process.terminationStatus): \(stderr.suffix(400))")
            }
            target.refresh()
            // Every record before a saved checkpoint is committed or dead-lettered.
            let saved = positions()
            for shard in 0..<lanes {
                if saved[shard] < starts[shard] { violation("checkpoint", "attempt \(attempt): shard \(shard) moved back from \(starts[shard]) to \(saved[shard])") }
                let missing = schedule.keys(shard: shard, from: 0).prefix { $0 < saved[shard] }.filter { key in
                    switch schedule.fate(key) {
                    case .filtered: false
                    case .written: !target.isWritten(key)
                    case .rejectedByTransform, .rejectedBySink: !target.isDeadLettered(key)
                    }
                }
                if !missing.isEmpty {
                    violation("checkpoint ahead of commit", "attempt \(attempt)\(killed ? " (killed)" : ""): shard \(shard) saved at \(saved[shard]) but \(missing.count) records before it are missing (first \(missing.prefix(5)))")
                }
            }
            // What this attempt wrote: nothing before its start, each key once, in order for an ordered sink.
            var seen = Set<Int>()
            var previous = -1
            for entry in target.writes where entry.run == attempt {
                if entry.key < starts[entry.key % lanes] { violation("re-read before the checkpoint", "attempt \(attempt): key \(entry.key) written again before position \(starts[entry.key % lanes])"); break }
                if !seen.insert(entry.key).inserted { violation("duplicate in a run", "attempt \(attempt): key \(entry.key) twice"); break }
                if ordered && entry.key <= previous { violation("ordered sink out of order", "attempt \(attempt): key \(entry.key) after \(previous)"); break }
                previous = entry.key
                if target.writtenIn[entry.key]?.first.map({ $0 < attempt }) == true { outcome.replays += 1 }
            }
        }
        let all = 0..<schedule.keys
        let written = Set(target.writtenIn.keys)
        let expected = Set(all.filter { schedule.fate($0) == .written })
        if written != expected {
            violation("final target", "the target lacks \(expected.subtracting(written).count) keys and holds \(written.subtracting(expected).count) it should not")
        }
        let dead = Set(target.deadLetteredIn.keys)
        let rejected = Set(all.filter { [.rejectedByTransform, .rejectedBySink].contains(schedule.fate($0)) })
        if dead != rejected {
            violation("final dead letters", "the dead letters lack \(rejected.subtracting(dead).count) rejected keys and hold \(dead.subtracting(rejected).count) others")
        }
        return outcome
    }
}
