import CFerryPlugin
import FerryCore
import FerryPluginKit
import Foundation
import Testing

@Suite("ferry command line", .serialized)
struct CLITests {
    @Test("--help lists the commands and the exit codes")
    func help() throws {
        let result = try TestSupport.run(TestSupport.ferryExecutable, ["--help"])
        #expect(result.status == 0)
        for word in ["run", "validate", "plugins", "state", "Exit codes"] { #expect(result.stdout.contains(word)) }
    }

    @Test("validate exits 2 with file and line for a bad pipeline, 0 for a good one")
    func validate() throws {
        let directory = try TestSupport.temporaryDirectory()
        let plugins = try TestSupport.pluginDirectory(TestSupport.standardPlugins)
        try "source: {plugin: generate, config: {count: -1}}\nsink: {plugin: blackhole}\n".write(toFile: "\(directory)/bad.yaml", atomically: true, encoding: .utf8)
        try "source: {plugin: generate}\nsink: {plugin: blackhole}\n".write(toFile: "\(directory)/good.yaml", atomically: true, encoding: .utf8)
        let bad = try TestSupport.run(TestSupport.ferryExecutable, ["validate", "\(directory)/bad.yaml", "--plugins", plugins])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("bad.yaml:1: source.config.count: must be at least 0"))
        let good = try TestSupport.run(TestSupport.ferryExecutable, ["validate", "\(directory)/good.yaml", "--plugins", plugins])
        #expect(good.status == 0)
    }

    @Test("validate --connect opens the source and sinks: exit 1 naming the stage that fails, a JSON line per stage, a daemon file's pipelines too")
    func validateConnect() throws {
        let directory = try TestSupport.temporaryDirectory()
        let plugins = try TestSupport.pluginDirectory(TestSupport.standardPlugins)
        try "not a directory".write(toFile: "\(directory)/a-file", atomically: true, encoding: .utf8)
        try "name: good\nsource: {plugin: generate}\nsink: {plugin: blackhole}\n".write(toFile: "\(directory)/good.yaml", atomically: true, encoding: .utf8)
        // Statically valid; only opening the sink finds that its folder is a file.
        try "name: broken\nsource: {plugin: generate}\nsink: {plugin: file, config: {path: \(directory)/a-file/out.jsonl}}\n"
            .write(toFile: "\(directory)/broken.yaml", atomically: true, encoding: .utf8)
        try "listen: 127.0.0.1:0\npipelines:\n  - file: good.yaml\n  - file: broken.yaml\n"
            .write(toFile: "\(directory)/daemon.yaml", atomically: true, encoding: .utf8)

        let plain = try TestSupport.run(TestSupport.ferryExecutable, ["validate", "\(directory)/broken.yaml", "--plugins", plugins])
        #expect(plain.status == 0, "without --connect nothing is opened: \(plain.stderr)")
        let good = try TestSupport.run(TestSupport.ferryExecutable, ["validate", "--connect", "\(directory)/good.yaml", "--plugins", plugins])
        #expect(good.status == 0, "\(good.stderr)")
        #expect(good.stdout.contains("sink 'blackhole': opens and passes its check"), "\(good.stdout)")
        let broken = try TestSupport.run(TestSupport.ferryExecutable, ["validate", "--connect", "\(directory)/broken.yaml", "--plugins", plugins])
        #expect(broken.status == 1)
        #expect(broken.stderr.contains("broken.yaml: sink 'file':") && broken.stderr.contains("not a directory"), "\(broken.stderr)")

        let json = try TestSupport.run(
            TestSupport.ferryExecutable, ["validate", "--connect", "--output", "json", "\(directory)/daemon.yaml", "--plugins", plugins])
        #expect(json.status == 1)
        let lines = try json.stdout.split(separator: "\n").map { try JSONValue.parse(String($0)) }
        #expect(lines.count == 4, "source and sink of each pipeline: \(json.stdout)")
        #expect(lines.filter { $0["ok"] == .bool(false) }.map { $0["pipeline"] } == [.string("broken")], "\(json.stdout)")
        #expect(lines.first { $0["ok"] == .bool(false) }?["subject"] == .string("sink 'file'"))

        let misuse = try TestSupport.run(TestSupport.ferryExecutable, ["validate", "--output", "json", "\(directory)/good.yaml", "--plugins", plugins])
        #expect(misuse.status == 64 && misuse.stderr.contains("--output json goes with --connect"), "\(misuse.stderr)")
    }

    @Test("a failed run's JSON report carries the typed failure, and the outcome words are the daemon's")
    func typedFailure() throws {
        let directory = try TestSupport.temporaryDirectory()
        let plugins = try TestSupport.pluginDirectory(TestSupport.standardPlugins)
        // A file sink whose folder is a regular file: a plugin error at write, after the plan loaded.
        try "not a folder".write(toFile: "\(directory)/a-file", atomically: true, encoding: .utf8)
        let pipeline = "\(directory)/refused.yaml"
        try """
            name: refused
            source: {plugin: generate, config: {count: 10}}
            sink: {plugin: file, config: {path: "\(directory)/a-file/out.jsonl"}}
            """.write(toFile: pipeline, atomically: true, encoding: .utf8)
        let result = try TestSupport.run(
            TestSupport.ferryExecutable, ["run", pipeline, "--plugins", plugins, "--state-dir", "\(directory)/state", "--output", "json"])
        #expect(result.status == 1, "\(result.stderr)")
        let report = try JSONValue.parse(result.stdout)
        #expect(report["outcome"] == "failed")
        // The sink says its path cannot work (FERRY_ERR_CONFIG): a config failure, which no retry fixes.
        #expect(report["failure"]?["kind"] == "config", "\(result.stdout)")
        #expect(report["failure"]?["status"] == .integer(Int64(FERRY_ERR_CONFIG)), "\(result.stdout)")
        #expect(report["failure"]?["plugin"] == "file", "\(result.stdout)")
        #expect(report["failure"]?["stage"] == "sink", "\(result.stdout)")
        #expect(report["failure"]?["call"] != nil, "\(result.stdout)")
        #expect(report["error"]?.stringValue?.contains("plugin 'file' (sink)") == true, "\(result.stdout)")
        #expect(!result.stdout.contains("interrupted"))
    }

    @Test("run, dry run as JSON, state show/reset and the dead-letter exit code")
    func run() throws {
        let directory = try TestSupport.temporaryDirectory()
        let plugins = try TestSupport.pluginDirectory(TestSupport.standardPlugins)
        let pipeline = "\(directory)/p.yaml"
        try "name: cli\nsource: {plugin: generate, config: {count: 300}}\nsink: {plugin: file, config: {path: \(directory)/out.jsonl}}\n"
            .write(toFile: pipeline, atomically: true, encoding: .utf8)
        let dry = try TestSupport.run(TestSupport.ferryExecutable, ["run", pipeline, "--plugins", plugins, "--dry-run", "--output", "json"])
        #expect(dry.status == 0)
        let report = try JSONSerialization.jsonObject(with: Data(dry.stdout.utf8)) as? [String: Any]
        #expect(report?["dryRun"] as? Bool == true)
        #expect(report?["inserted"] as? Int == 300)
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/out.jsonl"))
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/.ferry/cli.state.json"))
        // For people: the first records as a table, then the would-counts.
        let table = try TestSupport.run(TestSupport.ferryExecutable, ["run", pipeline, "--plugins", plugins, "--dry-run", "--sample", "2"])
        let lines = table.stdout.split(separator: "\n").map(String.init)
        let header = try #require(lines.firstIndex { $0.hasPrefix("  id ") })
        #expect(lines[header].split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) } == ["id", "sku", "category", "price", "stock"])
        #expect(lines[header + 1].contains("-+-"))
        #expect(lines[header + 2].hasPrefix("  0  | SKU-00000000 | books"))
        #expect(lines[header + 4].hasPrefix("would insert 300, update 0, leave unchanged 0, dead-letter 0"))

        let real = try TestSupport.run(TestSupport.ferryExecutable, ["run", pipeline, "--plugins", plugins, "--no-progress"])
        #expect(real.status == 0)
        #expect(real.stdout.contains("written 300"))
        let shown = try TestSupport.run(TestSupport.ferryExecutable, ["state", "show", pipeline])
        #expect(shown.stdout.contains("\"records\" : 300"))
        let reset = try TestSupport.run(TestSupport.ferryExecutable, ["state", "reset", pipeline])
        #expect(reset.stdout.contains("reset 'cli' (all shards) in \(directory)/.ferry"), "\(reset.stdout)")
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/.ferry/cli.state.json"))

        try "name: dl\nsource: {plugin: generate, config: {count: 100}}\nsink: {plugin: blackhole, config: {reject_every: 50}}\n"
            .write(toFile: "\(directory)/dl.yaml", atomically: true, encoding: .utf8)
        let rejected = try TestSupport.run(TestSupport.ferryExecutable, ["run", "\(directory)/dl.yaml", "--plugins", plugins, "--no-progress"])
        #expect(rejected.status == 3)
        #expect(rejected.stdout.contains("dead letters: 2 in"))
    }

    @Test("the quickstart validates and its own tests pass")
    func quickstart() throws {
        let pipeline = TestSupport.repoRoot.appendingPathComponent("examples/quickstart.yaml").path
        let plugins = try TestSupport.pluginDirectory(TestSupport.standardPlugins + ["FerryMap", "FerryRegexFilter"])
        let validate = try TestSupport.run(TestSupport.ferryExecutable, ["validate", pipeline, "--plugins", plugins])
        #expect(validate.status == 0)
        let test = try TestSupport.run(TestSupport.ferryExecutable, ["test", pipeline, "--plugins", plugins])
        #expect(test.status == 0)
        #expect(test.stdout.contains("3 passed, 0 failed"))
    }

    @Test("SIGINT stops the run, saves the checkpoint and exits 130")
    func interrupt() throws {
        let directory = try TestSupport.temporaryDirectory()
        let plugins = try TestSupport.pluginDirectory(TestSupport.standardPlugins)
        let pipeline = "\(directory)/slow.yaml"
        try "name: slow\nsource: {plugin: generate, config: {count: 1000000}}\nsink: {plugin: blackhole, config: {delay_ms: 10}}\n"
            .write(toFile: pipeline, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestSupport.ferryExecutable)
        process.arguments = ["run", pipeline, "--plugins", plugins, "--no-progress"]
        process.standardOutput = Pipe()
        process.standardError = Pipe()
        try process.run()
        // Signal only once the run is under way: the first checkpoint proves it.
        let stateFile = "\(directory)/.ferry/slow.state.json"
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: stateFile) { Thread.sleep(forTimeInterval: 0.05) }
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        #expect(process.terminationStatus == 130)
        let state = try String(contentsOfFile: "\(directory)/.ferry/slow.state.json", encoding: .utf8)
        #expect(state.contains("\"complete\" : false"))
    }
}
