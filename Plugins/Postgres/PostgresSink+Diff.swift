import FerryPluginKit

/// `ferry diff` and `ferry repair` on the sink's table: its rows read back as
/// the source would read them, digests by the shared scheme (DiffDigest), and
/// deletes by key staged in the transaction the next `commit` ends. None of it
/// happens at open: an instance opened for a diff changes nothing.
extension PostgresSink: ReadBackSink, DigestingPlugin, DeletingSink {
    /// The table's columns in table order, or nil while the table is missing.
    private func tableColumnNames(_ connection: PGConnection) throws -> [String]? {
        try settings.tableColumns(connection)?.map(\.name)
    }

    /// The connection of diff reads and digests (see `diffConnection`).
    private func diffSession() throws -> PGConnection {
        if let existing = diffConnection, !existing.isBroken { return existing }
        diffConnection = nil
        backReader = nil
        let connection = try settings.connect()
        diffConnection = connection
        return connection
    }

    func diffInfo() throws -> DiffInfo {
        let names = try tableColumnNames(try diffSession())
        return DiffInfo(key: settings.key.isEmpty ? nil : settings.key, fields: names, digestScheme: DiffDigest.scheme)
    }

    private func selectAll(_ names: [String]) -> String {
        "SELECT \(names.map(SQL.ident).joined(separator: ", ")) FROM \(target)"
    }

    func digest(within: BucketSet, bits: Int) throws -> [BucketDigest] {
        let connection = try diffSession()
        // A table create_table has yet to make holds no rows.
        guard let names = try tableColumnNames(connection) else { return [] }
        return try DiffDigest.digest(connection, select: selectAll(names), columns: names, within: within, bits: bits, label: settings.tableLabel)
    }

    func selectBuckets(_ set: BucketSet) throws {
        let connection = try diffSession()
        if let names = try tableColumnNames(connection) {
            try DiffDigest.validate(set, columns: names, label: settings.tableLabel)
        }
        // A read back left half-way leaves its connection mid-COPY.
        if backReader?.copying == true { diffConnection = nil }
        backReader = nil
        readBackDone = false
        readBackFailure = nil
        selection = set
    }

    func readBack(into batch: BatchBuilder) throws -> Bool {
        if let readBackFailure { throw PluginError.data(readBackFailure) }
        if readBackDone || context.isCancelled { return false }
        do {
            let connection = try diffSession()
            let reader: CopyReader
            if let existing = backReader {
                reader = existing
            } else {
                guard let names = try tableColumnNames(connection) else {
                    readBackDone = true
                    return false
                }
                let select = selectAll(names)
                reader = CopyReader(
                    columns: try CopyReader.describe(connection, select: select, label: settings.tableLabel),
                    options: settings.values, label: settings.tableLabel)
                try DiffDigest.prepareSelection(connection, selection, settings.tableLabel)
                try reader.start(select + (DiffDigest.selectionCondition(selection).map { " WHERE " + $0 } ?? ""), on: connection)
                backReader = reader
            }
            readBackDone = try reader.read(connection, into: batch, limit: context.batchSize)
        } catch {
            // Rows already handed out cannot be taken back, so the read does not
            // start over by itself; select_buckets starts it again.
            diffConnection = nil
            backReader = nil
            let message = "\((error as? PluginError)?.message ?? "\(error)") (reading \(settings.tableLabel) back stopped; select buckets again to read it from the start)"
            readBackFailure = message
            throw PluginError.data(message)
        }
        return !readBackDone
    }

    func delete(keys: BatchView) throws -> UInt64 {
        guard !settings.key.isEmpty else {
            throw PluginError.config("postgres: deleting from \(settings.tableLabel) by key needs 'key'")
        }
        var deleted: UInt64 = 0
        try connectionGuard {
            if let existing = connection, existing.isBroken { connection = nil }
            let connection: PGConnection
            if let existing = self.connection {
                connection = existing
            } else {
                connection = try settings.connect()
                self.connection = connection
                rolledBack()
            }
            if inTransaction {
                try rollBackFailedWrite(connection)
                if lastWriteFailed && !keepOpen {
                    try connection.exec("ROLLBACK", "roll back")
                    rolledBack()
                }
            }
            if !inTransaction {
                try connection.exec("BEGIN", "begin")
                inTransaction = true
            }
            keepOpen = true
            // Nothing to delete from a table create_table has yet to make.
            guard try settings.tableColumns(connection) != nil else { return }
            try prepareTable(connection)
            let keyColumns = settings.key.map { name in columns.first { $0.name == name }! }
            let encoded = RowBuffer()
            let encoder: any RowEncoder = binary
                ? CopyBinaryEncoder(columns: keyColumns, rejectUnknownFields: false, numericInfinity: connection.serverVersion >= 140000)
                : CopyTextEncoder(columns: keyColumns, rejectUnknownFields: false, numericInfinity: connection.serverVersion >= 140000)
            for (index, document) in keys.enumerated() {
                for name in settings.key {
                    guard let element = document.element(forKey: name), element.type != .null, element.type != .undefined else {
                        throw PluginError.data("postgres: delete from \(settings.tableLabel): key record \(index) has no value for key field '\(name)'")
                    }
                }
                do {
                    try encoder.encode(document, into: encoded)
                } catch let failure as CopyTextEncoder.Failure {
                    throw PluginError.data("postgres: delete from \(settings.tableLabel): key record \(index): \(failure.message)")
                }
            }
            guard encoded.count > 0 else { return }
            let list = keyColumns.map { SQL.ident($0.name) }.joined(separator: ", ")
            let matches = keyColumns.map { "t.\(SQL.ident($0.name)) = k.\(SQL.ident($0.name))" }.joined(separator: " AND ")
            try connection.exec("SAVEPOINT ferry_delete", "savepoint")
            do {
                try connection.exec(
                    "CREATE TEMP TABLE IF NOT EXISTS ferry_delete_keys ON COMMIT DELETE ROWS AS SELECT \(list) FROM \(target) WITH NO DATA; DELETE FROM ferry_delete_keys",
                    "stage the keys to delete")
                try connection.exec("COPY ferry_delete_keys (\(list)) FROM STDIN\(binary ? " (FORMAT binary)" : "")", "stage the keys to delete")
                if binary { try CopyBinaryEncoder.header.withUnsafeBytes { try connection.putCopyData($0, "stage the keys to delete") } }
                try connection.putCopyData(encoded.bytes, "stage the keys to delete")
                if binary { try CopyBinaryEncoder.trailer.withUnsafeBytes { try connection.putCopyData($0, "stage the keys to delete") } }
                try connection.endCopy("stage the keys to delete")
                let result = try connection.exec(
                    "DELETE FROM \(target) AS t USING ferry_delete_keys AS k WHERE \(matches)", "delete from \(settings.tableLabel)")
                deleted = UInt64(result.affected)
                try connection.exec("RELEASE SAVEPOINT ferry_delete", "release savepoint")
            } catch {
                // Deletes and writes staged before this call stay for the commit.
                if !connection.isBroken {
                    _ = try? connection.exec("ROLLBACK TO SAVEPOINT ferry_delete; RELEASE SAVEPOINT ferry_delete", "roll back to savepoint")
                }
                throw error
            }
        }
        return deleted
    }
}
