/// What every plugin instance can do. One instance serves one worker and is
/// never called from two threads at once; its resources are freed in `deinit`
/// or `close()`.
public protocol PluginInstance: AnyObject {
    /// Opens an instance. Throw `PluginError.config` for bad config,
    /// `.transient` for a system that cannot be reached right now.
    init(config: PluginConfig, context: PluginContext) throws
    /// Can the instance reach its system? (Sinks' `check` in the ABI.)
    func check() throws
    /// Called once before the instance is dropped.
    func close()
}

extension PluginInstance {
    public func check() throws {}
    public func close() {}
}

/// A source reads records in batches, each ending at a resume position.
public protocol SourcePlugin: PluginInstance {
    /// Appends up to `context.batchSize` records to `batch` and sets
    /// `batch.state` to the position after them. Returns false when no
    /// records are left; records appended in that same call still count.
    func read(into batch: BatchBuilder) throws -> Bool
    /// How many records the whole read is expected to yield, if known.
    func estimate() throws -> UInt64?
}

extension SourcePlugin {
    public func estimate() throws -> UInt64? { nil }
}

/// The output of one `transform` call.
public enum TransformOutcome {
    /// The records appended to the output builder are the output.
    case built
    /// The output is the input, unchanged (no copy is made).
    case passthrough
}

/// Records a stage refuses, with reasons; the host dead-letters them.
public struct Rejects {
    public private(set) var items: [(index: Int, reason: String)] = []

    public init() {}

    /// Refuses the input record at `index` (0-based in the input batch).
    public mutating func reject(_ index: Int, _ reason: String) {
        items.append((index, reason))
    }

    public var isEmpty: Bool { items.isEmpty }
    public var count: Int { items.count }
}

/// A transform maps one input batch to an output batch: records left out
/// are filtered, records rejected go to the dead-letter output.
public protocol TransformPlugin: PluginInstance {
    func transform(_ input: BatchView, into output: BatchBuilder, rejects: inout Rejects) throws -> TransformOutcome
}

/// What a sink did (or would do) with a batch.
public struct SinkResult {
    public var inserted: UInt64 = 0
    public var updated: UInt64 = 0
    public var unchanged: UInt64 = 0
    public var rejects = Rejects()

    public init() {}
}

/// A sink writes batches and makes them durable on `commit`.
public protocol SinkPlugin: PluginInstance {
    func write(_ batch: BatchView, result: inout SinkResult) throws
    /// Makes everything written so far durable. The host checkpoints after it.
    func commit() throws
    /// What `write` would do, without changing the target (dry runs).
    func preview(_ batch: BatchView, result: inout SinkResult) throws
}

extension SinkPlugin {
    public func preview(_ batch: BatchView, result: inout SinkResult) throws {
        throw PluginError.unsupported("preview is not supported")
    }
}
