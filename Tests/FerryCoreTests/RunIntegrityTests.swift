@testable import FerryCore
import FerryPluginKit
import FerryPostgresStore
import Foundation
import Testing

/// Records are never lost, duplicated or altered in silence: limits, budgets,
/// locks, checkpoint names, cancels and lanes each hold what they promise.
@Suite("Run integrity", .serialized)
struct RunIntegrityTests {
    let plugins: String

    init() throws {
        plugins = try TestSupport.pluginDirectory(TestSupport.standardPlugins)
    }

    func runner(
        _ yaml: String, options: RunOptions = RunOptions(), store: any StateStore = MemoryStateStore(), deadLetters: String? = nil
    ) throws -> PipelineRunner {
        let plan = try TestSupport.plan(yaml, plugins: plugins)
        return PipelineRunner(
            plan: plan, options: options, store: store, deadLetterPath: deadLetters ?? "\(plugins)/\(UUID().uuidString).dead.jsonl",
            logger: TestSupport.logger)
    }

    func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    // MARK: - Limits and budgets

    @Test("--limit N reads, writes and checkpoints N records, not a batch's worth", arguments: [10, 100, 250, 1])
    func limitIsExact(limit: Int) throws {
        let store = MemoryStateStore()
        var options = RunOptions()
        options.limit = limit
        let report = try runner(
            """
            name: limited
            source: {plugin: generate, config: {count: 5000}}
            sink: {plugin: blackhole}
            batch_size: 100
            workers: 2
            """, options: options, store: store
        ).run()
        #expect(report.outcome == .completed)
        #expect(report.statistics.read == limit)
        #expect(report.statistics.written == limit)
        // A batch cut by the limit is written but not checkpointed: its state
        // would cover records that were never written.
        let checkpoint = try #require(store.history.last)
        #expect(checkpoint.generatePosition == checkpoint.records)
        #expect(checkpoint.records == (limit < 100 ? limit : limit / 100 * 100))
        #expect(checkpoint.complete == false)
    }

    @Test("--limit over read lanes adds up to N exactly, even when a lane's share is 0", arguments: [10, 2])
    func limitAcrossLanes(limit: Int) throws {
        let plan = try TestSupport.plan(
            """
            name: limited-lanes
            source: {plugin: generate, config: {count: 5000}}
            sink: {plugin: blackhole}
            read_lanes: 3
            workers: 3
            """, plugins: plugins)
        var options = RunOptions()
        options.limit = limit
        let report = LanedRun(
            plan: plan, options: options, store: MemoryStateStore(), deadLetterPath: "\(plugins)/dl-lanes.jsonl",
            logger: TestSupport.logger
        ).run()
        #expect(report.outcome == .completed)
        #expect(report.statistics.read == limit)
        #expect(report.statistics.written == limit)
    }

    @Test("dead_letters.max: N writes no more than N dead letters before the run stops", arguments: [0, 10, 150])
    func deadLetterBudgetIsExact(max: Int) throws {
        let path = "\(plugins)/budget-\(max)-\(UUID().uuidString.prefix(6)).jsonl"
        let report = try runner(
            """
            name: budget
            source: {plugin: generate, config: {count: 5000}}
            sink: {plugin: blackhole, config: {reject_every: 1}}
            batch_size: 1000
            workers: 2
            dead_letters: {max: \(max)}
            """, deadLetters: path
        ).run()
        let message = try #require(report.failureMessage)
        #expect(message.contains("dead-letter budget exceeded"))
        #expect(message.contains("dead_letters.max is \(max)"))
        #expect(lines(path).count == max)
    }

    @Test("the dead-letter budget is one budget for every lane of a run")
    func deadLetterBudgetAcrossLanes() throws {
        let path = "\(plugins)/budget-lanes-\(UUID().uuidString.prefix(6)).jsonl"
        let plan = try TestSupport.plan(
            """
            name: budget-lanes
            source: {plugin: generate, config: {count: 5000}}
            sink: {plugin: blackhole, config: {reject_every: 1}}
            batch_size: 500
            read_lanes: 2
            workers: 2
            dead_letters: {max: 20}
            """, plugins: plugins)
        let report = LanedRun(plan: plan, options: RunOptions(), store: MemoryStateStore(), deadLetterPath: path, logger: TestSupport.logger).run()
        #expect(report.failureMessage?.contains("dead-letter budget exceeded") == true)
        #expect(lines(path).count == 20)
    }

    // MARK: - Lanes and ordered sinks

    @Test("an ordered sink with read_lanes is refused before anything runs, from the file and from --read-lanes")
    func orderedSinkWithLanesRefused() throws {
        let output = "\(plugins)/lanes-out-\(UUID().uuidString.prefix(6)).jsonl"
        let yaml = """
            name: ordered-lanes
            source: {plugin: generate, config: {count: 20000}}
            sink: {plugin: file, config: {path: \(output)}}
            workers: 2
            mode: full
            """
        #expect(throws: ConfigErrors.self) { try TestSupport.plan(yaml + "\nread_lanes: 2", plugins: plugins) }
        do {
            _ = try TestSupport.plan(yaml + "\nread_lanes: 2", plugins: plugins)
        } catch {
            let text = "\(error)"
            #expect(text.contains("read_lanes"))
            #expect(text.contains("ordered sink"))
            #expect(text.contains(":6:"))
        }
        let plan = try TestSupport.plan(yaml, plugins: plugins)
        var options = RunOptions()
        options.readLanes = 2
        let report = LanedRun(plan: plan, options: options, store: MemoryStateStore(), deadLetterPath: "\(plugins)/dl.jsonl", logger: TestSupport.logger).run()
        #expect(report.failureMessage?.contains("ordered sink") == true)
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    // MARK: - Two runs at once

    @Test("a second run of a pipeline shard is refused at once, naming the holder; other shards and a later run go ahead")
    func runLock() throws {
        let directory = try TestSupport.temporaryDirectory("state-lock")
        let store = FileStateStore(directory: directory)
        let yaml = """
            name: locked
            source: {plugin: generate, config: {count: 300}}
            sink: {plugin: blackhole}
            """
        let held = try #require(try store.lockRun(pipeline: "locked", shard: .whole))
        let refused = try runner(yaml, store: store).run()
        let message = try #require(refused.failureMessage)
        #expect(message.contains("already running"))
        #expect(message.contains("pid \(getpid())"))
        #expect(refused.statistics.read == 0)

        var shardOptions = RunOptions()
        shardOptions.shard = ShardSpec(index: 0, count: 2)
        #expect(try runner(yaml, options: shardOptions, store: store).run().outcome == .completed)

        held.release()
        let after = try runner(yaml, store: store).run()
        #expect(after.outcome == .completed)
        #expect(after.statistics.written == 300)
        // A finished run holds nothing.
        let again = try #require(try store.lockRun(pipeline: "locked", shard: .whole))
        again.release()
    }

    @Test("two ferry processes on one pipeline: one runs, the other is refused, nothing is written twice")
    func twoProcesses() throws {
        let directory = try TestSupport.temporaryDirectory("two-runs")
        let output = "\(directory)/out.jsonl"
        let pipeline = "\(directory)/two.yaml"
        try """
            name: two
            source: {plugin: generate, config: {count: 3000}}
            transforms: [{plugin: passthrough, config: {jitter_ms: 5}}]
            batch_size: 10
            sink: {plugin: file, config: {path: \(output)}}
            """.write(toFile: pipeline, atomically: true, encoding: .utf8)
        let results = Locked<[(status: Int32, stdout: String, stderr: String)]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            if let result = try? TestSupport.run(
                TestSupport.ferryExecutable, ["run", pipeline, "--plugins", plugins, "--state-dir", "\(directory)/state", "--no-progress"])
            {
                results.withLock { $0.append(result) }
            }
        }
        let all = results.value
        #expect(all.count == 2)
        let refused = all.filter { $0.status != 0 }
        #expect(refused.count == 1)
        #expect(refused.first?.stderr.contains("already running") == true)
        let written = lines(output)
        #expect(written.count == 3000)
        #expect(Set(written).count == 3000)
    }

    @Test("with the PostgreSQL store too, a second run of a pipeline shard is refused while the first holds it")
    func postgresRunLock() throws {
        let fixture = try PostgresFixture()
        let dsn = try PostgresDSN(parsing: fixture.dsn)
        let pipeline = PostgresFixture.name("locked")
        let first = PostgresStateStore(dsn: dsn), second = PostgresStateStore(dsn: dsn)
        let held = try #require(try first.lockRun(pipeline: pipeline, shard: .whole))
        #expect(throws: StateError.self) { try second.lockRun(pipeline: pipeline, shard: .whole) }
        // Another shard of the same pipeline is another lock.
        try #require(try second.lockRun(pipeline: pipeline, shard: ShardSpec(index: 1, count: 2))).release()
        let report = try runner(
            """
            name: \(pipeline)
            source: {plugin: generate, config: {count: 100}}
            sink: {plugin: blackhole}
            """, store: second
        ).run()
        #expect(report.failureMessage?.contains("already running") == true)
        held.release()
        try #require(try second.lockRun(pipeline: pipeline, shard: .whole)).release()
    }

    @Test("checkpoint files of different pipelines and shards never share a name")
    func checkpointNames() throws {
        let directory = try TestSupport.temporaryDirectory("state-names")
        let store = FileStateStore(directory: directory)
        func checkpoint(_ pipeline: String, _ shard: ShardSpec, _ records: Int) -> Checkpoint {
            Checkpoint(
                pipeline: pipeline, sourcePlugin: "generate", shardIndex: shard.index, shardCount: shard.count, state: Data([1]),
                records: records, complete: false)
        }
        let shard = ShardSpec(index: 0, count: 2)
        try store.save(checkpoint("x", shard, 1))
        try store.save(checkpoint("x.shard-0-of-2", .whole, 2))
        try store.save(checkpoint("x%2E", .whole, 3))
        try store.save(checkpoint("x.", .whole, 4))
        #expect(try store.load(pipeline: "x", shard: shard, sourcePlugin: "generate")?.records == 1)
        #expect(try store.load(pipeline: "x.shard-0-of-2", shard: .whole, sourcePlugin: "generate")?.records == 2)
        #expect(try store.load(pipeline: "x%2E", shard: .whole, sourcePlugin: "generate")?.records == 3)
        #expect(try store.load(pipeline: "x.", shard: .whole, sourcePlugin: "generate")?.records == 4)
        #expect(try store.savedShards(pipeline: "x") == [shard])
        try store.reset(pipeline: "x", shard: nil)
        #expect(try store.load(pipeline: "x", shard: shard, sourcePlugin: "generate") == nil)
        #expect(try store.load(pipeline: "x.shard-0-of-2", shard: .whole, sourcePlugin: "generate")?.records == 2)
        #expect(try store.load(pipeline: "x.", shard: .whole, sourcePlugin: "generate")?.records == 4)
    }

    @Test("a checkpoint written under the old file name is still read, and only by its own pipeline")
    func legacyCheckpointName() throws {
        let directory = try TestSupport.temporaryDirectory("state-legacy")
        let old = Checkpoint(
            pipeline: "shop.products", sourcePlugin: "generate", shardIndex: 0, shardCount: 1, state: Data([7]), records: 7,
            complete: false)
        try CheckpointCoding.encode(old).write(to: URL(fileURLWithPath: "\(directory)/shop.products.state.json"))
        let store = FileStateStore(directory: directory)
        #expect(try store.load(pipeline: "shop.products", shard: .whole, sourcePlugin: "generate")?.records == 7)
        try store.reset(pipeline: "shop.products", shard: nil)
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/shop.products.state.json"))
    }

    @Test("a state directory that cannot be written fails the run before it reads a record")
    func unwritableStateDirectory() throws {
        let directory = try TestSupport.temporaryDirectory("state-blocked")
        // A regular file where a folder should be: no folder can be made below
        // it, even by root.
        try Data().write(to: URL(fileURLWithPath: "\(directory)/blocker"))
        let store = FileStateStore(directory: "\(directory)/blocker/state")
        let output = "\(directory)/out.jsonl"
        let report = try runner(
            """
            name: blocked
            source: {plugin: generate, config: {count: 500}}
            sink: {plugin: file, config: {path: \(output)}}
            """, store: store
        ).run()
        #expect(report.failureMessage != nil)
        #expect(report.statistics.read == 0)
        #expect(lines(output).isEmpty)
    }

    // MARK: - Cancel

    @Test("a plugin that returns FERRY_ERR_CANCELLED after a cancel stops the run cleanly", arguments: [1, 3])
    func cancelledByPlugin(workers: Int) throws {
        let directory = try TestSupport.temporaryDirectory("cancellable")
        _ = try TestSupport.compileFixture(["CANCELLABLE", "NAME=\"slowpoke\""], into: plugins, name: "libslowpoke.so")
        let store = FileStateStore(directory: directory)
        let runner = try runner(
            """
            name: cancellable
            source: {plugin: generate, config: {count: 100000}}
            transforms: [{plugin: slowpoke}]
            sink: {plugin: blackhole}
            workers: \(workers)
            checkpoint_interval_ms: 0
            """, store: store)
        DispatchQueue.global().asyncAfter(deadline: .now() + 3) { runner.cancel() }
        let report = runner.run()
        #expect(report.outcome == .cancelled)
        let checkpoint = try store.load(pipeline: "cancellable", shard: .whole, sourcePlugin: "generate")
        // Never past a batch that was given up: the position is the number of
        // records committed, and every one of them was written.
        if let checkpoint {
            #expect(checkpoint.generatePosition == checkpoint.records)
            #expect(checkpoint.records <= report.statistics.written)
            #expect(checkpoint.complete == false)
        }
    }

    @Test("a transform's transient failures are retried like a source's or a sink's", arguments: [1, 3])
    func transformRetried(workers: Int) throws {
        _ = try TestSupport.compileFixture(["FLAKY", "NAME=\"flaky\""], into: plugins, name: "libflaky.so")
        let report = try runner(
            """
            name: flaky
            source: {plugin: generate, config: {count: 1000}}
            transforms: [{plugin: flaky}]
            sink: {plugin: blackhole}
            workers: \(workers)
            retry: {attempts: 2, initial_delay_ms: 1, max_delay_ms: 2}
            """
        ).run()
        #expect(report.outcome == .completed, "\(report.outcome)")
        #expect(report.statistics.written == 1000)
        #expect(report.statistics.retries >= 10)
    }

    // MARK: - A crash names the plugin

    @Test("a plugin that crashes in ferry run is named, with the signal and the call, before the process dies")
    func crashIsNamed() throws {
        let directory = try TestSupport.temporaryDirectory("crash")
        let library = try TestSupport.compileFixture(["CRASH_IN_TRANSFORM", "NAME=\"crasher\""], into: plugins, name: "libcrasher.so")
        let pipeline = "\(directory)/crash.yaml"
        try """
            name: crash
            source: {plugin: generate, config: {count: 100}}
            transforms: [{plugin: crasher}]
            sink: {plugin: blackhole}
            """.write(toFile: pipeline, atomically: true, encoding: .utf8)
        let result = try TestSupport.run(
            TestSupport.ferryExecutable, ["run", pipeline, "--plugins", plugins, "--state-dir", "\(directory)/state", "--no-progress"],
            environment: ["SWIFT_BACKTRACE": "enable=no"])
        #expect(result.status == SIGSEGV)
        let resolved = URL(fileURLWithPath: library).resolvingSymlinksInPath().path
        #expect(result.stderr.contains("ferry: plugin 'crasher' ("), "\(result.stderr)")
        #expect(result.stderr.contains("crashed with SIGSEGV during transform()"), "\(result.stderr)")
        #expect(result.stderr.contains(resolved) || result.stderr.contains(library), "\(result.stderr)")
    }

    // MARK: - Dead letters keep the record

    @Test("a dead letter whose record is not valid BSON keeps its bytes, base64, instead of null")
    func unrenderableDeadLetter() throws {
        let path = "\(plugins)/unrenderable-\(UUID().uuidString.prefix(6)).jsonl"
        // {"s": "\xff\xfe"}: framed right, but the string is not UTF-8.
        let document: [UInt8] = [15, 0, 0, 0, 2, 0x73, 0, 3, 0, 0, 0, 0xFF, 0xFE, 0, 0]
        let writer = DeadLetterWriter(path: path, pipeline: "p")
        try document.withUnsafeBytes { raw in
            try writer.write(stage: "sink", plugin: "x", reason: "refused", record: DocumentView(raw))
        }
        try writer.sync()
        let line = try #require(lines(path).first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["record"] is NSNull)
        let base64 = try #require(object["record_bson_base64"] as? String)
        #expect(Data(base64Encoded: base64).map(Array.init) == document)
    }

    // MARK: - Bounds and config

    @Test("numeric settings past their bounds are refused with file and line", arguments: [
        ("batch_size: 4294967296", "batch_size", 4), ("batch_size: 99999999999999999999", "batch_size", 4),
        ("workers: 100000", "workers", 4), ("read_lanes: 65536", "read_lanes", 4), ("max_in_flight: 1000000000", "max_in_flight", 4),
        ("retry: {attempts: 1000000}", "retry.attempts", 4),
    ])
    func bounds(line: String, field: String, lineNumber: Int) throws {
        let yaml = """
            source: {plugin: generate}
            sink: {plugin: blackhole}
            mode: full
            \(line)
            """
        do {
            _ = try PipelineLoader().parse(yaml: yaml, file: "b.yaml")
            Issue.record("\(line) was accepted")
        } catch {
            #expect(error.description.contains("b.yaml:\(lineNumber): \(field): must be"), "\(error.description)")
        }
    }
}
