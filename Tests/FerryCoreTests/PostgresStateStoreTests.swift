import FerryCore
import FerryPostgresStore
import Foundation
import Testing

/// The PostgreSQL state store against the real test server: what it saves
/// reads back, what it must refuse it refuses, and a lost connection costs one
/// reconnect, not the run.
@Suite("PostgreSQL state store")
struct PostgresStateStoreTests {
    @Test("DSNs: URI and key=value forms, quoting, the password never printed, unknown parameters refused")
    func dsn() throws {
        let uri = try PostgresDSN(parsing: "postgresql://ferry:p%40ss@db.example:6543/shop?sslmode=disable")
        #expect(uri.user == "ferry" && uri.password == "p@ss" && uri.host == "db.example" && uri.port == 6543 && uri.database == "shop")
        #expect(!uri.description.contains("p@ss") && uri.description.contains("***"))
        let keywords = try PostgresDSN(parsing: "host=/var/run/postgresql port=5433 user=etl password='it\\'s q' dbname=cart")
        #expect(keywords.host == "/var/run/postgresql" && keywords.port == 5433 && keywords.database == "cart")
        #expect(keywords.password == "it's q" && keywords.user == "etl")
        #expect(throws: StateStoreConfigError.self) { try PostgresDSN(parsing: "host=x sslcert=/tmp/c") }
        #expect(throws: StateStoreConfigError.self) { try PostgresDSN(parsing: "host=x sslmode=bogus") }
        #expect(throws: StateStoreConfigError.self) { try PostgresDSN(parsing: "host=x sslmode=verify-full sslrootcert=/nonexistent/ca.crt") }
        #expect(try PostgresDSN(parsing: "host=x").sslmode == "prefer")
        #expect(throws: StateStoreConfigError.self) { try PostgresDSN(parsing: "host=x port=99999") }
        #expect(throws: StateStoreConfigError.self) { try StateStores.make(setting: "/var/lib/ferry", directory: "/tmp") }
        #expect(try StateStores.make(setting: nil, directory: "/tmp/x") is FileStateStore)
    }

    @Test("save, load, show, list shards, reset one shard and all; one row per pipeline and shard")
    func roundTrip() throws {
        let pg = try PostgresFixture()
        let store = PostgresStateStore(dsn: try PostgresDSN(parsing: pg.dsn))
        let pipeline = PostgresFixture.name("state")
        #expect(try store.load(pipeline: pipeline, shard: .whole, sourcePlugin: "postgres") == nil)
        var checkpoint = Checkpoint(pipeline: pipeline, sourcePlugin: "postgres", state: Data([0, 1, 2, 255]), records: 100)
        try store.save(checkpoint)
        checkpoint.records = 200
        checkpoint.state = Data("later".utf8)
        try store.save(checkpoint)
        let loaded = try #require(try store.load(pipeline: pipeline, shard: .whole, sourcePlugin: "postgres"))
        #expect(loaded.records == 200 && loaded.state == Data("later".utf8))
        #expect(try pg.int("SELECT count(*) FROM ferry_state WHERE pipeline = '\(pipeline)'") == 1)
        #expect(try store.rawCheckpoint(pipeline: pipeline, shard: .whole)?.contains("\"records\": 200") == true)

        for index in 0..<3 {
            try store.save(Checkpoint(pipeline: pipeline, sourcePlugin: "postgres", shardIndex: index, shardCount: 3, state: Data([UInt8(index)]), records: index))
        }
        #expect(try store.savedShards(pipeline: pipeline).map(\.description) == ["0/1", "0/3", "1/3", "2/3"])
        try store.reset(pipeline: pipeline, shard: ShardSpec(index: 1, count: 3))
        #expect(try store.savedShards(pipeline: pipeline).map(\.description) == ["0/1", "0/3", "2/3"])
        #expect(try store.load(pipeline: pipeline, shard: ShardSpec(index: 2, count: 3), sourcePlugin: "postgres")?.state == Data([2]))
        try store.reset(pipeline: pipeline, shard: nil)
        #expect(try store.savedShards(pipeline: pipeline).isEmpty)
        try store.checkWritable()
    }

    @Test("a checkpoint of another source plugin, or of an older format, is refused with where it is and what to do")
    func refusals() throws {
        let pg = try PostgresFixture()
        let store = PostgresStateStore(dsn: try PostgresDSN(parsing: pg.dsn))
        let pipeline = PostgresFixture.name("refuse")
        try store.save(Checkpoint(pipeline: pipeline, sourcePlugin: "mongo", state: Data(), records: 1))
        let foreign = #expect(throws: StateError.self) { try store.load(pipeline: pipeline, shard: .whole, sourcePlugin: "postgres") }
        #expect(foreign?.message.contains("source plugin 'mongo'") == true)
        #expect(foreign?.message.contains("ferry_state") == true)
        try pg.sql("UPDATE ferry_state SET checkpoint = jsonb_set(checkpoint, '{format}', '0') WHERE pipeline = '\(pipeline)'")
        let old = #expect(throws: StateError.self) { try store.load(pipeline: pipeline, shard: .whole, sourcePlugin: "mongo") }
        #expect(old?.message.contains("format 0") == true && old?.message.contains("ferry state reset") == true)
        try pg.sql("UPDATE ferry_state SET checkpoint = '{\"hello\": 1}' WHERE pipeline = '\(pipeline)'")
        let garbage = #expect(throws: StateError.self) { try store.load(pipeline: pipeline, shard: .whole, sourcePlugin: "mongo") }
        #expect(garbage?.message.contains("not a checkpoint") == true)
        try store.reset(pipeline: pipeline, shard: nil)
    }

    @Test("the store's connection killed by the server: the next save reconnects and lands")
    func reconnects() throws {
        let pg = try PostgresFixture()
        var dsn = try PostgresDSN(parsing: pg.dsn)
        dsn.applicationName = PostgresFixture.name("ferry_reconnect")
        let store = PostgresStateStore(dsn: dsn)
        let pipeline = PostgresFixture.name("reconnect")
        try store.save(Checkpoint(pipeline: pipeline, sourcePlugin: "file", state: Data([1]), records: 1))
        let killed = try pg.int(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '\(dsn.applicationName)'")
        #expect(killed >= 1)
        try store.save(Checkpoint(pipeline: pipeline, sourcePlugin: "file", state: Data([2]), records: 2))
        #expect(try store.load(pipeline: pipeline, shard: .whole, sourcePlugin: "file")?.records == 2)
        try store.reset(pipeline: pipeline, shard: nil)
    }

    /// The race CI once lost: the server's FATAL arrives as the answer to the
    /// next query, before NIO has seen the socket close. Terminating the
    /// session's own backend makes that order certain.
    @Test("a FATAL 57P01 answering a query counts as a lost connection, and the next query gets a new one")
    func fatalAsAnswer() throws {
        let pg = try PostgresFixture()
        let session = PostgresSession(dsn: try PostgresDSN(parsing: pg.dsn))
        defer { session.close() }
        let before = try session.query("SELECT pg_backend_pid()", "pid")[0].decode(Int32.self)
        let error = #expect(throws: PostgresStoreError.self) {
            try session.query("SELECT pg_terminate_backend(pg_backend_pid())", "terminate own backend")
        }
        #expect(error?.connectionLost == true)
        #expect(error?.message.contains("57P01") == true)
        let after = try session.query("SELECT pg_backend_pid()", "pid")[0].decode(Int32.self)
        #expect(after != before)
    }

    @Test("a user who may not write the table: checkWritable says so by name")
    func readOnlyUser() throws {
        let pg = try PostgresFixture()
        let writer = PostgresStateStore(dsn: try PostgresDSN(parsing: pg.dsn))
        try writer.checkWritable()  // creates the table
        let role = PostgresFixture.name("ro")
        try pg.sql("CREATE ROLE \(role) LOGIN PASSWORD 'ro-pass'; GRANT SELECT ON ferry_state TO \(role)")
        defer { _ = try? pg.sql("DROP OWNED BY \(role); DROP ROLE \(role)") }
        var dsn = try PostgresDSN(parsing: pg.dsn)
        dsn.user = role
        dsn.password = "ro-pass"
        let reader = PostgresStateStore(dsn: dsn)
        let error = #expect(throws: StateError.self) { try reader.checkWritable() }
        #expect(error?.message.contains("may not write table ferry_state") == true)
        #expect(error?.message.contains("ro-pass") == false)
    }

    @Test("an incremental PostgreSQL pipeline keeps its checkpoint in the table: the rerun reads only new rows")
    func incrementalPipeline() throws {
        let pg = try PostgresFixture()
        let source = PostgresFixture.name("st_src"), target = PostgresFixture.name("st_dst")
        try pg.sql("""
            CREATE TABLE \(source) (id bigint PRIMARY KEY, v text, updated_at timestamptz NOT NULL);
            INSERT INTO \(source) SELECT g, 'v' || g, '2026-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, 500) g;
            CREATE TABLE \(target) (id bigint PRIMARY KEY, v text, updated_at timestamptz NOT NULL);
            """)
        let store = PostgresStateStore(dsn: try PostgresDSN(parsing: pg.dsn))
        let yaml = pg.copyPipeline(from: source, to: target, mode: "incremental", sourceExtra: ", cursor: updated_at")
        let first = try pg.run(yaml, store: store)
        #expect(first.statistics.written == 500, "\(first)")
        try pg.sql("INSERT INTO \(source) SELECT g, 'v' || g, '2026-02-01'::timestamptz + g * interval '1 second' FROM generate_series(501, 530) g")
        let second = try pg.run(yaml, store: store)
        #expect(second.statistics.read == 30, "\(second)")
        #expect(try pg.difference(source, target) == 0)
        let name = "\(source)_to_\(target)"
        #expect(try pg.int("SELECT (checkpoint->>'records')::int FROM ferry_state WHERE pipeline = '\(name)'") == 530)
        try store.reset(pipeline: name, shard: nil)
    }

    @Test("the CLI: run --state-store keeps the checkpoint in the table; state show and reset use it; a non-DSN is refused")
    func commandLine() throws {
        let pg = try PostgresFixture()
        let directory = try TestSupport.temporaryDirectory("state-cli")
        let name = PostgresFixture.name("cli")
        try """
            name: \(name)
            source: {plugin: file, config: {path: "\(TestSupport.repoRoot.path)/examples/data/products.jsonl"}}
            sink: {plugin: file, config: {path: "\(directory)/out.jsonl"}}
            mode: incremental
            """.write(toFile: "\(directory)/p.yaml", atomically: true, encoding: .utf8)
        let ferry = TestSupport.ferryExecutable
        let common = ["--plugins", pg.plugins]
        let run = try TestSupport.run(ferry, ["run", "\(directory)/p.yaml", "--no-progress", "--state-store", pg.dsn] + common)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/.ferry/\(name).state.json"), "the checkpoint went to a file")
        let records = try pg.int("SELECT (checkpoint->>'records')::int FROM ferry_state WHERE pipeline = '\(name)'")
        #expect(records > 0)
        // The environment variable does the same as the option.
        let show = try TestSupport.run(
            ferry, ["state", "show", "\(directory)/p.yaml"], environment: ProcessInfo.processInfo.environment.merging(["FERRY_STATE_STORE": pg.dsn]) { $1 })
        #expect(show.status == 0, "\(show.stderr)")
        #expect(show.stdout.contains("\"records\": \(records)"), "\(show.stdout)")
        let reset = try TestSupport.run(ferry, ["state", "reset", "\(directory)/p.yaml", "--state-store", pg.dsn])
        #expect(reset.status == 0, "\(reset.stderr)")
        #expect(reset.stdout.contains("(all shards) in postgresql://") && reset.stdout.contains("table ferry_state"), "\(reset.stdout)")
        #expect(!reset.stdout.contains(":\(try PostgresDSN(parsing: pg.dsn).password ?? "")@"), "the password is printed: \(reset.stdout)")
        #expect(try pg.int("SELECT count(*) FROM ferry_state WHERE pipeline = '\(name)'") == 0)
        let bad = try TestSupport.run(ferry, ["run", "\(directory)/p.yaml", "--state-store", "/var/lib/ferry"] + common)
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("not a PostgreSQL DSN"), "\(bad.stderr)")
    }

    /// Whether the session's own backend speaks TLS, asked through that session.
    func sessionUsesTLS(_ dsn: PostgresDSN) throws -> Bool {
        let session = PostgresSession(dsn: dsn)
        defer { session.close() }
        let rows = try session.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", "ask about TLS")
        return try rows[0].decode(Bool.self)
    }

    @Test("TLS as libpq's sslmode: verify-full against the test CA, prefer by default, disable; a foreign CA is refused")
    func tls() throws {
        let pg = try PostgresFixture()
        guard let ca = ProcessInfo.processInfo.environment["FERRY_TEST_PG_CA"] else {
            throw TestFailure("FERRY_TEST_PG_CA is not set: scripts/test-servers.sh exports it")
        }
        let base = try PostgresDSN(parsing: pg.dsn)
        var full = base
        full.sslmode = "verify-full"
        full.sslRootCert = ca
        #expect(try sessionUsesTLS(full))
        #expect(try sessionUsesTLS(base), "the default (prefer) should use the TLS the server offers")
        var plain = base
        plain.sslmode = "disable"
        #expect(try !sessionUsesTLS(plain))
        // A checkpoint round trip over verify-full.
        let store = PostgresStateStore(dsn: full)
        let pipeline = PostgresFixture.name("tls")
        try store.save(Checkpoint(pipeline: pipeline, sourcePlugin: "file", state: Data([7]), records: 7))
        #expect(try store.load(pipeline: pipeline, shard: .whole, sourcePlugin: "file")?.records == 7)
        try store.reset(pipeline: pipeline, shard: nil)
        // The system's roots do not include the throwaway CA: the handshake must fail, clearly.
        var foreign = base
        foreign.sslmode = "verify-full"
        foreign.sslRootCert = nil
        let error = #expect(throws: PostgresStoreError.self) { try sessionUsesTLS(foreign) }
        #expect(error?.message.contains("cannot connect") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains(":\(base.password ?? "")@") == false, "the password is in: \(error?.message ?? "")")
        #expect(error?.message.lowercased().contains("certificate") == true || error?.message.contains("handshake") == true, "\(error?.message ?? "")")
    }
}

