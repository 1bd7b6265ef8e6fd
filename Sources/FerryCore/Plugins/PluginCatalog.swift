import Foundation

/// Finds plugins in the plugin directories by name. Loading a library runs
/// its constructors, so a catalog opens only the files the names asked for
/// need: a plugin named `regex_filter` is looked for as `libregex_filter.so`,
/// `libRegexFilter.so` or `libFerryRegexFilter.so` (`fileNames(for:)`), and
/// every file passes `PluginFileTrust` before it is opened. `scanning` opens
/// every `*.so`, for `ferry plugins`.
public struct PluginCatalog: Sendable {
    public let directories: [String]
    public let trust: PluginFileTrust.Mode
    private let state = State()

    /// The directories to search: `--plugins`, else `FERRY_PLUGIN_PATH`
    /// (colon-separated), else beside the executable: its `plugins/` folder if
    /// any, else `../lib/ferry/plugins` if any (an installed tree, `P/bin/ferry`
    /// with `P/lib/ferry/plugins`), else the executable's own folder.
    public static func defaultDirectories(
        explicit: [String] = [], environment: [String: String] = ProcessInfo.processInfo.environment,
        executable: String = runningExecutable
    ) -> [String] {
        if !explicit.isEmpty { return explicit.flatMap { $0.split(separator: ":").map(String.init) } }
        if let path = environment["FERRY_PLUGIN_PATH"], !path.isEmpty {
            return path.split(separator: ":").map(String.init)
        }
        let directory = URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent()
        let nested = directory.appendingPathComponent("plugins").path
        let installed = directory.deletingLastPathComponent().appendingPathComponent("lib/ferry/plugins").path
        for candidate in [nested, installed] {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), isDirectory.boolValue {
                return [candidate]
            }
        }
        return [directory.path]
    }

    /// The running binary: argv[0] is only a name when ferry was found on PATH.
    public static var runningExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments.first ?? "."
    }

    /// The file names a plugin is looked for under: `lib<name>.so` (C plugins),
    /// `lib<Camel>.so` (`ferry plugin new`'s Swift packages) and
    /// `libFerry<Camel>.so` (the built-in plugins), where `my-source` is `MySource`.
    public static func fileNames(for name: String) -> [String] {
        let camel = name.split(whereSeparator: { $0 == "-" || $0 == "_" }).map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
        var names: [String] = []
        for file in ["lib\(name).so", "lib\(camel).so", "libFerry\(camel).so"] where !names.contains(file) { names.append(file) }
        return names
    }

    /// Opens nothing yet: `resolve` loads each plugin the first time it is named.
    public init(directories: [String], trust: PluginFileTrust.Mode = PluginFileTrust.mode()) {
        self.directories = directories
        self.trust = trust
    }

    /// Loads every `*.so` in the directories, each after the same checks; a
    /// broken, refused or misnamed file is recorded, not fatal.
    public static func scanning(directories: [String], trust: PluginFileTrust.Mode = PluginFileTrust.mode()) -> PluginCatalog {
        let catalog = PluginCatalog(directories: directories, trust: trust)
        for directory in directories {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                catalog.state.record(PluginLoadError(path: directory, .notFound))
                continue
            }
            let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            for file in files.sorted() where file.hasSuffix(".so") {
                let path = URL(fileURLWithPath: directory).appendingPathComponent(file).path
                do throws(PluginLoadError) {
                    let plugin = try PluginLoader.load(path: path, trust: trust)
                    guard fileNames(for: plugin.name).contains(file) else {
                        throw PluginLoadError(path: path, .misnamed(declared: plugin.name))
                    }
                    catalog.state.add(plugin)
                } catch {
                    catalog.state.record(error)
                }
            }
        }
        return catalog
    }

    /// The plugins loaded so far (all of them, for a scanning catalog).
    public var plugins: [String: LoadedPlugin] { state.snapshot.plugins }

    /// Every file that failed to load so far, and why.
    public var failures: [PluginLoadError] { state.snapshot.failures }

    /// One line per warning for the host to log: the relaxed-trust notice, and
    /// each loaded plugin that printed while loading or that only loaded because
    /// the trust checks were relaxed.
    public var loadWarnings: [String] {
        let loaded = state.snapshot.loaded.sorted { $0.path < $1.path }
        var warnings = trust == .insecureDev ? [PluginFileTrust.insecureDevNotice] : []
        for plugin in loaded where !plugin.trustWarning.isEmpty {
            warnings.append("plugin '\(plugin.name)' (\(plugin.path)) \(plugin.trustWarning)")
        }
        for plugin in loaded where !plugin.loadOutput.isEmpty {
            warnings.append("plugin '\(plugin.name)' (\(plugin.path)) printed while loading: \(plugin.loadOutput)")
        }
        return warnings
    }

    /// Finds a plugin by name, or loads it from a path (anything with a '/' or ending in `.so`).
    public func resolve(_ reference: String) throws(PluginLoadError) -> LoadedPlugin {
        if reference.contains("/") || reference.hasSuffix(".so") {
            do {
                let plugin = try PluginLoader.load(path: reference, trust: trust)
                state.remember(plugin)
                return plugin
            } catch {
                state.record(error)
                throw error
            }
        }
        return try state.named(reference) { () throws(PluginLoadError) in try find(reference) }
    }

    /// Opens the one file that answers to `name`, refusing a name two files answer to.
    private func find(_ name: String) throws(PluginLoadError) -> LoadedPlugin {
        guard name.wholeMatch(of: /[a-z][a-z0-9_-]{0,63}/) != nil else {
            throw PluginLoadError(path: name, .unknownPlugin("'\(name)' is not a plugin name ([a-z][a-z0-9_-]*) nor a path to a .so file"))
        }
        let names = Self.fileNames(for: name)
        var found: [String] = []
        var seen: Set<[UInt64]> = []
        for directory in directories {
            for file in names {
                let path = URL(fileURLWithPath: directory).appendingPathComponent(file).path
                var info = stat()
                guard lstat(path, &info) == 0 else { continue }
                // The same file reached twice (a directory listed twice, a link) is one file.
                if stat(path, &info) == 0, !seen.insert([UInt64(info.st_dev), UInt64(info.st_ino)]).inserted { continue }
                found.append(path)
            }
        }
        guard let path = found.first else {
            var detail = "no plugin named '\(name)' in \(directories.joined(separator: ":")): looked for "
                + names.joined(separator: ", ")
            let present = directories.flatMap { directory in
                ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".so") }
            }.sorted()
            detail += present.isEmpty ? " (no .so files there)" : " (there: \(present.joined(separator: ", ")))"
            throw PluginLoadError(path: name, .unknownPlugin(detail))
        }
        if found.count > 1 {
            throw PluginLoadError(path: found[1], .duplicateName(name, otherPath: path))
        }
        let plugin = try PluginLoader.load(path: path, trust: trust)
        guard plugin.name == name else { throw PluginLoadError(path: path, .misnamed(declared: plugin.name)) }
        return plugin
    }

    /// What has been loaded and what failed, shared by the copies of one catalog.
    private final class State: @unchecked Sendable {
        struct Snapshot {
            var plugins: [String: LoadedPlugin] = [:]
            var loaded: [LoadedPlugin] = []
            var failures: [PluginLoadError] = []
            var byName: [String: Result<LoadedPlugin, PluginLoadError>] = [:]
        }

        private let lock = NSLock()
        private var value = Snapshot()

        var snapshot: Snapshot { lock.withLock { value } }

        func named(_ name: String, find: () throws(PluginLoadError) -> LoadedPlugin) throws(PluginLoadError) -> LoadedPlugin {
            lock.lock()
            defer { lock.unlock() }
            if let known = value.byName[name] { return try known.get() }
            do {
                let plugin = try find()
                value.byName[name] = .success(plugin)
                value.plugins[name] = plugin
                value.loaded.append(plugin)
                return plugin
            } catch {
                value.byName[name] = .failure(error)
                value.failures.append(error)
                throw error
            }
        }

        /// A plugin loaded by path: its warnings count, its name claims nothing.
        func remember(_ plugin: LoadedPlugin) {
            lock.withLock {
                guard !value.loaded.contains(where: { $0 === plugin || $0.path == plugin.path }) else { return }
                value.loaded.append(plugin)
            }
        }

        func record(_ failure: PluginLoadError) {
            lock.withLock { value.failures.append(failure) }
        }

        /// Scanning: a name two files declare is refused, naming both.
        func add(_ plugin: LoadedPlugin) {
            lock.withLock {
                value.loaded.append(plugin)
                if let existing = value.plugins[plugin.name] {
                    let failure = PluginLoadError(path: plugin.path, .duplicateName(plugin.name, otherPath: existing.path))
                    value.failures.append(failure)
                    value.byName[plugin.name] = .failure(failure)
                    value.plugins[plugin.name] = nil
                    return
                }
                guard value.byName[plugin.name] == nil else { return }
                value.plugins[plugin.name] = plugin
                value.byName[plugin.name] = .success(plugin)
            }
        }
    }
}
