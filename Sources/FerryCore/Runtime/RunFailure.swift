import CFerryPlugin

/// Why a run failed, kept typed from where it happened to the edges that
/// need it: the CLI's exit code, the daemon's run record, the metrics, a
/// retry policy. Text is made only for people, by `description`.
public struct RunFailure: Error, Sendable, Equatable, Codable, CustomStringConvertible {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// The pipeline or the run's options cannot work as given (lanes, shards,
        /// a checkpoint of another shape): no retry fixes it.
        case config
        /// A plugin call failed with a transient status after its retries ran out.
        case pluginTransient = "plugin_transient"
        /// A plugin call failed with any other status.
        case plugin
        /// The run's process died by a signal (a plugin's fault, abort or the memory limit).
        case crash
        /// No progress for the pipeline's stall timeout: the run was stopped.
        case stall
        /// The checkpoint store could not be read, written or locked.
        case stateStore = "state_store"
        /// The dead-letter budget ran out, or dead letters could not be stored.
        case deadLetters = "dead_letters"
        /// The run's own machinery failed (a child that spoke no protocol, say).
        case `internal`
    }

    public var kind: Kind
    /// What happened, without the plugin prefix (that is in `plugin`/`call`).
    public var message: String
    public var plugin: String?
    /// The stage role of the plugin ("source", "sink", a transform's name).
    public var stage: String?
    /// The ABI call, as `read`, `write`, `open` …
    public var call: String?
    /// The plugin's status code, for a plugin failure.
    public var status: Int32?
    /// The signal a crashed run died of.
    public var signal: Int32?
    /// The read lane it happened in, when the run had more than one.
    public var lane: Int?

    public init(
        _ kind: Kind, _ message: String, plugin: String? = nil, stage: String? = nil, call: String? = nil,
        status: Int32? = nil, signal: Int32? = nil, lane: Int? = nil
    ) {
        self.kind = kind
        self.message = message
        self.plugin = plugin
        self.stage = stage
        self.call = call
        self.status = status
        self.signal = signal
        self.lane = lane
    }

    /// A failed plugin call: a config error (its config cannot work: no retry
    /// helps), transient, or any other plugin failure, as its status says.
    public init(_ error: PluginCallError) {
        let kind: Kind =
            error.isTransient ? .pluginTransient : error.status == Int32(FERRY_ERR_CONFIG) ? .config : .plugin
        self.init(kind, error.message, plugin: error.plugin, stage: error.stage, call: error.call, status: error.status)
    }

    /// Any error met while running: plugin calls keep their fields, the rest
    /// take `kind`.
    public init(_ error: any Error, otherwise kind: Kind) {
        if let failure = error as? RunFailure {
            self = failure
        } else if let call = error as? PluginCallError {
            self.init(call)
        } else {
            self.init(kind, "\(error)")
        }
    }

    public var description: String {
        var text = message
        if let plugin, let call, let status {
            text =
                PluginCallError(plugin: plugin, stage: stage ?? "?", call: call, status: status, message: message).description
        }
        if let lane { text = "lane \(lane): \(text)" }
        return text
    }
}

