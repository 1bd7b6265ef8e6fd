#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Checkpoints as JSON files in a directory, one per pipeline and shard,
/// replaced atomically: temp file, fsync, rename, fsync of the directory.
public final class FileStateStore: StateStore {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    func path(_ pipeline: String, _ shard: ShardSpec) -> String {
        let suffix = shard.count > 1 ? ".shard-\(shard.index)-of-\(shard.count)" : ""
        return URL(fileURLWithPath: directory).appendingPathComponent("\(pipeline)\(suffix).state.json").path
    }

    public func location(pipeline: String, shard: ShardSpec) -> String { path(pipeline, shard) }
    public var summary: String { directory }

    public func savedShards(pipeline: String) throws -> [ShardSpec] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var shards: [ShardSpec] = []
        for file in files where file.hasSuffix(".state.json") {
            if file == "\(pipeline).state.json" {
                shards.append(.whole)
            } else if file.hasPrefix("\(pipeline).shard-") {
                let middle = file.dropFirst("\(pipeline).shard-".count).dropLast(".state.json".count)
                let parts = middle.split(separator: "-")
                if parts.count == 3, parts[1] == "of", let index = Int(parts[0]), let count = Int(parts[2]) {
                    shards.append(ShardSpec(index: index, count: count))
                }
            }
        }
        return shards
    }

    public func load(pipeline: String, shard: ShardSpec, sourcePlugin: String) throws -> Checkpoint? {
        let file = path(pipeline, shard)
        guard let data = FileManager.default.contents(atPath: file) else { return nil }
        let checkpoint = try CheckpointCoding.decode(data, at: file)
        try verify(checkpoint, pipeline: pipeline, shard: shard, sourcePlugin: sourcePlugin, at: file)
        return checkpoint
    }

    public func save(_ checkpoint: Checkpoint) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let file = path(checkpoint.pipeline, ShardSpec(index: checkpoint.shardIndex, count: checkpoint.shardCount))
        let data = try CheckpointCoding.encode(checkpoint)
        let temporary = file + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StateError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        var failed: String?
        data.withUnsafeBytes { bytes in
            var written = 0
            while written < bytes.count {
                let n = write(fd, bytes.baseAddress! + written, bytes.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    failed = String(cString: strerror(errno))
                    return
                }
                written += n
            }
        }
        if failed == nil && fsync(fd) != 0 { failed = String(cString: strerror(errno)) }
        close(fd)
        if let failed {
            unlink(temporary)
            throw StateError("cannot write \(temporary): \(failed)")
        }
        guard rename(temporary, file) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw StateError("cannot replace \(file): \(reason)")
        }
        // The rename is durable only once the directory entry is.
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }

    public func rawCheckpoint(pipeline: String, shard: ShardSpec) throws -> String? {
        FileManager.default.contents(atPath: path(pipeline, shard)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Creates the directory and a probe file in it, then removes the probe.
    public func checkWritable() throws {
        // Unique per call: readiness checks every pipeline at once, often in one directory.
        let probe = "\(directory)/.ready-\(getpid())-\(UUID().uuidString.prefix(8))"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try Data().write(to: URL(fileURLWithPath: probe))
            try FileManager.default.removeItem(atPath: probe)
        } catch {
            throw StateError("state directory \(directory) is not writable: \(error.localizedDescription)")
        }
    }

    public func reset(pipeline: String, shard: ShardSpec?) throws {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for file in files {
            let matches: Bool
            if let shard {
                matches = URL(fileURLWithPath: path(pipeline, shard)).lastPathComponent == file
            } else {
                matches = file == "\(pipeline).state.json" || (file.hasPrefix("\(pipeline).shard-") && file.hasSuffix(".state.json"))
            }
            if matches { try FileManager.default.removeItem(atPath: URL(fileURLWithPath: directory).appendingPathComponent(file).path) }
        }
    }
}
