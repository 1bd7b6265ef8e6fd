#if canImport(Glibc)
import Glibc
#endif
import FerryPluginKit

/// `ferry diff` reads the sink's file back as the file source reads JSON
/// Lines; `ferry repair` deletes by rewriting it. Opening the sink touches
/// nothing (the file is opened, and truncated in full mode, on the first
/// write), so a diff reads what the last run left.
extension FileSink: ReadBackSink, DeletingSink {
    func diffInfo() throws -> DiffInfo { DiffInfo(key: key) }

    /// The records of the file, in file order; a file not written yet holds none.
    func readBack(into batch: BatchBuilder) throws -> Bool {
        if readBackDone { return false }
        if reader == nil {
            guard let opened = try openReader(batchSize: context.batchSize) else {
                readBackDone = true
                return false
            }
            reader = opened
        }
        let more = try reader!.read(into: batch)
        // A sink's read-back has no resume position.
        batch.state = nil
        if !more {
            readBackDone = true
            reader = nil
        }
        return more
    }

    /// The sink's file read the way the file source reads JSON Lines (what
    /// the sink writes, whatever the extension); nil when it does not exist.
    private func openReader(batchSize: Int) throws -> FileSource? {
        if access(path, F_OK) != 0 && errno == ENOENT { return nil }
        return try FileSource(
            path: path, format: .jsonl, csv: nil, maxLineBytes: maxLineBytes, context: context,
            batchSize: batchSize, shardIndex: 0, shardCount: 1, resumeState: nil)
    }

    /// Rewrites the file without the records whose key is in `keys`: the kept
    /// lines, byte for byte, go to a temporary file in the same directory,
    /// which is fsynced and renamed over the file (then the directory is
    /// fsynced), so a crash leaves the old file or the new one, never a mix.
    /// Safe because the sink is ordered: this is the only instance writing
    /// the file during the run. Returns how many records were removed (an
    /// appended file can hold a key more than once; all of them go).
    func delete(keys: BatchView) throws -> UInt64 {
        do {
            try keys.validateFraming()
        } catch {
            throw PluginError.data("file: delete: the key batch is not valid BSON: \(error)")
        }
        // Key documents name their fields; records match on the same names.
        var fieldLists: [[String]] = []
        var wanted = Set<[UInt8]>()
        for (index, keyDocument) in keys.enumerated() {
            let fields = keyDocument.map(\.key)
            guard !fields.isEmpty else { throw PluginError.data("file: delete: key document \(index) has no fields") }
            if !fieldLists.contains(fields) { fieldLists.append(fields) }
            wanted.insert(RecordKey.identity(of: keyDocument, fields: fields))
        }
        // Whatever was written goes with the rewrite; the next write opens the new file.
        try commit()
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
        // Full mode truncates at the first open: after a delete the file's
        // remaining records are the point, so it must not.
        truncate = false
        guard !wanted.isEmpty, let source = try openReader(batchSize: 1) else { return 0 }
        return try rewrite(from: source) { document in
            fieldLists.contains { wanted.contains(RecordKey.identity(of: document, fields: $0)) }
        }
    }

    /// Copies every line `drop` does not match into a temporary file, then
    /// replaces the file with it; leaves the file alone when nothing matched.
    private func rewrite(from source: FileSource, drop: (DocumentView) -> Bool) throws -> UInt64 {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        var template = Array("\(directory == "/" ? "" : directory)/.\(name).ferry-delete-XXXXXX".utf8CString)
        let temporary = mkstemp(&template)
        guard temporary >= 0 else {
            throw PluginError.transient("delete from '\(path)': cannot create a temporary file in '\(directory)': \(String(cString: strerror(errno)))")
        }
        let temporaryPath = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var renamed = false
        defer {
            Glibc.close(temporary)
            if !renamed { unlink(temporaryPath) }
        }
        var info = stat()
        if stat(path, &info) == 0 { fchmod(temporary, info.st_mode & 0o7777) }
        let scratch = BatchBuilder()
        let out = BSONBuffer(capacity: 1 << 20)
        var removed: UInt64 = 0
        while let line = try source.nextLine() {
            if !FileSource.isBlank(line) {
                scratch.reset()
                try source.appendRecord(line, line: source.line, into: scratch)
                if let record = scratch.view.document(at: 0), drop(record) {
                    removed += 1
                    continue
                }
            }
            line.withUnsafeBytes { out.append($0) }
            out.append(byte: 0x0A)
            if out.count >= 1 << 20 { try flush(out, to: temporary, temporaryPath) }
        }
        guard removed > 0 else { return 0 }
        try flush(out, to: temporary, temporaryPath)
        guard fsync(temporary) == 0 else { throw PluginError.transient("fsync '\(temporaryPath)': \(String(cString: strerror(errno)))") }
        guard rename(temporaryPath, path) == 0 else {
            throw PluginError.transient("delete from '\(path)': cannot rename '\(temporaryPath)' over it: \(String(cString: strerror(errno)))")
        }
        renamed = true
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            defer { Glibc.close(directoryFD) }
            guard fsync(directoryFD) == 0 else { throw PluginError.transient("fsync '\(directory)': \(String(cString: strerror(errno)))") }
        }
        return removed
    }

    /// Writes all of `buffer` to `fd` (retrying short writes and EINTR), then empties it.
    func flush(_ buffer: BSONBuffer, to fd: Int32, _ name: String) throws {
        var written = 0
        let bytes = buffer.bytes
        while written < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + written, bytes.count - written)
            if n < 0 {
                if errno == EINTR { continue }
                throw PluginError.transient("write '\(name)': \(String(cString: strerror(errno)))")
            }
            written += n
        }
        buffer.removeAll()
    }
}
