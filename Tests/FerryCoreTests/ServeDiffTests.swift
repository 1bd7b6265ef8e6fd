import FerryCore
import FerryPluginKit
import Foundation
import Testing

/// POST /pipelines/{name}/diff against a real `ferry serve` over a socket: a
/// PostgreSQL→PostgreSQL pipeline (the test server, tables of its own) and a
/// file→file one, each with a target that lacks two records and holds one
/// extra, the report in GET /runs/{id},
/// the drift gauges in /metrics, the token, the pipeline held against a run,
/// and a plugin crash during a diff.
@Suite("ferry serve diff", .serialized)
struct ServeDiffTests {
    let pg: PostgresFixture
    /// Fresh tables: the test database is shared.
    let source = PostgresFixture.name("serve_diff_src")
    let target = PostgresFixture.name("serve_diff_dst")
    let busy = PostgresFixture.name("serve_diff_busy")

    init() throws {
        pg = try PostgresFixture()
    }

    /// Five rows the source has; the target starts with 1 to 3 and 99.
    func createTables() throws {
        try pg.sql("""
            CREATE TABLE \(source) (id integer PRIMARY KEY, name text);
            CREATE TABLE \(target) (id integer PRIMARY KEY, name text);
            CREATE TABLE \(busy) (i bigint PRIMARY KEY);
            INSERT INTO \(source) SELECT n, 'item ' || n FROM generate_series(1, 5) n;
            INSERT INTO \(target) SELECT n, 'item ' || n FROM generate_series(1, 3) n;
            INSERT INTO \(target) VALUES (99, 'stray');
            """)
    }

    func dropTables() {
        _ = try? pg.sql("DROP TABLE IF EXISTS \(source), \(target), \(busy)")
    }

    /// The file pipeline's records: the source has 1 to 5, the target 1 to 3 and 99.
    static let sourceLines = (1...5).map { #"{"id": \#($0), "name": "item \#($0)"}"# }
    static let driftedLines = Array(sourceLines.prefix(3)) + [#"{"id": 99, "name": "stray"}"#]

    var files: [String: String] {
        [
            "filedrift.yaml": """
                name: filedrift
                source: {plugin: file, config: {path: "{{dir}}/data/source.jsonl"}}
                sink: {plugin: file, config: {path: "{{dir}}/data/target.jsonl", key: id}}
                batch_size: 2
                """,
            "data/source.jsonl": Self.sourceLines.joined(separator: "\n") + "\n",
            "data/target.jsonl": Self.driftedLines.joined(separator: "\n") + "\n",
            "drift.yaml": """
                name: drift
                source: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(source), key: [id]}}
                sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(target), key: [id]}}
                batch_size: 2
                """,
            // About six seconds of run: long enough to ask for a diff while it goes.
            "busy.yaml": """
                name: busy
                source: {plugin: faulty, config: {fault: none, records: 3000, delay_ms: 20}}
                sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(busy), key: [i]}}
                batch_size: 10
                """,
            "crash.yaml": """
                name: crash
                source: {plugin: faulty, config: {fault: segv_read, records: 100}}
                sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(busy), key: [i]}}
                batch_size: 10
                """,
        ]
    }

    static let daemon = """
        listen: 127.0.0.1:{{port}}
        pipelines:
          - file: drift.yaml
          - file: filedrift.yaml
          - file: busy.yaml
          - file: crash.yaml
        state_dir: {{dir}}/state
        grace_period_seconds: 5
        """

    func start(isolation: String = "process") throws -> ServeProcess {
        try createTables()
        let serve = try ServeProcess(
            daemonYAML: Self.daemon, files: files, extraPlugins: try ServeIsolationTests.faultyPlugins(),
            arguments: ["--run-isolation", isolation])
        try serve.waitUntilUp()
        return serve
    }

    func getWithToken(_ serve: ServeProcess, _ path: String) throws -> JSONValue {
        let (status, text) = try serve.request("GET", path, headers: ["Authorization": "Bearer \(serve.token)"])
        guard status == 200 else { throw TestFailure("GET \(path): \(status) \(text)") }
        return try JSONValue.parse(text)
    }

    /// Starts a diff with the token and waits for it to end.
    func diff(_ serve: ServeProcess, _ pipeline: String, query: String = "") throws -> (id: String, run: JSONValue) {
        let (status, body) = try serve.post("/pipelines/\(pipeline)/diff\(query)")
        #expect(status == 202, "POST diff: \(status) \(body)")
        let started = try JSONValue.parse(body)
        #expect(started["kind"] == "diff")
        let id = try #require(started["id"]?.stringValue, "no id in \(body)")
        return (id, try serve.waitForRun(id))
    }

    /// The value of one series in the exposition, `name{label="value",…}` in
    /// any label order.
    func metric(_ serve: ServeProcess, _ series: String) throws -> Double? {
        func parts(_ text: Substring) -> (String, Set<Substring>) {
            guard let brace = text.firstIndex(of: "{") else { return (String(text), []) }
            return (String(text[..<brace]), Set(text[text.index(after: brace)...].dropLast().split(separator: ",")))
        }
        let wanted = parts(Substring(series))
        let (_, text) = try serve.get("/metrics")
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            if parts(line[..<space]) == wanted { return Double(line[line.index(after: space)...]) }
        }
        return nil
    }

    /// The target's records as the test wrote them, to see that a diff changed nothing.
    func targetIsAsWritten(_ serve: ServeProcess, _ pipeline: String) throws -> Bool {
        if pipeline == "drift" { return try pg.sql("SELECT id FROM \(target) ORDER BY id").map { $0[0] } == ["1", "2", "3", "99"] }
        return try String(contentsOfFile: "\(serve.directory)/data/target.jsonl", encoding: .utf8)
            == Self.driftedLines.joined(separator: "\n") + "\n"
    }

    /// Makes the target hold exactly what the source has.
    func fixTarget(_ serve: ServeProcess, _ pipeline: String) throws {
        if pipeline == "drift" {
            try pg.sql("DELETE FROM \(target) WHERE id = 99; INSERT INTO \(target) SELECT n, 'item ' || n FROM generate_series(4, 5) n")
        } else {
            try (Self.sourceLines.joined(separator: "\n") + "\n")
                .write(toFile: "\(serve.directory)/data/target.jsonl", atomically: true, encoding: .utf8)
        }
    }

    /// `autoMethod`: what `method=auto` becomes for the pipeline's pair of plugins.
    func check(isolation: String, pipeline: String = "drift", autoMethod: String = "digest") throws {
        let serve = try start(isolation: isolation)
        defer {
            serve.stop()
            dropTables()
        }

        let (unauthorized, refusal) = try serve.post("/pipelines/\(pipeline)/diff", token: nil)
        #expect(unauthorized == 401, "POST diff without the token: \(unauthorized) \(refusal)")
        #expect(try serve.getJSON("/runs")["runs"]?.arrayValue?.isEmpty == true, "a refused diff left a run record")
        #expect(try metric(serve, #"ferry_diff_missing{pipeline="\#(pipeline)"}"#) == nil, "a gauge before any diff")

        let (id, run) = try diff(serve, pipeline, query: "?method=read&sample=5")
        #expect(run["kind"] == "diff")
        #expect(run["status"] == "completed", "\(run)")
        #expect(run["diff"]?["method"] == "read")
        #expect(run["progress"] == nil && run["dryRun"] == nil)
        let report = try #require(run["report"], "no report: \(run) \(serve.stderr)")
        #expect(report["equal"] == .bool(false))
        #expect(report["method"] == "read")
        #expect(report["missing"]?.intValue == 2)
        #expect(report["extra"]?.intValue == 1)
        #expect(report["changed"]?.intValue == 0)
        #expect(report["matching"]?.intValue == 3)
        #expect(report["sample"] == nil, "the sample's record values went to a caller without the token")
        #expect(report["sampleHidden"] != nil)

        let trusted = try getWithToken(serve, "/runs/\(id)")
        let sample = try #require(trusted["report"]?["sample"], "no sample with the token: \(trusted)")
        #expect(sample["missing"]?.arrayValue?.count == 2)
        #expect(sample["extra"]?.arrayValue?.count == 1)
        #expect(sample["extra"]?.arrayValue?.first?.stringValue?.contains("99") == true, "\(sample)")
        #expect(sample["missing"]?.arrayValue?.compactMap(\.stringValue).joined().contains("5") == true, "\(sample)")

        let listed = try #require(serve.getJSON("/runs?pipeline=\(pipeline)")["runs"]?.arrayValue)
        #expect(listed.map { $0["id"] } == [.string(id)])
        #expect(listed.first?["kind"] == "diff")
        #expect(listed.first?["report"]?["sample"] == nil)

        #expect(try metric(serve, #"ferry_diff_missing{pipeline="\#(pipeline)"}"#) == 2)
        #expect(try metric(serve, #"ferry_diff_extra{pipeline="\#(pipeline)"}"#) == 1)
        #expect(try metric(serve, #"ferry_diff_changed{pipeline="\#(pipeline)"}"#) == 0)
        #expect(try metric(serve, #"ferry_diffs_total{pipeline="\#(pipeline)",outcome="different"}"#) == 1)
        // A diff is not a run: no run counted, the pipeline's last run untouched.
        #expect(try metric(serve, #"ferry_runs_total{pipeline="\#(pipeline)",outcome="completed"}"#) == nil)
        #expect(try serve.getJSON("/pipelines/\(pipeline)")["lastRun"] == nil)

        // The diff changed nothing; once the target holds the source, a second diff says so.
        #expect(try targetIsAsWritten(serve, pipeline))
        try fixTarget(serve, pipeline)
        let (_, second) = try diff(serve, pipeline)
        #expect(second["status"] == "completed", "\(second)")
        #expect(second["report"]?["equal"] == .bool(true), "\(second)")
        #expect(second["report"]?["method"]?.stringValue == autoMethod, "\(second)")
        #expect(second["report"]?["missing"]?.intValue == 0)
        #expect(try metric(serve, #"ferry_diff_missing{pipeline="\#(pipeline)"}"#) == 0)
        #expect(try metric(serve, #"ferry_diff_extra{pipeline="\#(pipeline)"}"#) == 0)
        #expect(try metric(serve, #"ferry_diffs_total{pipeline="\#(pipeline)",outcome="equal"}"#) == 1)
    }

    @Test("a diff in a child process: 401 without the token, 202 and an id with it, the report and the gauges, then equal after the target is fixed")
    func diffInChildProcess() throws {
        try check(isolation: "process")
    }

    @Test("the same with --run-isolation thread, where the daemon compares in-process")
    func diffOnThread() throws {
        try check(isolation: "thread")
    }

    @Test("the same on a file→file pipeline, which compares by reading")
    func fileToFile() throws {
        try check(isolation: "process", pipeline: "filedrift", autoMethod: "read")
    }

    @Test("a diff of a pipeline that is running answers 409 with the run's id, and a run while a diff goes answers 409")
    func heldPipeline() throws {
        let serve = try start()
        defer {
            serve.stop()
            dropTables()
        }
        let (status, body) = try serve.post("/pipelines/busy/runs")
        #expect(status == 202, "\(body)")
        let runID = try #require(try JSONValue.parse(body)["id"]?.stringValue)
        let (conflict, answer) = try serve.post("/pipelines/busy/diff")
        #expect(conflict == 409, "diff while running: \(conflict) \(answer)")
        #expect(try JSONValue.parse(answer)["runId"]?.stringValue == runID)
        #expect(try serve.post("/runs/\(runID)/cancel").0 == 202)
        _ = try serve.waitForRun(runID)

        let (started, startBody) = try serve.post("/pipelines/busy/diff", body: #"{"method": "read", "sample": 0}"#)
        #expect(started == 202, "\(startBody)")
        let diffID = try #require(try JSONValue.parse(startBody)["id"]?.stringValue)
        let (refused, refusal) = try serve.post("/pipelines/busy/runs")
        // The diff reads 3000 records at 20 ms per 10: six seconds, and it is cancelled long before.
        #expect(try serve.getJSON("/runs/\(diffID)")["status"] == "running")
        #expect(refused == 409, "run while diffing: \(refused) \(refusal)")
        #expect(try JSONValue.parse(refusal)["runId"]?.stringValue == diffID)
        #expect(try serve.getJSON("/pipelines/busy")["running"] == .bool(true))
        #expect(try serve.post("/runs/\(diffID)/cancel").0 == 202)
        let cancelled = try serve.waitForRun(diffID)
        #expect(cancelled["status"] == "cancelled", "\(cancelled)")
        #expect(try metric(serve, #"ferry_diffs_total{pipeline="busy",outcome="failed"}"#) == 1)
        #expect(try metric(serve, #"ferry_diff_missing{pipeline="busy"}"#) == nil, "a cancelled diff set the gauges")

        for bad in [#"?method=fast"#, #"?sample=-1"#, #"?sample=many"#] {
            #expect(try serve.post("/pipelines/busy/diff\(bad)").0 == 400, "\(bad)")
        }
        #expect(try serve.post("/pipelines/busy/diff", body: #"{"repair": true}"#).0 == 400)
        #expect(try serve.post("/pipelines/no-such/diff").0 == 404)
    }

    @Test("a plugin that crashes during a diff ends it as crashed, naming the plugin and call; the daemon goes on")
    func crashDuringDiff() throws {
        let serve = try start()
        defer {
            serve.stop()
            dropTables()
        }
        let (_, run) = try diff(serve, "crash")
        #expect(run["status"] == "crashed", "\(run)")
        let failure = try #require(run["failure"], "\(run)")
        #expect(failure["kind"] == "crash")
        #expect(failure["plugin"] == "faulty", "\(failure)")
        #expect(failure["call"] == "read", "\(failure)")
        #expect(failure["signal"]?.intValue == Int64(SIGSEGV))
        #expect(try metric(serve, #"ferry_diffs_total{pipeline="crash",outcome="failed"}"#) == 1)
        #expect(try serve.get("/healthz").0 == 200)
        let (_, again) = try diff(serve, "drift")
        #expect(again["status"] == "completed", "the daemon could not diff after a crashed diff: \(again)")
    }
}
