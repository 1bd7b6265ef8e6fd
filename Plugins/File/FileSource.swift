#if canImport(Glibc)
import Glibc
#endif
import FerryPluginKit

/// Reads JSON Lines (extended JSON, one object a line) or CSV with a header
/// row, a batch at a time, resuming at the byte after the last line read.
final class FileSource: SourcePlugin {
    enum Format: String { case jsonl, csv }

    let path: String
    let format: Format
    let batchSize: Int
    let shardIndex: Int
    let shardCount: Int
    let csv: CSVParser?
    /// The fast path for JSON Lines; libbson parses what it does not take.
    let parser = JSONLineParser()
    let context: PluginContext
    let fd: Int32
    let inode: UInt64
    /// The longest line accepted, newline excluded.
    let maxLineBytes: Int
    /// Byte offset just after the last line handed out, and that line's number.
    var offset: Int64 = 0
    var line: Int64 = 0
    var pending: [UInt8] = []
    var pendingStart = 0
    /// `pending` before this index holds no newline after `pendingStart`, so
    /// a long line is scanned once, not again for every chunk read.
    var scanned = 0
    var atEOF = false
    let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)

    static let defaultMaxLineBytes = 16 << 20
    static let maxLineBytesLimit = 1 << 30

    convenience init(config: PluginConfig, context: PluginContext) throws {
        let path = try config.requiredString("path")
        let formatName = try config.string("format") ?? (path.hasSuffix(".csv") ? "csv" : "jsonl")
        guard let format = Format(rawValue: formatName) else { throw PluginError.config("field 'format': unknown format '\(formatName)'") }
        let csv: CSVParser? =
            format == .csv
            ? try CSVParser(
                delimiter: (try config.string("csv_delimiter") ?? ",").utf8.first ?? UInt8(ascii: ","),
                inferTypes: try config.bool("csv_infer_types") ?? true)
            : nil
        try self.init(
            path: path, format: format, csv: csv, maxLineBytes: try Self.maxLineBytes(config), context: context,
            batchSize: context.batchSize, shardIndex: context.shardIndex, shardCount: context.shardCount,
            resumeState: context.mode != .full ? context.resumeState : nil)
    }

    static func maxLineBytes(_ config: PluginConfig) throws -> Int {
        let maxLine = try config.int("max_line_bytes") ?? Self.defaultMaxLineBytes
        guard maxLine >= 1, maxLine <= Self.maxLineBytesLimit else {
            throw PluginError.config("field 'max_line_bytes': \(maxLine) is outside 1…\(Self.maxLineBytesLimit)")
        }
        return maxLine
    }

    /// Reads `path` from its start (or `resumeState`); the file sink reads
    /// its own output back with this, unsharded, exactly as a source would.
    init(
        path: String, format: Format, csv: CSVParser?, maxLineBytes: Int, context: PluginContext,
        batchSize: Int, shardIndex: Int, shardCount: Int, resumeState: [UInt8]?
    ) throws {
        self.context = context
        self.path = path
        self.format = format
        self.csv = csv
        self.maxLineBytes = maxLineBytes
        self.batchSize = batchSize
        self.shardIndex = shardIndex
        self.shardCount = shardCount
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            chunk.deallocate()
            throw PluginError.config("cannot open '\(path)': \(String(cString: strerror(errno)))")
        }
        var info = stat()
        fstat(fd, &info)
        // Only a regular file has an end, a size to resume within and lines to
        // count: /dev/zero or a FIFO would make estimate and read run forever.
        guard info.st_mode & S_IFMT == S_IFREG else {
            Glibc.close(fd)
            chunk.deallocate()
            throw PluginError.config("'\(path)' is \(Self.kindName(info.st_mode)), not a regular file: the file source reads regular files only")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        inode = UInt64(info.st_ino)
        if format == .csv {
            // The header names the fields; it is read again on every open, resume or not.
            guard let header = try nextLine() else { throw PluginError.data("\(path): empty CSV file (no header row)") }
            try csv!.readHeader(header, location: "\(path):1")
        }
        if let state = resumeState {
            try resume(from: state, fileSize: Int64(info.st_size))
        }
    }

    static func kindName(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: "a directory"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFIFO: "a FIFO (named pipe)"
        case S_IFSOCK: "a socket"
        default: "not a regular file"
        }
    }

    deinit {
        if fd >= 0 { Glibc.close(fd) }
        chunk.deallocate()
    }

    private func resume(from state: [UInt8], fileSize: Int64) throws {
        guard state.count == 24 else { throw PluginError.state("file: resume state has \(state.count) bytes, expected 24") }
        let (savedOffset, savedLine, savedInode) = state.withUnsafeBytes {
            (Int64(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: Int64.self)),
             Int64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: Int64.self)),
             UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
        }
        guard savedInode == inode else {
            throw PluginError.state("'\(path)' is not the file the saved state was taken from (inode \(inode), was \(savedInode)); reset the pipeline's state to read it from the start")
        }
        guard savedOffset <= fileSize else {
            throw PluginError.state("'\(path)' is shorter (\(fileSize) bytes) than the saved position \(savedOffset): was it truncated? reset the pipeline's state to read it from the start")
        }
        guard lseek(fd, off_t(savedOffset), SEEK_SET) >= 0 else { throw PluginError.internal("seek in '\(path)' failed") }
        offset = savedOffset
        line = savedLine
        pending.removeAll()
        pendingStart = 0
        scanned = 0
        atEOF = false
    }

    /// The next line without its newline, or nil at end of file. A last line
    /// without a newline still counts: a record is never dropped for it.
    func nextLine() throws -> ArraySlice<UInt8>? {
        while true {
            if let newline = findNewline() {
                if newline - pendingStart > maxLineBytes { throw lineTooLong() }
                let lineBytes = pending[pendingStart..<newline]
                offset += Int64(newline - pendingStart + 1)
                pendingStart = newline + 1
                scanned = pendingStart
                line += 1
                return lineBytes
            }
            if pending.count - pendingStart > maxLineBytes { throw lineTooLong() }
            if atEOF {
                guard pendingStart < pending.count else { return nil }
                let lineBytes = pending[pendingStart...]
                offset += Int64(pending.count - pendingStart)
                pendingStart = pending.count
                scanned = pendingStart
                line += 1
                return lineBytes
            }
            if context.isCancelled { throw PluginError.cancelled() }
            if pendingStart > 0 {
                pending.removeSubrange(0..<pendingStart)
                scanned -= pendingStart
                pendingStart = 0
            }
            let got = Glibc.read(fd, chunk.baseAddress, chunk.count)
            if got < 0 {
                if errno == EINTR { continue }
                throw PluginError.transient("read '\(path)': \(String(cString: strerror(errno)))")
            }
            if got == 0 { atEOF = true } else { pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[0..<got])) }
        }
    }

    /// The index of the next newline in `pending`, searching only bytes not
    /// searched before (memchr: a multi-megabyte line costs one pass).
    private func findNewline() -> Int? {
        let from = max(scanned, pendingStart)
        guard from < pending.count else { return nil }
        let found = pending.withUnsafeBytes { raw -> Int? in
            guard let hit = memchr(raw.baseAddress! + from, 0x0A, raw.count - from) else { return nil }
            return raw.baseAddress!.distance(to: UnsafeRawPointer(hit))
        }
        scanned = found ?? pending.count
        return found
    }

    private func lineTooLong() -> PluginError {
        .data("\(path):\(line + 1): line longer than max_line_bytes (\(maxLineBytes) bytes); raise max_line_bytes (at most \(Self.maxLineBytesLimit)) if one record is really that large")
    }

    func read(into batch: BatchBuilder) throws -> Bool {
        while batch.count < batchSize, let lineBytes = try nextLine() {
            let lineNumber = line
            if Self.isBlank(lineBytes) { continue }
            if shardCount > 1 && Int(lineNumber % Int64(shardCount)) != shardIndex { continue }
            try appendRecord(lineBytes, line: lineNumber, into: batch)
        }
        var state = [UInt8]()
        state.reserveCapacity(24)
        withUnsafeBytes(of: offset.littleEndian) { state.append(contentsOf: $0) }
        withUnsafeBytes(of: line.littleEndian) { state.append(contentsOf: $0) }
        withUnsafeBytes(of: inode.littleEndian) { state.append(contentsOf: $0) }
        batch.state = state
        return !(atEOF && pendingStart >= pending.count)
    }

    /// Blank lines hold no record.
    static func isBlank(_ lineBytes: ArraySlice<UInt8>) -> Bool {
        lineBytes.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
    }

    /// The record on a non-blank line, as BSON, appended to `batch`.
    func appendRecord(_ lineBytes: ArraySlice<UInt8>, line lineNumber: Int64, into batch: BatchBuilder) throws {
        switch format {
        case .jsonl:
            if lineBytes.withUnsafeBytes({ parser.parse($0) }) {
                batch.append(encoded: parser.output.bytes)
                return
            }
            do {
                let bytes = try lineBytes.withUnsafeBytes { try ExtendedJSON.parse(utf8: $0) }
                bytes.withUnsafeBytes { batch.append(encoded: $0) }
            } catch {
                throw PluginError.data("\(path):\(lineNumber): invalid JSON: \(error)")
            }
        case .csv:
            try csv!.appendRecord(lineBytes, into: batch, location: "\(path):\(lineNumber)")
        }
    }

    func estimate() throws -> UInt64? {
        // One pass over the file counting newlines; cheap next to parsing it.
        // pread on the checked descriptor: the path may name another file by now,
        // and the read position of `fd` must not move.
        var lines: UInt64 = 0
        var lastByte: UInt8 = 0x0A
        var position: off_t = 0
        while true {
            if context.isCancelled { throw PluginError.cancelled() }
            let got = pread(fd, chunk.baseAddress, chunk.count, position)
            if got < 0 && errno == EINTR { continue }
            if got <= 0 { break }
            position += off_t(got)
            var cursor = chunk.baseAddress!
            var left = got
            while left > 0, let hit = memchr(cursor, 0x0A, left) {
                lines += 1
                left -= cursor.distance(to: hit) + 1
                cursor = hit + 1
            }
            lastByte = chunk[got - 1]
        }
        if lastByte != 0x0A { lines += 1 }
        if format == .csv, lines > 0 { lines -= 1 }
        return lines / UInt64(shardCount)
    }
}
