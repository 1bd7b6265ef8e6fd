import Foundation

/// A saved source position: the state blob of the last batch committed in
/// order, and what it belongs to, so a foreign or stale state is refused.
public struct Checkpoint: Codable, Equatable, Sendable {
    /// Bumped when the file layout changes; older layouts are refused, not misread.
    public static let currentFormat = 1

    public var format: Int
    public var pipeline: String
    public var sourcePlugin: String
    public var shardIndex: Int
    public var shardCount: Int
    /// The source's opaque resume state.
    public var state: Data
    /// Records committed under this checkpoint, across runs.
    public var records: Int
    public var savedAt: Date
    /// True when the run that saved it read its source to the end.
    public var complete: Bool

    public init(
        pipeline: String, sourcePlugin: String, shardIndex: Int = 0, shardCount: Int = 1, state: Data, records: Int,
        savedAt: Date = Date(), complete: Bool = false
    ) {
        self.format = Checkpoint.currentFormat
        self.pipeline = pipeline
        self.sourcePlugin = sourcePlugin
        self.shardIndex = shardIndex
        self.shardCount = shardCount
        self.state = state
        self.records = records
        self.savedAt = savedAt
        self.complete = complete
    }
}

/// Which slice of a source a run reads: shard `index` of `count`.
public struct ShardSpec: Hashable, Sendable, CustomStringConvertible {
    public var index: Int
    public var count: Int

    public static let whole = ShardSpec(index: 0, count: 1)

    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    /// Parses `i/N` with 0 ≤ i < N.
    public init?(parsing text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]), count >= 1, index >= 0, index < count else {
            return nil
        }
        self.init(index: index, count: count)
    }

    public var description: String { "\(index)/\(count)" }
}

public struct StateError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
