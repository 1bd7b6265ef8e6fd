import CFerryPlugin

/// A plugin call that did not return FERRY_OK: which plugin, which stage,
/// which call, the status and the plugin's own message.
public struct PluginCallError: Error, CustomStringConvertible, Sendable, Equatable {
    public var plugin: String
    public var stage: String
    public var call: String
    public var status: Int32
    public var message: String

    public init(plugin: String, stage: String, call: String, status: Int32, message: String) {
        self.plugin = plugin
        self.stage = stage
        self.call = call
        self.status = status
        self.message = SecretMasking.mask(message)
    }

    /// Worth retrying with backoff (a dropped connection, a timeout).
    public var isTransient: Bool { status == FERRY_ERR_TRANSIENT }

    public var statusName: String {
        switch status {
        case Int32(FERRY_ERR_CONFIG): "config error"
        case Int32(FERRY_ERR_TRANSIENT): "transient error"
        case Int32(FERRY_ERR_DATA): "data error"
        case Int32(FERRY_ERR_STATE): "state error"
        case Int32(FERRY_ERR_CANCELLED): "cancelled"
        case Int32(FERRY_ERR_UNSUPPORTED): "unsupported"
        case Int32(FERRY_ERR_INTERNAL): "internal error"
        default: "status \(status)"
        }
    }

    public var description: String {
        let text = message.isEmpty ? "(no message)" : message
        return "plugin '\(plugin)' (\(stage)) \(call) failed, \(statusName): \(text)"
    }
}
