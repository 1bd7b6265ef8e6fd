import CFerryPlugin
import FerryPluginKit

/// A plugin whose descriptor passed every check: its facts copied out, and
/// the descriptor (copied, never read past the plugin's own struct_size).
///
/// Shared objects are never unloaded: Swift plugins cannot be dlclose'd safely.
public final class LoadedPlugin: @unchecked Sendable {
    public let path: String
    public let name: String
    public let version: String
    public let summary: String
    public let kinds: PluginKinds
    public let capabilities: PluginCapabilities
    public let abiMajor: Int
    public let abiMinor: Int
    public let configSchemaText: String
    public let configSchema: JSONValue
    let descriptor: ferry_plugin_descriptor

    /// What the file printed on stderr while it was loaded (a library
    /// constructor's notice, say); empty when nothing. Hosts log it as a warning.
    public let loadOutput: String

    /// Why this file would have been refused, when `FERRY_PLUGIN_TRUST=insecure-dev`
    /// let it load anyway; empty when it passed every check. Hosts log it as a warning.
    public let trustWarning: String

    init(path: String, descriptor: ferry_plugin_descriptor, schema: JSONValue, loadOutput: String = "", trustWarning: String = "") {
        self.path = path
        self.loadOutput = loadOutput
        self.trustWarning = trustWarning
        self.descriptor = descriptor
        name = String(cString: descriptor.name)
        version = String(cString: descriptor.version)
        summary = descriptor.description.map { String(cString: $0) } ?? ""
        kinds = PluginKinds(rawValue: descriptor.kinds)
        capabilities = PluginCapabilities(rawValue: descriptor.capabilities)
        abiMajor = Int(descriptor.abi_major)
        abiMinor = Int(descriptor.abi_minor)
        configSchemaText = descriptor.config_schema.map { String(cString: $0) } ?? "{}"
        configSchema = schema
    }

    public var kindNames: [String] {
        var names: [String] = []
        if kinds.contains(.source) { names.append("source") }
        if kinds.contains(.transform) { names.append("transform") }
        if kinds.contains(.sink) { names.append("sink") }
        return names
    }

    public var hasCheck: Bool { descriptor.check != nil }
    public var hasPreview: Bool { descriptor.preview != nil }
    public var hasEstimate: Bool { descriptor.estimate != nil }
    /// ABI 1.1: a sink instance answers read() with its target's records.
    public var canReadBack: Bool { capabilities.contains(.readBack) && descriptor.read != nil && descriptor.diff_info != nil }
    /// ABI 1.1: instances digest per key bucket and select buckets to read.
    public var canDigest: Bool {
        capabilities.contains(.digest) && descriptor.digest != nil && descriptor.select_buckets != nil && descriptor.diff_info != nil
    }
    /// ABI 1.1: a sink instance deletes by key.
    public var canDelete: Bool { capabilities.contains(.delete) && descriptor.delete_keys != nil }
}
