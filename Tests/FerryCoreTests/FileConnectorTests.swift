import FerryCore
import FerryPluginKit
import Foundation
import Testing

@Suite("File connector and the C plugin", .serialized)
struct FileConnectorTests {
    let plugins: String
    let work: String

    init() throws {
        plugins = try TestSupport.pluginDirectory(TestSupport.standardPlugins)
        work = try TestSupport.temporaryDirectory("ferry-files")
    }

    func run(_ yaml: String, store: any StateStore, options: RunOptions = RunOptions()) throws -> RunReport {
        let plan = try TestSupport.plan(yaml, plugins: plugins, file: "\(work)/pipeline.yaml")
        return PipelineRunner(plan: plan, options: options, store: store, deadLetterPath: "\(work)/dead.jsonl", logger: TestSupport.logger).run()
    }

    @Test("JSON Lines round trip keeps every type, and an incremental rerun reads only new lines")
    func roundTripAndIncremental() throws {
        let input = "\(work)/in.jsonl"
        let lines = [
            #"{"_id": {"$oid": "650000000000000000000001"}, "name": "Café ☕", "price": {"$numberDecimal": "19.99"}, "n": 1, "big": {"$numberLong": "9007199254740993"}, "x": 1.5, "ok": true, "none": null, "at": {"$date": "2026-11-25T10:00:00.123Z"}, "tags": ["a", "b"], "nested": {"k": {"deep": 1}}, "bin": {"$binary": {"base64": "AQID", "subType": "00"}}}"#,
            #"{"_id": 2, "name": "second"}"#,
        ]
        try (lines.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
        let yaml = """
            source: {plugin: file, config: {path: \(input)}}
            sink: {plugin: file, config: {path: \(work)/out.jsonl}}
            """
        let store = MemoryStateStore()
        let first = try run(yaml, store: store)
        #expect(first.outcome == .completed)
        #expect(first.statistics.written == 2)
        let written = try String(contentsOfFile: "\(work)/out.jsonl", encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(written.count == 2)
        for (original, copy) in zip(lines, written) {
            let a = try ExtendedJSON.parse(original)
            let b = try ExtendedJSON.parse(copy)
            let left = a.withUnsafeBytes { DocumentView($0).decode() }
            let right = b.withUnsafeBytes { DocumentView($0).decode() }
            #expect(left == right)
        }

        let handle = try #require(FileHandle(forWritingAtPath: input))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"_id": 3, "name": "third"}"#.utf8 + [0x0A]))
        handle.closeFile()
        let second = try run(yaml, store: store)
        #expect(second.statistics.read == 1)
        let all = try String(contentsOfFile: "\(work)/out.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(all.count == 3)
        #expect(all.last?.contains("third") == true)
    }

    @Test("a bad JSON line fails the run with file and line, and nothing after it is checkpointed")
    func badLine() throws {
        let input = "\(work)/bad.jsonl"
        try "{\"a\": 1}\n{\"a\": 2}\n{\"a\": oops}\n{\"a\": 4}\n".write(toFile: input, atomically: true, encoding: .utf8)
        let report = try run(
            """
            source: {plugin: file, config: {path: \(input)}}
            sink: {plugin: blackhole}
            """, store: MemoryStateStore())
        let message = try #require(report.failureMessage)
        #expect(message.contains("\(input):3: invalid JSON"))
        #expect(message.contains("plugin 'file' (source)"))
    }

    @Test("CSV with a header row becomes typed documents")
    func csv() throws {
        let input = "\(work)/products.csv"
        try "sku,name,price,stock,active\nA-1,\"Lamp, small\",12.50,3,true\nA-2,\"He said \"\"hi\"\"\",7,,false\n".write(toFile: input, atomically: true, encoding: .utf8)
        let report = try run(
            """
            source: {plugin: file, config: {path: \(input)}}
            sink: {plugin: file, config: {path: \(work)/csv.jsonl}}
            """, store: MemoryStateStore())
        #expect(report.statistics.written == 2)
        let lines = try String(contentsOfFile: "\(work)/csv.jsonl", encoding: .utf8).split(separator: "\n").map(String.init)
        let first = try ExtendedJSON.parse(lines[0]).withUnsafeBytes { DocumentView($0).decode() }
        #expect(first["name"] == .string("Lamp, small"))
        #expect(first["price"] == .double(12.5))
        #expect(first["stock"] == .int32(3) || first["stock"] == .int64(3))
        #expect(first["active"] == .bool(true))
        let second = try ExtendedJSON.parse(lines[1]).withUnsafeBytes { DocumentView($0).decode() }
        #expect(second["name"] == .string("He said \"hi\""))
        #expect(second["stock"] == .null)
    }

    @Test("a plain C plugin built outside SwiftPM drops in and runs")
    func cPlugin() throws {
        try TestSupport.compilePlugin(
            source: TestSupport.repoRoot.appendingPathComponent("examples/c-plugin/sample.c").path, output: "\(plugins)/libsample.so")
        #expect(try PluginCatalog(directories: [plugins]).resolve("sample").kindNames == ["transform"])
        let report = try run(
            """
            source: {plugin: generate, config: {count: 1000}}
            transforms: [{plugin: sample, config: {every: 10}}]
            sink: {plugin: file, config: {path: \(work)/sampled.jsonl}}
            workers: 1
            """, store: MemoryStateStore())
        #expect(report.outcome == .completed)
        #expect(report.statistics.written == 100)
        #expect(report.statistics.filtered == 900)
        let lines = try String(contentsOfFile: "\(work)/sampled.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 100)
        #expect(lines[1].contains("\"id\" : 10"))

        let invalid = #expect(throws: ConfigErrors.self) {
            try TestSupport.plan(
                """
                source: {plugin: generate}
                transforms: [{plugin: sample, config: {every: 0}}]
                sink: {plugin: blackhole}
                """, plugins: plugins)
        }
        #expect(invalid?.description.contains("transforms[0].config.every: must be at least 1") == true)
    }
}
