import FerryCore
import FerryPluginKit
import Foundation
import Testing

/// What the PostgreSQL connector must refuse: SQL smuggled into `create_table`,
/// and a DSN whose password could surface in an error.
@Suite("PostgreSQL connector: create_table injection, DSN secrets", .serialized)
struct PostgresSecurityTests {
    let pg: PostgresFixture

    init() throws { pg = try PostgresFixture() }

    func sinkRun(table: String, dsn: String, extra: String = "") throws -> RunReport {
        let input = "\(pg.work)/\(table).jsonl"
        try #"{"id": 1}"#.appending("\n").write(toFile: input, atomically: true, encoding: .utf8)
        return try pg.run(
            """
            source: {plugin: file, config: {path: \(input)}}
            sink: {plugin: postgres, config: {dsn: \"\(dsn)\", table: \(table)\(extra)}}
            retry: {attempts: 0}
            """)
    }

    @Test("a create_table entry that would run more statements is a config error; the other table survives")
    func createTableInjection() throws {
        let victim = PostgresFixture.name("yy"), smuggled = PostgresFixture.name("zz"), target = PostgresFixture.name("ct_inj")
        try pg.sql("CREATE TABLE \(victim) (a int); INSERT INTO \(victim) VALUES (1)")
        let attacks = [
            "id bigint); DROP TABLE \(victim); CREATE TABLE \(smuggled) (a int",
            "id bigint) ; DROP TABLE \(victim) --",
            "id bigint -- comment",
            "id bigint /* comment */",
            "id text DEFAULT $$x$$",
            "id bigint)",
            "id numeric(12,2",
            "id text DEFAULT 'open",
            #"id text DEFAULT E'\'' ); DROP TABLE x; --'"#,
        ]
        for attack in attacks {
            let escaped = attack.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"")
            let report = try sinkRun(table: target, dsn: pg.dsn, extra: ", create_table: [\"\(escaped)\"]")
            let message = report.failureMessage ?? ""
            #expect(message.contains("config error") && message.contains("create_table'[0]"), "\(attack): \(message)")
            #expect(try pg.int("SELECT count(*) FROM \(victim)") == 1, "\(attack) dropped \(victim)")
            #expect(try pg.scalar("SELECT to_regclass('\(smuggled)')") == nil, "\(attack) created \(smuggled)")
            #expect(try pg.scalar("SELECT to_regclass('\(target)')") == nil, "\(attack) created \(target)")
        }
        // One column definition, with types, constraints and a quoted default, is still accepted.
        let report = try sinkRun(
            table: target, dsn: pg.dsn,
            extra: #", create_table: ["id bigint PRIMARY KEY", "price numeric(12, 2) CHECK (price >= 0) DEFAULT 0", "note text DEFAULT 'a;b (c'"]"#)
        #expect(report.outcome == .completed, "\(report.failureMessage ?? "")")
        #expect(try pg.sql("SELECT id::text, price::text, note FROM \(target)") == [["1", nil, nil]])
        #expect(try pg.sql("SELECT column_name::text, data_type::text, column_default::text FROM information_schema.columns WHERE table_name = '\(target)' ORDER BY ordinal_position")
            == [["id", "bigint", nil], ["price", "numeric", "0"], ["note", "text", "'a;b (c'::text"]])
    }

    @Test("passwords with '/', '%' or '@' never appear in an error; a malformed DSN is a config error", arguments: ["sink", "source"])
    func passwordsStayHidden(direction: String) throws {
        let environment = ProcessInfo.processInfo.environment
        let host = environment["FERRY_TEST_PG_HOST"] ?? "127.0.0.1", port = environment["FERRY_TEST_PG_PORT"] ?? "5432"
        let user = environment["FERRY_TEST_PG_USER"] ?? "ferry", database = environment["FERRY_TEST_PG_DB"] ?? "ferry"
        // (DSN, sentinel, malformed)
        let cases: [(String, String, Bool)] = [
            ("postgresql://\(user):LeakC3/secret@\(host):\(port)/\(database)", "LeakC3/secret", true),
            ("postgresql://\(user):LeakG7%zzsecret@\(host):\(port)/\(database)", "LeakG7%zzsecret", true),
            ("postgresql://\(user):a@b@\(host):\(port)/\(database)", "a@b", true),
            ("postgresql://\(user):LeakK9@secret@\(host):\(port)/\(database)", "LeakK9@secret", true),
            ("host=\(host) port=\(port) dbname=\(database) user=\(user) password=LeakC3/secret", "LeakC3/secret", false),
            ("postgresql://\(user):LeakC3%2Fsecret@\(host):\(port)/\(database)", "LeakC3/secret", false),
            ("postgresql://\(user):LeakG7%25zzsecret@\(host):\(port)/\(database)", "LeakG7%zzsecret", false),
            ("postgresql://\(user):a%40b@\(host):\(port)/\(database)", "a@b", false),
            ("host=\(host) port=\(port) dbname=\(database) user=\(user) password='LeakG7%zz secret' sslmode=bogus", "LeakG7%zz secret", true),
        ]
        let table = PostgresFixture.name("leak")
        for (dsn, sentinel, malformed) in cases {
            let report: RunReport
            if direction == "sink" {
                report = try sinkRun(table: table, dsn: dsn)
            } else {
                report = try pg.run(
                    """
                    source: {plugin: postgres, config: {dsn: \"\(dsn)\", table: \(table), key: [id], connect_timeout: 3}}
                    sink: {plugin: blackhole}
                    mode: full
                    retry: {attempts: 0}
                    """)
            }
            let message = try #require(report.failureMessage, "\(direction) with a wrong password did not fail")
            let encoded = sentinel.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? sentinel
            #expect(!message.contains(sentinel) && !message.contains(encoded), "\(direction): the password shows in: \(message)")
            #expect(!message.contains("secret"), "\(direction): part of the password shows in: \(message)")
            if malformed {
                #expect(message.contains("config error") && message.contains("'dsn'"), "\(direction): \(message)")
            } else {
                #expect(message.contains("authentication failed"), "\(direction): \(message)")
                #expect(message.contains("\(user)@\(host):\(port)/\(database)"), "\(direction): \(message)")
            }
        }
    }
}
