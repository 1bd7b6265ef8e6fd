/// Why a plugin file could not be loaded; always names the file.
public struct PluginLoadError: Error, CustomStringConvertible, Sendable {
    public enum Reason: Sendable, Equatable {
        case notFound
        case notSharedObject(String)
        case noEntrySymbol
        case nullDescriptor
        case abiMismatch(pluginMajor: Int, pluginMinor: Int, hostMajor: Int, hostMinor: Int)
        case descriptorTooSmall(size: Int, minimum: Int)
        case invalidDescriptor(String)
        case duplicateName(String, otherPath: String)
        /// The file, or a folder on the way to it, could be written by someone
        /// other than root or the user running ferry (see `PluginFileTrust`).
        case insecurePermissions(String)
        /// The file's name is not one a pipeline naming its plugin looks for.
        case misnamed(declared: String)
        case unknownPlugin(String)
    }

    public var path: String
    public var reason: Reason

    public init(path: String, _ reason: Reason) {
        self.path = path
        self.reason = reason
    }

    public var description: String {
        switch reason {
        case .notFound:
            return "\(path): no such plugin file"
        case .notSharedObject(let detail):
            return "\(path): not a loadable shared object (\(detail))"
        case .noEntrySymbol:
            return "\(path): no 'ferry_plugin_entry' symbol: not a Ferry plugin, or the symbol is not exported"
        case .nullDescriptor:
            return "\(path): ferry_plugin_entry() returned NULL"
        case .abiMismatch(let major, let minor, let hostMajor, let hostMinor):
            return "\(path): built for plugin ABI \(major).\(minor), this ferry speaks ABI \(hostMajor).\(hostMinor); rebuild the plugin against this ferry's ferry_plugin.h"
        case .descriptorTooSmall(let size, let minimum):
            return "\(path): descriptor is \(size) bytes, ABI 1 needs at least \(minimum); the plugin was built against a broken or foreign header"
        case .invalidDescriptor(let detail):
            return "\(path): invalid descriptor: \(detail)"
        case .duplicateName(let name, let other):
            return "\(path): another plugin is also named '\(name)' (\(other)); plugin names must be unique"
        case .insecurePermissions(let detail):
            return "\(path): refused: \(detail); a plugin file and every folder above it must be owned by root or the user "
                + "running ferry and writable by no one else (\(PluginFileTrust.environmentVariable)=\(PluginFileTrust.insecureDevValue) "
                + "loads it anyway, for development only)"
        case .misnamed(let declared):
            let names = PluginCatalog.fileNames(for: declared)
            return "\(path): declares plugin '\(declared)', but a pipeline naming '\(declared)' opens only "
                + names.dropLast().joined(separator: ", ") + " or \(names.last ?? ""); rename the file"
        case .unknownPlugin(let detail):
            return detail
        }
    }
}
