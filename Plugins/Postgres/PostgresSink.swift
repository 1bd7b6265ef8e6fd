import FerryPluginKit

/// Writes each batch in its own transaction: COPY into a temporary staging
/// table, then one `INSERT … SELECT … ON CONFLICT` merge that skips rows
/// whose values did not change. `write` leaves the transaction open and
/// `commit` commits it, so the host's checkpoint never runs ahead of the data;
/// a retried batch is re-sent whole, and the merge makes it land once.
final class PostgresSink: SinkPlugin {
    enum Mode: String { case upsert, insert, missingOnly = "missing-only", replace }

    let settings: PGSettings
    let context: PluginContext
    let mode: Mode
    /// `create_table`'s column definitions, each checked and with its name quoted.
    let createDefinitions: [String]?
    let rejectUnknownFields: Bool
    let target: String
    var connection: PGConnection?
    var columns: [PGColumn] = []
    var encoder: (any RowEncoder)!
    let binary: Bool
    var mergeSQL = ""
    var inTransaction = false
    /// Schema work done inside the open transaction, undone if it rolls back.
    var createdInTransaction = false
    var stageReady = false
    var stageDirty = false
    /// The run-wide key under which `replace` truncates once.
    var replaceKey: String?
    /// Upsert / missing-only into a table that was empty at the start: every row
    /// is new, so COPY straight in (as fast as a plain load). The first unique
    /// violation turns it off for good and the batch goes through the merge.
    var copyDirectly = false
    let rows = RowBuffer()
    var rowIndex: [(document: Int, start: Int, end: Int)] = []

    // Diff and repair (PostgresSink+Diff.swift).
    /// The open transaction holds deletes (and writes since) that the next
    /// write must keep: a write then runs under SAVEPOINT ferry_write.
    var keepOpen = false
    /// A write under SAVEPOINT ferry_write failed: the next call rolls back to it.
    var writeSavepoint = false
    /// The last write threw; its transaction may be aborted.
    var lastWriteFailed = false
    /// Reads the table back and digests it, apart from the connection that
    /// writes, so a read left half-way never blocks a write or a delete.
    var diffConnection: PGConnection?
    var backReader: CopyReader?
    var readBackDone = false
    /// Why a read back stopped half-way; it stays stopped until `selectBuckets`.
    var readBackFailure: String?
    /// The key buckets `selectBuckets` keeps read-back to (nil: every row).
    var selection: BucketSet?

    init(config: PluginConfig, context: PluginContext) throws {
        settings = try PGSettings(config)
        self.context = context
        guard let target = settings.qualifiedTable else { throw PluginError.config("postgres: sink needs 'table'") }
        self.target = target
        createDefinitions = try config.strings("create_table").map { definitions in
            try definitions.enumerated().map { try ColumnDefinition.sql($0.element, index: $0.offset) }
        }
        rejectUnknownFields = (try config.string("unknown_fields") ?? "reject") == "reject"
        binary = (try config.string("copy_format") ?? "binary") == "binary"
        var mode: Mode
        let chosen = try config.string("mode")
        if let name = chosen {
            guard let parsed = Mode(rawValue: name) else { throw PluginError.config("postgres: field 'mode': unknown mode '\(name)'") }
            mode = parsed
        } else if settings.key.isEmpty {
            // plugin-abi.md §8.1: without a key to upsert by, a full run replaces the table's contents
            // (appending again would duplicate every row); `mode: insert` appends on purpose.
            mode = context.mode == .full ? .replace : .insert
        } else {
            mode = .upsert
        }
        if context.mode == .missingOnly { mode = .missingOnly }
        if (mode == .upsert || mode == .missingOnly) && settings.key.isEmpty {
            throw PluginError.config("postgres: mode '\(mode.rawValue)' needs 'key' (the columns of a unique index on \(settings.tableLabel))")
        }
        self.mode = mode
        if context.isRepair && mode == .replace {
            throw PluginError.unsupported(
                "postgres: mode 'replace' empties \(settings.tableLabel) on the first write, which a repair must never do; repair with a key and mode upsert")
        }
        if mode == .replace {
            guard context.shardCount == 1 else {
                if chosen == nil {
                    throw PluginError.config("postgres: a full run without 'key' replaces the table, which shards cannot do (each would empty it); set 'key' to upsert, or mode: insert to append")
                }
                throw PluginError.config("postgres: mode 'replace' cannot run in shards (each shard would empty the table); use upsert")
            }
            let key = "\(context.pipelineName)|\(settings.dsn.hashValue)|\(target)"
            ReplaceRegistry.shared.register(key)
            replaceKey = key
        }
        let connection = try settings.connect()
        self.connection = connection
        // Fail at open, not at the first batch, when the table is not there.
        if try settings.tableColumns(connection) == nil && createDefinitions == nil {
            throw PluginError.config("postgres: table \(settings.tableLabel) does not exist on \(connection.label) (create it, or set 'create_table')")
        }
    }

    // MARK: - Schema

    /// Loads the target's columns (creating the table if asked) and builds the merge.
    func prepareTable(_ connection: PGConnection) throws {
        guard columns.isEmpty else { return }
        var found = try settings.tableColumns(connection)
        if found == nil, createDefinitions != nil {
            // Several sink instances (one per worker) may all find the table
            // missing; concurrent CREATEs collide in pg_type. One creates it
            // under a transaction-scoped lock; the others wait, then see it.
            _ = try connection.exec(
                "SELECT pg_advisory_xact_lock(hashtext($1))", ["ferry.create_table:" + target], "lock for create table \(settings.tableLabel)")
            // Scanning pg_class itself (not to_regclass, which answers from the
            // session's catalog cache) sees a table another instance created
            // and committed while we waited, and refreshes that cache.
            let created = try connection.exec(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                [settings.schema, settings.table], "look up table \(settings.tableLabel)")
            if created.value(0, 0) != "0" { found = try settings.tableColumns(connection) }
        }
        if found == nil, let definitions = createDefinitions {
            var parts = definitions
            if !settings.key.isEmpty { parts.append("PRIMARY KEY (\(settings.key.map(SQL.ident).joined(separator: ", ")))") }
            try connection.exec("CREATE TABLE \(target) (\(parts.joined(separator: ", ")))", "create table \(settings.tableLabel)")
            createdInTransaction = true
            context.log(.info, "postgres: created table \(settings.tableLabel)")
            found = try settings.tableColumns(connection)
        }
        guard let all = found else {
            throw PluginError.config("postgres: table \(settings.tableLabel) does not exist on \(connection.label) (create it, or set 'create_table')")
        }
        var chosen = all
        if let wanted = settings.columns {
            chosen = try wanted.map { name in
                guard let column = all.first(where: { $0.name == name }) else {
                    throw PluginError.config("postgres: column '\(name)' is not in \(settings.tableLabel) (columns: \(all.map(\.name).joined(separator: ", ")))")
                }
                return column
            }
        }
        var mapped: [PGColumn] = []
        for column in chosen {
            guard let type = PGType(oid: column.oid) else {
                throw PluginError.config("postgres: column '\(column.name)' of \(settings.tableLabel) has type \(column.sqlType), which this connector cannot map (leave it out with 'columns')")
            }
            let limit = type == .numeric || type == .array(.numeric) ? NumericLimit(typmod: column.typmod) : nil
            mapped.append(PGColumn(name: column.name, type: type, sqlType: column.sqlType, notNull: column.notNull, oid: column.oid, limit: limit))
        }
        for key in settings.key where !mapped.contains(where: { $0.name == key }) {
            throw PluginError.config("postgres: key column '\(key)' is not among the written columns of \(settings.tableLabel)")
        }
        if mode == .upsert || mode == .missingOnly {
            try requireUniqueIndex(connection)
            copyDirectly = try connection.exec("SELECT NOT EXISTS (SELECT 1 FROM \(target))", "look at \(settings.tableLabel)").value(0, 0) == "t"
        }
        columns = mapped
        let numericInfinity = connection.serverVersion >= 140000
        encoder = binary
            ? CopyBinaryEncoder(columns: mapped, rejectUnknownFields: rejectUnknownFields, numericInfinity: numericInfinity)
            : CopyTextEncoder(columns: mapped, rejectUnknownFields: rejectUnknownFields, numericInfinity: numericInfinity)
        mergeSQL = buildMerge()
    }

    /// ON CONFLICT needs a unique index on exactly the key; say so up front
    /// instead of failing every row.
    private func requireUniqueIndex(_ connection: PGConnection) throws {
        let keyArray = "{" + settings.key.map { "\"" + $0.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"") + "\"" }.joined(separator: ",") + "}"
        let result = try connection.exec(
            """
            SELECT EXISTS (
              SELECT 1 FROM pg_index i
              WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
                AND i.indnkeyatts = cardinality($2::text[])
                AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_attribute a
                     WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey::int2[]))
                    = (SELECT array_agg(k ORDER BY k) FROM unnest($2::text[]) AS k))
            """, [target, keyArray], "look up the key's unique index")
        guard result.value(0, 0) == "t" else {
            throw PluginError.config("postgres: \(settings.tableLabel) has no unique index on (\(settings.key.joined(separator: ", "))); upsert and missing-only need one (add a primary key or unique index, or use mode insert)")
        }
    }

    private func buildMerge() -> String {
        let list = columns.map { SQL.ident($0.name) }.joined(separator: ", ")
        let keyList = settings.key.map(SQL.ident).joined(separator: ", ")
        let others = columns.filter { !settings.key.contains($0.name) }
        var sql = "WITH merged AS (INSERT INTO \(target) AS t (\(list)) SELECT \(list) FROM ferry_stage ON CONFLICT (\(keyList)) "
        if mode == .missingOnly || others.isEmpty {
            sql += "DO NOTHING RETURNING true AS inserted)"
        } else {
            let sets = others.map { "\(SQL.ident($0.name)) = EXCLUDED.\(SQL.ident($0.name))" }.joined(separator: ", ")
            // json has no equality operator: compare its text.
            func compared(_ prefix: String, _ column: PGColumn) -> String {
                let expression = "\(prefix).\(SQL.ident(column.name))"
                return column.type == .json || column.type == .array(.json) ? "\(expression)::text" : expression
            }
            let old = others.map { compared("t", $0) }.joined(separator: ", ")
            let new = others.map { compared("EXCLUDED", $0) }.joined(separator: ", ")
            sql += "DO UPDATE SET \(sets) WHERE ROW(\(old)) IS DISTINCT FROM ROW(\(new)) RETURNING (t.xmax = 0) AS inserted)"
        }
        sql += " SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM merged"
        return sql
    }

    // MARK: - Batches

    /// Opens the batch's transaction on a live connection.
    private func begin(preview: Bool = false) throws -> PGConnection {
        if let existing = connection, existing.isBroken { connection = nil }
        let connection: PGConnection
        if let existing = self.connection {
            connection = existing
            if inTransaction {
                try rollBackFailedWrite(connection)
                if keepOpen {
                    // Deletes wait for the commit: only this write's own work may be undone.
                    try connection.exec("SAVEPOINT ferry_write", "savepoint")
                    writeSavepoint = true
                } else {
                    // Left open by a failed attempt: its work is void, the batch is sent again.
                    try connection.exec("ROLLBACK", "roll back")
                    rolledBack()
                }
            }
        } else {
            connection = try settings.connect()
            self.connection = connection
            rolledBack()
            stageReady = false
        }
        if !inTransaction {
            try connection.exec("BEGIN", "begin")
            inTransaction = true
        }
        try prepareTable(connection)
        if (mode == .upsert || mode == .missingOnly) && !stageReady {
            let list = columns.map { SQL.ident($0.name) }.joined(separator: ", ")
            try connection.exec(
                "CREATE TEMP TABLE IF NOT EXISTS ferry_stage ON COMMIT DELETE ROWS AS SELECT \(list) FROM \(target) WITH NO DATA",
                "create the staging table")
            stageReady = true
        }
        if mode == .replace && preview {
            // Inside the transaction the preview rolls back: counts as if replaced.
            try connection.exec("TRUNCATE \(target)", "truncate \(settings.tableLabel)")
        }
        return connection
    }

    /// Empties the table in its own committed transaction, once per run,
    /// before the first batch of any worker lands (never in a dry run).
    private func truncateOnce(_ key: String) throws {
        try ReplaceRegistry.shared.truncateOnce(key) {
            if let existing = connection, existing.isBroken { connection = nil }
            let connection = try self.connection ?? settings.connect()
            self.connection = connection
            if inTransaction {
                try connection.exec("ROLLBACK", "roll back")
                rolledBack()
            }
            // A table create_table has yet to make has nothing to empty.
            guard try settings.tableColumns(connection) != nil else { return }
            try connection.exec("TRUNCATE \(target)", "truncate \(settings.tableLabel)")
            context.log(.info, "postgres: replace: emptied \(settings.tableLabel)")
        }
    }

    /// Undoes a write that failed under SAVEPOINT ferry_write, keeping what came before it.
    func rollBackFailedWrite(_ connection: PGConnection) throws {
        guard writeSavepoint else { return }
        try connection.exec("ROLLBACK TO SAVEPOINT ferry_write; RELEASE SAVEPOINT ferry_write", "roll back to savepoint")
        writeSavepoint = false
        // What the write did after the savepoint is gone; anything it may have created is looked up again.
        if createdInTransaction { columns = [] }
        stageReady = false
        stageDirty = true
    }

    /// Forgets what the rolled-back transaction did.
    func rolledBack() {
        inTransaction = false
        keepOpen = false
        writeSavepoint = false
        lastWriteFailed = false
        stageDirty = false
        if createdInTransaction {
            columns = []
            createdInTransaction = false
        }
        // A staging table created in the transaction is gone too; recreate it if needed.
        stageReady = false
    }

    func write(_ batch: BatchView, result: inout SinkResult) throws {
        lastWriteFailed = true
        try connectionGuard {
            if let replaceKey { try truncateOnce(replaceKey) }
            let connection = try begin()
            try load(batch, connection, &result)
            if writeSavepoint {
                try connection.exec("RELEASE SAVEPOINT ferry_write", "release savepoint")
                writeSavepoint = false
            }
        }
        lastWriteFailed = false
    }

    func preview(_ batch: BatchView, result: inout SinkResult) throws {
        try connectionGuard {
            let connection = try begin(preview: true)
            try load(batch, connection, &result)
            if writeSavepoint {
                // Staged deletes stay; only the preview's rows go.
                try rollBackFailedWrite(connection)
            } else {
                try connection.exec("ROLLBACK", "roll back the preview")
                rolledBack()
            }
        }
    }

    func commit() throws {
        guard inTransaction, let connection else { return }
        try connectionGuard {
            try connection.exec("COMMIT", "commit")
            inTransaction = false
            createdInTransaction = false
            stageDirty = false
            keepOpen = false
            writeSavepoint = false
            lastWriteFailed = false
        }
    }

    /// A broken connection is dropped so the retry reconnects.
    func connectionGuard(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch {
            if let connection, connection.isBroken {
                self.connection = nil
                inTransaction = false
                keepOpen = false
                writeSavepoint = false
            }
            throw error
        }
    }

    /// Encodes the batch while its first COPY is under way: rows go out in
    /// chunks as they are encoded, so the server stores one chunk while the
    /// next is encoded (a worker used to encode the whole batch, then wait
    /// for the server). The encoded rows stay in `rows` for the retries.
    private func load(_ batch: BatchView, _ connection: PGConnection, _ result: inout SinkResult) throws {
        rows.removeAll()
        rowIndex.removeAll(keepingCapacity: true)
        encodedAll = false
        guard batch.count > 0 else { return }
        try loadRows(nil, encoding: batch, connection, &result)
    }

    /// Loads rows in a savepoint; a row-level failure (bad value, constraint)
    /// splits the rows in halves until the failing rows stand alone and are
    /// rejected. With `batch`, the rows are first encoded from it, during the COPY.
    private func loadRows(_ given: ArraySlice<(document: Int, start: Int, end: Int)>?, encoding batch: BatchView? = nil, _ connection: PGConnection, _ result: inout SinkResult) throws {
        if let given, given.isEmpty { return }
        try connection.exec("SAVEPOINT ferry_load", "savepoint")
        let dirtyBefore = stageDirty
        do {
            try copyAndMerge(given, encoding: batch, connection, &result)
            try connection.exec("RELEASE SAVEPOINT ferry_load", "release savepoint")
        } catch let error as PluginError {
            // Only rows all encoded can be split and tried again.
            guard let slice = given ?? (encodedAll ? rowIndex[...] : nil), let first = slice.first else { throw error }
            let state = connection.lastState
            if copyDirectly && state == "23505" && !connection.isBroken {
                copyDirectly = false
                context.log(.info, "postgres: \(settings.tableLabel) has rows with these keys now; merging from here on")
                try connection.exec("ROLLBACK TO SAVEPOINT ferry_load; RELEASE SAVEPOINT ferry_load", "roll back to savepoint")
                stageDirty = dirtyBefore
                try loadRows(slice, connection, &result)
                return
            }
            let rowLevel = state.hasPrefix("22") || state.hasPrefix("23") || state == "21000"
            guard rowLevel, !connection.isBroken else { throw error }
            try connection.exec("ROLLBACK TO SAVEPOINT ferry_load; RELEASE SAVEPOINT ferry_load", "roll back to savepoint")
            stageDirty = dirtyBefore
            if slice.count == 1 {
                result.rejects.reject(first.document, error.message)
                return
            }
            let middle = slice.startIndex + slice.count / 2
            try loadRows(slice[..<middle], connection, &result)
            try loadRows(slice[middle...], connection, &result)
        }
    }

    /// Set once every document of the batch being loaded has been encoded (or rejected).
    private var encodedAll = false

    /// Bytes encoded before they are sent: big enough for few calls, small
    /// enough that the server starts on a batch early.
    static let streamChunk = 256 * 1024

    private func copyAndMerge(_ given: ArraySlice<(document: Int, start: Int, end: Int)>?, encoding batch: BatchView?, _ connection: PGConnection, _ result: inout SinkResult) throws {
        let list = columns.map { SQL.ident($0.name) }.joined(separator: ", ")
        let direct = mode == .insert || mode == .replace || copyDirectly
        if !direct && stageDirty {
            try connection.exec("DELETE FROM ferry_stage", "empty the staging table")
            stageDirty = false
        }
        let what = "load \(settings.tableLabel)"
        try connection.exec("COPY \(direct ? target : "ferry_stage") (\(list)) FROM STDIN\(binary ? " (FORMAT binary)" : "")", what)
        if binary { try CopyBinaryEncoder.header.withUnsafeBytes { try connection.putCopyData($0, what) } }
        let rowCount: Int
        if let batch {
            // A failed send does not stop the encoding: a retry needs every row.
            var sent = 0
            var sendError: PluginError?
            for (index, document) in batch.enumerated() {
                let start = rows.count
                do {
                    try encoder.encode(document, into: rows)
                    rowIndex.append((index, start, rows.count))
                } catch let failure as CopyTextEncoder.Failure {
                    rows.truncate(to: start)
                    result.rejects.reject(index, "postgres: \(settings.tableLabel): \(failure.message)")
                }
                if sendError == nil, rows.count - sent >= Self.streamChunk {
                    do {
                        try connection.putCopyData(UnsafeRawBufferPointer(rebasing: rows.bytes[sent..<rows.count]), what)
                    } catch let error as PluginError {
                        sendError = error
                    }
                    sent = rows.count
                }
            }
            encodedAll = true
            if let sendError { throw sendError }
            try connection.putCopyData(UnsafeRawBufferPointer(rebasing: rows.bytes[sent..<rows.count]), what)
            rowCount = rowIndex.count
        } else if let given, let first = given.first, let last = given.last {
            try connection.putCopyData(UnsafeRawBufferPointer(rebasing: rows.bytes[first.start..<last.end]), what)
            rowCount = given.count
        } else {
            rowCount = 0
        }
        if binary { try CopyBinaryEncoder.trailer.withUnsafeBytes { try connection.putCopyData($0, what) } }
        try connection.endCopy(what)
        if direct {
            result.inserted += UInt64(rowCount)
            return
        }
        let merged = try connection.exec(mergeSQL, "merge into \(settings.tableLabel)")
        stageDirty = true
        let inserted = UInt64(merged.value(0, 0) ?? "0") ?? 0
        let updated = UInt64(merged.value(0, 1) ?? "0") ?? 0
        result.inserted += inserted
        result.updated += updated
        result.unchanged += UInt64(rowCount) - inserted - updated
    }

    func check() throws {
        let connection = try settings.connect()
        try connection.exec("BEGIN", "begin")
        defer { _ = try? connection.exec("ROLLBACK", "roll back") }
        let saved = (columns, createdInTransaction)
        columns = []
        defer { (columns, createdInTransaction) = saved }
        try prepareTable(connection)
    }

    func close() {
        if inTransaction, let connection { _ = try? connection.exec("ROLLBACK", "roll back") }
        connection = nil
        backReader = nil
        diffConnection = nil
        if let replaceKey { ReplaceRegistry.shared.unregister(replaceKey) }
        replaceKey = nil
    }

    deinit {
        if let replaceKey { ReplaceRegistry.shared.unregister(replaceKey) }
    }
}

extension String {
    func trimmingPrefixSpaces() -> Substring {
        var result = self[...]
        while result.first == " " { result.removeFirst() }
        return result
    }
}
