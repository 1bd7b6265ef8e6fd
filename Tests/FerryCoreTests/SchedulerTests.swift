import FerryCore
@testable import FerryServer
import Foundation
import Logging
import Prometheus
import Testing

/// The scheduler's policy, driven with simulated clock times in process.
@Suite("Scheduler")
struct SchedulerTests {
    func fixture(delayMilliseconds: Int) throws -> (Scheduler, RunRegistry, ServerMetrics) {
        let plugins = try TestSupport.pluginDirectory(["FerryGenerate", "FerryBlackhole"])
        let state = try TestSupport.temporaryDirectory("scheduler-state")
        let plan = try TestSupport.plan(
            """
            name: ticks
            source: {plugin: generate, config: {count: 200}}
            sink: {plugin: blackhole, config: {delay_ms: \(delayMilliseconds)}}
            batch_size: 10
            """, plugins: plugins)
        let metrics = ServerMetrics(registry: PrometheusCollectorRegistry())
        let registry = RunRegistry(pipelines: ["ticks": plan], launcher: RunLauncher(stateDirectory: state), history: 50, logger: TestSupport.logger, metrics: metrics)
        let scheduler = Scheduler(
            schedules: [("ticks", try CronSchedule("*/5 * * * *"))], registry: registry, metrics: metrics, heartbeat: Heartbeat(),
            logger: TestSupport.logger)
        return (scheduler, registry, metrics)
    }

    func date(_ text: String) -> Date { try! Date(text, strategy: .iso8601) }

    @Test("two replicas sharing run locks: a tick runs once, on whichever claims it; the other neither runs nor counts a misfire")
    func replicasShareLocks() throws {
        let plugins = try TestSupport.pluginDirectory(["FerryGenerate", "FerryBlackhole"])
        let locks = InMemoryRunLocks()
        let replicas = try (0..<2).map { _ -> (Scheduler, RunRegistry) in
            let state = try TestSupport.temporaryDirectory("scheduler-replica")
            let plan = try TestSupport.plan(
                "name: ticks\nsource: {plugin: generate, config: {count: 50}}\nsink: {plugin: blackhole, config: {delay_ms: 100}}\nbatch_size: 10\n",
                plugins: plugins)
            let metrics = ServerMetrics(registry: PrometheusCollectorRegistry())
            let registry = RunRegistry(
                pipelines: ["ticks": plan], launcher: RunLauncher(stateDirectory: state), locks: locks, history: 50,
                logger: TestSupport.logger, metrics: metrics)
            let scheduler = Scheduler(
                schedules: [("ticks", try CronSchedule("*/5 * * * *"))], registry: registry, locks: locks, metrics: metrics,
                heartbeat: Heartbeat(), logger: TestSupport.logger)
            return (scheduler, registry)
        }
        let tick = replicas[0].0.nextFire(pipeline: "ticks")!
        #expect(replicas[1].0.nextFire(pipeline: "ticks") == tick, "replicas name a tick the same way")
        for (scheduler, _) in replicas { scheduler.tick(now: tick) }
        // With locks, a tick is claimed off the scheduler's loop: wait for both claims.
        var runs = [0, 0]
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            runs = replicas.map { $0.1.list(pipeline: "ticks", limit: 10).count }
            if runs.reduce(0, +) >= 1 && !locks.heldPipelines.isEmpty { break }
            Thread.sleep(forTimeInterval: 0.01)
        }
        Thread.sleep(forTimeInterval: 0.2)
        runs = replicas.map { $0.1.list(pipeline: "ticks", limit: 10).count }
        #expect(runs.reduce(0, +) == 1, "runs per replica: \(runs)")
        #expect(replicas.map { $0.0.misfires(pipeline: "ticks") } == [0, 0])
        #expect(locks.heldPipelines == ["ticks"], "the running replica holds the pipeline's lock")
        for (_, registry) in replicas { #expect(registry.drain(timeout: 30)) }
        #expect(locks.heldPipelines.isEmpty, "the lock goes with the run")
    }

    @Test("a due tick starts one run; a tick while it still runs is skipped and counted, never overlapping")
    func noOverlap() throws {
        let (scheduler, registry, _) = try fixture(delayMilliseconds: 200)
        let first = scheduler.nextFire(pipeline: "ticks")!
        scheduler.tick(now: first.addingTimeInterval(-1))
        #expect(registry.list(pipeline: "ticks", limit: 10).isEmpty, "nothing before the tick")
        scheduler.tick(now: first)
        #expect(registry.list(pipeline: "ticks", limit: 10).count == 1)
        #expect(registry.isRunning(pipeline: "ticks"))
        let second = scheduler.nextFire(pipeline: "ticks")!
        #expect(second.timeIntervalSince(first) == 300)
        scheduler.tick(now: second)
        #expect(registry.list(pipeline: "ticks", limit: 10).count == 1, "the second tick must not start a second run")
        #expect(scheduler.misfires(pipeline: "ticks") == 1)
        #expect(registry.drain(timeout: 30))
    }

    @Test("ticks missed while the daemon was late are not replayed: one run, the rest counted as misfires")
    func missedTicks() throws {
        let (scheduler, registry, _) = try fixture(delayMilliseconds: 0)
        let first = scheduler.nextFire(pipeline: "ticks")!
        // Thirty minutes late: six ticks passed.
        scheduler.tick(now: first.addingTimeInterval(30 * 60))
        #expect(registry.list(pipeline: "ticks", limit: 10).count == 1)
        #expect(scheduler.misfires(pipeline: "ticks") == 6)
        #expect(scheduler.nextFire(pipeline: "ticks")! > first.addingTimeInterval(30 * 60))
        #expect(registry.drain(timeout: 30))
    }

    @Test("after a stall, the earliest overdue tick fires once and the later overdue ticks are counted as missed")
    func stallFiresEarliestOverdueTick() throws {
        let (scheduler, registry, _) = try fixture(delayMilliseconds: 0)
        let first = scheduler.nextFire(pipeline: "ticks")!
        // Twelve minutes late: the ticks at first, +5 and +10 min are overdue.
        scheduler.tick(now: first.addingTimeInterval(12 * 60))
        let runs = registry.list(pipeline: "ticks", limit: 10)
        #expect(runs.count == 1)
        guard case .object(let run)? = runs.first else { Issue.record("no run listed"); return }
        #expect(run["tick"] == .string(RunRegistry.time(first)), "the run is for the earliest overdue tick, not the latest")
        #expect(scheduler.misfires(pipeline: "ticks") == 2)
        #expect(scheduler.nextFire(pipeline: "ticks")! == first.addingTimeInterval(15 * 60))
        #expect(registry.drain(timeout: 30))
    }

    @Test("ticks that passed before the scheduler started are neither fired nor counted")
    func ticksBeforeStartAreNotCounted() throws {
        let (scheduler, registry, _) = try fixture(delayMilliseconds: 0)
        let first = scheduler.nextFire(pipeline: "ticks")!
        #expect(first > Date(), "the first tick is the next one after start")
        scheduler.tick(now: Date())
        #expect(registry.list(pipeline: "ticks", limit: 10).isEmpty)
        #expect(scheduler.misfires(pipeline: "ticks") == 0)
    }
}
