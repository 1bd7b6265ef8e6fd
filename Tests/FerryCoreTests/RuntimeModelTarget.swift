@testable import FerryCore
import Foundation
import Logging
import Synchronization

/// What the model sink and the dead-letter file hold, read as they grow: the
/// sink's log of committed keys (16-byte entries: run, zero, key) and the
/// dead-letter JSON lines, attributed to the run that was going on.
final class ModelTarget: @unchecked Sendable {
    let sinkLog: String
    let deadLetterFile: String
    private let lock = NSLock()
    private var sinkOffset: UInt64 = 0
    private var deadLetterOffset: UInt64 = 0
    private var currentRun = 0
    /// Every committed write, in commit order: (run, key).
    private(set) var writes: [(run: Int, key: Int)] = []
    /// Key → runs that committed it.
    private(set) var writtenIn: [Int: [Int]] = [:]
    /// Every dead letter: (run, stage, key).
    private(set) var deadLetters: [(run: Int, stage: String, key: Int)] = []
    private(set) var deadLetteredIn: [Int: [Int]] = [:]
    private(set) var unreadable: [String] = []

    init(sinkLog: String, deadLetterFile: String) {
        self.sinkLog = sinkLog
        self.deadLetterFile = deadLetterFile
    }

    func startRun(_ run: Int) {
        lock.withLock {
            readNew()
            currentRun = run
        }
    }

    func refresh() { lock.withLock { readNew() } }

    func isWritten(_ key: Int) -> Bool { lock.withLock { writtenIn[key] != nil } }
    func isDeadLettered(_ key: Int) -> Bool { lock.withLock { deadLetteredIn[key] != nil } }

    /// Reads whole entries and whole lines appended since the last look.
    private func readNew() {
        if let handle = FileHandle(forReadingAtPath: sinkLog) {
            defer { try? handle.close() }
            try? handle.seek(toOffset: sinkOffset)
            let data = (try? handle.readToEnd()) ?? Data()
            let whole = data.count / 16 * 16
            data.withUnsafeBytes { bytes in
                var offset = 0
                while offset < whole {
                    let run = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                    let key = Int(Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 8, as: Int64.self)))
                    writes.append((run, key))
                    writtenIn[key, default: []].append(run)
                    offset += 16
                }
            }
            sinkOffset += UInt64(whole)
        }
        if let handle = FileHandle(forReadingAtPath: deadLetterFile) {
            defer { try? handle.close() }
            try? handle.seek(toOffset: deadLetterOffset)
            let data = (try? handle.readToEnd()) ?? Data()
            guard let end = data.lastIndex(of: UInt8(ascii: "\n")) else { return }
            let text = String(decoding: data[data.startIndex...end], as: UTF8.self)
            for line in text.split(separator: "\n") {
                if let (stage, key) = Self.parseDeadLetter(line) {
                    deadLetters.append((currentRun, stage, key))
                    deadLetteredIn[key, default: []].append(currentRun)
                } else {
                    unreadable.append(String(line.prefix(300)))
                }
            }
            deadLetterOffset += UInt64(end - data.startIndex + 1)
        }
    }

    /// The stage and record key of one dead-letter line.
    static func parseDeadLetter(_ line: Substring) -> (String, Int)? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let stage = object["stage"] as? String, let record = object["record"] as? [String: Any]
        else { return nil }
        let value = record["k"]
        if let wrapped = value as? [String: Any], let text = wrapped["$numberLong"] as? String, let key = Int(text) { return (stage, key) }
        if let number = value as? Int { return (stage, number) }
        return nil
    }
}

/// The model source's resume position: the next key to read.
enum ModelPosition {
    static func of(_ checkpoint: Checkpoint) -> Int? {
        guard checkpoint.state.count == 16, checkpoint.state.prefix(4) == Data("MDL1".utf8) else { return nil }
        return checkpoint.state.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self))) }
    }
}

/// A checkpoint store that checks every save against the target at the
/// moment it is made: every record before the new position must already be
/// committed, dead-lettered or filtered, and positions never move back.
final class ModelStateStore: StateStore, @unchecked Sendable {
    let inner = MemoryStateStore()
    let schedule: ModelSchedule
    let target: ModelTarget
    private let lock = NSLock()
    /// Per shard: the position checked so far.
    private var checked: [Int: Int] = [:]
    private(set) var violations: [String] = []
    private(set) var saves = 0

    init(schedule: ModelSchedule, target: ModelTarget) {
        self.schedule = schedule
        self.target = target
    }

    func load(pipeline: String, shard: ShardSpec, sourcePlugin: String) throws -> Checkpoint? {
        try inner.load(pipeline: pipeline, shard: shard, sourcePlugin: sourcePlugin)
    }

    func save(_ checkpoint: Checkpoint) throws {
        lock.withLock { check(checkpoint) }
        try inner.save(checkpoint)
    }

    func reset(pipeline: String, shard: ShardSpec?) throws { try inner.reset(pipeline: pipeline, shard: shard) }
    func savedShards(pipeline: String) throws -> [ShardSpec] { try inner.savedShards(pipeline: pipeline) }
    func location(pipeline: String, shard: ShardSpec) -> String { inner.location(pipeline: pipeline, shard: shard) }
    var summary: String { inner.summary }
    func rawCheckpoint(pipeline: String, shard: ShardSpec) throws -> String? { try inner.rawCheckpoint(pipeline: pipeline, shard: shard) }
    func checkWritable() throws {}

    /// The saved position of every shard (0 where none was saved).
    func positions() -> [Int] {
        (0..<schedule.lanes).map { shard in
            let checkpoint = try? inner.load(
                pipeline: "model", shard: ShardSpec(index: shard, count: schedule.lanes), sourcePlugin: "model-source")
            return checkpoint.flatMap(ModelPosition.of) ?? 0
        }
    }

    func checkpoint(shard: Int) -> Checkpoint? {
        try? inner.load(pipeline: "model", shard: ShardSpec(index: shard, count: schedule.lanes), sourcePlugin: "model-source")
    }

    private func check(_ checkpoint: Checkpoint) {
        saves += 1
        let shard = checkpoint.shardIndex
        guard checkpoint.shardCount == schedule.lanes, let position = ModelPosition.of(checkpoint) else {
            violations.append("checkpoint of shard \(shard)/\(checkpoint.shardCount) has a state the source never made")
            return
        }
        let from = checked[shard] ?? 0
        if position < from {
            violations.append("checkpoint of shard \(shard) moved back from position \(from) to \(position)")
            return
        }
        if position % schedule.lanes != shard {
            violations.append("checkpoint of shard \(shard) holds position \(position) of another shard")
        }
        let below = schedule.count(shard: shard, below: position)
        if checkpoint.records != below {
            violations.append("checkpoint of shard \(shard) at position \(position) says \(checkpoint.records) records, the shard has \(below) before it")
        }
        if checkpoint.complete, schedule.hasKeys(shard: shard, from: position) {
            violations.append("checkpoint of shard \(shard) is marked complete at position \(position), before the end of the shard")
        }
        target.refresh()
        var missing: [Int] = []
        for key in schedule.keys(shard: shard, from: from) {
            if key >= position { break }
            switch schedule.fate(key) {
            case .filtered: continue
            case .rejectedByTransform, .rejectedBySink: if !target.isDeadLettered(key) { missing.append(key) }
            case .written: if !target.isWritten(key) { missing.append(key) }
            }
        }
        if !missing.isEmpty {
            violations.append(
                "checkpoint of shard \(shard) saved at position \(position) ahead of the commit: \(missing.count) records before it are neither in the target nor in the dead letters (first: key \(missing.prefix(5).map(String.init).joined(separator: ", ")))")
        }
        checked[shard] = position
    }
}

/// Turns a model plugin's "model-cancel" log line into a cancel of the run, on
/// the plugin's own call: a cancel at an exact point, not after a delay.
final class ModelCancelSwitch: @unchecked Sendable {
    private let run = Mutex<LanedRun?>(nil)
    private let firedCount = Atomic<Int>(0)

    func arm(_ laned: LanedRun?) { run.withLock { $0 = laned } }
    var fired: Bool { firedCount.load(ordering: .relaxed) > 0 }

    func fire() {
        firedCount.add(1, ordering: .relaxed)
        let laned = run.withLock { $0 }
        laned?.cancel()
    }

    var logger: Logger {
        Logger(label: "ferry-model") { _ in ModelCancelLogHandler(cancelSwitch: self) }
    }
}

struct ModelCancelLogHandler: LogHandler {
    let cancelSwitch: ModelCancelSwitch
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .warning

    func log(event: LogEvent) {
        if event.message.description.hasPrefix("model-cancel") { cancelSwitch.fire() }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
}
