#if canImport(Glibc)
import Glibc
#endif
import CFerryHost
import CFerryPlugin
import FerryPluginKit
import Foundation

/// Opens plugin files with dlopen and checks each descriptor before using it:
/// ABI version first, then size, then every field the host relies on.
public enum PluginLoader {
    static let hostMajor = Int(FERRY_ABI_MAJOR)
    static let hostMinor = Int(FERRY_ABI_MINOR)
    static let minimumSize = MemoryLayout<ferry_plugin_descriptor>.offset(of: \ferry_plugin_descriptor.reserved)!

    /// Loads one plugin file after the trust checks of `PluginFileTrust`
    /// (relaxed only by `FERRY_PLUGIN_TRUST=insecure-dev`).
    public static func load(path: String, trust: PluginFileTrust.Mode = PluginFileTrust.mode()) throws(PluginLoadError) -> LoadedPlugin {
        let resolved = try PluginFileTrust.check(path, mode: trust)
        let warning = resolved.violation.map {
            "loaded although \($0) (\(PluginFileTrust.environmentVariable)=\(PluginFileTrust.insecureDevValue))"
        }
        return try open(path: path, at: resolved.realPath, trustWarning: warning ?? "")
    }

    /// Loads one plugin file with no trust checks: for harnesses that were
    /// handed the file by someone who already decided to run it.
    public static func load(path: String, checkPermissions: Bool) throws(PluginLoadError) -> LoadedPlugin {
        if checkPermissions { return try load(path: path) }
        var info = stat()
        guard stat(path, &info) == 0 else { throw PluginLoadError(path: path, .notFound) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw PluginLoadError(path: path, .notSharedObject("not a regular file"))
        }
        return try open(path: path, at: path, trustWarning: "")
    }

    /// dlopens `file` (the checked real path of `path`) and checks its descriptor.
    static func open(path: String, at file: String, trustWarning: String) throws(PluginLoadError) -> LoadedPlugin {
        // Library constructors run inside dlopen; what they print is kept for the caller to log.
        var opened = false
        var openError: String?
        var hasEntry = false
        var raw: UnsafePointer<ferry_plugin_descriptor>?
        let loadOutput = capturingStandardError {
            guard let handle = dlopen(file, RTLD_NOW | RTLD_LOCAL) else {
                openError = dlerror().map { String(cString: $0) }
                return
            }
            opened = true
            guard let symbol = dlsym(handle, FERRY_PLUGIN_ENTRY_SYMBOL) else { return }
            hasEntry = true
            raw = unsafeBitCast(symbol, to: ferry_plugin_entry_fn.self)()
        }
        guard opened else {
            let detail = openError ?? "dlopen failed"
            throw PluginLoadError(path: path, .notSharedObject(detail.replacingOccurrences(of: "\(file): ", with: "")))
        }
        guard hasEntry else { throw PluginLoadError(path: path, .noEntrySymbol) }
        guard let raw else { throw PluginLoadError(path: path, .nullDescriptor) }

        // The first 8 bytes (size, major, minor) are stable across every ABI version.
        let base = UnsafeRawPointer(raw)
        let size = Int(base.load(as: UInt32.self))
        let major = Int(base.load(fromByteOffset: 4, as: UInt16.self))
        let minor = Int(base.load(fromByteOffset: 6, as: UInt16.self))
        guard major == hostMajor else {
            throw PluginLoadError(path: path, .abiMismatch(pluginMajor: major, pluginMinor: minor, hostMajor: hostMajor, hostMinor: hostMinor))
        }
        guard size >= minimumSize else {
            throw PluginLoadError(path: path, .descriptorTooSmall(size: size, minimum: minimumSize))
        }
        // Copy only what the plugin declared; fields it does not know stay zero.
        var descriptor = ferry_plugin_descriptor()
        withUnsafeMutableBytes(of: &descriptor) { destination in
            destination.copyMemory(from: UnsafeRawBufferPointer(start: base, count: min(size, destination.count)))
        }
        let schema = try validate(descriptor, path: path)
        return LoadedPlugin(path: path, descriptor: descriptor, schema: schema, loadOutput: loadOutput, trustWarning: trustWarning)
    }

    /// fd 2 is the whole process's: one capture at a time.
    private static let captureLock = NSLock()

    /// Runs `body` with stderr captured (see `ferry_host_stderr_capture_begin`);
    /// returns what was written, trimmed, at most 8 KiB. Without a capture
    /// (memfd refused) `body` still runs and its output goes where it would have.
    static func capturingStandardError(_ body: () -> Void) -> String {
        captureLock.lock()
        defer { captureLock.unlock() }
        var saved: Int32 = -1
        let fd = ferry_host_stderr_capture_begin(&saved)
        body()
        guard fd >= 0 else { return "" }
        var buffer = [CChar](repeating: 0, count: 8192)
        let count = ferry_host_stderr_capture_end(fd, saved, &buffer, buffer.count)
        let bytes = buffer.prefix(max(0, count)).map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func validate(_ descriptor: ferry_plugin_descriptor, path: String) throws(PluginLoadError) -> JSONValue {
        func invalid(_ detail: String) -> PluginLoadError { PluginLoadError(path: path, .invalidDescriptor(detail)) }
        guard let namePointer = descriptor.name else { throw invalid("name is NULL") }
        let name = String(cString: namePointer)
        guard let first = name.unicodeScalars.first, ("a"..."z").contains(first),
            name.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" }),
            name.count <= 64
        else { throw invalid("name '\(name)' must match [a-z][a-z0-9_-]* (at most 64 characters)") }
        guard let version = descriptor.version, version.pointee != 0 else {
            throw invalid("plugin '\(name)' has no version")
        }
        let kinds = PluginKinds(rawValue: descriptor.kinds)
        let known: PluginKinds = [.source, .transform, .sink]
        guard !kinds.isEmpty, known.isSuperset(of: kinds) else {
            throw invalid("plugin '\(name)' declares kinds 0x\(String(descriptor.kinds, radix: 16)); expected source, transform and/or sink bits")
        }
        var missing: [String] = []
        if descriptor.open == nil { missing.append("open") }
        if descriptor.close == nil { missing.append("close") }
        if kinds.contains(.source) {
            if descriptor.read == nil { missing.append("read") }
            if descriptor.release == nil { missing.append("release") }
        }
        if kinds.contains(.transform) {
            if descriptor.transform == nil { missing.append("transform") }
            if descriptor.release == nil && !missing.contains("release") { missing.append("release") }
        }
        if kinds.contains(.sink) {
            if descriptor.write == nil { missing.append("write") }
            if descriptor.commit == nil { missing.append("commit") }
        }
        guard missing.isEmpty else {
            throw invalid("plugin '\(name)' lacks required functions: \(missing.joined(separator: ", "))")
        }
        guard let schemaPointer = descriptor.config_schema else { return .object([:]) }
        let schemaText = String(cString: schemaPointer)
        do {
            let schema = try JSONValue.parse(schemaText)
            guard schema.objectValue != nil else { throw invalid("plugin '\(name)': config_schema is not a JSON object") }
            return schema
        } catch let error as PluginLoadError {
            throw error
        } catch {
            throw invalid("plugin '\(name)': config_schema is not valid JSON")
        }
    }
}
