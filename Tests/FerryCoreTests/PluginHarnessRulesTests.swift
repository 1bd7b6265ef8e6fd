import FerryCore
import FerryPluginKit
import FerryPluginTesting
import Foundation
import Testing

/// The harness holds a plugin to what the host holds it to: the same file
/// trust rules, the sink's own counts, and an instance it can open.
@Suite("Plugin harness rules")
struct PluginHarnessRulesTests {
    /// `ferry plugin test --json`: exit status and each check's status and detail.
    func pluginTest(_ plugin: String, _ extra: [String] = []) throws -> (status: Int32, checks: [String: (status: String, detail: String)], stderr: String) {
        let result = try TestSupport.run(TestSupport.ferryExecutable, ["plugin", "test", plugin, "--json", "--timeout", "60"] + extra)
        let json = try JSONValue.parse(result.stdout)
        var checks: [String: (String, String)] = [:]
        for check in json["checks"]?.arrayValue ?? [] {
            checks[check["id"]?.stringValue ?? "?"] = (check["status"]?.stringValue ?? "?", check["detail"]?.stringValue ?? "")
        }
        return (result.status, checks, result.stderr)
    }

    @Test("the testing library refuses a plugin file others can write, as ferry run does")
    func libraryRefusesWritableFile() throws {
        let directory = try TestSupport.temporaryDirectory("harness-trust")
        let plugin = "\(directory)/libFerryPassthrough.so"
        try FileManager.default.copyItem(atPath: TestSupport.product("libFerryPassthrough.so"), toPath: plugin)
        chmod(plugin, 0o666)
        do {
            _ = try PluginHarness(path: plugin)
            Issue.record("PluginHarness loaded a plugin file with mode 0666")
        } catch {
            #expect("\(error)".contains("writable by others (mode 0666)"), "\(error)")
        }
        var options = ConformanceOptions()
        options.openCloseCycles = 10
        let load = ConformanceSuite(path: plugin, options: options).runAll().first { $0.id == "load" }
        #expect(load?.status == .fail)
        #expect(load?.detail.contains("writable by others") == true, "\(load.map { $0.detail } ?? "no load check")")
        chmod(plugin, 0o755)
        #expect(try PluginHarness(path: plugin).plugin.name == "passthrough")
    }

    @Test("a sink's counts are the ones it returned in ferry_result: inserted and rejected, not the batch size")
    func sinkCountsFromResult() throws {
        let directory = try TestSupport.temporaryDirectory("harness-sink")
        let plugin = "\(directory)/librejecting-sink.so"
        try TestSupport.compilePlugin(source: TestSupport.repoRoot.appendingPathComponent("Tests/Fixtures/rejecting_sink.c").path, output: plugin)
        let report = try pluginTest(plugin)
        let detail = report.checks["sink-write-commit"]?.detail ?? "missing"
        let sent = SampleRecords.standard.count
        #expect(detail.contains("\(sent) records sent: 1 inserted, 0 updated, 0 unchanged, \(sent - 1) rejected"), "\(detail)")
        #expect(detail.contains("only the first record of a batch lands"), "\(detail)")
        #expect(!detail.contains("\(sent) records written"), "\(detail)")
    }

    @Test("a plugin that never opens fails (exit 1), unless the config error is announced with --expect-config-error")
    func failingOpenFails() throws {
        let directory = try TestSupport.temporaryDirectory("harness-open")
        let plugin = try TestSupport.compileFixture(["FAILING_OPEN"], into: directory, name: "libfixture.so")
        let plain = try pluginTest(plugin)
        #expect(plain.status == 1, "\(plain.checks) \(plain.stderr)")
        for id in ["transform-output", "thread-handoff", "open-close-cycles"] {
            #expect(plain.checks[id]?.status == "fail", "\(id): \(plain.checks[id].map { "\($0)" } ?? "missing")")
        }
        #expect(plain.checks["transform-output"]?.detail.contains("did not open with {}") == true)
        #expect(plain.checks["transform-output"]?.detail.contains("hunter2") == false, "the password is masked")

        let expected = try pluginTest(plugin, ["--expect-config-error"])
        #expect(expected.status == 0, "\(expected.checks) \(expected.stderr)")
        #expect(expected.checks["transform-output"]?.status == "skip")
        #expect(expected.checks["transform-output"]?.detail.contains("as expected") == true)
    }
}
