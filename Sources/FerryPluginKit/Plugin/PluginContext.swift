import CFerryPlugin

/// The sync mode a pipeline runs in, as handed to `open`.
public enum SyncMode: UInt32, Sendable {
    case full = 0
    case incremental = 1
    case missingOnly = 2
}

/// Log levels of the host's log callback.
public enum PluginLogLevel: Int32, Sendable {
    case trace = 0, debug, info, warn, error
}

/// What the host handed a plugin instance at open: its services (log,
/// metrics, cancellation), its shard and where to resume.
///
/// Valid until the instance is closed; plugins log through it, never to stdout.
public final class PluginContext: @unchecked Sendable {
    let host: UnsafePointer<ferry_host_api>?
    public let kind: PluginKinds
    public let mode: SyncMode
    public let batchSize: Int
    /// The state blob this plugin produced earlier, to resume after; nil to start fresh.
    public let resumeState: [UInt8]?
    public let shardIndex: Int
    public let shardCount: Int
    public let pipelineName: String
    /// ABI 1.1: the instance writes a repair, so it must not empty or replace
    /// its target, whatever its config says (`FERRY_OPEN_REPAIR`).
    public let isRepair: Bool

    init(_ args: UnsafePointer<ferry_open_args>) {
        let args = args.pointee
        isRepair =
            Int(args.struct_size) >= MemoryLayout<ferry_open_args>.offset(of: \ferry_open_args.flags)! + 4
            && args.flags & UInt32(FERRY_OPEN_REPAIR) != 0
        host = args.host
        kind = PluginKinds(rawValue: args.kind)
        mode = SyncMode(rawValue: args.mode) ?? .full
        batchSize = args.batch_size > 0 ? Int(args.batch_size) : 100
        if let state = args.resume_state, args.resume_state_size > 0 {
            resumeState = Array(UnsafeBufferPointer(start: state, count: Int(args.resume_state_size)))
        } else {
            resumeState = nil
        }
        if let host = args.host {
            shardIndex = Int(host.pointee.shard_index)
            shardCount = max(1, Int(host.pointee.shard_count))
            pipelineName = host.pointee.pipeline_name.map { String(cString: $0) } ?? ""
        } else {
            shardIndex = 0
            shardCount = 1
            pipelineName = ""
        }
    }

    /// Sends one line to the host's log.
    public func log(_ level: PluginLogLevel, _ message: String) {
        guard let host, let log = host.pointee.log else { return }
        log(host.pointee.host_context, level.rawValue, message)
    }

    /// Adds to a counter metric.
    public func count(_ name: String, _ value: Double = 1) {
        guard let host, let metric = host.pointee.metric else { return }
        metric(host.pointee.host_context, name, value, Int32(FERRY_METRIC_COUNTER))
    }

    /// Sets a gauge metric.
    public func gauge(_ name: String, _ value: Double) {
        guard let host, let metric = host.pointee.metric else { return }
        metric(host.pointee.host_context, name, value, Int32(FERRY_METRIC_GAUGE))
    }

    /// True once the host cancelled the run; long loops should check it.
    public var isCancelled: Bool { ferry_is_cancelled(host) != 0 }
}
