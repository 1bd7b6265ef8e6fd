#if canImport(Glibc)
import Glibc
#endif
import FerryPluginKit
import Foundation

/// Appends rejected records to a JSON Lines file, one object per record:
/// time, pipeline, stage, plugin, reason and the record itself.
final class DeadLetterWriter: @unchecked Sendable {
    let path: String
    let pipeline: String
    private let lock = NSLock()
    private var fd: Int32 = -1
    private(set) var written = 0

    init(path: String, pipeline: String) {
        self.path = path
        self.pipeline = pipeline
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Writes one dead letter; the file is created on first use only.
    func write(stage: String, plugin: String, reason: String, record: DocumentView?) throws {
        var line = "{\"time\":"
        JSONValue.writeString(ISO8601DateFormatter().string(from: Date()), to: &line)
        line += ",\"pipeline\":"
        JSONValue.writeString(pipeline, to: &line)
        line += ",\"stage\":"
        JSONValue.writeString(stage, to: &line)
        line += ",\"plugin\":"
        JSONValue.writeString(plugin, to: &line)
        line += ",\"reason\":"
        JSONValue.writeString(SecretMasking.mask(reason), to: &line)
        line += ",\"record\":"
        line += record.flatMap { ExtendedJSON.render($0, canonical: true) } ?? "null"
        line += "}\n"
        lock.lock()
        defer { lock.unlock() }
        if fd < 0 {
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw StateError("cannot open dead-letter file \(path): \(String(cString: strerror(errno)))") }
        }
        var bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StateError("cannot write dead-letter file \(path): \(String(cString: strerror(errno)))")
            }
            offset += n
        }
        bytes.removeAll()
        written += 1
    }

    /// Makes the dead letters durable before a checkpoint moves past them.
    func sync() {
        lock.lock()
        defer { lock.unlock() }
        if fd >= 0 { fsync(fd) }
    }
}
