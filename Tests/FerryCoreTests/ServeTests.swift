import FerryCore
import FerryPluginKit
import FerryServer
import Foundation
import Testing

/// `ferry serve` as a real process, over a real socket.
@Suite("ferry serve")
struct ServeTests {
    static let slowPipeline = """
        name: slow
        source: {plugin: generate, config: {count: 3000}}
        sink: {plugin: blackhole, config: {delay_ms: 20}}
        batch_size: 10
        mode: incremental
        schedule: "0 0 1 1 *"   # the pipeline file's own schedule (UTC), used when the daemon file sets none
        """

    static let copyPipeline = """
        name: copy
        source: {plugin: file, config: {path: "\(TestSupport.repoRoot.path)/examples/data/products.jsonl"}}
        transforms:
          - plugin: map
            config: {steps: [{rename: {from: name, to: title}}]}
        sink: {plugin: file, config: {path: "{{dir}}/out/copy.jsonl"}}
        batch_size: 25
        mode: full
        """

    static let daemon = """
        listen: 127.0.0.1:{{port}}
        pipelines:
          - file: slow.yaml
          - file: copy.yaml
        state_dir: {{dir}}/state
        grace_period_seconds: 10
        """

    func start(_ yaml: String = ServeTests.daemon, withToken: Bool = true) throws -> ServeProcess {
        let serve = try ServeProcess(
            daemonYAML: yaml, files: ["slow.yaml": Self.slowPipeline, "copy.yaml": Self.copyPipeline], withToken: withToken)
        try serve.waitUntilUp()
        return serve
    }

    @Test("health, readiness, metrics and the pipeline endpoints answer")
    func readEndpoints() throws {
        let serve = try start()
        let health = try serve.getJSON("/healthz")
        #expect(health["status"] == "ok")
        let ready = try serve.getJSON("/readyz")
        #expect(ready["status"] == "ready", "\(ready.jsonText)")
        #expect(ready["pipelines"]?["copy"]?["ready"] == .bool(true))
        let (metricsStatus, metrics) = try serve.get("/metrics")
        #expect(metricsStatus == 200)
        #expect(metrics.contains("ferry_runs_in_flight 0"))
        #expect(metrics.contains(#"ferry_records_read_total{pipeline="copy"} 0"#))
        #expect(metrics.contains("ferry_plugin_load_failures_total"))
        let pipelines = try serve.getJSON("/pipelines")["pipelines"]?.arrayValue ?? []
        #expect(pipelines.compactMap { $0["name"]?.stringValue } == ["copy", "slow"])
        let copy = try serve.getJSON("/pipelines/copy")
        #expect(copy["source"] == "file")
        #expect(copy["transforms"] == .array(["map"]))
        #expect(copy["running"] == .bool(false))
        #expect(copy["schedule"] == nil)
        let slow = try serve.getJSON("/pipelines/slow")
        #expect(slow["schedule"] == "0 0 1 1 *")
        #expect(slow["timezone"] == "GMT" || slow["timezone"] == "UTC")
        #expect(slow["nextFire"]?.stringValue?.hasSuffix("-01-01T00:00:00.000Z") == true, "\(slow.jsonText)")
        #expect(try serve.get("/pipelines/nope").0 == 404)
        #expect(try serve.get("/runs/nope").0 == 404)
        #expect(try serve.get("/runs?limit=0").0 == 400)
        #expect(try serve.getJSON("/runs")["runs"] == .array([]))
    }

    @Test("POST needs the bearer token: none, wrong, or unconfigured is 401, and the token is never logged")
    func auth() throws {
        let serve = try start()
        #expect(try serve.post("/pipelines/copy/runs", token: nil).0 == 401)
        #expect(try serve.post("/pipelines/copy/runs", token: "wrong").0 == 401)
        #expect(try serve.post("/pipelines/copy/runs", token: String(serve.token.dropLast())).0 == 401)
        #expect(try serve.post("/runs/x/cancel", token: nil).0 == 401)
        let (status, body) = try serve.post("/pipelines/copy/runs")
        #expect(status == 202, "\(body)")
        _ = try serve.waitForRun(try JSONValue.parse(body)["id"]!.stringValue!)
        #expect(!serve.stderr.contains(serve.token))

        let closed = try start(withToken: false)
        let (refused, message) = try closed.post("/pipelines/copy/runs", token: "anything")
        #expect(refused == 401)
        #expect(message.contains("no API token is configured"))
    }

    @Test("a triggered run completes and reports its counts; the run list and metrics follow")
    func triggerAndReport() throws {
        let serve = try start()
        let (status, body) = try serve.post("/pipelines/copy/runs", body: "{}")
        #expect(status == 202)
        let id = try JSONValue.parse(body)["id"]!.stringValue!
        let run = try serve.waitForRun(id)
        #expect(run["status"] == "completed", "\(run.jsonText)")
        #expect(run["trigger"] == "api")
        #expect(run["progress"]?["read"] == .integer(200))
        #expect(run["progress"]?["written"] == .integer(200))
        #expect(run["report"]?["outcome"] == "completed")
        let lines = try String(contentsOfFile: "\(serve.directory)/out/copy.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 200)
        #expect(lines.first?.contains("\"title\"") == true)
        let runs = try serve.getJSON("/runs?pipeline=copy&limit=1")["runs"]?.arrayValue ?? []
        #expect(runs.count == 1)
        #expect(runs.first?["id"] == .string(id))
        #expect(try serve.getJSON("/pipelines/copy")["lastRun"]?["status"] == "completed")
        let metrics = try serve.get("/metrics").1
        #expect(metrics.contains(#"ferry_records_read_total{pipeline="copy"} 200"#), "\(metrics)")
        #expect(metrics.contains(#"ferry_runs_total{outcome="completed",pipeline="copy"} 1"#) || metrics.contains(#"ferry_runs_total{pipeline="copy",outcome="completed"} 1"#))
        #expect(metrics.contains("ferry_run_duration_seconds_count"))
        #expect(metrics.contains(#"ferry_last_success_timestamp_seconds{pipeline="copy"}"#))
        // Bad bodies are refused with the reason.
        #expect(try serve.post("/pipelines/copy/runs", body: #"{"limit": -1}"#).0 == 400)
        #expect(try serve.post("/pipelines/copy/runs", body: #"{"dryrun": true}"#).0 == 400)
        #expect(try serve.post("/pipelines/nope/runs").0 == 404)
    }

    @Test("a dry run through the API previews, and writes neither the target nor the state")
    func dryRun() throws {
        let serve = try start()
        let (status, body) = try serve.post("/pipelines/copy/runs", body: #"{"dryRun": true, "limit": 30}"#)
        #expect(status == 202)
        let id = try JSONValue.parse(body)["id"]!.stringValue!
        let open = try serve.waitForRun(id)
        #expect(open["status"] == "completed")
        #expect(open["dryRun"] == .bool(true))
        // Without the token: the counts, not the records.
        #expect(open["report"]?["sample"] == nil && open["report"]?["sampleHidden"] != nil, "\(open.jsonText)")
        #expect((open["report"]?["read"]?.doubleValue ?? 0) >= 30, "the counts stay")
        let listed = try serve.getJSON("/runs?pipeline=copy")["runs"]?.arrayValue?.first
        #expect(listed?["report"]?["sample"] == nil)
        let (authorized, text) = try serve.request("GET", "/runs/\(id)", headers: ["Authorization": "Bearer \(serve.token)"])
        #expect(authorized == 200)
        let run = try JSONValue.parse(text)
        #expect((run["report"]?["sample"]?.arrayValue ?? []).count == 5)
        #expect(run["report"]?["sample"]?.arrayValue?.first?["title"] != nil)
        #expect(!FileManager.default.fileExists(atPath: "\(serve.directory)/out/copy.jsonl"))
        #expect(!FileManager.default.fileExists(atPath: "\(serve.directory)/state/copy.checkpoint.json"))
        #expect((try? FileManager.default.contentsOfDirectory(atPath: "\(serve.directory)/state"))?.filter { !$0.hasPrefix(".") }.isEmpty ?? true)
    }

    @Test("50 concurrent triggers of one pipeline: exactly one 202, the rest 409 naming the running run")
    func concurrentTriggers() throws {
        let serve = try start()
        let statuses = LockedStatuses()
        DispatchQueue.concurrentPerform(iterations: 50) { _ in
            let result = try? serve.post("/pipelines/slow/runs")
            statuses.add(result?.0 ?? 0, result?.1 ?? "")
        }
        let all = statuses.all
        #expect(all.filter { $0.0 == 202 }.count == 1, "\(all.map(\.0))")
        #expect(all.filter { $0.0 == 409 }.count == 49)
        let accepted = try JSONValue.parse(all.first { $0.0 == 202 }!.1)["id"]!.stringValue!
        let conflict = try JSONValue.parse(all.first { $0.0 == 409 }!.1)
        #expect(conflict["runId"] == .string(accepted))
        // Cancel it: it stops at a commit, and a second cancel is a conflict.
        #expect(try serve.post("/runs/\(accepted)/cancel").0 == 202)
        let run = try serve.waitForRun(accepted)
        #expect(run["status"] == "cancelled")
        #expect(try serve.post("/runs/\(accepted)/cancel").0 == 409)
        #expect(try serve.post("/runs/nope/cancel").0 == 404)
    }

    @Test("SIGTERM during a run: the run stops at a committed checkpoint and the daemon exits 0 within the grace period")
    func sigterm() throws {
        let serve = try start()
        let (status, _) = try serve.post("/pipelines/slow/runs")
        #expect(status == 202)
        Thread.sleep(forTimeInterval: 1.0)
        let sent = Date()
        kill(serve.process.processIdentifier, SIGTERM)
        serve.process.waitUntilExit()
        let took = Date().timeIntervalSince(sent)
        #expect(serve.process.terminationStatus == 0, "\(serve.stderr)")
        #expect(took < 10, "took \(took)s")
        // The checkpoint is whole and part-way: committed batches only.
        let checkpoint = try FileStateStore(directory: "\(serve.directory)/state")
            .load(pipeline: "slow", shard: .whole, sourcePlugin: "generate")
        let records = checkpoint?.records ?? 0
        #expect(records > 0 && records < 3000, "checkpoint records \(records)")
        #expect(records % 10 == 0)
        #expect(serve.stderr.contains("all runs stopped with their checkpoints committed"))
        // The logs are JSON lines.
        for line in serve.stderr.split(separator: "\n") where !line.isEmpty {
            #expect((try? JSONValue.parse(String(line)))?["msg"] != nil, "not a JSON log line: \(line)")
        }
    }

    @Test("what a plugin's library prints while it loads becomes one JSON warning naming the plugin")
    func loadNoiseIsLogged() throws {
        let extra = try TestSupport.temporaryDirectory("noisy")
        _ = try TestSupport.compileFixture(["LOAD_NOISE", "NAME=\"noisy\""], into: extra, name: "libnoisy.so")
        // Plugins are loaded when a pipeline names them, so one does.
        let noisy = "name: noisy\nsource: {plugin: generate, config: {count: 1}}\ntransforms: [{plugin: noisy}]\nsink: {plugin: blackhole}\n"
        let serve = try ServeProcess(
            daemonYAML: Self.daemon.replacingOccurrences(of: "  - file: copy.yaml\n", with: "  - file: copy.yaml\n  - file: noisy.yaml\n"),
            files: ["slow.yaml": Self.slowPipeline, "copy.yaml": Self.copyPipeline, "noisy.yaml": noisy], extraPlugins: extra)
        try serve.waitUntilUp()
        kill(serve.process.processIdentifier, SIGTERM)
        serve.process.waitUntilExit()
        let lines = serve.stderr.split(separator: "\n").filter { !$0.isEmpty }.map { try? JSONValue.parse(String($0)) }
        #expect(lines.allSatisfy { $0?["msg"] != nil }, "a log line that is not JSON: \(serve.stderr)")
        let warnings = lines.compactMap { $0 }.filter { $0["msg"]?.stringValue?.contains("hello from a library constructor") == true }
        #expect(warnings.count == 1, "\(serve.stderr)")
        #expect(warnings.first?["level"] == "warning")
        #expect(warnings.first?["msg"]?.stringValue?.contains("plugin 'noisy' (\(extra)/libnoisy.so) printed while loading") == true)
    }

    @Test("a schedule fires on the minute in its time zone; the pipeline shows the schedule and next fire time")
    func scheduleFires() throws {
        let serve = try start("""
            listen: 127.0.0.1:{{port}}
            pipelines:
              - file: copy.yaml
                schedule: "* * * * *"
                timezone: Asia/Kolkata
            state_dir: {{dir}}/state
            """)
        let copy = try serve.getJSON("/pipelines/copy")
        #expect(copy["schedule"] == "* * * * *")
        #expect(copy["timezone"] == "Asia/Kolkata")
        let next = try Date(copy["nextFire"]!.stringValue!, strategy: .iso8601)
        #expect(next > Date() && next <= Date().addingTimeInterval(61))
        let deadline = Date().addingTimeInterval(75)
        var scheduled: [JSONValue] = []
        while Date() < deadline {
            scheduled = (try serve.getJSON("/runs?pipeline=copy")["runs"]?.arrayValue ?? []).filter { $0["trigger"] == "schedule" }
            if !scheduled.isEmpty { break }
            Thread.sleep(forTimeInterval: 0.5)
        }
        #expect(scheduled.count == 1, "no scheduled run within 75s: \(serve.stderr.suffix(2000))")
        let run = try serve.waitForRun(scheduled.first?["id"]?.stringValue ?? "")
        #expect(run["status"] == "completed")
        let started = try Date(run["startedAt"]!.stringValue!, strategy: .iso8601)
        #expect(started >= next && started < next.addingTimeInterval(5), "fired at \(started), due \(next)")
    }

    @Test("readiness is 503 with the reason when a sink cannot open, and names the pipeline")
    func notReady() throws {
        let broken = """
            name: broken
            source: {plugin: generate, config: {count: 10}}
            sink: {plugin: file, config: {path: "{{dir}}/a-file/out.jsonl"}}
            """
        let serve = try ServeProcess(
            daemonYAML: "listen: 127.0.0.1:{{port}}\npipelines:\n  - file: broken.yaml\n  - file: copy.yaml\nstate_dir: {{dir}}/state\n",
            files: ["broken.yaml": broken, "copy.yaml": Self.copyPipeline, "a-file": "not a directory"])
        try serve.waitUntilUp()
        // The reasons' text needs the token (it can quote a secret); the status does not.
        #expect(try serve.get("/readyz").0 == 503)
        let (status, body) = try serve.request("GET", "/readyz", headers: ["Authorization": "Bearer \(serve.token)"])
        #expect(status == 503)
        let json = try JSONValue.parse(body)
        #expect(json["pipelines"]?["broken"]?["ready"] == .bool(false))
        #expect(json["pipelines"]?["copy"]?["ready"] == .bool(true))
        #expect(json["pipelines"]?["broken"]?["problems"]?.arrayValue?.first?.stringValue?.contains("sink 'file'") == true, "\(body)")
        #expect(body.contains("is not a directory"))
    }

    @Test("readiness checks the dead-letter sink too: one that cannot open makes the pipeline not ready, by name")
    func deadLetterSinkNotReady() throws {
        let pipeline = """
            name: rejects
            source: {plugin: generate, config: {count: 10}}
            sink: {plugin: blackhole}
            dead_letters: {sink: {plugin: file, config: {path: "{{dir}}/a-file/dead.jsonl"}}}
            """
        let serve = try ServeProcess(
            daemonYAML: "listen: 127.0.0.1:{{port}}\npipelines:\n  - file: rejects.yaml\nstate_dir: {{dir}}/state\n",
            files: ["rejects.yaml": pipeline, "a-file": "not a directory"])
        try serve.waitUntilUp()
        // The reasons' text needs the token (it can quote a secret); the status does not.
        #expect(try serve.get("/readyz").0 == 503)
        let (status, body) = try serve.request("GET", "/readyz", headers: ["Authorization": "Bearer \(serve.token)"])
        #expect(status == 503)
        #expect(body.contains("dead-letter sink 'file'") && body.contains("is not a directory"), "\(body)")
    }

    @Test("an invalid daemon file is refused at start with file, line and field; validate checks it too")
    func invalidDaemonFile() throws {
        let directory = try TestSupport.temporaryDirectory("serve-invalid")
        try Self.copyPipeline.write(toFile: "\(directory)/copy.yaml", atomically: true, encoding: .utf8)
        let path = "\(directory)/daemon.yaml"
        try """
            listen: nowhere
            pipelines:
              - file: copy.yaml
                schedule: "61 * * * *"
              - file: missing.yaml
            grace: 3
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try TestSupport.run(TestSupport.ferryExecutable, ["serve", "--config", path, "--plugins", TestSupport.buildDirectory])
        #expect(result.status == 2)
        #expect(result.stderr.contains("daemon.yaml:1: listen: expected host:port"), "\(result.stderr)")
        #expect(result.stderr.contains("daemon.yaml:4: pipelines[0].schedule:"))
        #expect(result.stderr.contains("daemon.yaml:6: grace: unknown key"))
        let validate = try TestSupport.run(TestSupport.ferryExecutable, ["validate", path, "--plugins", TestSupport.buildDirectory])
        #expect(validate.status == 2)
        #expect(validate.stderr.contains("listen: expected host:port"))
    }

    @Test("every route in docs/openapi.yaml is served, and every served route is documented")
    func openAPIMatchesRoutes() throws {
        let text = try String(contentsOf: TestSupport.repoRoot.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)
        guard case .mapping(let root, _)? = try ConfigNode.parse(yaml: text, file: "openapi.yaml"),
            case .mapping(let paths, _)? = root.first(where: { $0.key == "paths" })?.value
        else { throw TestFailure("docs/openapi.yaml has no paths") }
        var documented: Set<String> = []
        for (path, _, item) in paths {
            guard case .mapping(let operations, _) = item else { continue }
            for (method, _, _) in operations where ["get", "post", "put", "delete", "patch"].contains(method) {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        let served = Set(APIRoutes.all.map { "\($0.method) \($0.path)" })
        #expect(documented == served, "only documented: \(documented.subtracting(served)); only served: \(served.subtracting(documented))")
    }
}

final class LockedStatuses: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [(Int, String)] = []
    func add(_ status: Int, _ body: String) { lock.withLock { values.append((status, body)) } }
    var all: [(Int, String)] { lock.withLock { values } }
}
