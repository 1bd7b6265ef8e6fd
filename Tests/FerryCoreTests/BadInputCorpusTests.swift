import Foundation
import Testing

/// Hostile and careless inputs, one file each under Tests/BadInput/<category>/,
/// run against the real `ferry` binary and a real daemon; and a sentinel
/// secret pushed through every field, which must never be printed.
@Suite("Bad-input corpus", .serialized)
struct BadInputCorpusTests {
    static let corpusRoot = TestSupport.repoRoot.appendingPathComponent("Tests/BadInput").path
    static let environment = ProcessInfo.processInfo.environment

    static func corpusFiles() throws -> [String] {
        let files = FileManager.default.enumerator(atPath: corpusRoot)?.compactMap { $0 as? String } ?? []
        return files.filter { $0.hasSuffix(".case") }.sorted()
    }

    static func serverVariable(_ name: String) throws -> String {
        guard let value = environment[name], !value.isEmpty else {
            throw TestFailure("\(name) is not set: run `make test` / scripts/test.sh, which starts the test servers")
        }
        return value
    }

    @Test("every case in Tests/BadInput ends as its file says")
    func corpus() throws {
        let started = Date()
        let files = try Self.corpusFiles()
        #expect(files.count >= 80, "only \(files.count) cases in \(Self.corpusRoot)")
        let plugins = try TestSupport.pluginDirectory(TestSupport.standardPlugins + ["FerryMap", "FerryRegexFilter", "FerryPostgres", "FerryMongo"])
        let cases = try files.map { try BadInputCase(name: $0, text: String(contentsOfFile: "\(Self.corpusRoot)/\($0)", encoding: .utf8)) }

        var serve: ServeProcess?
        if cases.contains(where: { $0.command == "serve-request" }) {
            serve = try ServeProcess(
                daemonYAML: "listen: 127.0.0.1:{{port}}\npipelines:\n  - file: products.yaml\nstate_dir: {{dir}}/state\n",
                files: ["products.yaml": "name: products\nsource: {plugin: generate, config: {count: 100}}\nsink: {plugin: blackhole}\n"])
            try serve!.waitUntilUp()
        }
        defer { serve?.stop() }

        var failures: [String] = []
        var gaps: [String] = []
        var counts: [String: Int] = [:]
        for item in cases {
            counts[String(item.name.prefix { $0 != "/" }), default: 0] += 1
            let problems: [String]
            do {
                problems = try check(item, plugins: plugins, serve: serve)
            } catch {
                problems = ["\(error)"]
            }
            if let gap = item.knownGap {
                gaps.append(problems.isEmpty
                    ? "\(item.name): marked known_gap but now behaves as expected: remove the marker (\(gap))"
                    : "\(item.name): known gap (\(gap)):\n    " + problems.joined(separator: "\n    "))
            } else if !problems.isEmpty {
                failures.append("\(item.name):\n    " + problems.joined(separator: "\n    "))
            }
        }
        let summary = counts.keys.sorted().map { "\($0) \(counts[$0]!)" }.joined(separator: ", ")
        print("bad-input corpus: \(cases.count) cases (\(summary)) in \(String(format: "%.1f", Date().timeIntervalSince(started))) s, \(failures.count) failing, \(gaps.count) known gaps")
        for gap in gaps { print("  \(gap)") }
        if !failures.isEmpty {
            let report = failures.joined(separator: "\n")
            Issue.record("\(failures.count) of \(cases.count) bad-input cases failed:\n\(report)")
        }
    }

    /// Runs one case; returns what differed from its expectations.
    func check(_ item: BadInputCase, plugins: String, serve: ServeProcess?) throws -> [String] {
        let directory = try TestSupport.temporaryDirectory("bad-input")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var placeholders = ["@TMP@": directory, "@PLUGINS@": plugins, "@BUILD@": TestSupport.buildDirectory]
        if let serve {
            placeholders["@TOKEN@"] = serve.token
            placeholders["@TOKEN_UPPER@"] = serve.token.uppercased()
        }
        let needs = item.sections.map(\.text).joined() + item.header.values.joined().joined()
        for (placeholder, variable) in [
            ("@PG_DSN@", "FERRY_TEST_PG_DSN"), ("@PG_HOST@", "FERRY_TEST_PG_HOST"), ("@PG_PORT@", "FERRY_TEST_PG_PORT"),
            ("@PG_USER@", "FERRY_TEST_PG_USER"), ("@PG_DB@", "FERRY_TEST_PG_DB"), ("@MONGO_URI@", "FERRY_TEST_MONGO_URI"),
        ] where needs.contains(placeholder) {
            placeholders[placeholder] = try Self.serverVariable(variable)
        }
        func fill(_ text: String) -> String {
            placeholders.reduce(text) { $0.replacingOccurrences(of: $1.key, with: $1.value) }
        }

        for folder in item.values("mkdir") {
            try FileManager.default.createDirectory(atPath: "\(directory)/\(fill(folder))", withIntermediateDirectories: true)
        }
        for copy in item.values("copy") {
            let parts = fill(copy).split(separator: " ").map(String.init)
            try FileManager.default.copyItem(atPath: parts[0], toPath: "\(directory)/\(parts[1])")
        }
        let isRequest = item.command == "serve-request"
        for (index, section) in item.sections.enumerated() {
            if isRequest && index == 0 { continue }
            // Every file ends with a newline, except one left empty on purpose.
            let text = fill(section.text)
            let bytes = BadInputCase.expand(text.isEmpty ? "" : text + "\n")
            try Data(bytes).write(to: URL(fileURLWithPath: "\(directory)/\(section.name.isEmpty ? "pipeline.yaml" : section.name)"))
        }
        for change in item.values("chmod") {
            let parts = change.split(separator: " ").map(String.init)
            chmod("\(directory)/\(parts[0])", mode_t(parts[1], radix: 8)!)
        }

        if isRequest {
            guard let serve else { throw TestFailure("no daemon") }
            return try checkRequest(item, serve: serve, text: fill(item.sections[0].text))
        }

        let path = fill(item.value("path") ?? "@TMP@/pipeline.yaml")
        let extra = fill(item.value("args") ?? "").split(separator: " ").map(String.init)
        let arguments: [String]
        switch item.command {
        case "validate": arguments = ["validate", path, "--plugins", plugins] + extra
        case "test": arguments = ["test", path, "--plugins", plugins] + extra
        case "run": arguments = ["run", path, "--plugins", plugins, "--no-progress", "--state-dir", "\(directory)/state"] + extra
        case "plugin-test": arguments = ["plugin", "test", path] + extra
        default: throw TestFailure("unknown command '\(item.command)'")
        }
        var environment = Self.environment
        for assignment in item.values("env") {
            let parts = assignment.split(separator: "=", maxSplits: 1).map(String.init)
            environment[parts[0]] = fill(parts.count > 1 ? parts[1] : "")
        }
        let outcome = try BadInputRunner.run(TestSupport.ferryExecutable, arguments, environment: environment, directory: directory, timeout: item.timeout)

        var problems: [String] = []
        if outcome.timedOut { problems.append("still running after \(item.timeout) s: killed") }
        if let expected = item.value("expect_exit"), Int32(expected) != outcome.status {
            problems.append("exit \(outcome.status), expected \(expected)")
        }
        for fragment in item.values("expect_stderr_contains").map(fill) where !outcome.stderr.contains(fragment) {
            problems.append("stderr lacks '\(fragment)'")
        }
        for fragment in item.values("expect_stdout_contains").map(fill) where !outcome.stdout.contains(fragment) {
            problems.append("stdout lacks '\(fragment)'")
        }
        for fragment in item.values("expect_output_lacks").map(fill) where outcome.stdout.contains(fragment) || outcome.stderr.contains(fragment) {
            problems.append("output contains '\(fragment)'")
        }
        if let expected = item.value("expect_stderr_lines") {
            let count = outcome.stderr.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.count
            if Int(expected) != count { problems.append("\(count) lines on stderr, expected \(expected)") }
        }
        if !problems.isEmpty {
            problems.append("stdout: \(outcome.stdout.prefix(600))")
            problems.append("stderr: \(outcome.stderr.prefix(1200))")
        }
        return problems
    }

    /// Sends the case's raw request: the head's lines end in CRLF, `@LENGTH@`
    /// is the body's byte count.
    func checkRequest(_ item: BadInputCase, serve: ServeProcess, text: String) throws -> [String] {
        let split = text.range(of: "\n\n")
        let headText = split.map { String(text[..<$0.lowerBound]) } ?? text
        let body = BadInputCase.expand(split.map { String(text[$0.upperBound...]) } ?? "")
        let head = headText.replacingOccurrences(of: "@LENGTH@", with: "\(body.count)").replacingOccurrences(of: "\n", with: "\r\n") + "\r\n\r\n"
        let response = try BadInputRunner.send(port: serve.port, BadInputCase.expand(head) + body, timeout: item.timeout)
        let status = response.prefixMatch(of: /HTTP\/1\.[01] ([0-9]{3})/).flatMap { Int($0.1) } ?? 0
        var problems: [String] = []
        if let expected = item.value("expect_status"), Int(expected) != status { problems.append("status \(status), expected \(expected)") }
        for fragment in item.values("expect_response_contains") where !response.contains(fragment) {
            problems.append("response lacks '\(fragment)'")
        }
        if !problems.isEmpty { problems.append("response: \(response.prefix(800))") }
        return problems
    }

    // MARK: - The secret sentinel

    /// Every place a pipeline takes a value, with `{V}` where the secret goes.
    static let sentinelFields: [(field: String, yaml: String)] = {
        let source = "source: {plugin: generate, config: {count: 3}}"
        let sink = "sink: {plugin: blackhole}"
        let plain = "\(source)\n\(sink)\n"
        return [
            ("name", "\(plain)name: \"{V}\""),
            ("description", "\(plain)description: \"{V}\""),
            ("mode", "\(plain)mode: \"{V}\""),
            ("batch_size", "\(plain)batch_size: \"{V}\""),
            ("workers", "\(plain)workers: \"{V}\""),
            ("max_in_flight", "\(plain)max_in_flight: \"{V}\""),
            ("read_lanes", "\(plain)read_lanes: \"{V}\""),
            ("checkpoint_interval_ms", "\(plain)checkpoint_interval_ms: \"{V}\""),
            ("schedule", "\(plain)schedule: \"{V}\""),
            ("dead_letters.path", "\(plain)dead_letters: {path: \"{V}\"}"),
            ("dead_letters.max", "\(plain)dead_letters: {max: \"{V}\"}"),
            ("dead_letters.max_ratio", "\(plain)dead_letters: {max_ratio: \"{V}\"}"),
            ("retry.attempts", "\(plain)retry: {attempts: \"{V}\"}"),
            ("retry.initial_delay_ms", "\(plain)retry: {initial_delay_ms: \"{V}\"}"),
            ("retry.max_delay_ms", "\(plain)retry: {max_delay_ms: \"{V}\"}"),
            ("source.plugin", "source: {plugin: \"{V}\"}\n\(sink)"),
            ("transforms[0].plugin", "\(source)\ntransforms: [{plugin: \"{V}\"}]\n\(sink)"),
            ("sink.plugin", "\(source)\nsink: {plugin: \"{V}\"}"),
            ("source.config.count", "source: {plugin: generate, config: {count: \"{V}\"}}\n\(sink)"),
            ("source.config.<unknown key>", "source: {plugin: generate, config: {count: 3, extra: \"{V}\"}}\n\(sink)"),
            ("source.config.path (file)", "source: {plugin: file, config: {path: \"/no/such/dir/{V}\"}}\n\(sink)"),
            ("source.config.format (file)", "source: {plugin: file, config: {path: x.jsonl, format: \"{V}\"}}\n\(sink)"),
            ("sink.config.path (file)", "\(source)\nsink: {plugin: file, config: {path: \"/proc/no-such/{V}\"}}"),
            ("transforms[0].config.match (regex_filter)", "\(source)\ntransforms: [{plugin: regex_filter, config: {match: \"{V}\", rules: []}}]\n\(sink)"),
            ("sink.config.table (postgres)", "\(source)\nsink: {plugin: postgres, config: {dsn: \"postgresql://u@127.0.0.1:1/db\", table: \"{V}\", connect_timeout: 2}}"),
            ("sink.config.dsn (postgres, whole)", "\(source)\nsink: {plugin: postgres, config: {dsn: \"{V}\", table: t, connect_timeout: 2}}"),
            ("sink.config.uri (mongo, whole)", "\(source)\nsink: {plugin: mongo, config: {uri: \"{V}\", database: d, collection: c, server_selection_timeout_ms: 500}}"),
            ("sink.config.collection (mongo)", "\(source)\nsink: {plugin: mongo, config: {uri: \"mongodb://127.0.0.1:1\", database: d, collection: \"{V}\", server_selection_timeout_ms: 500}}"),
        ]
    }()

    @Test("a sentinel secret through ${file:…} or ${VAR}, in any field, a DSN or a URI, never reaches stdout, stderr or the JSON report")
    func secretSentinel() throws {
        let started = Date()
        let core = "Sntl\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12))"
        // '/', '%' and '@' are what URI parsers and maskers trip over.
        let sentinel = "\(core)/p%4@x"
        let plugins = try TestSupport.pluginDirectory(TestSupport.standardPlugins + ["FerryRegexFilter", "FerryPostgres", "FerryMongo"])
        let encoded = "\(core)%2Fp%254%40x"
        let host = try Self.serverVariable("FERRY_TEST_PG_HOST"), port = try Self.serverVariable("FERRY_TEST_PG_PORT")
        let user = try Self.serverVariable("FERRY_TEST_PG_USER"), database = try Self.serverVariable("FERRY_TEST_PG_DB")
        let mongo = try Self.serverVariable("FERRY_TEST_MONGO_HOST") + ":" + Self.serverVariable("FERRY_TEST_MONGO_PORT")

        // (what, secret value, pipeline with {V} where the reference goes)
        var trials = Self.sentinelFields.map { ($0.field, sentinel, $0.yaml) }
        let copy = "source: {plugin: generate, config: {count: 3}}\n"
        trials += [
            ("postgres DSN password, wrong, real server", "postgresql://\(user):\(encoded)@\(host):\(port)/\(database)",
             copy + "sink: {plugin: postgres, config: {dsn: \"{V}\", table: badinput_sentinel}}"),
            ("postgres DSN password, unencoded", "postgresql://\(user):\(sentinel)@\(host):\(port)/\(database)",
             copy + "sink: {plugin: postgres, config: {dsn: \"{V}\", table: badinput_sentinel}}"),
            ("postgres key=value password, wrong", "host=\(host) port=\(port) dbname=\(database) user=\(user) password=\(encoded)",
             copy + "sink: {plugin: postgres, config: {dsn: \"{V}\", table: badinput_sentinel}}"),
            ("postgres DSN password, nothing listening", "postgresql://u:\(encoded)@127.0.0.1:1/db",
             copy + "sink: {plugin: postgres, config: {dsn: \"{V}\", table: t, connect_timeout: 2}}"),
            ("postgres source DSN password, unknown host", "postgresql://u:\(encoded)@no-such-host.invalid/db",
             "source: {plugin: postgres, config: {dsn: \"{V}\", table: t, connect_timeout: 2}}\nsink: {plugin: blackhole}"),
            ("mongo URI password, real server", "mongodb://u:\(encoded)@\(mongo)/badinput?authSource=admin",
             copy + "sink: {plugin: mongo, config: {uri: \"{V}\", database: badinput, collection: sentinel, server_selection_timeout_ms: 1000}}"),
            ("mongo URI password, unencoded", "mongodb://u:\(sentinel)@\(mongo)/badinput",
             copy + "sink: {plugin: mongo, config: {uri: \"{V}\", database: badinput, collection: sentinel, server_selection_timeout_ms: 1000}}"),
            ("mongo URI password, nothing listening", "mongodb://u:\(encoded)@127.0.0.1:1/x",
             copy + "sink: {plugin: mongo, config: {uri: \"{V}\", database: d, collection: c, server_selection_timeout_ms: 500}}"),
        ]

        var leaks: [String] = []
        var runs = 0
        for (what, secret, template) in trials {
            for reference in ["file", "env"] {
                let directory = try TestSupport.temporaryDirectory("sentinel")
                defer { try? FileManager.default.removeItem(atPath: directory) }
                try secret.write(toFile: "\(directory)/secret", atomically: true, encoding: .utf8)
                let yaml = template.replacingOccurrences(of: "{V}", with: reference == "file" ? "${file:\(directory)/secret}" : "${FERRY_SENTINEL_SECRET}")
                try (yaml + "\n").write(toFile: "\(directory)/pipeline.yaml", atomically: true, encoding: .utf8)
                var environment = Self.environment
                environment["FERRY_SENTINEL_SECRET"] = secret
                for arguments in [
                    ["validate", "\(directory)/pipeline.yaml", "--plugins", plugins],
                    ["run", "\(directory)/pipeline.yaml", "--plugins", plugins, "--no-progress", "--output", "json", "--state-dir", "\(directory)/state"],
                ] {
                    let outcome = try BadInputRunner.run(TestSupport.ferryExecutable, arguments, environment: environment, directory: directory, timeout: 30)
                    runs += 1
                    if outcome.timedOut { leaks.append("\(what) via \(reference), ferry \(arguments[0]): still running after 30 s") }
                    for (stream, text) in [("stdout", outcome.stdout), ("stderr", outcome.stderr)] {
                        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where line.contains(core) {
                            leaks.append("\(what) via ${\(reference == "file" ? "file:…" : "VAR")}, ferry \(arguments[0]), \(stream) line \(number + 1): \(line.prefix(400))")
                        }
                    }
                }
            }
        }
        print("secret sentinel: \(trials.count) places × 2 references, \(runs) ferry runs in \(String(format: "%.1f", Date().timeIntervalSince(started))) s, \(leaks.count) leaks")
        if !leaks.isEmpty {
            let report = leaks.joined(separator: "\n")
            Issue.record("the sentinel secret was printed \(leaks.count) times:\n\(report)")
        }
    }
}
