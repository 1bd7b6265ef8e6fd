import CLibPQ
import FerryPluginKit

/// Streams a table or query with `COPY (SELECT …) TO STDOUT`, in binary
/// format when every column has a binary decoder (text format otherwise):
/// the server sends rows as fast as the client takes them and nothing is held
/// in memory beyond one row. With a key the rows come in keyset order, so a
/// lost connection restarts the COPY just after the last row handed out;
/// incremental mode orders by (cursor, key) and resumes after the saved pair.
final class PostgresSource: SourcePlugin {
    let settings: PGSettings
    let context: PluginContext
    let cursorColumn: String?
    let keyColumns: [String]
    let relationSQL: String
    let relationLabel: String
    var connection: PGConnection?
    var selectList: [String] = []
    var columns: [PGColumn] = []
    /// Decodes the COPY; it keeps the last row of a batch to take the position from.
    var reader: CopyReader!
    var cursorIndex: Int?
    var keyIndices: [Int] = []
    /// Position after the last batch handed out (nil: from the start).
    var position: SourceState?
    var copying: Bool { reader.copying }
    var finished = false
    /// The key buckets `selectBuckets` keeps reads to (nil: every row).
    var selection: BucketSet?
    /// Digests run apart from the read's connection, which may be mid-COPY.
    var diffConnection: PGConnection?
    var handedOut = false

    init(config: PluginConfig, context: PluginContext) throws {
        settings = try PGSettings(config)
        self.context = context
        keyColumns = settings.key
        cursorColumn = try config.string("cursor")
        if let query = settings.query {
            guard settings.table == nil else { throw PluginError.config("postgres: set either 'table' or 'query', not both") }
            relationSQL = "(\(query)) AS ferry_query"
            relationLabel = "query"
        } else {
            guard let table = settings.qualifiedTable else { throw PluginError.config("postgres: source needs 'table' or 'query'") }
            relationSQL = table
            relationLabel = settings.tableLabel
        }
        if context.mode == .incremental {
            guard cursorColumn != nil else { throw PluginError.config("postgres: incremental mode needs 'cursor' (the column that grows when a row changes)") }
            guard !keyColumns.isEmpty else { throw PluginError.config("postgres: incremental mode needs 'key' to order rows that share a cursor value") }
        }
        if context.shardCount > 1 && keyColumns.isEmpty {
            throw PluginError.config("postgres: reading in \(context.shardCount) shards needs 'key' (rows are split by a hash of it)")
        }
        let connection = try settings.connect()
        self.connection = connection
        try describe(connection)
        if context.mode == .incremental, let saved = context.resumeState {
            position = try SourceState.decode(saved, expecting: emptyState)
        }
    }

    /// What a state for this configuration holds before any row is read.
    var emptyState: SourceState {
        SourceState(relation: stateRelation, cursorColumn: orderedByCursor ? cursorColumn : nil, keyColumns: keyColumns, cursor: nil, key: [])
    }

    var orderedByCursor: Bool { context.mode == .incremental }

    /// What a saved state belongs to: the table, or the query's text (as a
    /// stable FNV-1a hash: another query's position must not be reused).
    var stateRelation: String {
        guard let query = settings.query else { return relationLabel }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in query.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return "query " + String(hash, radix: 16)
    }

    /// Finds the columns and their types (a query planned with LIMIT 0).
    private func describe(_ connection: PGConnection) throws {
        if settings.query == nil {
            let found = try connection.exec("SELECT to_regclass($1)", [relationSQL], "look up \(relationLabel)")
            guard found.value(0, 0) != nil else { throw PluginError.config("postgres: table \(relationLabel) does not exist (on \(connection.label))") }
        }
        var wanted = settings.columns ?? []
        if !wanted.isEmpty {
            for column in [cursorColumn].compactMap({ $0 }) + keyColumns where !wanted.contains(column) { wanted.append(column) }
        }
        selectList = wanted
        let list = wanted.isEmpty ? "*" : wanted.map(SQL.ident).joined(separator: ", ")
        let columns = try CopyReader.describe(connection, select: "SELECT \(list) FROM \(relationSQL)", label: relationLabel)
        if selectList.isEmpty { selectList = columns.map(\.name) }
        func index(of name: String) throws -> Int {
            guard let index = columns.firstIndex(where: { $0.name == name }) else {
                throw PluginError.config("postgres: column '\(name)' is not in \(relationLabel) (columns: \(columns.map(\.name).joined(separator: ", ")))")
            }
            return index
        }
        keyIndices = try keyColumns.map(index(of:))
        cursorIndex = try cursorColumn.map(index(of:))
        self.columns = columns
        reader = CopyReader(columns: columns, options: settings.values, label: relationLabel, keepsLastRow: !keyIndices.isEmpty)
    }

    /// The rows of this shard (none when there is one shard).
    func shardConditions() -> [String] {
        guard context.shardCount > 1 else { return [] }
        let hashed = keyColumns.count == 1 ? "\(SQL.ident(keyColumns[0]))::text" : "ROW(\(keyColumns.map(SQL.ident).joined(separator: ", ")))::text"
        return ["(hashtext(\(hashed)) & 2147483647) % \(context.shardCount) = \(context.shardIndex)"]
    }

    /// The SELECT for the rows after `position`, in this shard, in keyset order.
    func selectSQL() -> String {
        var conditions = shardConditions()
        if let selected = DiffDigest.selectionCondition(selection) { conditions.append(selected) }
        var order = keyColumns
        if orderedByCursor, let cursorColumn { order.insert(cursorColumn, at: 0) }
        if position != nil && !order.isEmpty {
            // The saved values travel as session settings: COPY takes no parameters,
            // and values are never spliced into SQL text.
            var bounds: [String] = []
            var index = 0
            for name in order {
                let column = columns.first { $0.name == name }!
                bounds.append("current_setting('ferry.p\(index)')::\(column.sqlType)")
                index += 1
            }
            conditions.append("(\(order.map(SQL.ident).joined(separator: ", "))) > (\(bounds.joined(separator: ", ")))")
        }
        var sql = "SELECT \(selectList.map(SQL.ident).joined(separator: ", ")) FROM \(relationSQL)"
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        if !order.isEmpty { sql += " ORDER BY " + order.map(SQL.ident).joined(separator: ", ") }
        return sql
    }

    private func positionValues() -> [String] {
        guard let position else { return [] }
        return (orderedByCursor ? [position.cursor ?? ""] : []) + position.key
    }

    private func startCopy() throws {
        let connection: PGConnection
        if let existing = self.connection, !existing.isBroken {
            connection = existing
        } else {
            self.connection = nil
            connection = try settings.connect()
            self.connection = connection
            context.log(.info, "postgres: reconnected to \(connection.label); resuming \(relationLabel) after the last row handed out")
        }
        let values = positionValues()
        if !values.isEmpty {
            let calls = values.indices.map { "set_config('ferry.p\($0)', $\($0 + 1), false)" }.joined(separator: ", ")
            try connection.exec("SELECT \(calls)", values.map { Optional($0) }, "set the resume position")
        }
        try DiffDigest.prepareSelection(connection, selection, relationLabel)
        try reader.start(selectSQL(), on: connection)
    }

    func read(into batch: BatchBuilder) throws -> Bool {
        if finished || context.isCancelled { return false }
        do {
            if !copying { try startCopy() }
            finished = try reader.read(connection!, into: batch, limit: context.batchSize)
        } catch {
            // Whatever was appended is dropped by the SDK; the next call reconnects and
            // starts again after the last batch handed out. A COPY cut short leaves the
            // connection mid-protocol, so it is never reused.
            reader.abandon()
            connection = nil
            if let error = error as? PluginError, error.isTransient, keyIndices.isEmpty, handedOut {
                throw PluginError.data("\(error.message) (without 'key' the read cannot resume mid-table)")
            }
            throw error
        }
        if batch.count > 0 { try advance() }
        batch.state = (position ?? emptyState).encoded
        handedOut = handedOut || batch.count > 0
        return !finished
    }

    /// Moves the position to the last row of this batch.
    private func advance() throws {
        guard !keyIndices.isEmpty else { return }
        let binary = reader.binary, decoder = reader.decoder
        try reader.withLastRow { row in
            var state = emptyState
            let cursorText: String?
            do {
                if let binary {
                    try binary.split(row)
                    state.key = try keyIndices.map { try binary.text(row, $0) ?? "" }
                    cursorText = try cursorIndex.flatMap { try binary.text(row, $0) }
                } else {
                    try decoder.split(row)
                    state.key = keyIndices.map { decoder.text(row, $0) ?? "" }
                    cursorText = cursorIndex.flatMap { decoder.text(row, $0) }
                }
            } catch let failure as CopyBinaryDecoder.Failure {
                throw PluginError.data("postgres: \(relationLabel): \(failure.message)")
            }
            if orderedByCursor, cursorIndex != nil {
                guard let cursor = cursorText else {
                    throw PluginError.data("postgres: \(relationLabel): cursor column '\(cursorColumn!)' is NULL; incremental reads need a non-null cursor")
                }
                state.cursor = cursor
            }
            position = state
        }
    }

    func estimate() throws -> UInt64? {
        guard !copying, let connection else { return nil }
        if settings.query == nil && position == nil {
            let result = try connection.exec("SELECT reltuples::int8 FROM pg_class WHERE oid = to_regclass($1)", [relationSQL], "estimate \(relationLabel)")
            if let text = result.value(0, 0), let tuples = Int64(text), tuples >= 0 {
                return UInt64(tuples) / UInt64(context.shardCount)
            }
        }
        // A query, a resumed read or a never-analysed table: count what the read will return.
        let values = positionValues()
        if !values.isEmpty {
            let calls = values.indices.map { "set_config('ferry.p\($0)', $\($0 + 1), false)" }.joined(separator: ", ")
            try connection.exec("SELECT \(calls)", values.map { Optional($0) }, "set the resume position")
        }
        let result = try connection.exec("SELECT count(*) FROM (\(selectSQL())) AS ferry_count", "count \(relationLabel)")
        return result.value(0, 0).flatMap(UInt64.init)
    }

    func check() throws {
        let connection = try settings.connect()
        try describe(connection)
    }

    func close() {
        connection = nil
        diffConnection = nil
    }
}
