import CFerryPlugin
import FerryCore
import FerryPluginKit
import Foundation
import Testing

@Suite("HostedInstance keeps what its plugin points at alive")
struct HostedInstanceLifetimeTests {
    @Test("a cancel flag passed inline lives as long as the instance: a later, unrelated cancelled flag is not what the plugin sees")
    func inlineCancelFlag() throws {
        let plugins = try TestSupport.pluginDirectory(["FerryFile", "FerryBlackhole"])
        let folder = try TestSupport.temporaryDirectory("lifetime")
        let lines = (1...500).map { "{\"id\": \($0)}" }.joined(separator: "\n") + "\n"
        try lines.write(toFile: "\(folder)/in.jsonl", atomically: true, encoding: .utf8)
        // The file source checks the cancel flag as it reads.
        let plan = try TestSupport.plan(
            "name: lifetime\nsource: {plugin: file, config: {path: \(folder)/in.jsonl, format: jsonl}}\nsink: {plugin: blackhole}\n",
            plugins: plugins)
        let source = try HostedInstance(
            plugin: plan.source.plugin,
            options: InstanceOptions(kind: .source, stage: "source", configJSON: plan.source.config.configJSON, batchSize: 100),
            cancel: CancelFlag(), logger: TestSupport.logger)
        defer { source.close() }
        // Freed memory is soon reused: fill it with flags that say "cancelled".
        let others = (0..<2000).map { _ in CancelFlag() }
        others.forEach { $0.cancel() }
        var read = 0
        var batch = ferry_batch()
        while try source.read(&batch) {
            read += Int(batch.count)
            source.release(&batch)
        }
        #expect(read == 500, "the source saw a cancel nobody made (read \(read))")
        _ = others.count
    }
}
