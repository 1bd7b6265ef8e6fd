import FerryPluginKit

enum PostgresPlugin {
    static var manifest: PluginManifest {
        PluginManifest(
            name: "postgres", version: "1.1.0",
            description: "PostgreSQL source (COPY streaming, keyset incremental, hash shards) and sink (COPY + merge upsert); both digest by key bucket for ferry diff",
            options: [
                .string("dsn", required: true, "libpq connection string or URI; use ${ENV} or ${file:PATH} for the password"),
                .string("schema", default: "public", "Schema of 'table'"),
                .string("table", "Table to read or write"),
                .string("query", "Source: a SELECT to read instead of 'table'"),
                .init("columns", .stringArray, "Columns to read or write (default: all of the table's)"),
                .init("key", .stringArray, "Key column(s): source keyset order and shards; sink conflict target; the key ferry diff and repair match, digest and delete by"),
                .string("cursor", "Source, incremental: the column that grows when a row changes (e.g. updated_at)"),
                .oneOf("mode", ["upsert", "insert", "missing-only", "replace"], "Sink: how rows land (default upsert with a key, else insert; the host's missing-only mode forces missing-only)"),
                .init("create_table", .stringArray, "Sink: column definitions (\"id bigint\", \"name text\") to create the table with when it is missing"),
                .oneOf("copy_format", ["binary", "text"], default: "binary", "Sink: COPY format; binary spares the server parsing numbers and timestamps"),
                .oneOf("unknown_fields", ["reject", "ignore"], default: "reject", "Sink: a record field with no column is rejected or ignored"),
                .oneOf("numeric", ["decimal128", "string"], default: "decimal128", "Source: numeric columns as BSON decimal128 or exact strings"),
                .oneOf("timestamps", ["string", "datetime", "datetime_truncate"], default: "string", "Source: timestamp(tz) as ISO-8601 UTC strings with microseconds, BSON dates (a value with microseconds is an error), or BSON dates truncated to milliseconds"),
                .integer("connect_timeout", default: 10, minimum: 1, "Seconds to wait for a connection"),
                .integer("statement_timeout", default: 0, minimum: 0, "Milliseconds a statement may run (0: no limit)"),
            ],
            capabilities: [.shardedRead, .estimate, .preview, .upsert, .resumable, .readBack, .digest, .delete],
            source: PostgresSource.self, sink: PostgresSink.self, hasCheck: true)
    }
}

@_cdecl("ferry_plugin_entry")
public func ferryPluginEntry() -> UnsafeRawPointer { PluginExport.entry(PostgresPlugin.manifest) }

/// The config keys both directions share.
struct PGSettings {
    let dsn: String
    /// The DSN parsed: what messages may name, and the password to keep out of them.
    let target: ConnectionTarget
    let schema: String
    let table: String?
    let query: String?
    let columns: [String]?
    let key: [String]
    let connectTimeout: Int
    let statementTimeout: Int
    var values = ValueOptions()

    init(_ config: PluginConfig) throws {
        dsn = try config.requiredString("dsn")
        target = try ConnectionTarget(dsn: dsn)
        schema = try config.string("schema") ?? "public"
        table = try config.string("table")
        query = try config.string("query")
        columns = try config.strings("columns")
        key = try config.strings("key") ?? []
        connectTimeout = try config.int("connect_timeout") ?? 10
        statementTimeout = try config.int("statement_timeout") ?? 0
        if let numeric = try config.string("numeric") {
            guard let value = ValueOptions.Numeric(rawValue: numeric) else { throw PluginError.config("postgres: field 'numeric': unknown value '\(numeric)'") }
            values.numeric = value
        }
        if let timestamps = try config.string("timestamps") {
            guard let value = ValueOptions.TimestampForm(rawValue: timestamps) else { throw PluginError.config("postgres: field 'timestamps': unknown value '\(timestamps)'") }
            values.timestamps = value
        }
    }

    var qualifiedTable: String? { table.map { SQL.table(schema: schema, name: $0) } }
    /// For messages: schema.table as the user wrote it.
    var tableLabel: String { "\(schema).\(table ?? "?")" }

    func connect() throws -> PGConnection {
        try PGConnection(dsn: dsn, target: target, connectTimeout: connectTimeout, statementTimeoutMs: statementTimeout)
    }

    /// The table's columns (not dropped, not generated; a domain as its base
    /// type, whose binary form it shares), or nil when the table is missing.
    func tableColumns(_ connection: PGConnection) throws -> [(name: String, oid: UInt32, sqlType: String, notNull: Bool, typmod: Int32)]? {
        guard let qualified = qualifiedTable else { return nil }
        let relation = try connection.exec("SELECT to_regclass($1)::oid", [qualified], "look up table \(tableLabel)")
        guard let oid = relation.value(0, 0) else { return nil }
        let result = try connection.exec(
            """
            SELECT a.attname, COALESCE(NULLIF(t.typbasetype, 0), a.atttypid)::int8, format_type(a.atttypid, a.atttypmod), a.attnotnull,
              CASE WHEN t.typbasetype <> 0 THEN t.typtypmod ELSE a.atttypmod END
            FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
            WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
            ORDER BY a.attnum
            """, [oid], "read the columns of \(tableLabel)")
        return (0..<result.rows).map { row in
            (result.value(row, 0)!, UInt32(result.value(row, 1)!)!, result.value(row, 2)!, result.value(row, 3) == "t", Int32(result.value(row, 4)!) ?? -1)
        }
    }
}
