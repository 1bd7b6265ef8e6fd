#if canImport(Glibc)
import Glibc
#endif
import CFerryPlugin
import CFerryHost
import FerryPluginKit
import Logging

/// The run-wide cancel flag plugins poll through their host table.
public final class CancelFlag: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Int32>

    public init() {
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: 0)
    }

    deinit { pointer.deallocate() }

    public func cancel() { ferry_host_store_flag(pointer, 1) }
    public var isCancelled: Bool { ferry_host_load_flag(pointer) != 0 }
}

/// Receives plugins' metric callbacks.
public protocol PluginMetricsSink: AnyObject, Sendable {
    func record(plugin: String, name: String, value: Double, isCounter: Bool)
}

/// Everything one open instance needs from the host; lives until close.
final class InstanceHost {
    let pluginName: String
    let stage: String
    let logger: Logger
    weak var metrics: (any PluginMetricsSink)?

    init(pluginName: String, stage: String, logger: Logger, metrics: (any PluginMetricsSink)?) {
        self.pluginName = pluginName
        self.stage = stage
        self.logger = logger
        self.metrics = metrics
    }

    static let logCallback: @convention(c) (UnsafeMutableRawPointer?, Int32, UnsafePointer<CChar>?) -> Void = { context, level, message in
        guard let context, let message else { return }
        let host = Unmanaged<InstanceHost>.fromOpaque(context).takeUnretainedValue()
        let text = SecretMasking.mask(String(cString: message))
        let logLevel: Logger.Level =
            switch level {
            case Int32(FERRY_LOG_TRACE): .trace
            case Int32(FERRY_LOG_DEBUG): .debug
            case Int32(FERRY_LOG_INFO): .info
            case Int32(FERRY_LOG_WARN): .warning
            default: .error
            }
        host.logger.log(level: logLevel, "\(text)", metadata: ["plugin": "\(host.pluginName)", "stage": "\(host.stage)"])
    }

    static let metricCallback: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, Double, Int32) -> Void = {
        context, name, value, kind in
        guard let context, let name else { return }
        let host = Unmanaged<InstanceHost>.fromOpaque(context).takeUnretainedValue()
        host.metrics?.record(plugin: host.pluginName, name: String(cString: name), value: value, isCounter: kind == FERRY_METRIC_COUNTER)
    }
}

/// What `open` needs besides the plugin.
public struct InstanceOptions: Sendable {
    public var kind: PluginKinds
    public var stage: String
    public var configJSON: String
    public var resumeState: [UInt8]?
    public var mode: SyncMode
    public var batchSize: Int
    public var shardIndex: Int
    public var shardCount: Int
    public var pipelineName: String
    /// The sink writes a repair: it must not empty or replace its target.
    public var repair: Bool

    public init(
        kind: PluginKinds, stage: String, configJSON: String, resumeState: [UInt8]? = nil, mode: SyncMode = .incremental,
        batchSize: Int = 100, shardIndex: Int = 0, shardCount: Int = 1, pipelineName: String = "", repair: Bool = false
    ) {
        self.repair = repair
        self.kind = kind
        self.stage = stage
        self.configJSON = configJSON
        self.resumeState = resumeState
        self.mode = mode
        self.batchSize = batchSize
        self.shardIndex = shardIndex
        self.shardCount = shardCount
        self.pipelineName = pipelineName
    }
}

/// One open plugin instance as the host holds it (the plugin side of the
/// same thing is the SDK's `PluginInstance` protocol), called from one thread
/// at a time. Every call returns normally or throws a `PluginCallError`
/// naming plugin and stage.
public final class HostedInstance: @unchecked Sendable {
    public let plugin: LoadedPlugin
    public let stage: String
    var handle: UnsafeMutableRawPointer?
    private let host: InstanceHost
    private let hostTable: UnsafeMutablePointer<ferry_host_api>
    let errorBuffer: UnsafeMutablePointer<CChar>
    var error: ferry_error
    private let pipelineName: UnsafeMutablePointer<CChar>?
    /// "plugin 'x' (path)", for the line a crash prints (see `ferry_host_call_begin`).
    private let crashLabel: UnsafeMutablePointer<CChar>?
    /// The same as JSON object members, for the crash line a child run sends its daemon.
    private let crashFields: UnsafeMutablePointer<CChar>?
    private var closed = false
    /// Held so the flag the host table points at lives as long as the instance.
    private let cancel: CancelFlag

    /// Once, before the first plugin call: after the Swift runtime's own
    /// handlers, which the crash line then defers to.
    private static let crashReportInstalled: Void = ferry_host_install_crash_report()

    /// The calls as `ferry_host_call_begin` numbers them.
    enum Call: Int32 {
        case open, read, release, transform, write, preview, commit, close, check, estimate
        case diffInfo, digest, selectBuckets, deleteKeys
    }

    @inline(__always)
    func calling<T>(_ call: Call, _ body: () -> T) -> T {
        ferry_host_call_begin(crashLabel, crashFields, call.rawValue)
        defer { ferry_host_call_end() }
        return body()
    }

    public init(
        plugin: LoadedPlugin, options: InstanceOptions, cancel: CancelFlag, logger: Logger,
        metrics: (any PluginMetricsSink)? = nil
    ) throws(PluginCallError) {
        self.plugin = plugin
        self.stage = options.stage
        self.cancel = cancel
        host = InstanceHost(pluginName: plugin.name, stage: options.stage, logger: logger, metrics: metrics)
        errorBuffer = .allocate(capacity: Int(FERRY_ERROR_CAPACITY))
        errorBuffer.initialize(repeating: 0, count: Int(FERRY_ERROR_CAPACITY))
        error = ferry_error(message: errorBuffer, capacity: FERRY_ERROR_CAPACITY, reserved: 0)
        pipelineName = strdup(options.pipelineName)
        crashLabel = strdup("plugin '\(plugin.name)' (\(plugin.path))")
        crashFields = strdup(
            "\"plugin\":\(JSONValue.string(plugin.name).jsonText),\"path\":\(JSONValue.string(plugin.path).jsonText),\"stage\":\(JSONValue.string(options.stage).jsonText)")
        _ = Self.crashReportInstalled
        hostTable = .allocate(capacity: 1)
        var table = ferry_host_api()
        table.struct_size = UInt32(MemoryLayout<ferry_host_api>.size)
        table.abi_major = UInt16(FERRY_ABI_MAJOR)
        table.abi_minor = UInt16(FERRY_ABI_MINOR)
        table.host_context = Unmanaged.passUnretained(host).toOpaque()
        table.log = InstanceHost.logCallback
        table.metric = InstanceHost.metricCallback
        table.cancel_flag = UnsafePointer(cancel.pointer)
        table.shard_index = UInt32(options.shardIndex)
        table.shard_count = UInt32(max(1, options.shardCount))
        table.pipeline_name = UnsafePointer(pipelineName)
        hostTable.initialize(to: table)

        guard plugin.kinds.contains(options.kind) else {
            let wanted = options.kind == .source ? "source" : options.kind == .sink ? "sink" : "transform"
            cleanUp()
            throw PluginCallError(
                plugin: plugin.name, stage: options.stage, call: "open", status: Int32(FERRY_ERR_UNSUPPORTED),
                message: "'\(plugin.name)' is not a \(wanted) (it is: \(plugin.kindNames.joined(separator: ", ")))")
        }

        var config = Array(options.configJSON.utf8CString)
        let state = options.resumeState ?? []
        let status: ferry_status = config.withUnsafeMutableBufferPointer { configBuffer in
            state.withUnsafeBufferPointer { stateBuffer in
                var args = ferry_open_args()
                args.struct_size = UInt32(MemoryLayout<ferry_open_args>.size)
                args.kind = options.kind.rawValue
                args.host = UnsafePointer(hostTable)
                args.config_json = UnsafePointer(configBuffer.baseAddress)
                args.config_size = UInt64(configBuffer.count - 1)
                args.resume_state = stateBuffer.isEmpty ? nil : stateBuffer.baseAddress
                args.resume_state_size = UInt32(stateBuffer.count)
                args.mode = options.mode.rawValue
                args.batch_size = UInt32(options.batchSize)
                args.flags = options.repair ? UInt32(FERRY_OPEN_REPAIR) : 0
                errorBuffer[0] = 0
                ferry_host_call_begin(crashLabel, crashFields, Call.open.rawValue)
                defer { ferry_host_call_end() }
                return plugin.descriptor.open(&args, &handle, &error)
            }
        }
        if status != FERRY_OK {
            let failure = failure("open", status)
            // close() must be safe after a failed open, on whatever the plugin left.
            calling(.close) { plugin.descriptor.close(handle) }
            handle = nil
            closed = true
            cleanUp()
            throw failure
        }
    }

    deinit { close() }

    private func cleanUp() {
        hostTable.deallocate()
        errorBuffer.deallocate()
        free(pipelineName)
        free(crashLabel)
        free(crashFields)
    }

    func failure(_ call: String, _ status: ferry_status) -> PluginCallError {
        let message = String(cString: errorBuffer)
        return PluginCallError(plugin: plugin.name, stage: stage, call: call, status: status, message: message)
    }

    @inline(__always)
    func check(_ call: String, _ status: ferry_status) throws(PluginCallError) {
        if status != FERRY_OK { throw failure(call, status) }
    }

    /// Closes the instance; safe to call more than once.
    public func close() {
        guard !closed else { return }
        closed = true
        calling(.close) { plugin.descriptor.close(handle) }
        handle = nil
        cleanUp()
    }

    /// Reads the next batch; false at the end of the source.
    public func read(_ batch: inout ferry_batch) throws(PluginCallError) -> Bool {
        batch = ferry_batch()
        errorBuffer[0] = 0
        let status = calling(.read) { plugin.descriptor.read(handle, &batch, &error) }
        if status == FERRY_END {
            if batch.private_data != nil || batch.data != nil { release(&batch) }
            return false
        }
        try check("read", status)
        return true
    }

    /// Gives a batch back to the instance that produced it (any thread).
    public func release(_ batch: inout ferry_batch) {
        calling(.release) { plugin.descriptor.release?(handle, &batch) }
        batch = ferry_batch()
    }

    public func transform(_ input: UnsafePointer<ferry_batch>, _ output: inout ferry_batch, _ result: inout ferry_result) throws(PluginCallError) {
        output = ferry_batch()
        result = ferry_result()
        result.struct_size = UInt32(MemoryLayout<ferry_result>.size)
        errorBuffer[0] = 0
        try check("transform", calling(.transform) { plugin.descriptor.transform(handle, input, &output, &result, &error) })
    }

    public func write(_ batch: UnsafePointer<ferry_batch>, _ result: inout ferry_result) throws(PluginCallError) {
        result = ferry_result()
        result.struct_size = UInt32(MemoryLayout<ferry_result>.size)
        errorBuffer[0] = 0
        try check("write", calling(.write) { plugin.descriptor.write(handle, batch, &result, &error) })
    }

    public func preview(_ batch: UnsafePointer<ferry_batch>, _ result: inout ferry_result) throws(PluginCallError) {
        result = ferry_result()
        result.struct_size = UInt32(MemoryLayout<ferry_result>.size)
        errorBuffer[0] = 0
        guard let preview = plugin.descriptor.preview else {
            throw PluginCallError(plugin: plugin.name, stage: stage, call: "preview", status: Int32(FERRY_ERR_UNSUPPORTED), message: "the sink has no preview")
        }
        try check("preview", calling(.preview) { preview(handle, batch, &result, &error) })
    }

    public func commit() throws(PluginCallError) {
        errorBuffer[0] = 0
        try check("commit", calling(.commit) { plugin.descriptor.commit(handle, &error) })
    }

    /// Runs the plugin's own health check, if it has one.
    public func healthCheck() throws(PluginCallError) {
        guard let checkFunction = plugin.descriptor.check else { return }
        errorBuffer[0] = 0
        try check("check", calling(.check) { checkFunction(handle, &error) })
    }

    /// The source's expected total, if it can tell.
    public func estimate() -> UInt64? {
        guard let estimate = plugin.descriptor.estimate else { return nil }
        var total: UInt64 = 0
        errorBuffer[0] = 0
        return calling(.estimate) { estimate(handle, &total, &error) } == FERRY_OK ? total : nil
    }
}
