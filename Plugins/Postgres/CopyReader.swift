import CLibPQ
import FerryPluginKit

/// Streams the rows of one `COPY (SELECT …) TO STDOUT` into BSON batches, in
/// binary format when every column has a binary decoder (text otherwise). The
/// source reads with it, and so does the sink when it reads its table back,
/// so a row becomes the same document either way.
final class CopyReader {
    let columns: [PGColumn]
    let decoder: CopyTextDecoder
    /// Set when the read is in binary format.
    let binary: CopyBinaryDecoder?
    /// What error messages name: the table or "query".
    let label: String
    /// True between `start` and the end of the COPY.
    private(set) var copying = false
    /// The next message of a binary COPY starts with the file header.
    private var expectHeader = false
    /// Keep the last row's bytes (the source takes its resume position from it).
    let keepsLastRow: Bool
    /// The last row as libpq allocated it, freed when the next one comes:
    /// holding on to it costs nothing, where copying every row cost a copy per row.
    private var lastRowMessage: UnsafeMutablePointer<CChar>?
    private var lastRow = UnsafeRawBufferPointer(start: nil, count: 0)

    init(columns: [PGColumn], options: ValueOptions, label: String, keepsLastRow: Bool = false) {
        self.columns = columns
        self.label = label
        self.keepsLastRow = keepsLastRow
        decoder = CopyTextDecoder(columns: columns, options: options)
        binary = CopyBinaryDecoder.reads(columns) ? CopyBinaryDecoder(columns: columns, text: decoder) : nil
    }

    /// The columns a SELECT yields and their types (planned with LIMIT 0); a
    /// type the connector cannot map is a config error naming the column.
    static func describe(_ connection: PGConnection, select: String, label: String) throws -> [PGColumn] {
        let result = try connection.exec("SELECT * FROM (\(select)) AS ferry_describe LIMIT 0", "describe \(label)")
        let oids = (0..<result.columns).map { result.type($0) }
        // Every type's name in one round trip: a read's start-up is mostly waits on the server.
        let names = try connection.exec(
            "SELECT format_type(o, NULL) FROM unnest($1::oid[]) WITH ORDINALITY AS t(o, n) ORDER BY n",
            ["{" + oids.map { String($0) }.joined(separator: ",") + "}"], "name the types")
        var columns: [PGColumn] = []
        for index in 0..<result.columns {
            let name = result.name(index)
            let oid = oids[index]
            let typeName = (index < names.rows ? names.value(index, 0) : nil) ?? "oid \(oid)"
            guard let type = PGType(oid: oid) else {
                throw PluginError.config("postgres: column '\(name)' of \(label) has type \(typeName), which this connector cannot map (leave it out with 'columns', or cast it in a 'query')")
            }
            columns.append(PGColumn(name: name, type: type, sqlType: typeName, notNull: false))
        }
        return columns
    }

    /// Starts the COPY of `select` on `connection`.
    func start(_ select: String, on connection: PGConnection) throws {
        try connection.exec("COPY (\(select)) TO STDOUT\(binary == nil ? "" : " (FORMAT binary)")", "read \(label)")
        copying = true
        expectHeader = binary != nil
        forgetLastRow()
    }

    deinit { forgetLastRow() }

    private func forgetLastRow() {
        if let lastRowMessage { PQfreemem(lastRowMessage) }
        lastRowMessage = nil
        lastRow = UnsafeRawBufferPointer(start: nil, count: 0)
    }

    /// The bytes of the last row read (empty before the first).
    func withLastRow<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T { try body(lastRow) }

    /// Forgets a COPY cut short: its connection is mid-protocol and must not be reused.
    func abandon() { copying = false }

    /// Appends rows until the batch holds `limit` documents; true once the COPY has ended.
    func read(_ connection: PGConnection, into batch: BatchBuilder, limit: Int) throws -> Bool {
        var buffer: UnsafeMutablePointer<CChar>?
        while batch.count < limit {
            let length = PQgetCopyData(connection.conn, &buffer, 0)
            if length > 0, let row = buffer {
                var kept = false
                defer { if !kept { PQfreemem(row) } }
                var bytes: UnsafeRawBufferPointer
                do {
                    if let binary {
                        bytes = UnsafeRawBufferPointer(start: row, count: Int(length))
                        if expectHeader {
                            bytes = UnsafeRawBufferPointer(rebasing: bytes[try CopyBinaryDecoder.headerLength(bytes)...])
                            expectHeader = false
                        }
                        if bytes.isEmpty || CopyBinaryDecoder.isTrailer(bytes) { continue }
                        try batch.appendDocument { writer in try binary.decode(bytes, into: &writer) }
                    } else {
                        // Each row ends with a newline.
                        bytes = UnsafeRawBufferPointer(start: row, count: Int(length) - 1)
                        try batch.appendDocument { writer in try decoder.decode(bytes, into: &writer) }
                    }
                } catch let failure as CopyTextDecoder.Failure {
                    throw PluginError.data("postgres: \(label): \(failure.message)")
                } catch let failure as CopyBinaryDecoder.Failure {
                    throw PluginError.data("postgres: \(label): \(failure.message)")
                }
                if keepsLastRow {
                    forgetLastRow()
                    lastRowMessage = row
                    lastRow = bytes
                    kept = true
                }
                continue
            }
            if length == -1 {
                try connection.finishCommand("read \(label)")
                copying = false
                return true
            }
            throw connection.error(nil, "read \(label)")
        }
        return false
    }
}
