import FerryCore
import Foundation
import PostgresNIO

/// Checkpoints in a PostgreSQL table, so several replicas (or the shards of an
/// Indexed Job on different nodes) share them: one row per pipeline and shard,
/// each save one upsert statement, which is its own transaction, so a crash
/// leaves the previous checkpoint or the new one.
///
/// ```sql
/// CREATE TABLE ferry_state (
///     pipeline text, shard_index int, shard_count int,
///     checkpoint jsonb NOT NULL, updated_at timestamptz NOT NULL,
///     PRIMARY KEY (pipeline, shard_index, shard_count))
/// ```
/// The table is created on first use. The JSON is the file store's, so a
/// checkpoint moves between the stores by copy and paste.
public final class PostgresStateStore: StateStore, @unchecked Sendable {
    public static let table = "ferry_state"
    let session: PostgresSession

    public init(dsn: PostgresDSN) {
        session = PostgresSession(dsn: dsn)
    }

    public var summary: String { "\(session.dsn) table \(Self.table)" }

    public func location(pipeline: String, shard: ShardSpec) -> String {
        "\(session.dsn) table \(Self.table) (pipeline '\(pipeline)', shard \(shard))"
    }

    /// Creates the table on first use (see `PostgresSession.ensureTable`).
    func prepare() throws {
        try session.ensureTable(
            Self.table,
            columns: """
                pipeline text NOT NULL, shard_index integer NOT NULL, shard_count integer NOT NULL,
                checkpoint jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (pipeline, shard_index, shard_count)
                """)
    }

    public func load(pipeline: String, shard: ShardSpec, sourcePlugin: String) throws -> Checkpoint? {
        guard let text = try rawCheckpoint(pipeline: pipeline, shard: shard) else { return nil }
        let where_ = location(pipeline: pipeline, shard: shard)
        let checkpoint = try CheckpointCoding.decode(Data(text.utf8), at: where_)
        try verify(checkpoint, pipeline: pipeline, shard: shard, sourcePlugin: sourcePlugin, at: where_)
        return checkpoint
    }

    public func rawCheckpoint(pipeline: String, shard: ShardSpec) throws -> String? {
        try prepare()
        let rows = try session.query(
            "SELECT jsonb_pretty(checkpoint) FROM ferry_state WHERE pipeline = \(pipeline) AND shard_index = \(shard.index) AND shard_count = \(shard.count)",
            "load checkpoint of '\(pipeline)' shard \(shard)")
        return try rows.first?.decode(String.self)
    }

    public func save(_ checkpoint: Checkpoint) throws {
        try prepare()
        let json = String(decoding: try CheckpointCoding.encode(checkpoint), as: UTF8.self)
        try session.query(
            """
            INSERT INTO ferry_state (pipeline, shard_index, shard_count, checkpoint, updated_at)
            VALUES (\(checkpoint.pipeline), \(checkpoint.shardIndex), \(checkpoint.shardCount), \(json)::jsonb, now())
            ON CONFLICT (pipeline, shard_index, shard_count) DO UPDATE SET checkpoint = EXCLUDED.checkpoint, updated_at = now()
            """, "save checkpoint of '\(checkpoint.pipeline)' shard \(checkpoint.shardIndex)/\(checkpoint.shardCount)")
    }

    public func reset(pipeline: String, shard: ShardSpec?) throws {
        try prepare()
        if let shard {
            try session.query(
                "DELETE FROM ferry_state WHERE pipeline = \(pipeline) AND shard_index = \(shard.index) AND shard_count = \(shard.count)",
                "reset checkpoint of '\(pipeline)' shard \(shard)")
        } else {
            try session.query("DELETE FROM ferry_state WHERE pipeline = \(pipeline)", "reset checkpoints of '\(pipeline)'")
        }
    }

    public func savedShards(pipeline: String) throws -> [ShardSpec] {
        try prepare()
        let rows = try session.query(
            "SELECT shard_index, shard_count FROM ferry_state WHERE pipeline = \(pipeline) ORDER BY shard_count, shard_index",
            "list checkpoints of '\(pipeline)'")
        return try rows.map { row in
            let (index, count) = try row.decode((Int, Int).self)
            return ShardSpec(index: index, count: count)
        }
    }

    /// Reachable, the table there, and a write would be allowed (a read-only
    /// standby answers SELECTs but fails this).
    public func checkWritable() throws {
        try prepare()
        let rows = try session.query(
            "SELECT pg_is_in_recovery(), has_table_privilege(current_user, 'ferry_state', 'INSERT, UPDATE, DELETE')",
            "check state store")
        let (standby, allowed) = try rows[0].decode((Bool, Bool).self)
        if standby { throw StateError("\(session.dsn): the state store is a read-only standby") }
        if !allowed { throw StateError("\(session.dsn): user '\(session.dsn.user)' may not write table \(Self.table)") }
    }
}

/// Picks the store: a PostgreSQL DSN (`postgresql://…` or `host=… dbname=…`)
/// selects the shared table, anything else is a checkpoint directory.
public enum StateStores {
    /// The setting's environment variable, for `ferry run` / `ferry state`.
    public static let environmentVariable = "FERRY_STATE_STORE"

    private static let shared = Locked([String: PostgresStateStore]())

    /// `setting` nil or empty: the file store in `directory`. One PostgreSQL
    /// store (one connection) per DSN per process.
    public static func make(setting: String?, directory: String) throws -> any StateStore {
        guard let setting, !setting.isEmpty else { return FileStateStore(directory: directory) }
        guard PostgresDSN.looksLikeDSN(setting) else {
            throw StateStoreConfigError("state store '\(setting)' is not a PostgreSQL DSN (postgresql://… or host=… dbname=…); for checkpoint files use --state-dir / state_dir")
        }
        let dsn = try PostgresDSN(parsing: setting)
        return shared.withLock { stores in
            if let store = stores[setting] { return store }
            let store = PostgresStateStore(dsn: dsn)
            stores[setting] = store
            return store
        }
    }
}

extension RunLauncher {
    /// Checkpoints in PostgreSQL when `stateStore` is a DSN, else in files
    /// (see `StateStores.make`): the one place a run's store is chosen.
    public init(stateDirectory: String?, stateStore setting: String?) {
        self.init(stateDirectory: stateDirectory) { directory in try StateStores.make(setting: setting, directory: directory) }
    }
}
