import FerryCore
import FerryServer
import Foundation
import Testing

@Suite("Config key tables: one table per section drives parsing and the docs")
struct ConfigKeyTableTests {
    static let allTables = PipelineLoader.keyTables + DaemonConfig.keyTables
    static let referencePath = TestSupport.repoRoot.appendingPathComponent("docs/08-quick-reference.md").path

    /// With FERRY_UPDATE_DOCS=1 the regions are rewritten from the code first.
    @Test("docs/08's key tables list exactly the keys the parsers accept; keys without a table of their own are named in their parent's row")
    func docsListTheCodeKeys() throws {
        var page = try String(contentsOfFile: Self.referencePath, encoding: .utf8)
        if ProcessInfo.processInfo.environment["FERRY_UPDATE_DOCS"] == "1" {
            page = ConfigKeyDocs.regenerate(page, from: Self.allTables)
            try page.write(toFile: Self.referencePath, atomically: true, encoding: .utf8)
        }
        let regions = ConfigKeyDocs.regions(in: page)
        for table in Self.allTables {
            if let parentKey = table.describedInRow {
                let parent = try #require(Self.allTables.first { table.name.hasPrefix($0.name + ".") && $0.describedInRow == nil })
                let row = try #require(regions[parent.name]?.split(separator: "\n").first { $0.hasPrefix("| `\(parentKey)` |") },
                    "docs/08: no row for `\(parentKey)` in keys:\(parent.name)")
                for name in table.names {
                    #expect(row.contains(name), "docs/08: the `\(parentKey)` row does not name `\(name)` (\(table.name))")
                }
                continue
            }
            let region = try #require(regions[table.name], "docs/08 has no <!-- keys:\(table.name) --> region")
            let documented = ConfigKeyDocs.keys(inTable: region)
            let missing = table.names.filter { !documented.contains($0) }
            let extra = documented.filter { !table.contains($0) }
            #expect(missing.isEmpty && extra.isEmpty,
                "keys:\(table.name) in docs/08 lacks \(missing) and has \(extra) the code does not; run this test with FERRY_UPDATE_DOCS=1 to rewrite the region from the code")
        }
    }

    @Test("a docs region is found between its markers and rewritten in place, the text around it kept")
    func regionRewrite() {
        let table = ConfigKeyTable("demo", [ConfigKey("size", default: "3", bounds: .integer(1...9), "how many")])
        let page = "before\n<!-- keys:demo -->\n| `old` | x | y |\n<!-- /keys:demo -->\nafter\n"
        #expect(ConfigKeyDocs.keys(inTable: ConfigKeyDocs.regions(in: page)["demo"] ?? "") == ["old"])
        let rewritten = ConfigKeyDocs.regenerate(page, from: [table])
        #expect(rewritten == "before\n<!-- keys:demo -->\n| key | default | meaning |\n| --- | --- | --- |\n| `size` | 3 | how many (1 to 9) |\n<!-- /keys:demo -->\nafter\n")
        #expect(ConfigKeyDocs.regenerate(rewritten, from: [table]) == rewritten)
    }

    @Test("the pipeline table's bounds are the ones the loader enforces")
    func pipelineBounds() throws {
        let top = PipelineLoader.keyTables[0]
        #expect(top["batch_size"].integerBounds == 1...PipelineConfig.Bounds.batchSize)
        let folder = try TestSupport.temporaryDirectory()
        let path = "\(folder)/p.yaml"
        func errors(_ extra: String) -> String {
            let yaml = "source: {plugin: generate}\nsink: {plugin: blackhole}\n\(extra)\n"
            do {
                _ = try PipelineLoader().parse(yaml: yaml, file: path)
                return ""
            } catch {
                return error.description
            }
        }
        for key in top.keys {
            guard case .integer(let range) = key.bounds else { continue }
            #expect(errors("\(key.name): \(range.upperBound)") == "", "\(key.name)")
            #expect(errors("\(key.name): \(range.upperBound + 1)").contains("\(key.name): must be at most \(range.upperBound)"), "\(key.name)")
            #expect(errors("\(key.name): \(range.lowerBound - 1)").contains("\(key.name): must be at least \(range.lowerBound)"), "\(key.name)")
        }
        #expect(errors("retry: {attempts: 101}").contains("retry.attempts: must be at most 100"))
        #expect(errors("retry: {attempt: 1}").contains("retry.attempt: unknown field (known: attempts, initial_delay_ms, max_delay_ms)"))
    }

    @Test("a pipeline entry's max_memory_mb and stall_timeout_seconds are read and bounded; absent, they are nil")
    func runLimits() throws {
        let folder = try TestSupport.temporaryDirectory()
        let path = "\(folder)/daemon.yaml"
        func entry(_ settings: String) throws -> DaemonConfig.PipelineEntry {
            let config = try DaemonConfig.parse(yaml: "pipelines:\n  - {file: p.yaml\(settings)}\n", file: path, environment: [:])
            return try #require(config.pipelines.first)
        }
        func error(_ settings: String) -> String {
            do {
                _ = try DaemonConfig.parse(yaml: "pipelines:\n  - {file: p.yaml\(settings)}\n", file: path, environment: [:])
                return ""
            } catch {
                return error.description
            }
        }
        let plain = try entry("")
        #expect(plain.maxMemoryMB == nil && plain.stallTimeoutSeconds == nil)
        let limited = try entry(", max_memory_mb: 512, stall_timeout_seconds: 600")
        #expect(limited.maxMemoryMB == 512 && limited.stallTimeoutSeconds == 600)
        #expect(try entry(", max_memory_mb: 16, stall_timeout_seconds: 86400").stallTimeoutSeconds == 86_400)
        #expect(try entry(", max_memory_mb: 1048576, stall_timeout_seconds: 1").maxMemoryMB == 1_048_576)
        #expect(try entry(", stall_timeout_seconds: 30.0").stallTimeoutSeconds == 30)
        #expect(error(", max_memory_mb: 15") == "\(path):2: pipelines[0].max_memory_mb: expected a whole number from 16 to 1048576")
        #expect(error(", max_memory_mb: 1048577").contains("pipelines[0].max_memory_mb: expected a whole number from 16 to 1048576"))
        #expect(error(", max_memory_mb: 1e300").contains("pipelines[0].max_memory_mb: expected a whole number"))
        #expect(error(", stall_timeout_seconds: 0").contains("pipelines[0].stall_timeout_seconds: expected a whole number from 1 to 86400"))
        #expect(error(", stall_timeout_seconds: 86401").contains("pipelines[0].stall_timeout_seconds: expected a whole number from 1 to 86400"))
        #expect(error(", stall_timeout_seconds: 1.5").contains("pipelines[0].stall_timeout_seconds: expected a whole number"))
        #expect(error(", stall_timeout_seconds: inf").contains("pipelines[0].stall_timeout_seconds: expected a whole number"))
        #expect(error(", stall: 5").contains(
            "pipelines[0].stall: unknown key (known: file, dir, schedule, timezone, max_memory_mb, stall_timeout_seconds)"))
    }

    @Test("the daemon's unknown-key error lists the table's keys, sorted")
    func daemonUnknownKey() throws {
        let folder = try TestSupport.temporaryDirectory()
        do {
            _ = try DaemonConfig.parse(yaml: "pipelines: [{file: p.yaml}]\ngrace: 5\n", file: "\(folder)/d.yaml", environment: [:])
            Issue.record("an unknown key was accepted")
        } catch {
            let known = DaemonConfig.keyTables[0].names.sorted().joined(separator: ", ")
            #expect(error.description == "\(folder)/d.yaml:2: grace: unknown key (known: \(known))")
        }
    }
}
