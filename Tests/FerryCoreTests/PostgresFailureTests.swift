import FerryCore
import FerryPluginKit
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing

@Suite("PostgreSQL connector: connection errors and retries", .serialized)
struct PostgresFailureTests {
    let pg: PostgresFixture

    init() throws { pg = try PostgresFixture() }

    /// The test DSN with one part replaced.
    func dsn(host: String? = nil, port: String? = nil, password: String? = nil, extra: String = "") throws -> String {
        guard var components = URLComponents(string: pg.dsn) else { throw TestFailure("FERRY_TEST_PG_DSN is not a URI: \(pg.dsn)") }
        if let host { components.host = host }
        if let port { components.port = Int(port) }
        if let password { components.password = password }
        var text = components.string!
        if !extra.isEmpty { text += (text.contains("?") ? "&" : "?") + extra }
        return text
    }

    func failure(source dsn: String, table: String = "pg_class_probe", timeout: Int = 2) throws -> (message: String, seconds: Double) {
        let started = Date()
        let report = try pg.run(
            """
            source: {plugin: postgres, config: {dsn: "\(dsn)", table: \(table), key: [id], connect_timeout: \(timeout)}}
            sink: {plugin: blackhole}
            mode: full
            retry: {attempts: 0}
            """)
        let message = try #require(report.failureMessage, "the run did not fail")
        return (message, Date().timeIntervalSince(started))
    }

    @Test("wrong password: a short authentication error that never shows the password")
    func wrongPassword() throws {
        let (message, _) = try failure(source: try dsn(password: "Sup3rSecretWrong"))
        #expect(message.contains("authentication failed"))
        #expect(!message.contains("Sup3rSecretWrong"))
    }

    @Test("nothing listening: connection refused, quickly")
    func wrongPort() throws {
        let (message, seconds) = try failure(source: try dsn(port: "1"))
        #expect(message.contains("cannot connect"))
        #expect(message.contains(":1/"))
        #expect(message.contains("Connection refused"))
        #expect(seconds < 10)
    }

    @Test("unknown host: a clear error, no hang")
    func unknownHost() throws {
        let (message, seconds) = try failure(source: try dsn(host: "no-such-host.invalid"))
        #expect(message.contains("cannot connect"))
        #expect(message.contains("no-such-host.invalid"))
        #expect(seconds < 10)
    }

    @Test("a server that accepts but never answers: gives up after connect_timeout")
    func connectTimeout() throws {
        // A listening socket nobody accepts from: the TCP handshake completes, the startup reply never comes.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(listener >= 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        #expect(bound)
        #expect(listen(listener, 8) == 0)
        let port = String(UInt16(bigEndian: address.sin_port))
        let (message, seconds) = try failure(source: try dsn(port: port), timeout: 1)
        #expect(message.contains("cannot connect"))
        #expect(message.contains("timeout"))
        #expect(seconds < 6)
    }

    @Test("statement_timeout stops a slow read with a clear error")
    func statementTimeout() throws {
        let started = Date()
        let report = try pg.run(
            """
            source: {plugin: postgres, config: {dsn: "\(pg.dsn)", query: "SELECT id FROM (SELECT 1 AS id, pg_sleep(5)) s", statement_timeout: 300}}
            sink: {plugin: blackhole}
            mode: full
            retry: {attempts: 0}
            """)
        let message = try #require(report.failureMessage)
        #expect(message.contains("statement timeout"))
        #expect(Date().timeIntervalSince(started) < 4)
    }

    @Test("missing table: named in the error")
    func missingTable() throws {
        let (message, _) = try failure(source: pg.dsn, table: "no_such_table_here")
        #expect(message.contains("table public.no_such_table_here does not exist"))
    }

    @Test("backends killed mid-run (pg_terminate_backend) are retried; the run completes with nothing lost or duplicated")
    func killedBackendsAreRetried() throws {
        let source = PostgresFixture.name("kill_src"), target = PostgresFixture.name("kill_dst")
        let application = "ferry_kill_\(UUID().uuidString.prefix(6).lowercased())"
        try pg.sql(
            """
            CREATE TABLE \(source) (id int PRIMARY KEY, payload text, updated_at timestamptz NOT NULL);
            INSERT INTO \(source) SELECT g, repeat(md5(g::text), 4), '2024-01-01'::timestamptz + (g / 7) * interval '1 ms' FROM generate_series(1, 60000) g;
            CREATE TABLE \(target) (id int PRIMARY KEY, payload text, updated_at timestamptz NOT NULL);
            """)
        let killingDSN = try dsn(extra: "application_name=\(application)")
        let yaml = """
            name: kill_test
            source: {plugin: postgres, config: {dsn: "\(killingDSN)", table: \(source), key: [id], cursor: updated_at}}
            sink: {plugin: postgres, config: {dsn: "\(killingDSN)", table: \(target), key: [id]}}
            mode: incremental
            batch_size: 200
            workers: 2
            retry: {attempts: 8, initial_delay_ms: 20, max_delay_ms: 200}
            """
        let kills = LockedCounter()
        let killer = Thread { [pg] in
            // Kill every connection of the run three times, each once rows have started landing.
            var lastCount = 0
            let deadline = Date().addingTimeInterval(60)
            while kills.value < 3 && Date() < deadline {
                let count = (try? pg.int("SELECT count(*) FROM \(target)")) ?? 0
                if count > lastCount + 5000 {
                    let killed = (try? pg.int("SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '\(application)') k")) ?? 0
                    if killed > 0 { kills.increment() }
                    lastCount = count
                }
                Thread.sleep(forTimeInterval: 0.01)
            }
        }
        killer.start()
        let store = MemoryStateStore()
        let report = try pg.run(yaml, store: store)
        while !killer.isFinished && kills.value < 3 { Thread.sleep(forTimeInterval: 0.05) }
        #expect(report.outcome == .completed, "\(report.failureMessage ?? "")")
        #expect(kills.value >= 1, "the run ended before a backend could be killed")
        #expect(report.statistics.retries >= 1)
        #expect(report.statistics.read == 60000)
        #expect(try pg.int("SELECT count(*) FROM \(target)") == 60000)
        #expect(try pg.difference(source, target) == 0)
        // The rerun finds nothing new: the checkpoint covers every row.
        let rerun = try pg.run(yaml, store: store)
        #expect(rerun.statistics.read == 0)
    }
}

final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
    func increment() { lock.lock(); count += 1; lock.unlock() }
}
