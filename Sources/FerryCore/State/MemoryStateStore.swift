import Foundation
import Synchronization

/// Keeps checkpoints in memory: for dry runs and tests. Records every save.
public final class MemoryStateStore: StateStore {
    private let checkpoints = Mutex<[String: Checkpoint]>([:])
    private let saves = Mutex<[Checkpoint]>([])

    public init() {}

    static func key(_ pipeline: String, _ shard: ShardSpec) -> String { "\(pipeline)#\(shard)" }

    public func load(pipeline: String, shard: ShardSpec, sourcePlugin: String) throws -> Checkpoint? {
        guard let checkpoint = checkpoints.withLock({ $0[Self.key(pipeline, shard)] }) else { return nil }
        try verify(checkpoint, pipeline: pipeline, shard: shard, sourcePlugin: sourcePlugin, at: location(pipeline: pipeline, shard: shard))
        return checkpoint
    }

    public func save(_ checkpoint: Checkpoint) throws {
        let shard = ShardSpec(index: checkpoint.shardIndex, count: checkpoint.shardCount)
        checkpoints.withLock { $0[Self.key(checkpoint.pipeline, shard)] = checkpoint }
        saves.withLock { $0.append(checkpoint) }
    }

    public func reset(pipeline: String, shard: ShardSpec?) throws {
        checkpoints.withLock { values in
            values = values.filter { key, _ in
                if let shard { key != Self.key(pipeline, shard) } else { !key.hasPrefix("\(pipeline)#") }
            }
        }
    }

    public func savedShards(pipeline: String) throws -> [ShardSpec] {
        checkpoints.withLock { values in
            values.values.filter { $0.pipeline == pipeline }.map { ShardSpec(index: $0.shardIndex, count: $0.shardCount) }
        }
    }

    public func location(pipeline: String, shard: ShardSpec) -> String { "memory:\(Self.key(pipeline, shard))" }
    public var summary: String { "memory" }

    public func rawCheckpoint(pipeline: String, shard: ShardSpec) throws -> String? {
        try checkpoints.withLock { $0[Self.key(pipeline, shard)] }.map { String(decoding: try CheckpointCoding.encode($0), as: UTF8.self) }
    }

    public func checkWritable() throws {}

    /// Every checkpoint saved, in order.
    public var history: [Checkpoint] { saves.withLock { $0 } }
}
