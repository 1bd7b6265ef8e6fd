import FerryCore
import FerryPluginKit
import Foundation
import Testing

/// `ferry plugin test` on a plugin declaring the ABI 1.1 capabilities: the
/// function each one needs, diff_info's key, read-back, digest, select_buckets
/// and delete_keys, on Tests/Fixtures/diff_sink.c with one promise broken at a time.
@Suite("Plugin harness: diff and repair")
struct PluginHarnessDiffTests {
    /// Builds diff_sink.c with `define` and runs `ferry plugin test --json` on it.
    func pluginTest(_ define: String?) throws -> (status: Int32, checks: [String: (status: String, detail: String)], stderr: String) {
        let directory = try TestSupport.temporaryDirectory("harness-diff")
        let plugin = "\(directory)/libdiffsink.so"
        try TestSupport.compilePlugin(
            source: TestSupport.repoRoot.appendingPathComponent("Tests/Fixtures/diff_sink.c").path, output: plugin,
            defines: define.map { [$0] } ?? [])
        let result = try TestSupport.run(TestSupport.ferryExecutable, ["plugin", "test", plugin, "--json", "--timeout", "60"])
        let json = try JSONValue.parse(result.stdout)
        var checks: [String: (String, String)] = [:]
        for check in json["checks"]?.arrayValue ?? [] {
            checks[check["id"]?.stringValue ?? "?"] = (check["status"]?.stringValue ?? "?", check["detail"]?.stringValue ?? "")
        }
        return (result.status, checks, result.stderr)
    }

    @Test("a sink keeping every 1.1 promise passes, and the diff-repair check says what it exercised")
    func keepsPromises() throws {
        let report = try pluginTest(nil)
        #expect(report.status == 0, "\(report.checks) \(report.stderr)")
        let diff = report.checks["diff-repair"]
        #expect(diff?.status == "pass")
        for part in ["key [_id]", "wrote 6, read back 6 holding every written key", "agreeing with read-back and select_buckets",
                     "delete_keys counted 1, then 0, and the key no longer read back"] {
            #expect(diff?.detail.contains(part) == true, "\(part): \(diff?.detail ?? "missing")")
        }
    }

    @Test("a sink whose config names no key passes: read-back is compared by whole records, digest and delete are left out, and the detail says so")
    func withoutKey() throws {
        let report = try pluginTest("NO_KEY")
        #expect(report.status == 0, "\(report.checks) \(report.stderr)")
        let diff = report.checks["diff-repair"]
        #expect(diff?.status == "pass")
        for part in ["diff_info gives no key with this config", "read back 6 holding every written record", "delete_keys not exercised"] {
            #expect(diff?.detail.contains(part) == true, "\(part): \(diff?.detail ?? "missing")")
        }
        #expect(diff?.detail.contains("digest:") == false, "\(diff?.detail ?? "missing")")
    }

    @Test("a plugin without the 1.1 capabilities skips the check")
    func withoutCapabilities() throws {
        let result = try TestSupport.run(
            TestSupport.ferryExecutable, ["plugin", "test", TestSupport.product("libFerryBlackhole.so"), "--json", "--timeout", "60"])
        let checks = try JSONValue.parse(result.stdout)["checks"]?.arrayValue ?? []
        let diff = checks.first { $0["id"]?.stringValue == "diff-repair" }
        #expect(diff?["status"]?.stringValue == "skip")
        #expect(diff?["detail"]?.stringValue == "declares none of read-back, digest and delete (ABI 1.1)")
    }

    @Test(
        "a broken 1.1 promise fails the right check, naming what is wrong",
        arguments: [
            ("NO_DIFF_INFO", "descriptor", "declares FERRY_CAP_READ_BACK but diff_info is NULL; declares FERRY_CAP_DIGEST but diff_info is NULL"),
            ("NO_DIFF_INFO", "diff-repair", "declares FERRY_CAP_READ_BACK but diff_info is NULL"),
            ("NO_DELETE_KEYS", "descriptor", "declares FERRY_CAP_DELETE but delete_keys is NULL"),
            ("BAD_KEY_JSON", "diff-repair", "diff_info failed, internal error: key_json is not a JSON array of strings: _id"),
            ("LOSES_RECORDS", "diff-repair", "read-back after writing 6 records lacks 5 of them by key, e.g. _id"),
            ("SELECT_IGNORED", "diff-repair", "read-back yielded 6 records; digest counts 1 in that bucket"),
        ])
    func brokenPromise(define: String, check: String, reason: String) throws {
        let report = try pluginTest(define)
        #expect(report.status == 1, "\(define): \(report.checks) \(report.stderr)")
        #expect(report.checks[check]?.status == "fail", "\(define): \(report.checks[check].map { "\($0)" } ?? "missing")")
        #expect(report.checks[check]?.detail.contains(reason) == true, "\(define): \(report.checks[check]?.detail ?? "missing")")
        let others = report.checks.filter { $0.value.status == "fail" && !["descriptor", "diff-repair"].contains($0.key) }
        #expect(others.isEmpty, "\(define): only the 1.1 checks fail: \(others)")
    }
}
