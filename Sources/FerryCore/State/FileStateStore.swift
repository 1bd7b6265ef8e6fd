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

    /// The file name stem of a pipeline: its name with every byte other than
    /// an ASCII letter, digit, `-` or `_` written as `%XX`. The stem has no
    /// `.`, so the first `.` of a file name ends it, and no two (pipeline,
    /// shard) pairs share a file (`x.shard-0-of-2` the pipeline is not shard
    /// 0/2 of `x`).
    static func stem(_ pipeline: String) -> String {
        var stem = ""
        for byte in pipeline.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
                stem.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                stem += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return stem
    }

    static func shardSuffix(_ shard: ShardSpec) -> String {
        shard.count > 1 ? ".shard-\(shard.index)-of-\(shard.count)" : ""
    }

    func path(_ pipeline: String, _ shard: ShardSpec) -> String {
        file("\(Self.stem(pipeline))\(Self.shardSuffix(shard)).state.json")
    }

    /// Where checkpoints of names with a `.` lived before names were encoded;
    /// read (never written) so an upgrade does not start such pipelines over.
    func legacyPath(_ pipeline: String, _ shard: ShardSpec) -> String? {
        let legacy = file("\(pipeline)\(Self.shardSuffix(shard)).state.json")
        return legacy == path(pipeline, shard) || pipeline.contains("/") ? nil : legacy
    }

    private func file(_ name: String) -> String {
        URL(fileURLWithPath: directory).appendingPathComponent(name).path
    }

    public func location(pipeline: String, shard: ShardSpec) -> String { path(pipeline, shard) }
    public var summary: String { directory }

    public func savedShards(pipeline: String) throws -> [ShardSpec] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let stem = Self.stem(pipeline)
        var shards: [ShardSpec] = []
        for file in files where file.hasSuffix(".state.json") {
            if file == "\(stem).state.json" {
                shards.append(.whole)
            } else if file.hasPrefix("\(stem).shard-") {
                let middle = file.dropFirst("\(stem).shard-".count).dropLast(".state.json".count)
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
        guard let data = FileManager.default.contents(atPath: file) else {
            return legacyCheckpoint(pipeline: pipeline, shard: shard, sourcePlugin: sourcePlugin)
        }
        let checkpoint = try CheckpointCoding.decode(data, at: file)
        try verify(checkpoint, pipeline: pipeline, shard: shard, sourcePlugin: sourcePlugin, at: file)
        return checkpoint
    }

    /// A checkpoint at the pre-encoding name, only if it is this pipeline's
    /// own: under the old names two pipelines could share one file.
    private func legacyCheckpoint(pipeline: String, shard: ShardSpec, sourcePlugin: String) -> Checkpoint? {
        guard let legacy = legacyPath(pipeline, shard), let data = FileManager.default.contents(atPath: legacy),
            let checkpoint = try? CheckpointCoding.decode(data, at: legacy),
            (try? verify(checkpoint, pipeline: pipeline, shard: shard, sourcePlugin: sourcePlugin, at: legacy)) != nil
        else { return nil }
        return checkpoint
    }

    public func save(_ checkpoint: Checkpoint) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let file = path(checkpoint.pipeline, ShardSpec(index: checkpoint.shardIndex, count: checkpoint.shardCount))
        let data = try CheckpointCoding.encode(checkpoint)
        // Unique, so two writers (which the run lock should prevent) never
        // interleave bytes in one temp file.
        let temporary = "\(file).\(getpid()).\(UUID().uuidString.prefix(8)).tmp"
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
        let stem = Self.stem(pipeline)
        for file in files {
            let matches: Bool
            if let shard {
                matches = URL(fileURLWithPath: path(pipeline, shard)).lastPathComponent == file
            } else {
                matches = file == "\(stem).state.json" || (file.hasPrefix("\(stem).shard-") && file.hasSuffix(".state.json"))
            }
            if matches { try FileManager.default.removeItem(atPath: self.file(file)) }
        }
        // A pre-encoding checkpoint goes too, but only one that is this pipeline's.
        let legacyShards = try shard.map { [$0] } ?? [.whole] + savedLegacyShards(pipeline: pipeline)
        for saved in legacyShards {
            if let legacy = legacyPath(pipeline, saved), let data = FileManager.default.contents(atPath: legacy),
                let checkpoint = try? CheckpointCoding.decode(data, at: legacy), checkpoint.pipeline == pipeline,
                checkpoint.shardIndex == saved.index, checkpoint.shardCount == saved.count
            {
                try FileManager.default.removeItem(atPath: legacy)
            }
        }
    }

    private func savedLegacyShards(pipeline: String) throws -> [ShardSpec] {
        guard legacyPath(pipeline, .whole) != nil else { return [] }
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return files.compactMap { file -> ShardSpec? in
            guard file.hasPrefix("\(pipeline).shard-"), file.hasSuffix(".state.json") else { return nil }
            let parts = file.dropFirst("\(pipeline).shard-".count).dropLast(".state.json".count).split(separator: "-")
            guard parts.count == 3, parts[1] == "of", let index = Int(parts[0]), let count = Int(parts[2]) else { return nil }
            return ShardSpec(index: index, count: count)
        }
    }

    /// An exclusive flock on `<stem>[.shard-i-of-n].lock` beside the
    /// checkpoint, held for the run. The kernel drops it when the process
    /// dies, so a crash leaves nothing to clean up by hand.
    public func lockRun(pipeline: String, shard: ShardSpec) throws -> (any RunLock)? {
        let lockPath = file("\(Self.stem(pipeline))\(Self.shardSuffix(shard)).lock")
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw StateError("state directory \(directory) cannot be created: \(error.localizedDescription)")
        }
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StateError("cannot open the run lock \(lockPath): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno
            var holder = [UInt8](repeating: 0, count: 256)
            let n = pread(fd, &holder, holder.count, 0)
            close(fd)
            let who = n > 0 ? String(decoding: holder[..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : ""
            guard reason == EWOULDBLOCK else {
                throw StateError("cannot lock \(lockPath): \(String(cString: strerror(reason)))")
            }
            let shardText = shard.count > 1 ? " shard \(shard)" : ""
            throw StateError(
                "pipeline '\(pipeline)'\(shardText) is already running (\(who.isEmpty ? "holder unknown" : who); lock \(lockPath)); a second run would write the same records")
        }
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        let hostName = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let holder = Array("pid \(getpid()) on \(hostName) since \(Date().formatted(.iso8601))\n".utf8)
        _ = ftruncate(fd, 0)
        _ = holder.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return FileRunLock(fd: fd)
    }
}

/// An flock held through an open descriptor; closing it releases the lock.
final class FileRunLock: RunLock, @unchecked Sendable {
    private let lock = NSLock()
    private var fd: Int32

    init(fd: Int32) { self.fd = fd }

    func release() {
        lock.lock()
        defer { lock.unlock() }
        guard fd >= 0 else { return }
        close(fd)
        fd = -1
    }

    deinit { release() }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
