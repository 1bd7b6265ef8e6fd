#if canImport(Glibc)
import Glibc
#endif
import FerryPluginKit

/// Accepts and discards records, counting them. Its knobs (delay, failures,
/// rejects) let tests and benchmarks shape a sink's behaviour.
final class BlackholeSink: SinkPlugin {
    let delayMicroseconds: UInt32
    let failOnId: Int64?
    let rejectEvery: Int64?
    var transientFailuresLeft: Int
    let context: PluginContext

    init(config: PluginConfig, context: PluginContext) throws {
        self.context = context
        delayMicroseconds = UInt32(try config.int("delay_ms") ?? 0) * 1000
        failOnId = (try config.int("fail_on_id")).map(Int64.init)
        rejectEvery = (try config.int("reject_every")).map(Int64.init).flatMap { $0 > 0 ? $0 : nil }
        transientFailuresLeft = try config.int("transient_failures") ?? 0
    }

    func write(_ batch: BatchView, result: inout SinkResult) throws {
        if delayMicroseconds > 0 { usleep(delayMicroseconds) }
        if transientFailuresLeft > 0 {
            transientFailuresLeft -= 1
            throw PluginError.transient("blackhole: simulated transient failure (\(transientFailuresLeft) left)")
        }
        try classify(batch, result: &result)
    }

    func preview(_ batch: BatchView, result: inout SinkResult) throws {
        try classify(batch, result: &result)
    }

    private func classify(_ batch: BatchView, result: inout SinkResult) throws {
        guard failOnId != nil || rejectEvery != nil else {
            result.inserted = UInt64(batch.count)
            return
        }
        for (index, document) in batch.enumerated() {
            let id = document.element(forKey: "id")?.int64Value
            if let failOnId, id == failOnId {
                throw PluginError.data("blackhole: simulated failure on record id \(failOnId)")
            }
            if let rejectEvery, let id, id % rejectEvery == 0 {
                result.rejects.reject(index, "blackhole: id \(id) is a multiple of \(rejectEvery)")
            } else {
                result.inserted += 1
            }
        }
    }

    func commit() throws {}
}

enum BlackholePlugin {
    static var manifest: PluginManifest {
        PluginManifest(
            name: "blackhole", version: "1.0.0", description: "Counts and discards records (benchmarks, tests)",
            options: [
                .integer("delay_ms", default: 0, minimum: 0, "Sleep this long in every write (simulates a slow sink)"),
                .integer("fail_on_id", "Fail the batch holding the record whose `id` equals this"),
                .integer("reject_every", "Reject (dead-letter) records whose `id` is a multiple of this"),
                .integer("transient_failures", default: 0, minimum: 0, "Fail this many writes with a transient error first"),
            ],
            capabilities: [.preview, .upsert],
            sink: BlackholeSink.self, hasCheck: true)
    }
}

@_cdecl("ferry_plugin_entry")
public func ferryPluginEntry() -> UnsafeRawPointer { PluginExport.entry(BlackholePlugin.manifest) }
