import FerryCore
import FerryPluginKit
import FerryPluginTesting
import Foundation
import Testing

/// `ferry plugin test` over the real CLI (each check in a child process), the
/// built-in plugins, deliberately broken fixtures, and the testing library.
@Suite("Plugin conformance")
struct PluginConformanceTests {
    struct Report {
        var status: Int32
        var checks: [String: (status: String, detail: String)]
        var stderr: String
    }

    /// Runs `ferry plugin test --json` and parses the report.
    func conformance(_ plugin: String, config: String? = nil, extra: [String] = []) throws -> Report {
        var arguments = ["plugin", "test", plugin, "--json"] + extra
        var configPath: String?
        if let config {
            let directory = try TestSupport.temporaryDirectory("conformance")
            configPath = "\(directory)/config.yaml"
            try config.write(toFile: configPath!, atomically: true, encoding: .utf8)
            arguments += ["--config", configPath!]
        }
        let result = try TestSupport.run(TestSupport.ferryExecutable, arguments)
        let json = try JSONValue.parse(result.stdout)
        var checks: [String: (String, String)] = [:]
        for check in json["checks"]?.arrayValue ?? [] {
            checks[check["id"]?.stringValue ?? "?"] = (check["status"]?.stringValue ?? "?", check["detail"]?.stringValue ?? "")
        }
        return Report(status: result.status, checks: checks, stderr: result.stderr)
    }

    func expectAllPass(_ report: Report, mustRun: [String], _ comment: String) {
        let failures = report.checks.filter { $0.value.status == "fail" }.map { "\($0.key): \($0.value.detail)" }
        #expect(failures.isEmpty, "\(comment): \(failures)")
        #expect(report.status == 0, "\(comment): exit \(report.status) \(report.stderr)")
        for id in mustRun {
            #expect(report.checks[id]?.status == "pass", "\(comment): \(id) did not run and pass: \(report.checks[id].map { "\($0)" } ?? "missing")")
        }
        #expect(report.checks.count == 15, "\(comment): \(report.checks.count) checks")
    }

    static let everywhere = ["load", "descriptor", "config-schema", "open-empty-config", "open-invalid-config", "close-after-failed-open"]

    @Test("every built-in plugin passes the suite, with the checks for its kinds run, not skipped")
    func builtIns() throws {
        let data = try TestSupport.temporaryDirectory("conformance-data")
        try FileManager.default.copyItem(
            atPath: TestSupport.repoRoot.appendingPathComponent("examples/data/products.jsonl").path, toPath: "\(data)/products.jsonl")
        let cases: [(String, String?, [String])] = [
            ("libFerryFile.so", "path: \(data)/products.jsonl\n",
             ["source-batches", "source-resume", "source-future-state", "sink-write-commit", "sink-round-trip", "thread-handoff", "open-close-cycles"]),
            ("libFerryGenerate.so", "count: 50\n", ["source-batches", "source-resume", "source-future-state", "thread-handoff", "open-close-cycles"]),
            ("libFerryBlackhole.so", nil, ["sink-write-commit", "thread-handoff", "open-close-cycles"]),
            ("libFerryPassthrough.so", nil, ["transform-output", "thread-handoff", "open-close-cycles"]),
            ("libFerryMap.so", "steps:\n  - rename: {from: name, to: title}\n  - cast: {field: stock, to: string}\n",
             ["transform-output", "thread-handoff", "open-close-cycles"]),
        ]
        for (plugin, config, mustRun) in cases {
            let report = try conformance(TestSupport.product(plugin), config: config)
            expectAllPass(report, mustRun: Self.everywhere + mustRun, plugin)
        }
    }

    @Test("the regex filter passes the suite")
    func regexFilter() throws {
        let report = try conformance(
            TestSupport.product("libFerryRegexFilter.so"),
            config: "rules:\n  - {field: category, include: \"^(books|games)$\"}\n")
        expectAllPass(report, mustRun: Self.everywhere + ["transform-output", "thread-handoff", "open-close-cycles"], "regex_filter")
    }

    @Test("the PostgreSQL connector passes the suite against the test server, round trip included")
    func postgres() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let dsn = environment["FERRY_TEST_PG_DSN"], !dsn.isEmpty else {
            throw TestFailure("FERRY_TEST_PG_DSN is not set: run `make test` / scripts/test.sh, which starts the test servers")
        }
        let table = "conformance_\(UUID().uuidString.prefix(8).lowercased())"
        let report = try conformance(
            TestSupport.product("libFerryPostgres.so"),
            config: """
                dsn: "\(dsn)"
                table: \(table)
                key: [_id]
                cursor: updated_at
                timestamps: datetime
                create_table: ["_id bigint", "sku text", "name text", "price numeric(10,2)", "stock bigint", "category text",
                               "tags jsonb", "updated_at timestamptz", "dimensions jsonb", "active boolean"]
                """)
        expectAllPass(
            report,
            mustRun: Self.everywhere + ["sink-write-commit", "sink-round-trip", "source-batches", "source-resume", "source-future-state", "thread-handoff", "open-close-cycles"],
            "postgres")
    }

    @Test("the MongoDB connector passes the suite against the test server, round trip included")
    func mongo() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let uri = environment["FERRY_TEST_MONGO_URI"], !uri.isEmpty else {
            throw TestFailure("FERRY_TEST_MONGO_URI is not set: run `make test` / scripts/test.sh, which starts the test servers")
        }
        let report = try conformance(
            TestSupport.product("libFerryMongo.so"),
            config: "uri: \"\(uri)\"\ndatabase: conformance\ncollection: c_\(UUID().uuidString.prefix(8).lowercased())\n")
        expectAllPass(
            report,
            mustRun: Self.everywhere + ["sink-write-commit", "sink-round-trip", "source-batches", "source-resume", "source-future-state", "thread-handoff", "open-close-cycles"],
            "mongo")
    }

    @Test("the plain-C example plugin passes the suite")
    func cExample() throws {
        let directory = try TestSupport.temporaryDirectory("conformance-c")
        let plugin = "\(directory)/libsample.so"
        try TestSupport.compilePlugin(source: TestSupport.repoRoot.appendingPathComponent("examples/c-plugin/sample.c").path, output: plugin)
        expectAllPass(try conformance(plugin, config: "every: 2\n"), mustRun: Self.everywhere + ["transform-output"], "sample.c")
    }

    @Test(
        "a broken plugin is caught, with the right check and reason, and the harness survives",
        arguments: [
            ("CRASH_IN_OPEN", "open-empty-config", "crashed with SIGSEGV (signal 11) during open()"),
            ("INVALID_BSON", "transform-output", "record 0 is not valid BSON"),
            ("LEAK", "open-close-cycles", "resident memory grew by"),
            ("WRITES_STDOUT", "transform-output", "the plugin wrote to stdout"),
            ("FAILING_OPEN", "open-empty-config", "PASS"),
        ])
    func brokenFixtures(define: String, check: String, reason: String) throws {
        let directory = try TestSupport.temporaryDirectory("conformance-broken")
        let plugin = try TestSupport.compileFixture([define], into: directory, name: "libbroken.so")
        let report = try conformance(plugin, extra: ["--timeout", "60"])
        #expect(report.checks.count == 15, "every check reported even after a crash: \(report.checks.keys.sorted())")
        if reason == "PASS" {
            // A plugin whose open fails cleanly is doing its job on this check.
            #expect(report.checks[check]?.status == "pass")
            return
        }
        #expect(report.status == 1)
        #expect(report.checks[check]?.status == "fail")
        #expect(report.checks[check]?.detail.contains(reason) == true, "\(define): \(report.checks[check].map { $0.detail } ?? "no result")")
        #expect(report.checks["load"]?.status == "pass")
    }

    @Test("a file that is not a plugin fails the load check and skips the rest with the reason")
    func notAPlugin() throws {
        let directory = try TestSupport.temporaryDirectory("conformance-text")
        let path = "\(directory)/libtext.so"
        try "hello".write(toFile: path, atomically: true, encoding: .utf8)
        let report = try conformance(path)
        #expect(report.status == 1)
        #expect(report.checks["load"]?.status == "fail")
        #expect(report.checks["descriptor"]?.status == "skip")
        #expect(report.checks["descriptor"]?.detail.contains("did not load") == true)
    }

    @Test("the human report names each check and ends with the counts")
    func textReport() throws {
        let result = try TestSupport.run(TestSupport.ferryExecutable, ["plugin", "test", TestSupport.product("libFerryPassthrough.so")])
        #expect(result.status == 0)
        #expect(result.stdout.contains("passthrough 1.0.0 (transform)"))
        #expect(result.stdout.contains("PASS  transform-output"))
        #expect(result.stdout.contains("15 checks: 9 passed, 0 failed, 6 skipped"))
    }

    // MARK: - The library, in process

    @Test("the testing library feeds batches and collects outputs and dead letters")
    func harnessInProcess() throws {
        let harness = try PluginHarness(path: TestSupport.product("libFerryMap.so"))
        let map = try harness.open(.transform, config: #"{"steps": [{"cast": {"field": "stock", "to": "integer"}}]}"#)
        defer { map.close() }
        let output = try map.transform([
            try Record(json: #"{"sku": "a", "stock": "12"}"#),
            try Record(json: #"{"sku": "b", "stock": "twelve"}"#),
        ])
        #expect(output.records.map(\.json) == [#"{ "sku" : "a", "stock" : 12 }"#])
        #expect(output.rejects.count == 1)
        #expect(output.rejects.first?.index == 1)
        #expect(output.rejects.first?.reason.contains("stock") == true)

        let generate = try PluginHarness(path: TestSupport.product("libFerryGenerate.so"))
        let source = try generate.open(.source, config: #"{"count": 5}"#, batchSize: 2)
        defer { source.close() }
        let (batches, exhausted) = try source.readAll()
        #expect(exhausted)
        #expect(batches.map(\.records.count) == [2, 2, 1])
    }

    @Test("the conformance suite runs in process too, for authors' own tests")
    func suiteInProcess() throws {
        var options = ConformanceOptions()
        options.sourceConfig = #"{"count": 20}"#
        options.openCloseCycles = 200
        let results = ConformanceSuite(path: TestSupport.product("libFerryGenerate.so"), options: options).runAll()
        #expect(results.filter { $0.status == .fail }.isEmpty, "\(results.filter { $0.status == .fail })")
        #expect(results.first { $0.id == "source-resume" }?.status == .pass)
    }

    @Test("a config schema that is not JSON Schema is named field by field")
    func schemaLint() throws {
        let schema = try JSONValue.parse(#"{"type": "object", "properties": {"a": {"type": "text"}, "b": 3}, "required": ["c"]}"#)
        let problems = SchemaLint.problems(in: schema)
        #expect(problems.contains("$.properties.a.type: unknown type 'text'"))
        #expect(problems.contains("$.properties.b: a schema must be an object or a boolean (got integer)"))
        #expect(problems.contains("$.required: 'c' is required but not among the properties"))
        #expect(SchemaLint.problems(in: try JSONValue.parse(#"{"type": "object", "properties": {"a": {"type": ["string", "null"]}}}"#)).isEmpty)
    }
}

/// `ferry plugin new` projects build as generated and pass the suite.
@Suite("Plugin scaffolding")
struct PluginScaffoldingTests {
    static let mustRun: [String: [String]] = [
        "source": ["source-batches", "source-resume", "source-future-state", "thread-handoff", "open-close-cycles"],
        "sink": ["sink-write-commit", "thread-handoff", "open-close-cycles"],
        "transform": ["transform-output", "thread-handoff", "open-close-cycles"],
    ]

    func scaffold(_ name: String, kind: String, lang: String) throws -> String {
        let parent = try TestSupport.temporaryDirectory("plugin-new")
        let created = try TestSupport.run(
            TestSupport.ferryExecutable,
            ["plugin", "new", name, "--kind", kind, "--lang", lang, "--dir", parent, "--ferry-path", TestSupport.repoRoot.path])
        #expect(created.status == 0, "\(created.stderr)")
        return "\(parent)/\(name)"
    }

    func expectPasses(_ library: String, project: String, kind: String) throws {
        // In the project, as its README says: a sink's sample config writes beside it, not into the repository.
        let report = try TestSupport.run(
            TestSupport.ferryExecutable, ["plugin", "test", library, "--config", "\(project)/sample-config.yaml", "--json"],
            currentDirectory: project)
        #expect(report.status == 0, "\(report.stdout)\(report.stderr)")
        let json = try JSONValue.parse(report.stdout)
        let statuses = Dictionary(
            uniqueKeysWithValues: (json["checks"]?.arrayValue ?? []).map { ($0["id"]?.stringValue ?? "", $0["status"]?.stringValue ?? "") })
        for id in PluginConformanceTests.everywhere + Self.mustRun[kind]! {
            #expect(statuses[id] == "pass", "\(kind) \(library): \(id) is \(statuses[id] ?? "missing")")
        }
    }

    @Test("C projects of every kind build with make and pass without an edit")
    func cProjects() throws {
        for kind in ["source", "sink", "transform"] {
            let project = try scaffold("c-\(kind)", kind: kind, lang: "c")
            // The Makefile finds an installed header itself; this tree's is passed in.
            let make = try TestSupport.run(
                "/usr/bin/env", ["make", "-C", project, "FERRY_CFLAGS=-I\(TestSupport.repoRoot.path)/Sources/CFerryPlugin/include"])
            #expect(make.status == 0, "make: \(make.stdout)\(make.stderr)")
            try expectPasses("\(project)/libc-\(kind).so", project: project, kind: kind)
        }
    }

    @Test("Swift projects of every kind build against the SDK and pass without an edit")
    func swiftProjects() throws {
        for kind in ["source", "sink", "transform"] {
            let name = "swift-\(kind)"
            let project = try scaffold(name, kind: kind, lang: "swift")
            let build = try TestSupport.run("/usr/bin/env", ["swift", "build", "--package-path", project])
            #expect(build.status == 0, "swift build: \(build.stdout.suffix(2000))\(build.stderr.suffix(2000))")
            let camel = name.split(separator: "-").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
            try expectPasses("\(project)/.build/debug/lib\(camel).so", project: project, kind: kind)
        }
    }

    @Test("a bad name or an existing directory is refused")
    func refusals() throws {
        let bad = try TestSupport.run(TestSupport.ferryExecutable, ["plugin", "new", "Bad Name", "--kind", "source"])
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("is not a plugin name"))
        let project = try scaffold("twice", kind: "sink", lang: "c")
        let again = try TestSupport.run(
            TestSupport.ferryExecutable,
            ["plugin", "new", "twice", "--kind", "sink", "--lang", "c", "--dir", (project as NSString).deletingLastPathComponent,
             "--ferry-path", TestSupport.repoRoot.path])
        #expect(again.status == 2)
        #expect(again.stderr.contains("already exists"))
    }
}
