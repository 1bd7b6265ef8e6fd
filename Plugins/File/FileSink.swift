#if canImport(Glibc)
import Glibc
#endif
import FerryPluginKit

/// Appends records as JSON Lines (relaxed extended JSON, doubles in their
/// shortest round-trip form), one write per batch; `commit` fsyncs so a
/// checkpoint never runs ahead of the file.
final class FileSink: SinkPlugin {
    let path: String
    let sync: Bool
    let createDirectories: Bool
    /// Full mode replaces the file's contents, once, at the first open.
    var truncate: Bool
    var fd: Int32 = -1
    let buffer = BSONBuffer(capacity: 64 * 1024)
    let writer = JSONLineWriter()
    let context: PluginContext
    /// The fields `ferry diff` and `ferry repair` match records by; nil without a `key`.
    let key: [String]?
    let maxLineBytes: Int
    /// Read-back (`ferry diff`): the reader of the file, and whether it has ended.
    var reader: FileSource?
    var readBackDone = false

    init(config: PluginConfig, context: PluginContext) throws {
        self.context = context
        path = try config.requiredString("path")
        sync = try config.bool("fsync") ?? true
        createDirectories = try config.bool("create_dirs") ?? true
        // Full mode replaces the file's contents; the others append.
        truncate = context.mode == .full
        key = try Self.keyFields(config)
        maxLineBytes = try FileSource.maxLineBytes(config)
    }

    /// `key`: one field name or a list of them (top-level fields, taken literally).
    static func keyFields(_ config: PluginConfig) throws -> [String]? {
        guard let names = try config.strings("key") else { return nil }
        guard !names.isEmpty else { throw PluginError.config("field 'key': an empty list names no field") }
        if let index = names.firstIndex(of: "") { throw PluginError.config("field 'key[\(index)]': empty field name") }
        if let duplicate = names.first(where: { name in names.filter { $0 == name }.count > 1 }) {
            throw PluginError.config("field 'key': '\(duplicate)' is named twice")
        }
        return names
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    /// Opens on the first write, so open and preview (dry runs) touch nothing.
    private func openIfNeeded() throws {
        guard fd < 0 else { return }
        if createDirectories { try Self.makeParentDirectories(of: path) }
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0o644)
        guard fd >= 0 else { throw PluginError.config("cannot open '\(path)' for writing: \(String(cString: strerror(errno)))") }
        // A delete closes the file; opening it again must keep what it holds.
        truncate = false
    }

    static func makeParentDirectories(of path: String) throws {
        var prefix = ""
        let components = path.split(separator: "/", omittingEmptySubsequences: false).dropLast()
        for (index, component) in components.enumerated() {
            prefix += (index == 0 ? "" : "/") + component
            if prefix.isEmpty { continue }
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw PluginError.config("cannot create directory '\(prefix)': \(String(cString: strerror(errno)))")
            }
        }
    }

    func write(_ batch: BatchView, result: inout SinkResult) throws {
        try openIfNeeded()
        buffer.removeAll()
        for (index, document) in batch.enumerated() {
            guard writer.render(document, into: buffer) else {
                result.rejects.reject(index, "file: record is not valid BSON")
                continue
            }
            buffer.append(byte: 0x0A)
            result.inserted += 1
        }
        try flush(buffer, to: fd, path)
    }

    func preview(_ batch: BatchView, result: inout SinkResult) throws {
        result.inserted = UInt64(batch.count)
    }

    func commit() throws {
        if sync && fd >= 0 && fsync(fd) != 0 {
            throw PluginError.transient("fsync '\(path)': \(String(cString: strerror(errno)))")
        }
    }

    /// Can the file be written? The directory must be writable, or — with
    /// create_dirs — its nearest existing ancestor, where it would be created.
    func check() throws {
        var directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        if directory.isEmpty { directory = "/" }
        var probe = directory
        while createDirectories, access(probe, F_OK) != 0, let slash = probe.lastIndex(of: "/") {
            probe = slash == probe.startIndex ? "/" : String(probe[..<slash])
        }
        var info = stat()
        guard stat(probe, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw PluginError.transient("cannot write '\(path)': '\(probe)' is not a directory")
        }
        guard access(probe, W_OK) == 0 else {
            let missing = probe == directory ? "" : " (to create '\(directory)')"
            throw PluginError.transient("cannot write in '\(probe)'\(missing): \(String(cString: strerror(errno)))")
        }
    }
}
