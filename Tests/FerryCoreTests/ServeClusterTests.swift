import FerryCore
import FerryPluginKit
import FerryPostgresStore
import FerryServer
import Foundation
import Testing

/// Several `ferry serve` replicas sharing one PostgreSQL state store, as real
/// processes over real sockets: a schedule tick runs once across them, a
/// trigger on any replica never starts a second concurrent run, and readiness
/// follows the database.
@Suite("ferry serve replicas on one PostgreSQL", .serialized)
struct ServeClusterTests {
    static func pipelines(_ name: String, schedule: String? = nil) -> [String: String] {
        [
            "copy.yaml": """
                name: \(name)_copy
                source: {plugin: file, config: {path: "\(TestSupport.repoRoot.path)/examples/data/products.jsonl"}}
                sink: {plugin: file, config: {path: "{{dir}}/out/copy.jsonl"}}
                mode: full
                \(schedule.map { "schedule: \"\($0)\"" } ?? "")
                """,
            "slow.yaml": """
                name: \(name)_slow
                source: {plugin: generate, config: {count: 3000}}
                sink: {plugin: blackhole, config: {delay_ms: 20}}
                batch_size: 10
                mode: incremental
                """,
        ]
    }

    static func daemon(stateStore: String = "${FERRY_TEST_PG_DSN}") -> String {
        """
        listen: 127.0.0.1:{{port}}
        pipelines:
          - file: copy.yaml
          - file: slow.yaml
        state_dir: {{dir}}/state
        state_store: \(stateStore)
        grace_period_seconds: 10
        """
    }

    func replicas(_ count: Int, name: String, schedule: String? = nil) throws -> [ServeProcess] {
        let started = try (0..<count).map { _ in
            try ServeProcess(daemonYAML: Self.daemon(), files: Self.pipelines(name, schedule: schedule))
        }
        for replica in started { try replica.waitUntilUp() }
        return started
    }

    @Test("three replicas, a schedule every 2 s: each tick runs exactly once across them")
    func scheduleRunsOncePerTick() throws {
        let pg = try PostgresFixture()
        let name = PostgresFixture.name("tick")
        let servers = try replicas(3, name: name, schedule: "@every 2s")
        defer { servers.forEach { $0.stop() } }
        Thread.sleep(forTimeInterval: 11)
        // Claims first, runs after: a tick claimed well before the runs are read
        // has had time to start (the claim and the start are two steps, and a
        // loaded machine can put seconds between them).
        let fires = try pg.sql("SELECT extract(epoch FROM tick)::bigint, replica FROM ferry_schedule_fires WHERE pipeline = '\(name)_copy' ORDER BY tick")
        let settledBefore = Int(Date().timeIntervalSince1970) - 4
        Thread.sleep(forTimeInterval: 1)
        let runs = try servers.map { try $0.getJSON("/runs?pipeline=\(name)_copy&limit=100")["runs"]?.arrayValue ?? [] }
        let ticks = fires.compactMap { $0[0].flatMap { Int($0) } }
        #expect(ticks.count >= 4, "only \(ticks.count) ticks fired in 11 s: \(servers[0].stderr.suffix(1500))")
        // Consecutive ticks, none skipped, none claimed twice.
        #expect(Set(ticks).count == ticks.count)
        if let first = ticks.first, let last = ticks.last { #expect((last - first) / 2 + 1 == ticks.count, "\(ticks)") }
        // Each scheduled run names its tick: no tick ran twice, on any replicas.
        func tick(_ run: JSONValue) -> Int? {
            run["tick"]?.stringValue.flatMap { try? Date($0, strategy: .iso8601) }.map { Int($0.timeIntervalSince1970) }
        }
        let scheduled = runs.enumerated().flatMap { replica, list in
            list.filter { $0["trigger"] == "schedule" }.map { (replica: replica, tick: tick($0), status: $0["status"]?.stringValue) }
        }
        #expect(scheduled.allSatisfy { $0.tick != nil && ($0.status == "completed" || $0.status == "running") }, "\(scheduled)")
        #expect(Set(scheduled.compactMap(\.tick)).count == scheduled.count, "a tick ran twice: \(scheduled)")
        // Every settled tick ran exactly once, on the replica that claimed it.
        // Without the claim, every replica would run every tick: 3× as many runs.
        let settled = fires.filter { ($0[0].flatMap { Int($0) } ?? .max) <= settledBefore }
        #expect(settled.count >= 3, "\(fires)")
        for fire in settled {
            let at = Int(fire[0] ?? "") ?? 0
            let ran = scheduled.filter { $0.tick == at }
            #expect(ran.count == 1, "tick \(at) ran \(ran.count) times")
            if let replica = ran.first?.replica {
                #expect(fire[1]?.contains("-\(servers[replica].process.processIdentifier) ") == true, "tick \(at) claimed by \(fire[1] ?? "?"), run by replica \(replica)")
            }
        }
        // And nothing ran that no replica claimed (claims read again: ticks go on).
        let claimedNow = try pg.sql("SELECT extract(epoch FROM tick)::bigint FROM ferry_schedule_fires WHERE pipeline = '\(name)_copy'")
            .compactMap { $0[0].flatMap { Int($0) } }
        #expect(scheduled.allSatisfy { run in claimedNow.contains(run.tick ?? -1) }, "\(scheduled) vs claims \(claimedNow)")
    }

    @Test("30 concurrent triggers spread over three replicas: one 202 in the cluster; SIGTERM leaves a whole checkpoint and frees the pipeline")
    func triggersAcrossReplicas() throws {
        let pg = try PostgresFixture()
        let name = PostgresFixture.name("trig")
        let servers = try replicas(3, name: name)
        defer { servers.forEach { $0.stop() } }
        let statuses = LockedStatuses()
        DispatchQueue.concurrentPerform(iterations: 30) { index in
            let result = try? servers[index % 3].post("/pipelines/\(name)_slow/runs")
            statuses.add(result?.0 ?? 0, "\(index % 3)|" + (result?.1 ?? ""))
        }
        let all = statuses.all
        #expect(all.filter { $0.0 == 202 }.count == 1, "\(all.map(\.0))")
        #expect(all.filter { $0.0 == 409 }.count == 29, "\(all)")
        let winner = try #require(all.first { $0.0 == 202 }.flatMap { Int($0.1.prefix { $0 != "|" }) })
        #expect(all.contains { $0.0 == 409 && $0.1.contains("another replica") })

        // Stop the replica that runs it: its checkpoint in the table is a committed one.
        Thread.sleep(forTimeInterval: 1)
        kill(servers[winner].process.processIdentifier, SIGTERM)
        servers[winner].process.waitUntilExit()
        #expect(servers[winner].process.terminationStatus == 0, "\(servers[winner].stderr.suffix(1500))")
        let records = try pg.int("SELECT (checkpoint->>'records')::int FROM ferry_state WHERE pipeline = '\(name)_slow'")
        #expect(records > 0 && records < 3000 && records % 10 == 0, "checkpoint records \(records)")

        // The lock went with the process: another replica may run it now, from that checkpoint.
        let other = servers[(winner + 1) % 3]
        let (status, body) = try other.post("/pipelines/\(name)_slow/runs")
        #expect(status == 202, "\(body)")
        let id = try JSONValue.parse(body)["id"]?.stringValue ?? ""
        #expect(try other.post("/runs/\(id)/cancel").0 == 202)
        let run = try other.waitForRun(id)
        #expect(run["status"] == "cancelled")
        // It resumed from the checkpoint the stopped replica left, not from the start.
        let read = Int(run["report"]?["read"]?.doubleValue ?? 3000)
        #expect(read <= 3000 - records, "read \(read) after a checkpoint at \(records)")
    }

    @Test("readiness is 503 naming the state store while PostgreSQL is down, and 200 again after it is back")
    func readinessFollowsDatabase() throws {
        let pg = try PostgresFixture()
        let dsn = try PostgresDSN(parsing: pg.dsn)
        let proxy = try CuttableTCPProxy(forwardingTo: UInt16(dsn.port))
        defer { proxy.stop() }
        let viaProxy = "postgresql://\(dsn.user):\(dsn.password ?? "")@127.0.0.1:\(proxy.port)/\(dsn.database ?? dsn.user)"
        let name = PostgresFixture.name("ready")
        let serve = try ServeProcess(
            daemonYAML: Self.daemon(stateStore: "${READY_TEST_DSN}").replacingOccurrences(of: "grace_period_seconds: 10", with: "readiness_timeout_seconds: 2"),
            files: Self.pipelines(name), environment: ["READY_TEST_DSN": viaProxy])
        defer { serve.stop() }
        try serve.waitUntilUp()
        #expect(try serve.get("/readyz").0 == 200)

        proxy.takeDown()
        let (down, body) = try serve.get("/readyz")
        #expect(down == 503)
        #expect(body.contains("state store") && body.contains("\(name)_copy"), "\(body)")
        #expect(!body.contains(":\(dsn.password ?? "")@"), "the password leaked: \(body)")
        #expect(try serve.post("/pipelines/\(name)_copy/runs").0 == 503)

        proxy.restart()
        let deadline = Date().addingTimeInterval(15)
        var (status, last) = (0, "")
        while Date() < deadline {
            (status, last) = try serve.get("/readyz")
            if status == 200 { break }
            Thread.sleep(forTimeInterval: 0.3)
        }
        #expect(status == 200, "still not ready after the database came back: \(last)")
        let (accepted, runBody) = try serve.post("/pipelines/\(name)_copy/runs")
        #expect(accepted == 202, "\(runBody)")
    }

    @Test("state_store and replica_id in the daemon file: ${VAR} expanded, a path or an unset variable refused with file and line")
    func daemonFileKeys() throws {
        let env = ["STATE_DSN": "postgresql://u:pw@db:5432/state", "POD": "ferry-7d9-abc"]
        let good = try DaemonConfig.parse(
            yaml: "pipelines: [{file: a.yaml}]\nstate_store: ${STATE_DSN}\nreplica_id: ${POD}\n", file: "/etc/ferry/daemon.yaml", environment: env)
        let dsn = try #require(good.stateStore)
        #expect(dsn.host == "db" && dsn.port == 5432 && dsn.user == "u" && dsn.password == "pw" && dsn.database == "state")
        #expect(good.replicaID == "ferry-7d9-abc")
        for (yaml, expected) in [
            ("pipelines: [{file: a.yaml}]\nstate_store: /var/lib/ferry\n", "daemon.yaml:2"),
            ("pipelines: [{file: a.yaml}]\nstate_store: ${NOPE}\n", "NOPE"),
            ("pipelines: [{file: a.yaml}]\nstate_store: \"host=db sslmode=bogus\"\n", "sslmode"),
        ] {
            do {
                _ = try DaemonConfig.parse(yaml: yaml, file: "/etc/ferry/daemon.yaml", environment: env)
                Issue.record("accepted: \(yaml)")
            } catch {
                let text = "\(error)"
                #expect(text.contains("daemon.yaml") && text.contains("state_store") && text.contains(expected), "\(text)")
            }
        }
    }
}

