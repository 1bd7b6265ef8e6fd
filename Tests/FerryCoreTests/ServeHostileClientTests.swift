import FerryPluginKit
import Foundation
import Testing

/// `ferry serve` against clients that are slow, greedy or unauthenticated,
/// over real sockets.
@Suite("ferry serve against hostile clients")
struct ServeHostileClientTests {
    static let headerTimeout = 10.0

    @Test("2,000 slow connections: /healthz answers within a second, a run completes, the header timeout closes them")
    func slowConnections() throws {
        // The clients need a descriptor each; the daemon starts at the common default soft limit.
        try RawSocket.allowDescriptors(4096)
        let serve = try ServeProcess(
            daemonYAML: """
                listen: 127.0.0.1:{{port}}
                pipelines:
                  - file: copy.yaml
                state_dir: {{dir}}/state
                header_timeout_seconds: \(Self.headerTimeout)
                """,
            files: ["copy.yaml": ServeTests.copyPipeline], fileLimit: 1024)
        defer { serve.stop() }
        try serve.waitUntilUp()

        let opened = Date()
        let slow = try SlowClients(count: 2000, port: serve.port, within: 15)
        #expect(slow.descriptors.count == 2000, "only \(slow.descriptors.count) of 2000 connected")
        // The burst is absorbed once the daemon has accepted them all and kept at most its cap (512 by default).
        while slow.openCount > 512 && Date().timeIntervalSince(opened) < 20 { Thread.sleep(forTimeInterval: 0.05) }
        let absorbed = Date().timeIntervalSince(opened)
        #expect(slow.openCount <= 512, "\(slow.openCount) slow connections still open after \(absorbed)s")
        print("2000 slow connections opened in \(Int(slow.settled.timeIntervalSince(opened) * 1000)) ms, burst absorbed after \(Int(absorbed * 1000)) ms")

        // A kubelet probe: a new connection each time, one second to answer.
        var latencies: [Double] = []
        for _ in 0..<10 {
            let started = Date()
            let answer = try RawHTTP.request(port: serve.port, "GET", "/healthz", timeout: 1)
            latencies.append(Date().timeIntervalSince(started))
            #expect(answer.status == 200, "\(answer.head)")
        }
        #expect(latencies.max() ?? 9 < 1)
        print("healthz under \(slow.descriptors.count) slow connections: max \(Int((latencies.max() ?? 0) * 1000)) ms, median \(Int(latencies.sorted()[latencies.count / 2] * 1000)) ms")

        let auth = ["Authorization": "Bearer \(serve.token)"]
        let trigger = try RawHTTP.request(port: serve.port, "POST", "/pipelines/copy/runs", headers: auth, timeout: 2)
        #expect(trigger.status == 202, "\(trigger.body)")
        let id = try JSONValue.parse(trigger.body)["id"]?.stringValue ?? ""
        var run = JSONValue.null
        let runDeadline = Date().addingTimeInterval(20)
        repeat {
            run = try JSONValue.parse(try RawHTTP.request(port: serve.port, "GET", "/runs/\(id)", headers: auth, timeout: 2).body)
            if run["status"] != "running" { break }
            Thread.sleep(forTimeInterval: 0.1)
        } while Date() < runDeadline
        #expect(run["status"] == "completed", "\(run.jsonText)")
        let lines = try String(contentsOfFile: "\(serve.directory)/out/copy.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 200)

        // The daemon held up to its cap of them all along; the rest were closed at once.
        let held = slow.openCount
        #expect(held > 0 && held <= 512, "\(held) slow connections open \(Date().timeIntervalSince(opened))s after the first connected")
        // Those it holds are closed by the header timeout, not before.
        var lastOpen = Date()
        while slow.openCount > 0 && Date().timeIntervalSince(slow.settled) < Self.headerTimeout + 5 {
            lastOpen = Date()
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(slow.openCount == 0, "\(slow.openCount) slow connections still open \(Self.headerTimeout + 5)s after connecting")
        let closedAfter = lastOpen.timeIntervalSince(opened)
        #expect(closedAfter >= Self.headerTimeout - 1, "the last slow connections closed after \(closedAfter)s, before the header timeout")
        #expect(try RawHTTP.request(port: serve.port, "GET", "/healthz", timeout: 1).status == 200)

        // At start the daemon raised its descriptor limit and logged the split.
        let start = serve.stderr.split(separator: "\n").compactMap { try? JSONValue.parse(String($0)) }
            .first { $0["msg"] == "file descriptors" }
        #expect(start?["fd_limit_at_start"] == "1024", "\(serve.stderr.prefix(2000))")
        let limit = Int(start?["fd_limit"]?.stringValue ?? "") ?? 0
        #expect(limit >= 1024 && start?["fd_limit"] == start?["fd_hard_limit"])
        #expect(start?["max_connections"] == "512")
        print("file descriptors: soft limit \(start?["fd_limit_at_start"]?.stringValue ?? "?") at start, \(limit) after")
    }

    /// The sentinel stands for a secret no masking knows: it sits in the sink's
    /// path, so the sink's error message quotes it.
    static func leaky(_ sentinel: String) -> String {
        """
        name: leaky
        source: {plugin: generate, config: {count: 10}}
        sink: {plugin: file, config: {path: "{{dir}}/a-file/\(sentinel)/out.jsonl"}}
        """
    }

    @Test("error text reaches only callers with the token, whatever the case of 'bearer'")
    func errorTextNeedsTheToken() throws {
        let sentinel = "sentinel-\(UUID().uuidString.prefix(12))"
        let serve = try ServeProcess(
            daemonYAML: "listen: 127.0.0.1:{{port}}\npipelines:\n  - file: leaky.yaml\nstate_dir: {{dir}}/state\n",
            files: ["leaky.yaml": Self.leaky(sentinel), "a-file": "not a directory"])
        defer { serve.stop() }
        try serve.waitUntilUp()
        let port = serve.port

        let lower = ["Authorization": "bearer \(serve.token)"]
        let upper = ["Authorization": "BEARER \(serve.token)"]
        let trigger = try RawHTTP.request(port: port, "POST", "/pipelines/leaky/runs", headers: lower, timeout: 5)
        #expect(trigger.status == 202, "lowercase bearer: \(trigger.status) \(trigger.body)")
        let id = try JSONValue.parse(trigger.body)["id"]?.stringValue ?? ""
        let run = try serve.waitForRun(id)
        #expect(run["status"] == "failed", "\(run.jsonText)")

        for path in ["/readyz", "/runs", "/runs/\(id)"] {
            let open = try RawHTTP.request(port: port, "GET", path, timeout: 10)
            #expect(!open.body.contains(sentinel), "GET \(path) without the token shows the secret: \(open.body)")
            #expect(open.body.contains("error details need the API token"), "GET \(path): \(open.body)")
            let wrong = try RawHTTP.request(port: port, "GET", path, headers: ["Authorization": "Bearer wrong"], timeout: 10)
            #expect(!wrong.body.contains(sentinel), "GET \(path) with a wrong token shows the secret")
            for headers in [lower, upper] {
                let trusted = try RawHTTP.request(port: port, "GET", path, headers: headers, timeout: 10)
                #expect(trusted.body.contains(sentinel), "GET \(path) with \(headers["Authorization"]!.prefix(6))…: \(trusted.body)")
            }
        }
        let ready = try JSONValue.parse(try RawHTTP.request(port: port, "GET", "/readyz", timeout: 10).body)
        #expect(ready["pipelines"]?["leaky"]?["problems"]?.arrayValue?.first?.stringValue?.hasPrefix("sink 'file': ") == true)
        let detail = try JSONValue.parse(try RawHTTP.request(port: port, "GET", "/runs/\(id)", timeout: 5).body)
        #expect(detail["report"]?["outcome"] == "failed")
        #expect(detail["report"]?["error"] == detail["error"])
    }

    @Test("a request body over max_body_bytes gets 413 with a JSON error, by Content-Length or chunked")
    func bodyTooLarge() throws {
        let serve = try ServeProcess(
            daemonYAML: "listen: 127.0.0.1:{{port}}\npipelines:\n  - file: copy.yaml\nstate_dir: {{dir}}/state\n",
            files: ["copy.yaml": ServeTests.copyPipeline])
        defer { serve.stop() }
        try serve.waitUntilUp()
        let big = String(repeating: " ", count: 2 << 20)
        let (status, text) = try serve.post("/pipelines/copy/runs", body: big)
        #expect(status == 413, "\(text.prefix(300))")
        #expect(try JSONValue.parse(text)["error"]?.stringValue?.contains("larger than 1048576 bytes") == true, "\(text.prefix(300))")

        let chunked = try RawHTTP.request(
            port: serve.port, "POST", "/pipelines/copy/runs", headers: ["Authorization": "Bearer \(serve.token)"],
            body: Array(big.utf8), chunked: true, timeout: 10)
        #expect(chunked.status == 413, "\(chunked.head)")
        #expect(chunked.head.lowercased().contains("content-type: application/json"))
        #expect(try JSONValue.parse(chunked.body)["limitBytes"] == .integer(1 << 20))
        // Nothing was started, and the daemon still answers.
        #expect(try serve.getJSON("/runs")["runs"] == .array([]))
        #expect(try serve.post("/pipelines/copy/runs", body: "{}").0 == 202)
    }
}
