import Foundation

/// The plugins found in the plugin directories, by name, plus every file
/// that failed to load and why.
public struct PluginCatalog: Sendable {
    public private(set) var plugins: [String: LoadedPlugin] = [:]
    public private(set) var failures: [PluginLoadError] = []
    public let directories: [String]

    /// The directories to search: `--plugins`, else `FERRY_PLUGIN_PATH`
    /// (colon-separated), else beside the executable (its `plugins/` folder if any).
    public static func defaultDirectories(explicit: [String] = [], environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        if !explicit.isEmpty { return explicit.flatMap { $0.split(separator: ":").map(String.init) } }
        if let path = environment["FERRY_PLUGIN_PATH"], !path.isEmpty {
            return path.split(separator: ":").map(String.init)
        }
        let executable = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath()
        let directory = executable.deletingLastPathComponent()
        let nested = directory.appendingPathComponent("plugins").path
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: nested, isDirectory: &isDirectory), isDirectory.boolValue {
            return [nested]
        }
        return [directory.path]
    }

    /// Loads every `*.so` in the directories; a broken file is recorded, not fatal.
    public init(directories: [String], checkPermissions: Bool = true) {
        self.directories = directories
        for directory in directories {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                failures.append(PluginLoadError(path: directory, .notFound))
                continue
            }
            let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            for file in files.sorted() where file.hasSuffix(".so") {
                let path = URL(fileURLWithPath: directory).appendingPathComponent(file).path
                do {
                    let plugin = try PluginLoader.load(path: path, checkPermissions: checkPermissions)
                    add(plugin)
                } catch {
                    failures.append(error)
                }
            }
        }
    }

    mutating func add(_ plugin: LoadedPlugin) {
        if let existing = plugins[plugin.name] {
            failures.append(PluginLoadError(path: plugin.path, .duplicateName(plugin.name, otherPath: existing.path)))
            return
        }
        plugins[plugin.name] = plugin
    }

    /// One line per plugin that printed while it was loaded, naming it, for the host to log as a warning.
    public var loadWarnings: [String] {
        plugins.values.filter { !$0.loadOutput.isEmpty }.sorted { $0.path < $1.path }.map {
            "plugin '\($0.name)' (\($0.path)) printed while loading: \($0.loadOutput)"
        }
    }

    /// Names that more than one file claims: such a name is ambiguous and refused.
    var ambiguousNames: Set<String> {
        Set(failures.compactMap { if case .duplicateName(let name, _) = $0.reason { name } else { nil } })
    }

    /// Finds a plugin by name, or loads it from a path (anything with a '/').
    public func resolve(_ reference: String) throws(PluginLoadError) -> LoadedPlugin {
        if reference.contains("/") || reference.hasSuffix(".so") {
            return try PluginLoader.load(path: reference)
        }
        if ambiguousNames.contains(reference), let failure = failures.first(where: {
            if case .duplicateName(reference, _) = $0.reason { true } else { false }
        }) {
            throw failure
        }
        if let plugin = plugins[reference] { return plugin }
        var detail = "no plugin named '\(reference)' in \(directories.joined(separator: ":"))"
        detail += plugins.isEmpty ? " (no plugins found)" : " (found: \(plugins.keys.sorted().joined(separator: ", ")))"
        if !failures.isEmpty { detail += "; files that failed to load:\n  " + failures.map(\.description).joined(separator: "\n  ") }
        throw PluginLoadError(path: reference, .unknownPlugin(detail))
    }
}
