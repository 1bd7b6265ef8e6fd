import CFerryPlugin

/// Kinds a plugin serves (source, transform, sink), as ABI bit flags.
public struct PluginKinds: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let source = PluginKinds(rawValue: UInt32(FERRY_KIND_SOURCE))
    public static let transform = PluginKinds(rawValue: UInt32(FERRY_KIND_TRANSFORM))
    public static let sink = PluginKinds(rawValue: UInt32(FERRY_KIND_SINK))
}

/// Capability flags of the descriptor.
public struct PluginCapabilities: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let shardedRead = PluginCapabilities(rawValue: UInt32(FERRY_CAP_SHARDED_READ))
    public static let upsert = PluginCapabilities(rawValue: UInt32(FERRY_CAP_UPSERT))
    public static let preview = PluginCapabilities(rawValue: UInt32(FERRY_CAP_PREVIEW))
    public static let estimate = PluginCapabilities(rawValue: UInt32(FERRY_CAP_ESTIMATE))
    public static let orderedSink = PluginCapabilities(rawValue: UInt32(FERRY_CAP_ORDERED_SINK))
    public static let resumable = PluginCapabilities(rawValue: UInt32(FERRY_CAP_RESUMABLE))
    /// ABI 1.1: the sink reads its target back (`ReadBackSink`).
    public static let readBack = PluginCapabilities(rawValue: UInt32(FERRY_CAP_READ_BACK))
    /// ABI 1.1: the instance digests per key bucket (`DigestingPlugin`).
    public static let digest = PluginCapabilities(rawValue: UInt32(FERRY_CAP_DIGEST))
    /// ABI 1.1: the sink deletes by key (`DeletingSink`).
    public static let delete = PluginCapabilities(rawValue: UInt32(FERRY_CAP_DELETE))
}

/// Everything the SDK needs to build a plugin's descriptor.
public struct PluginManifest {
    public var name: String
    public var version: String
    public var description: String
    public var options: [ConfigOption]
    public var capabilities: PluginCapabilities
    public var source: (any SourcePlugin.Type)?
    public var transform: (any TransformPlugin.Type)?
    public var sink: (any SinkPlugin.Type)?
    /// Set when `check` should be exported (sinks and sources that reach a system).
    public var hasCheck: Bool

    public init(
        name: String, version: String, description: String, options: [ConfigOption] = [],
        capabilities: PluginCapabilities = [], source: (any SourcePlugin.Type)? = nil,
        transform: (any TransformPlugin.Type)? = nil, sink: (any SinkPlugin.Type)? = nil,
        hasCheck: Bool = false
    ) {
        self.name = name
        self.version = version
        self.description = description
        self.options = options
        self.capabilities = capabilities
        self.source = source
        self.transform = transform
        self.sink = sink
        self.hasCheck = hasCheck
    }

    public var kinds: PluginKinds {
        var kinds: PluginKinds = []
        if source != nil { kinds.insert(.source) }
        if transform != nil { kinds.insert(.transform) }
        if sink != nil { kinds.insert(.sink) }
        return kinds
    }

    public var configSchema: String { ConfigOption.schema(for: options) }
}
