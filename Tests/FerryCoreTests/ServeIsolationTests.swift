import FerryCore
import FerryPluginKit
import Foundation
import Testing

/// Every daemon run is a child process: a plugin that crashes, aborts, eats
/// memory or hangs ends its own run, never the daemon or a run beside it,
/// and the daemon's death takes its runs with it.
@Suite("ferry serve run isolation", .serialized)
struct ServeIsolationTests {
    /// The fixture plugin that fails on purpose, built into a folder of its own.
    static func faultyPlugins() throws -> String {
        let directory = try TestSupport.temporaryDirectory("faulty")
        try TestSupport.compilePlugin(
            source: TestSupport.repoRoot.appendingPathComponent("Tests/Fixtures/faulty_plugin.c").path,
            output: "\(directory)/libfaulty.so")
        return directory
    }

    static let faultyPipelines: [String: String] = [
        "crash-read.yaml": """
            name: crash-read
            source: {plugin: faulty, config: {fault: segv_read, records: 1000}}
            sink: {plugin: blackhole}
            batch_size: 10
            """,
        "abort-write.yaml": """
            name: abort-write
            source: {plugin: generate, config: {count: 1000}}
            sink: {plugin: faulty, config: {fault: abort_write}}
            batch_size: 10
            """,
        "alloc.yaml": """
            name: alloc
            source: {plugin: faulty, config: {fault: alloc, records: 1000}}
            sink: {plugin: blackhole}
            batch_size: 10
            """,
        "hang.yaml": """
            name: hang
            source: {plugin: faulty, config: {fault: hang_read, records: 1000}}
            sink: {plugin: blackhole}
            batch_size: 10
            """,
        // About six seconds: it outlives every faulty run beside it.
        "healthy.yaml": """
            name: healthy
            source: {plugin: faulty, config: {fault: none, records: 3000, delay_ms: 20}}
            sink: {plugin: file, config: {path: "{{dir}}/out/healthy.jsonl"}}
            batch_size: 10
            mode: full
            """,
    ]

    static let faultyDaemon = """
        listen: 127.0.0.1:{{port}}
        pipelines:
          - file: crash-read.yaml
          - file: abort-write.yaml
          - file: alloc.yaml
            max_memory_mb: 64
          - file: hang.yaml
            stall_timeout_seconds: 2
          - file: healthy.yaml
        state_dir: {{dir}}/state
        grace_period_seconds: 2
        """

    /// 3000 records in batches of 10, 20 ms a batch: a run of about six seconds.
    static let slowPipeline = """
        name: slow
        source: {plugin: generate, config: {count: 3000}}
        sink: {plugin: blackhole, config: {delay_ms: 20}}
        batch_size: 10
        mode: incremental
        """

    static func slowDaemon(directory: String = "{{dir}}") -> String {
        """
        listen: 127.0.0.1:{{port}}
        pipelines:
          - file: \(directory)/slow.yaml
        state_dir: \(directory)/state
        grace_period_seconds: 10
        """
    }

    // MARK: - Faults in plugins

    @Test("a segfault, an abort, a memory limit and a hang each end their own run; the healthy run beside them completes")
    func faultsStayInTheirRuns() throws {
        let serve = try ServeProcess(
            daemonYAML: Self.faultyDaemon, files: Self.faultyPipelines, extraPlugins: try Self.faultyPlugins())
        try serve.waitUntilUp()
        let daemonPID = serve.process.processIdentifier

        var ids: [String: String] = [:]
        for name in ["crash-read", "abort-write", "alloc", "hang", "healthy"] {
            let (status, body) = try serve.post("/pipelines/\(name)/runs")
            #expect(status == 202, "\(name): \(body)")
            ids[name] = try JSONValue.parse(body)["id"]?.stringValue
        }

        // The probes answer all along, faults or not.
        var polls = 0
        while try serve.getJSON("/runs/\(ids["healthy"] ?? "")")["status"] == "running" {
            #expect(try serve.get("/healthz").0 == 200, "healthz during the runs: \(serve.stderr.suffix(2000))")
            #expect(try serve.get("/readyz").0 == 200, "readyz during the runs")
            polls += 1
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect(polls >= 5, "the healthy run should overlap the faulty ones")

        var runs: [String: JSONValue] = [:]
        for (name, id) in ids {
            _ = try serve.waitForRun(id, timeout: 30)
            runs[name] = try authorized(serve, "/runs/\(id)")
        }

        let read = runs["crash-read"]
        #expect(read?["status"] == "crashed", "\(read?.jsonText ?? "")")
        #expect(read?["failure"]?["kind"] == "crash")
        #expect(read?["failure"]?["plugin"] == "faulty")
        #expect(read?["failure"]?["call"] == "read")
        #expect(read?["failure"]?["signal"] == .integer(Int64(SIGSEGV)))
        #expect(read?["error"]?.stringValue?.contains("plugin 'faulty'") == true)
        #expect(read?["error"]?.stringValue?.contains("crashed with SIGSEGV during read()") == true, "\(read?.jsonText ?? "")")

        let write = runs["abort-write"]
        #expect(write?["status"] == "crashed", "\(write?.jsonText ?? "")")
        #expect(write?["failure"]?["plugin"] == "faulty")
        #expect(write?["failure"]?["call"] == "write")
        #expect(write?["failure"]?["signal"] == .integer(Int64(SIGABRT)))
        #expect(write?["error"]?.stringValue?.contains("crashed with SIGABRT during write()") == true, "\(write?.jsonText ?? "")")

        let alloc = runs["alloc"]
        #expect(alloc?["status"] == "crashed", "\(alloc?.jsonText ?? "")")
        #expect(alloc?["failure"]?["plugin"] == "faulty")
        #expect(alloc?["failure"]?["call"] == "read")
        #expect(alloc?["failure"]?["signal"] == .integer(Int64(SIGSEGV)))
        #expect(alloc?["error"]?.stringValue?.contains("max_memory_mb: 64") == true, "\(alloc?.jsonText ?? "")")

        let hang = runs["hang"]
        #expect(hang?["status"] == "stalled", "\(hang?.jsonText ?? "")")
        #expect(hang?["failure"]?["kind"] == "stall")
        #expect(hang?["error"]?.stringValue?.contains("no progress for 2s") == true, "\(hang?.jsonText ?? "")")

        let healthy = runs["healthy"]
        #expect(healthy?["status"] == "completed", "\(healthy?.jsonText ?? "")")
        #expect(healthy?["progress"]?["read"] == .integer(3000))
        #expect(healthy?["progress"]?["written"] == .integer(3000))
        let lines = try String(contentsOfFile: "\(serve.directory)/out/healthy.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 3000)

        // Still up, still ready, and counting what happened.
        #expect(serve.process.isRunning && kill(daemonPID, 0) == 0, "the daemon died: \(serve.stderr.suffix(3000))")
        #expect(try serve.get("/healthz").0 == 200)
        #expect(try serve.get("/readyz").0 == 200)
        let metrics = try serve.get("/metrics").1
        for pipeline in ["crash-read", "abort-write", "alloc"] {
            #expect(
                Self.sample(metrics, "ferry_run_crashes_total", ["pipeline": pipeline, "plugin": "faulty"]) == 1,
                "ferry_run_crashes_total for \(pipeline): \(metrics)")
            #expect(Self.sample(metrics, "ferry_runs_total", ["pipeline": pipeline, "outcome": "crashed"]) == 1)
        }
        #expect(Self.sample(metrics, "ferry_runs_total", ["pipeline": "hang", "outcome": "stalled"]) == 1, "\(metrics)")
        #expect(Self.sample(metrics, "ferry_runs_total", ["pipeline": "healthy", "outcome": "completed"]) == 1)

        // A crashed pipeline holds no reservation: it runs (and crashes) again.
        let (again, body) = try serve.post("/pipelines/crash-read/runs")
        #expect(again == 202, "\(body)")
        let second = try serve.waitForRun(try JSONValue.parse(body)["id"]?.stringValue ?? "", timeout: 30)
        #expect(second["status"] == "crashed", "\(second.jsonText)")
        #expect(Self.sample(try serve.get("/metrics").1, "ferry_run_crashes_total", ["pipeline": "crash-read", "plugin": "faulty"]) == 2)
        #expect(serve.process.isRunning)
        // No child is left behind: each was reaped.
        #expect(Self.runChildren(of: daemonPID).isEmpty)
    }

    @Test("/readyz opens plugins in a child: one that crashes in open() or hangs there makes its pipeline not ready, never the daemon crash or keep a process")
    func readinessChecksStayOutOfTheDaemon() throws {
        let files = [
            "crash-open.yaml": """
                name: crash-open
                source: {plugin: faulty, config: {fault: segv_open}}
                sink: {plugin: blackhole}
                """,
            "hang-open.yaml": """
                name: hang-open
                source: {plugin: generate, config: {count: 10}}
                sink: {plugin: faulty, config: {fault: hang_open}}
                """,
            "fine.yaml": """
                name: fine
                source: {plugin: generate, config: {count: 10}}
                sink: {plugin: blackhole}
                """,
            "bad-transform.yaml": """
                name: bad-transform
                source: {plugin: generate, config: {count: 10}}
                transforms: [{plugin: failing}]
                sink: {plugin: blackhole}
                """,
        ]
        let daemon = """
            listen: 127.0.0.1:{{port}}
            pipelines:
              - file: crash-open.yaml
              - file: hang-open.yaml
              - file: fine.yaml
              - file: bad-transform.yaml
            state_dir: {{dir}}/state
            readiness_timeout_seconds: 1
            """
        let plugins = try Self.faultyPlugins()
        _ = try TestSupport.compileFixture(["FAILING_OPEN", "NAME=\"failing\""], into: plugins, name: "libfailing.so")
        let serve = try ServeProcess(daemonYAML: daemon, files: files, extraPlugins: plugins)
        try serve.waitUntilUp()
        let daemonPID = serve.process.processIdentifier
        for _ in 0..<3 {
            let (status, body) = try serve.request("GET", "/readyz", headers: ["Authorization": "Bearer \(serve.token)"])
            #expect(status == 503, "\(body)")
            #expect(serve.process.isRunning && kill(daemonPID, 0) == 0, "the daemon died: \(serve.stderr.suffix(3000))")
            let json = try JSONValue.parse(body)
            let crashed = json["pipelines"]?["crash-open"]?["problems"]?.arrayValue?.first?.stringValue ?? ""
            #expect(crashed.contains("source 'faulty'") && crashed.contains("plugin 'faulty' crashed (SIGSEGV)") && crashed.contains("open()"), "\(body)")
            let hung = json["pipelines"]?["hang-open"]?["problems"]?.arrayValue?.first?.stringValue ?? ""
            #expect(hung.contains("sink 'faulty'") && hung.contains("no answer within 1.0s"), "\(body)")
            #expect(json["pipelines"]?["fine"]?["ready"] == .bool(true), "\(body)")
            // A transform that does not open is the pipeline's problem, not its source's.
            let invalid = json["pipelines"]?["bad-transform"]?["problems"]?.arrayValue?.first?.stringValue ?? ""
            #expect(invalid.hasPrefix("pipeline: ") && invalid.contains("a transform that does not open"), "\(body)")
        }
        // The hung check was killed, not left running: no check process of the daemon remains.
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline && !Self.checkChildren(of: daemonPID).isEmpty { Thread.sleep(forTimeInterval: 0.05) }
        #expect(Self.checkChildren(of: daemonPID).isEmpty, "left behind: \(Self.checkChildren(of: daemonPID))")
        #expect(try serve.get("/healthz").0 == 200)
        // What a check's process prints to stderr reaches the log through the daemon's
        // logger, never as the child's own raw lines in the daemon's output.
        let raw = serve.stderr.split(separator: "\n").filter { $0.hasPrefix("error: ") || $0.hasPrefix("warning: ") }
        #expect(raw.isEmpty, "\(raw)")
        #expect(serve.stderr.contains("ferry validate") && serve.stderr.contains("password rejected"), "\(serve.stderr.suffix(3000))")
    }

    /// The daemon's live children that are readiness checks (`ferry validate --connect`).
    static func checkChildren(of daemon: Int32) -> [Int32] {
        children(of: daemon).filter { $0.arguments.contains("validate") && isAlive($0.pid) }.map(\.pid)
    }

    // MARK: - The daemon's own end

    @Test("SIGTERM of the daemon mid-run: the child stops at a committed checkpoint, both exit in the grace period, a restart resumes")
    func sigtermStopsTheChildAtACheckpoint() throws {
        let serve = try ServeProcess(daemonYAML: Self.slowDaemon(), files: ["slow.yaml": Self.slowPipeline])
        try serve.waitUntilUp()
        let (status, _) = try serve.post("/pipelines/slow/runs")
        #expect(status == 202)
        let child = try Self.waitForRunChild(of: serve.process.processIdentifier)
        Thread.sleep(forTimeInterval: 1.0)

        let sent = Date()
        kill(serve.process.processIdentifier, SIGTERM)
        serve.process.waitUntilExit()
        let took = Date().timeIntervalSince(sent)
        #expect(serve.process.terminationStatus == 0, "\(serve.stderr.suffix(3000))")
        #expect(took < 10, "the daemon took \(took)s")
        #expect(!Self.isAlive(child), "the run's process \(child) outlived the daemon")

        let records = try Self.checkpointRecords(serve.directory)
        #expect(records > 0 && records < 3000, "checkpoint records \(records)")
        #expect(records % 10 == 0, "a checkpoint covers whole batches: \(records)")

        try expectResume(directory: serve.directory, from: records)
    }

    @Test("SIGKILL of the daemon mid-run: its child dies with it, and a new daemon resumes from the last checkpoint")
    func sigkillTakesTheChildAlong() throws {
        let serve = try ServeProcess(daemonYAML: Self.slowDaemon(), files: ["slow.yaml": Self.slowPipeline])
        try serve.waitUntilUp()
        let (status, _) = try serve.post("/pipelines/slow/runs")
        #expect(status == 202)
        let child = try Self.waitForRunChild(of: serve.process.processIdentifier)
        Thread.sleep(forTimeInterval: 1.5)
        // The idle pre-started process too: nothing the daemon started may outlive it.
        let all = Self.protocolChildren(of: serve.process.processIdentifier)
        #expect(all.contains(child))

        kill(serve.process.processIdentifier, SIGKILL)
        serve.process.waitUntilExit()
        let deadline = Date().addingTimeInterval(2)
        while all.contains(where: Self.isAlive) && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(!Self.isAlive(child), "the run's process \(child) outlived its SIGKILLed daemon by 2s")
        #expect(!all.contains(where: Self.isAlive), "a process of the daemon outlived it by 2s: \(all.filter(Self.isAlive))")

        let records = try Self.checkpointRecords(serve.directory)
        #expect(records > 0 && records < 3000, "checkpoint records \(records)")
        #expect(records % 10 == 0)

        try expectResume(directory: serve.directory, from: records)
    }

    /// A second daemon on the first one's files reads only what the checkpoint does not cover.
    private func expectResume(directory: String, from records: Int) throws {
        let again = try ServeProcess(daemonYAML: Self.slowDaemon(directory: directory))
        try again.waitUntilUp()
        let (status, body) = try again.post("/pipelines/slow/runs")
        #expect(status == 202, "\(body)")
        let run = try again.waitForRun(try JSONValue.parse(body)["id"]?.stringValue ?? "", timeout: 60)
        #expect(run["status"] == "completed", "\(run.jsonText)")
        #expect(run["progress"]?["read"] == .integer(Int64(3000 - records)), "resumed from \(records): \(run.jsonText)")
        #expect(try Self.checkpointRecords(directory) == 3000)
    }

    // MARK: - Helpers

    private func authorized(_ serve: ServeProcess, _ path: String) throws -> JSONValue {
        let (status, text) = try serve.request("GET", path, headers: ["Authorization": "Bearer \(serve.token)"])
        guard status == 200 else { throw TestFailure("GET \(path): \(status) \(text)") }
        return try JSONValue.parse(text)
    }

    static func checkpointRecords(_ directory: String) throws -> Int {
        try FileStateStore(directory: "\(directory)/state").load(pipeline: "slow", shard: .whole, sourcePlugin: "generate")?.records ?? 0
    }

    /// The value of one sample of a Prometheus text exposition, labels in any order.
    static func sample(_ text: String, _ name: String, _ labels: [String: String]) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix("\(name){") {
            guard let close = line.lastIndex(of: "}") else { continue }
            let inside = line[line.index(line.startIndex, offsetBy: name.count + 1)..<close]
            let pairs = Set(inside.split(separator: ",").map(String.init))
            guard labels.allSatisfy({ pairs.contains("\($0.key)=\"\($0.value)\"") }) else { continue }
            return Double(line[line.index(after: close)...].trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    /// The daemon's children that are runs, from /proc: `ferry run … --protocol-fd`
    /// started for a run, or a pre-started process (`ferry spare --protocol-fd`) that
    /// has taken one and calls itself `ferry-run`. An idle spare is not a run.
    static func runChildren(of daemon: Int32) -> [Int32] {
        children(of: daemon).filter { child in
            let name = ((try? String(contentsOfFile: "/proc/\(child.pid)/comm", encoding: .utf8)) ?? "")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            return child.arguments.contains("--protocol-fd") && (child.arguments.contains("run") || name == "ferry-run") && isAlive(child.pid)
        }.map(\.pid)
    }

    /// Every child of the daemon that speaks the run protocol, idle spares included.
    static func protocolChildren(of daemon: Int32) -> [Int32] {
        children(of: daemon).filter { $0.arguments.contains("--protocol-fd") }.map(\.pid)
    }

    /// The daemon's children (from /proc, over all its threads) and their command lines.
    static func children(of daemon: Int32) -> [(pid: Int32, arguments: [String])] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(daemon)/task")) ?? []
        return tasks.flatMap { task -> [Int32] in
            let text = (try? String(contentsOfFile: "/proc/\(daemon)/task/\(task)/children", encoding: .utf8)) ?? ""
            return text.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }.map { pid in
            let command = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
            return (pid, command.split(separator: 0).map { String(decoding: $0, as: UTF8.self) })
        }
    }

    static func waitForRunChild(of daemon: Int32, timeout: Double = 10) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let child = runChildren(of: daemon).first { return child }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw TestFailure("no run process under daemon \(daemon) within \(timeout)s")
    }

    /// Running or sleeping; a zombie has already died.
    static func isAlive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
        return state != "Z" && state != "X"
    }
}
