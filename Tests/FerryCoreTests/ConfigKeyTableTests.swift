import FerryCore
import Foundation
import Testing

@Suite("Config key tables: one table per section drives parsing and the docs")
struct ConfigKeyTableTests {
    static let allTables = PipelineLoader.keyTables
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
}
