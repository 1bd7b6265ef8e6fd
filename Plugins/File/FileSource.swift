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
    let fd: Int32
    let inode: UInt64
    /// Byte offset just after the last line handed out, and that line's number.
    var offset: Int64 = 0
    var line: Int64 = 0
    var pending: [UInt8] = []
    var pendingStart = 0
    var atEOF = false
    let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)

    init(config: PluginConfig, context: PluginContext) throws {
        path = try config.requiredString("path")
        let formatName = try config.string("format") ?? (path.hasSuffix(".csv") ? "csv" : "jsonl")
        guard let format = Format(rawValue: formatName) else { throw PluginError.config("field 'format': unknown format '\(formatName)'") }
        self.format = format
        batchSize = context.batchSize
        shardIndex = context.shardIndex
        shardCount = context.shardCount
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            chunk.deallocate()
            throw PluginError.config("cannot open '\(path)': \(String(cString: strerror(errno)))")
        }
        var info = stat()
        fstat(fd, &info)
        inode = UInt64(info.st_ino)
        if format == .csv {
            csv = try CSVParser(
                delimiter: (try config.string("csv_delimiter") ?? ",").utf8.first ?? UInt8(ascii: ","),
                inferTypes: try config.bool("csv_infer_types") ?? true)
        } else {
            csv = nil
        }
        if format == .csv {
            // The header names the fields; it is read again on every open, resume or not.
            guard let header = try nextLine() else { throw PluginError.data("\(path): empty CSV file (no header row)") }
            try csv!.readHeader(header, location: "\(path):1")
        }
        if let state = context.resumeState, context.mode != .full {
            try resume(from: state, fileSize: Int64(info.st_size))
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
        atEOF = false
    }

    /// The next line without its newline, or nil at end of file. A last line
    /// without a newline still counts: a record is never dropped for it.
    private func nextLine() throws -> ArraySlice<UInt8>? {
        while true {
            if let newline = pending[pendingStart...].firstIndex(of: UInt8(ascii: "\n")) {
                let lineBytes = pending[pendingStart..<newline]
                offset += Int64(newline - pendingStart + 1)
                pendingStart = newline + 1
                line += 1
                return lineBytes
            }
            if atEOF {
                guard pendingStart < pending.count else { return nil }
                let lineBytes = pending[pendingStart...]
                offset += Int64(pending.count - pendingStart)
                pendingStart = pending.count
                line += 1
                return lineBytes
            }
            if pendingStart > 0 {
                pending.removeSubrange(0..<pendingStart)
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

    func read(into batch: BatchBuilder) throws -> Bool {
        while batch.count < batchSize, let lineBytes = try nextLine() {
            let lineNumber = line
            if lineBytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            if shardCount > 1 && Int(lineNumber % Int64(shardCount)) != shardIndex { continue }
            switch format {
            case .jsonl:
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
        var state = [UInt8]()
        state.reserveCapacity(24)
        withUnsafeBytes(of: offset.littleEndian) { state.append(contentsOf: $0) }
        withUnsafeBytes(of: line.littleEndian) { state.append(contentsOf: $0) }
        withUnsafeBytes(of: inode.littleEndian) { state.append(contentsOf: $0) }
        batch.state = state
        return !(atEOF && pendingStart >= pending.count)
    }

    func estimate() throws -> UInt64? {
        // One pass over the file counting newlines; cheap next to parsing it.
        let counter = open(path, O_RDONLY | O_CLOEXEC)
        guard counter >= 0 else { return nil }
        defer { Glibc.close(counter) }
        var lines: UInt64 = 0
        var lastByte: UInt8 = 0x0A
        while true {
            let got = Glibc.read(counter, chunk.baseAddress, chunk.count)
            if got <= 0 { break }
            for byte in UnsafeRawBufferPointer(rebasing: chunk[0..<got]) where byte == 0x0A { lines += 1 }
            lastByte = chunk[got - 1]
        }
        if lastByte != 0x0A { lines += 1 }
        if format == .csv, lines > 0 { lines -= 1 }
        return lines / UInt64(shardCount)
    }
}
