import Foundation

/// A seeded generator (SplitMix64): the same seed gives the same schedule.
struct ModelRandom: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return ModelRule.finish(state)
    }

    mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &self) < percent }

    /// 1…max, every order of magnitude about as likely as the next.
    mutating func logUniform(_ max: Int) -> Int {
        Int(exp(Double.random(in: 0...log(Double(max)), using: &self)).rounded(.down)).clamped(1, max)
    }
}

extension Int {
    func clamped(_ low: Int, _ high: Int) -> Int { Swift.min(Swift.max(self, low), high) }
}

/// The filter and reject rules of Tests/Fixtures/model_transform.c and
/// model_sink.c, computed the same way, so the model knows each key's fate.
enum ModelRule {
    static func finish(_ value: UInt64) -> UInt64 {
        var x = value
        x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
        return x ^ (x >> 31)
    }

    static func mix(_ value: UInt64) -> UInt64 { finish(value &+ 0x9E37_79B9_7F4A_7C15) }

    static func hits(ruleSeed: Int, key: Int, salt: UInt64, percent: Int) -> Bool {
        Int(mix(UInt64(ruleSeed) &* 1_000_003 &+ UInt64(key) &* 4 &+ salt) % 100) < percent
    }
}

/// What happens to a source record on its way to the target.
enum ModelFate: Equatable {
    case filtered
    case rejectedByTransform
    case rejectedBySink
    case written
}

enum ModelStage: String, CaseIterable {
    case source, transform, sink
}

/// What a run of a schedule does besides moving records.
enum ModelDisturbance: Equatable, CustomStringConvertible {
    case none
    /// The stage logs when a batch holding `key` reaches it, and the test cancels the run there.
    case cancel(ModelStage, key: Int)
    /// The stage fails for good on the batch holding `key` (or, `transient`, past the retry budget).
    case fail(ModelStage, key: Int, transient: Bool)
    /// `dead_letters.max` for this run.
    case deadLetterBudget(Int)
    /// `RunOptions.limit`.
    case limit(Int)

    var description: String {
        switch self {
        case .none: "none"
        case .cancel(let stage, let key): "cancel at key \(key) in the \(stage.rawValue)"
        case .fail(let stage, let key, let transient): "\(transient ? "endless transient" : "permanent") failure at key \(key) in the \(stage.rawValue)"
        case .deadLetterBudget(let max): "dead_letters.max \(max)"
        case .limit(let limit): "--limit \(limit)"
        }
    }
}

/// The settings of one run of a schedule.
struct ModelRunSettings: CustomStringConvertible {
    var workers = 1
    var batchSize = 100
    var maxInFlight: Int?
    var ordered = false
    var checkpointIntervalMs = 0
    var retryAttempts = 3
    /// Percent of batches that fail transiently, per stage, at most `transientMax` times each.
    var transientPercent: [ModelStage: Int] = [:]
    var transientMax = 0
    /// Plugins return FERRY_ERR_CANCELLED once the cancel flag is set.
    var cancelAware = false
    var pluginSeed = 1
    var disturbance = ModelDisturbance.none

    var description: String {
        let transient = ModelStage.allCases.compactMap { stage in
            transientPercent[stage].flatMap { $0 > 0 ? "\(stage.rawValue) \($0)%" : nil }
        }
        return "workers \(workers), batch_size \(batchSize), max_in_flight \(maxInFlight.map(String.init) ?? "default"), "
            + "\(ordered ? "ordered" : "unordered") sink, checkpoint_interval_ms \(checkpointIntervalMs), retry.attempts \(retryAttempts), "
            + "transient [\(transient.joined(separator: ", "))] up to \(transientMax)/batch, cancel-aware \(cancelAware), "
            + "plugin seed \(pluginSeed), disturbance: \(disturbance)"
    }
}

/// Which generated features are switched off (FERRY_MODEL_OFF=a,b), to tell
/// apart the causes of a counterexample. Never off by default.
struct ModelFeatures {
    var off: Set<String>

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        off = Set((environment["FERRY_MODEL_OFF"] ?? "").split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) })
    }

    func on(_ name: String) -> Bool { !off.contains(name) }

    static let all = [
        "source-transient", "transform-transient", "sink-transient", "cancel", "cancel-aware", "fail", "budget", "limit",
        "ordered", "ordered-lanes", "lanes", "rejects", "filters",
    ]
}

/// A pipeline and the runs made of it: some disturbed, then a clean rerun to completion.
struct ModelSchedule: CustomStringConvertible {
    var seed: UInt64
    var keys: Int
    var lanes: Int
    var ruleSeed: Int
    var filterPercent: Int
    var rejectPercent: Int
    var sinkRejectPercent: Int
    var runs: [ModelRunSettings]

    /// The key's fate under this schedule's rules.
    func fate(_ key: Int) -> ModelFate {
        if ModelRule.hits(ruleSeed: ruleSeed, key: key, salt: 1, percent: filterPercent) { return .filtered }
        if ModelRule.hits(ruleSeed: ruleSeed, key: key, salt: 2, percent: rejectPercent) { return .rejectedByTransform }
        if ModelRule.hits(ruleSeed: ruleSeed, key: key, salt: 3, percent: sinkRejectPercent) { return .rejectedBySink }
        return .written
    }

    /// Keys of shard `shard` at or after position `from`, in source order.
    func keys(shard: Int, from: Int) -> StrideTo<Int> {
        let first = from <= shard ? shard : from + ((shard - from % lanes) + lanes) % lanes
        return stride(from: first, to: keys, by: lanes)
    }

    /// Whether shard `shard` has a key at or after position `from`.
    func hasKeys(shard: Int, from: Int) -> Bool {
        var iterator = keys(shard: shard, from: from).makeIterator()
        return iterator.next() != nil
    }

    /// How many keys of shard `shard` lie before position `position`.
    func count(shard: Int, below position: Int) -> Int {
        let end = min(position, keys)
        return end > shard ? (end - shard + lanes - 1) / lanes : 0
    }

    var description: String {
        var text = "seed \(seed): \(keys) keys, read_lanes \(lanes), rules seed \(ruleSeed) (filter \(filterPercent)%, "
            + "transform rejects \(rejectPercent)%, sink rejects \(sinkRejectPercent)%), \(runs.count) runs:"
        for (index, run) in runs.enumerated() { text += "\n    run \(index): \(run)" }
        return text
    }

    /// A schedule from a seed; features switched off are never generated.
    static func generate(seed: UInt64, features: ModelFeatures = ModelFeatures()) -> ModelSchedule {
        var random = ModelRandom(seed: seed)
        let lanes = features.on("lanes") ? [1, 1, 2, 3].randomElement(using: &random)! : 1
        let typicalBatch = random.logUniform(5000)
        // Most schedules move at most a few dozen batches a run, so thousands fit in minutes.
        let batches = random.chance(10) ? Int.random(in: 1...400, using: &random) : Int.random(in: 1...40, using: &random)
        var keys = min(typicalBatch * batches, random.chance(80) ? 600 : 6000)
        if random.chance(5) { keys = Int.random(in: 0...3, using: &random) }
        var schedule = ModelSchedule(
            seed: seed, keys: keys, lanes: lanes, ruleSeed: Int.random(in: 1...1_000_000, using: &random),
            filterPercent: features.on("filters") && random.chance(70) ? Int.random(in: 0...30, using: &random) : 0,
            rejectPercent: features.on("rejects") && random.chance(60) ? Int.random(in: 0...10, using: &random) : 0,
            sinkRejectPercent: features.on("rejects") && random.chance(40) ? Int.random(in: 0...10, using: &random) : 0,
            runs: [])
        let disturbed = Int.random(in: 1...4, using: &random)
        for index in 0...disturbed {
            let final = index == disturbed
            var run = ModelRunSettings()
            run.workers = Int.random(in: 1...4, using: &random)
            run.batchSize = random.chance(60) ? typicalBatch : random.logUniform(5000)
            run.maxInFlight = random.chance(50) ? Int.random(in: 1...8, using: &random) : nil
            let orderedAllowed = features.on("ordered") && (lanes == 1 || (features.on("ordered-lanes") && !final))
            run.ordered = orderedAllowed && random.chance(lanes == 1 ? 40 : 4)
            run.checkpointIntervalMs = [0, 0, 1, 1000].randomElement(using: &random)!
            run.retryAttempts = Int.random(in: 0...3, using: &random)
            run.transientMax = Int.random(in: 0...run.retryAttempts, using: &random)
            for stage in ModelStage.allCases where features.on("\(stage.rawValue)-transient") && random.chance(30) {
                run.transientPercent[stage] = Int.random(in: 1...30, using: &random)
            }
            run.cancelAware = features.on("cancel-aware") && random.chance(50)
            run.pluginSeed = Int.random(in: 1...1_000_000, using: &random)
            if !final && keys > 0 {
                let key = Int.random(in: 0..<keys, using: &random)
                let stage = ModelStage.allCases.randomElement(using: &random)!
                var choices: [ModelDisturbance] = [.none]
                if features.on("cancel") { choices += [.cancel(stage, key: key), .cancel(stage, key: key)] }
                if features.on("fail") { choices += [.fail(stage, key: key, transient: random.chance(25)), .fail(stage, key: key, transient: false)] }
                if features.on("budget") && schedule.rejectPercent + schedule.sinkRejectPercent > 0 {
                    choices.append(.deadLetterBudget(Int.random(in: 0...max(1, keys / 10), using: &random)))
                }
                if features.on("limit") { choices.append(.limit(Int.random(in: 1...max(1, keys), using: &random))) }
                run.disturbance = choices.randomElement(using: &random)!
            }
            schedule.runs.append(run)
        }
        return schedule
    }
}
