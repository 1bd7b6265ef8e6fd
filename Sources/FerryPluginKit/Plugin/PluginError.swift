import CFerryPlugin

/// An error a plugin returns across the ABI: a status code and a message.
///
/// Any other Swift error thrown from a plugin is reported as
/// `FERRY_ERR_INTERNAL` with its description.
public struct PluginError: Error, CustomStringConvertible, Sendable {
    public var status: ferry_status
    public var message: String

    public init(status: ferry_status, _ message: String) {
        self.status = status
        self.message = message
    }

    /// Bad or missing configuration (retrying will not help).
    public static func config(_ message: String) -> PluginError { .init(status: ferry_status(FERRY_ERR_CONFIG), message) }
    /// A transient failure: the host retries with backoff.
    public static func transient(_ message: String) -> PluginError { .init(status: ferry_status(FERRY_ERR_TRANSIENT), message) }
    /// Data that cannot be handled as a whole.
    public static func data(_ message: String) -> PluginError { .init(status: ferry_status(FERRY_ERR_DATA), message) }
    /// A resume state this plugin does not understand.
    public static func state(_ message: String) -> PluginError { .init(status: ferry_status(FERRY_ERR_STATE), message) }
    public static func cancelled() -> PluginError { .init(status: ferry_status(FERRY_ERR_CANCELLED), "cancelled") }
    public static func unsupported(_ message: String) -> PluginError { .init(status: ferry_status(FERRY_ERR_UNSUPPORTED), message) }
    public static func `internal`(_ message: String) -> PluginError { .init(status: ferry_status(FERRY_ERR_INTERNAL), message) }

    public var description: String { message }
}
