@testable import FerryCore
import Foundation
import Testing

@Suite("Pipeline runtime", .serialized)
struct RuntimeTests {
    let plugins: String

    init() throws {
        plugins = try TestSupport.pluginDirectory(TestSupport.standardPlugins)
    }

    func runner(_ yaml: String, options: RunOptions = RunOptions(), store: any StateStore = MemoryStateStore()) throws -> PipelineRunner {
        let plan = try TestSupport.plan(yaml, plugins: plugins)
        return PipelineRunner(plan: plan, options: options, store: store, deadLetterPath: "\(plugins)/\(UUID().uuidString).dead.jsonl", logger: TestSupport.logger)
    }

    @Test("the checkpoint only covers a contiguous prefix when workers finish out of order")
    func orderedCheckpoints() throws {
        let store = MemoryStateStore()
        let report = try runner(
            """
            source: {plugin: generate, config: {count: 20000}}
            transforms: [{plugin: passthrough, config: {jitter_ms: 3}}]
            sink: {plugin: blackhole}
            workers: 4
            checkpoint_interval_ms: 0
            """, store: store
        ).run()
        #expect(report.outcome == .completed)
        #expect(report.statistics.read == 20000)
        #expect(report.statistics.written == 20000)
        let history = store.history
        #expect(history.count >= 100)
        var previous = 0
        for checkpoint in history {
            // Records counted in order must equal the position of the last batch applied.
            #expect(checkpoint.records == checkpoint.generatePosition)
            #expect(checkpoint.generatePosition >= previous)
            #expect(checkpoint.generatePosition % 100 == 0 || checkpoint.generatePosition == 20000)
            previous = checkpoint.generatePosition
        }
        #expect(previous == 20000)
        #expect(history.last?.complete == true)
    }

    @Test("a slow sink holds the reader at the in-flight bound")
    func backpressure() throws {
        let runner = try runner(
            """
            source: {plugin: generate, config: {count: 1000000}}
            sink: {plugin: blackhole, config: {delay_ms: 20}}
            workers: 1
            max_in_flight: 3
            """)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.6) { runner.cancel() }
        let report = runner.run()
        #expect(report.outcome == .cancelled)
        let stats = report.statistics
        #expect(stats.maxInFlight <= 3)
        #expect(stats.read <= stats.written + 300)
        #expect(stats.read < 10_000)
        #expect(stats.read == stats.written)
    }

    @Test("a failing sink fails the run and the checkpoint stops before the failed batch", arguments: [false, true])
    func failingSink(inline: Bool) throws {
        let store = MemoryStateStore()
        var options = RunOptions()
        options.inline = inline
        let report = try runner(
            """
            source: {plugin: generate, config: {count: 2000}}
            sink: {plugin: blackhole, config: {fail_on_id: 550}}
            """, options: options, store: store
        ).run()
        let message = try #require(report.failureMessage)
        #expect(message.contains("plugin 'blackhole'"))
        #expect(message.contains("550"))
        let checkpoint = try #require(store.history.last)
        #expect(checkpoint.generatePosition == 500)
        #expect(checkpoint.records == 500)
        #expect(checkpoint.complete == false)
    }

    @Test("with parallel workers a failure still never lets the checkpoint pass it")
    func failingSinkParallel() throws {
        let store = MemoryStateStore()
        let report = try runner(
            """
            source: {plugin: generate, config: {count: 5000}}
            transforms: [{plugin: passthrough, config: {jitter_ms: 2}}]
            sink: {plugin: blackhole, config: {fail_on_id: 1234}}
            workers: 3
            checkpoint_interval_ms: 0
            """, store: store
        ).run()
        #expect(report.failureMessage != nil)
        for checkpoint in store.history {
            #expect(checkpoint.generatePosition <= 1200)
            #expect(checkpoint.records == checkpoint.generatePosition)
        }
    }

    @Test("cancel drains in-flight batches and saves a consistent checkpoint", arguments: [false, true])
    func cancellation(inline: Bool) throws {
        let store = MemoryStateStore()
        var options = RunOptions()
        options.inline = inline
        options.workers = inline ? 1 : 2
        let runner = try runner(
            """
            source: {plugin: generate, config: {count: 10000000}}
            sink: {plugin: blackhole, config: {delay_ms: 5}}
            workers: 2
            """, options: options, store: store)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { runner.cancel() }
        let report = runner.run()
        #expect(report.outcome == .cancelled)
        let checkpoint = try #require(report.checkpoint)
        #expect(checkpoint.records == report.statistics.written)
        #expect(checkpoint.generatePosition == report.statistics.written)
        #expect(report.statistics.read == report.statistics.written)
    }

    @Test("a resumed run continues from the checkpoint")
    func resume() throws {
        let store = MemoryStateStore()
        let yaml = """
            source: {plugin: generate, config: {count: 1000}}
            sink: {plugin: blackhole}
            """
        var options = RunOptions()
        options.limit = 300
        let first = try runner(yaml, options: options, store: store).run()
        #expect(first.statistics.read == 300)
        let second = try runner(yaml, store: store).run()
        #expect(second.statistics.read == 700)
        #expect(second.checkpoint?.records == 1000)
        let third = try runner(yaml, store: store).run()
        #expect(third.statistics.read == 0)
    }

    @Test("inline, the reader runs each batch to completion: never two in flight, same records and checkpoint")
    func inlineRun() throws {
        let yaml = """
            source: {plugin: generate, config: {count: 3000}}
            transforms: [{plugin: passthrough}]
            sink: {plugin: blackhole, config: {delay_ms: 2}}
            workers: 1
            checkpoint_interval_ms: 0
            """
        var options = RunOptions()
        options.inline = true
        let store = MemoryStateStore()
        let inline = try runner(yaml, options: options, store: store).run()
        #expect(inline.outcome == .completed)
        #expect(inline.statistics.written == 3000)
        #expect(inline.statistics.maxInFlight == 1)
        // A checkpoint after every batch, in order (then the final one marking it complete).
        #expect(Array(store.history.map(\.generatePosition).prefix(30)) == Array(stride(from: 100, through: 3000, by: 100)))
        #expect(store.history.last?.complete == true)
        // The same pipeline handed to a worker thread lets the reader run ahead of the slow sink.
        let handedOver = try runner(yaml).run()
        #expect(handedOver.statistics.written == 3000)
        #expect(handedOver.statistics.maxInFlight > 1)
    }

    @Test("rejected records go to the dead-letter file; past the budget the run fails")
    func deadLetters() throws {
        let report = try runner(
            """
            source: {plugin: generate, config: {count: 1000}}
            sink: {plugin: blackhole, config: {reject_every: 10}}
            """
        ).run()
        #expect(report.outcome == .completed)
        #expect(report.statistics.deadLettered == 100)
        #expect(report.statistics.written == 900)
        let path = try #require(report.deadLetterPath)
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 100)
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any]
        #expect(first?["plugin"] as? String == "blackhole")
        // ISO 8601 in UTC, to the second, and now.
        let time = try #require(first?["time"] as? String)
        let parsed = try #require(ISO8601DateFormatter().date(from: time), "time '\(time)'")
        #expect(time.hasSuffix("Z") && abs(parsed.timeIntervalSinceNow) < 60)
        #expect((first?["reason"] as? String)?.contains("multiple of 10") == true)
        #expect(first?["record"] != nil)

        let failed = try runner(
            """
            source: {plugin: generate, config: {count: 1000}}
            sink: {plugin: blackhole, config: {reject_every: 10}}
            dead_letters: {max: 50}
            """
        ).run()
        #expect(failed.failureMessage?.contains("dead-letter budget exceeded") == true)

        // A ratio: 10% rejected is past 5%, and within 20%.
        let overRatio = try runner(
            """
            source: {plugin: generate, config: {count: 1000}}
            sink: {plugin: blackhole, config: {reject_every: 10}}
            dead_letters: {max: 100000, max_ratio: 0.05}
            """
        ).run()
        #expect(overRatio.failureMessage?.contains("dead_letters.max_ratio is 0.05") == true, "\(overRatio.outcome)")
        let withinRatio = try runner(
            """
            source: {plugin: generate, config: {count: 1000}}
            sink: {plugin: blackhole, config: {reject_every: 10}}
            dead_letters: {max: 100000, max_ratio: 0.2}
            """
        ).run()
        #expect(withinRatio.outcome == .completed)
    }

    @Test("transient sink failures are retried with backoff")
    func transientRetry() throws {
        let report = try runner(
            """
            source: {plugin: generate, config: {count: 500}}
            sink: {plugin: blackhole, config: {transient_failures: 2}}
            retry: {attempts: 3, initial_delay_ms: 1, max_delay_ms: 5}
            """
        ).run()
        #expect(report.outcome == .completed)
        #expect(report.statistics.retries == 2)
        #expect(report.statistics.written == 500)

        let exhausted = try runner(
            """
            source: {plugin: generate, config: {count: 500}}
            sink: {plugin: blackhole, config: {transient_failures: 5}}
            retry: {attempts: 2, initial_delay_ms: 1, max_delay_ms: 5}
            """
        ).run()
        #expect(exhausted.failureMessage?.contains("transient") == true)
    }

    @Test("a plugin returning a malformed batch fails the run, naming it, without a crash")
    func malformedBatch() throws {
        _ = try TestSupport.compileFixture(["BAD_BATCH", "NAME=\"liar\""], into: plugins, name: "libliar.so")
        let report = try runner(
            """
            source: {plugin: generate, config: {count: 100}}
            transforms: [{plugin: liar}]
            sink: {plugin: blackhole}
            """
        ).run()
        let message = try #require(report.failureMessage)
        #expect(message.contains("plugin 'liar'"))
        #expect(message.contains("malformed batch"))
    }

    @Test("a dry run previews, writes nothing and saves no state")
    func dryRun() throws {
        let output = "\(plugins)/out/dry.jsonl"
        let store = MemoryStateStore()
        var options = RunOptions()
        options.dryRun = true
        options.sampleSize = 3
        let report = try runner(
            """
            source: {plugin: generate, config: {count: 250}}
            sink: {plugin: file, config: {path: \(output)}}
            """, options: options, store: store
        ).run()
        #expect(report.outcome == .completed)
        #expect(report.sample.count == 3)
        #expect(report.sample[0].contains("\"sku\" : \"SKU-00000000\""))
        #expect(report.sinkPreviewed)
        #expect(report.statistics.inserted == 250)
        #expect(!FileManager.default.fileExists(atPath: output))
        #expect(store.history.isEmpty)
    }

    @Test("shards split the source with no overlap")
    func shards() throws {
        var total = 0
        for index in 0..<3 {
            var options = RunOptions()
            options.shard = ShardSpec(index: index, count: 3)
            let report = try runner(
                """
                source: {plugin: generate, config: {count: 1000}}
                sink: {plugin: blackhole}
                """, options: options
            ).run()
            total += report.statistics.written
        }
        #expect(total == 1000)
    }
}

@Suite("Read lanes", .serialized)
struct ReadLaneTests {
    @Test("lanes split a sharded source, keep a checkpoint each, and refuse a changed lane count")
    func lanes() throws {
        let plugins = try TestSupport.pluginDirectory(TestSupport.standardPlugins)
        let store = MemoryStateStore()
        func run(lanes: Int) throws -> RunReport {
            let plan = try TestSupport.plan(
                """
                name: laned
                source: {plugin: generate, config: {count: 10000}}
                sink: {plugin: blackhole, config: {delay_ms: 1}}
                workers: 2
                read_lanes: \(lanes)
                """, plugins: plugins)
            return LanedRun(plan: plan, options: RunOptions(), store: store, deadLetterPath: "\(plugins)/dl.jsonl", logger: TestSupport.logger).run()
        }
        let first = try run(lanes: 2)
        #expect(first.outcome == .completed)
        #expect(first.statistics.read == 10000)
        #expect(first.statistics.written == 10000)
        #expect(first.checkpoint?.records == 10000)
        // One worker a lane: each lane runs its batches on its reader thread.
        #expect(first.statistics.maxInFlight == 1)
        let shards = try store.savedShards(pipeline: "laned").sorted { $0.index < $1.index }
        #expect(shards == [ShardSpec(index: 0, count: 2), ShardSpec(index: 1, count: 2)])
        let again = try run(lanes: 2)
        #expect(again.statistics.read == 0)
        let changed = try run(lanes: 3)
        #expect(changed.failureMessage?.contains("has a checkpoint for shard") == true)
    }
}

@Suite("Ordered committer")
struct OrderedCommitterTests {
    @Test("applies completions only as a contiguous prefix")
    func prefix() {
        var committer = OrderedCommitter<String>()
        #expect(committer.complete(2, "c").isEmpty)
        #expect(committer.complete(1, "b").isEmpty)
        #expect(committer.complete(0, "a").map(\.completion) == ["a", "b", "c"])
        #expect(committer.complete(4, "e").isEmpty)
        #expect(committer.waiting == 1)
        #expect(committer.complete(3, "d").map(\.sequence) == [3, 4])
        #expect(committer.nextSequence == 5)
    }
}
