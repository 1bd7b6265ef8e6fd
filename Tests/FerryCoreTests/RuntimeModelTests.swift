@testable import FerryCore
import Foundation
import Testing

/// A model-based test of the pipeline runtime: thousands of generated
/// schedules of runs (workers, lanes, batch sizes, in-flight bounds, ordered
/// or unordered sink, transient failures within the retry budget, filters,
/// rejects, cancels and permanent failures at chosen records, dead-letter
/// budgets, limits), each followed by a rerun to completion, checked against
/// what the model says the target, the dead letters and the checkpoints hold.
///
/// FERRY_MODEL_SEED=<case seed> reruns one printed case; FERRY_MODEL_CASES=n
/// or FERRY_MODEL_SECONDS=s scale up; FERRY_MODEL_MASTER_SEED=n (or "random")
/// picks other schedules; FERRY_MODEL_OFF=feature,… switches generated
/// features off to tell causes apart (names in `ModelFeatures.all`).
@Suite("Runtime model", .serialized)
struct RuntimeModelTests {
    /// About 80 s in a debug build on 2 idle cores.
    static let defaultCases = 2000
    /// CI's budget for the in-process cases, whatever the case count.
    static let defaultSeconds = 140.0

    /// The model plugins, compiled from Tests/Fixtures/model_*.c.
    static func modelPlugins() throws -> String {
        let directory = try TestSupport.temporaryDirectory("ferry-model-plugins")
        let fixtures = TestSupport.repoRoot.appendingPathComponent("Tests/Fixtures").path
        try TestSupport.compilePlugin(source: "\(fixtures)/model_source.c", output: "\(directory)/libmodel-source.so")
        try TestSupport.compilePlugin(source: "\(fixtures)/model_transform.c", output: "\(directory)/libmodel-transform.so")
        try TestSupport.compilePlugin(source: "\(fixtures)/model_sink.c", output: "\(directory)/libmodel-sink.so")
        try TestSupport.compilePlugin(
            source: "\(fixtures)/model_sink.c", output: "\(directory)/libmodel-sink-ordered.so", defines: ["ORDERED"])
        return directory
    }

    @Test("generated schedules of runs lose, duplicate and reorder no record")
    func generatedSchedules() throws {
        let environment = ProcessInfo.processInfo.environment
        let plugins = try Self.modelPlugins()
        defer { try? FileManager.default.removeItem(atPath: plugins) }
        let catalog = PluginCatalog(directories: [plugins])
        let features = ModelFeatures(environment: environment)
        let work = try TestSupport.temporaryDirectory("ferry-model")
        defer { try? FileManager.default.removeItem(atPath: work) }

        var seeds: AnySequence<UInt64>
        var limitSeconds = Self.defaultSeconds
        let master: UInt64
        if let text = environment["FERRY_MODEL_MASTER_SEED"] {
            master = text == "random" ? UInt64.random(in: 0...UInt64(UInt32.max)) : UInt64(text) ?? 1
        } else {
            master = 1
        }
        if let one = environment["FERRY_MODEL_SEED"].flatMap({ UInt64($0) }) {
            seeds = AnySequence([one])
            limitSeconds = .infinity
        } else {
            var cases = Self.defaultCases
            if let text = environment["FERRY_MODEL_CASES"], let value = Int(text) {
                cases = value
                limitSeconds = .infinity
            }
            if let text = environment["FERRY_MODEL_SECONDS"], let value = Double(text) {
                cases = Int.max
                limitSeconds = value
            }
            seeds = AnySequence((0..<cases).lazy.map { ModelRule.mix(master &* 1_000_003 &+ UInt64($0)) })
        }

        let started = Date()
        var cases = 0, runs = 0, replays = 0, deadLetterReplays = 0, failedCases = 0
        /// The smallest counterexample of each kind.
        var firstOfKind: [String: (schedule: ModelSchedule, violations: [ModelViolation])] = [:]
        for seed in seeds {
            if Date().timeIntervalSince(started) > limitSeconds { break }
            let schedule = ModelSchedule.generate(seed: seed, features: features)
            let directory = "\(work)/\(seed)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let modelCase = ModelCase(schedule: schedule, catalog: catalog, directory: directory)
            modelCase.run()
            try? FileManager.default.removeItem(atPath: directory)
            cases += 1
            runs += modelCase.runsMade
            replays += modelCase.replays
            deadLetterReplays += modelCase.deadLetterReplays
            guard !modelCase.violations.isEmpty else { continue }
            failedCases += 1
            for kind in Set(modelCase.violations.map(\.kind)) {
                if let known = firstOfKind[kind], known.schedule.keys <= schedule.keys { continue }
                firstOfKind[kind] = (schedule, modelCase.violations)
            }
        }
        let seconds = Date().timeIntervalSince(started)
        print(
            "runtime model: \(cases) cases, \(runs) runs in \(String(format: "%.1f", seconds)) s (master seed \(master)); "
                + "\(replays) records and \(deadLetterReplays) dead letters replayed after stopped runs; \(failedCases) cases broke the model")
        var report = ""
        for (kind, example) in firstOfKind.sorted(by: { $0.key < $1.key }) {
            report += "\n\(kind): smallest counterexample (rerun with FERRY_MODEL_SEED=\(example.schedule.seed))\n  \(example.schedule)\n"
            for violation in example.violations.prefix(8) { report += "  - \(violation)\n" }
        }
        if !report.isEmpty { Issue.record("\(failedCases) of \(cases) cases broke the model:\(report)") }
        #expect(cases > 0)
    }
}

extension RuntimeModelTests {
    @Test("the ferry binary killed with SIGKILL at random points, then rerun, skips and loses nothing")
    func killedProcesses() throws {
        let environment = ProcessInfo.processInfo.environment
        let count = environment["FERRY_MODEL_KILL_CASES"].flatMap { Int($0) } ?? 2
        let master = environment["FERRY_MODEL_MASTER_SEED"].flatMap { $0 == "random" ? UInt64.random(in: 0...UInt64(UInt32.max)) : UInt64($0) } ?? 1
        let plugins = try Self.modelPlugins()
        defer { try? FileManager.default.removeItem(atPath: plugins) }
        var kills = 0, replays = 0
        var broken: [String] = []
        for index in 0..<count {
            let seed = environment["FERRY_MODEL_KILL_SEED"].flatMap { UInt64($0) } ?? ModelRule.mix(master &* 7_919 &+ UInt64(index))
            let directory = try TestSupport.temporaryDirectory("ferry-model-kill")
            let outcome = try ModelKillCase(seed: seed, plugins: plugins, directory: directory).run()
            kills += outcome.kills
            replays += outcome.replays
            if outcome.violations.isEmpty {
                try? FileManager.default.removeItem(atPath: directory)
            } else {
                broken.append("\(outcome.description) (FERRY_MODEL_KILL_SEED=\(seed), files in \(directory))\n" + outcome.violations.prefix(6).map { "  - \($0)" }.joined(separator: "\n"))
            }
        }
        print("runtime model, killed processes: \(count) cases, \(kills) SIGKILLs, \(replays) records replayed")
        #expect(broken.isEmpty, "\(broken.count) of \(count) killed-process cases broke the model:\n\(broken.joined(separator: "\n"))")
    }
}
