import Foundation

/// Where checkpoints live.
///
/// Implementation requirements:
/// - `save` is atomic: after a crash at any moment, `load` returns either the
///   previous checkpoint or the new one, never a mix or nothing.
/// - `load` refuses (throws) a checkpoint of another format, pipeline, shard
///   or source plugin instead of returning it.
/// - Safe to call from any thread; calls for one pipeline come one at a time.
public protocol StateStore: Sendable {
    func load(pipeline: String, shard: ShardSpec, sourcePlugin: String) throws -> Checkpoint?
    func save(_ checkpoint: Checkpoint) throws
    func reset(pipeline: String, shard: ShardSpec?) throws
    /// The shards that have a checkpoint for this pipeline.
    func savedShards(pipeline: String) throws -> [ShardSpec]
    /// Human-readable location, for messages.
    func location(pipeline: String, shard: ShardSpec) -> String
    /// Where the store keeps every checkpoint (a directory, a table), for messages about all of them.
    var summary: String { get }
    /// The saved checkpoint as the store holds it (JSON), unverified: for `ferry state show`.
    func rawCheckpoint(pipeline: String, shard: ShardSpec) throws -> String?
    /// Throws unless the store can be written now: for readiness probes, and
    /// before a run reads anything.
    func checkWritable() throws
    /// Takes the lock that keeps two runs of one pipeline shard apart, or
    /// throws naming who holds it. Nil where the store keeps no such lock (a
    /// dry run's memory store; the daemon's cluster locks cover PostgreSQL).
    func lockRun(pipeline: String, shard: ShardSpec) throws -> (any RunLock)?
}

/// A held run lock; gone with `release` or with the process.
public protocol RunLock: Sendable {
    func release()
}

extension StateStore {
    public func lockRun(pipeline: String, shard: ShardSpec) throws -> (any RunLock)? { nil }
}

extension StateStore {
    /// The checks every store applies to what it read.
    public func verify(_ checkpoint: Checkpoint, pipeline: String, shard: ShardSpec, sourcePlugin: String, at location: String) throws {
        guard checkpoint.format == Checkpoint.currentFormat else {
            throw StateError("\(location): checkpoint format \(checkpoint.format) is not the format this ferry writes (\(Checkpoint.currentFormat)); run `ferry state reset` to start over")
        }
        guard checkpoint.pipeline == pipeline else {
            throw StateError("\(location): checkpoint belongs to pipeline '\(checkpoint.pipeline)', not '\(pipeline)'")
        }
        guard checkpoint.sourcePlugin == sourcePlugin else {
            throw StateError("\(location): checkpoint was taken from source plugin '\(checkpoint.sourcePlugin)', the pipeline now reads from '\(sourcePlugin)'; run `ferry state reset` to start over")
        }
        guard checkpoint.shardIndex == shard.index, checkpoint.shardCount == shard.count else {
            throw StateError("\(location): checkpoint is for shard \(checkpoint.shardIndex)/\(checkpoint.shardCount), not \(shard)")
        }
    }
}

/// The one JSON form of a checkpoint every store writes and reads.
public enum CheckpointCoding {
    // Made once: a checkpoint is saved as often as every batch.
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    private static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    public static func encode(_ checkpoint: Checkpoint) throws -> Data {
        try encoder.encode(checkpoint)
    }

    /// Decodes, naming `location` when the bytes are not a checkpoint.
    public static func decode(_ data: Data, at location: String) throws -> Checkpoint {
        do {
            return try decoder.decode(Checkpoint.self, from: data)
        } catch {
            throw StateError("\(location): not a checkpoint this ferry can read (\(error)); run `ferry state reset` to start over")
        }
    }
}
