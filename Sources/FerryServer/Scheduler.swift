import Dispatch
import FerryCore
import FerryPostgresStore
import Foundation
import Logging
import ServiceLifecycle

/// Fires scheduled pipelines and keeps the heartbeat /healthz reads.
///
/// Policy: a tick that finds the pipeline's previous run still going is
/// skipped, logged and counted as a misfire — runs never overlap. Ticks missed
/// while the daemon was down are neither fired nor counted: the first tick is
/// the next one after start. After a stall (a suspended process, a clock
/// jump), the earliest overdue tick fires once and the later overdue ticks are
/// counted as misfires, so a late daemon catches up with one run, not a burst.
///
/// With a PostgreSQL state store, several replicas run the same schedules: the
/// first to reach a tick claims it in the database and runs it, the others
/// skip it (not a misfire: it ran). See `PostgresRunLocks`.
final class Scheduler: Service, @unchecked Sendable {
    struct Entry {
        let pipeline: String
        let schedule: CronSchedule
        var next: Date?
        var misfires = 0
    }

    let registry: RunRegistry
    let locks: (any RunLocks)?
    let metrics: ServerMetrics
    let logger: Logger
    let heartbeat: Heartbeat
    private let lock = NSLock()
    private var entries: [Entry]

    init(
        schedules: [(pipeline: String, schedule: CronSchedule)], registry: RunRegistry, locks: (any RunLocks)? = nil, metrics: ServerMetrics,
        heartbeat: Heartbeat, logger: Logger
    ) {
        self.locks = locks
        let now = Date()
        entries = schedules.map { Entry(pipeline: $0.pipeline, schedule: $0.schedule, next: $0.schedule.next(after: now)) }
        self.registry = registry
        self.metrics = metrics
        self.heartbeat = heartbeat
        self.logger = logger
    }

    /// The next fire time of a pipeline's schedule, if it has one.
    func nextFire(pipeline: String) -> Date? {
        lock.withLock { entries.first { $0.pipeline == pipeline }?.next }
    }

    /// The schedule a pipeline runs on, if any.
    func schedule(pipeline: String) -> CronSchedule? {
        lock.withLock { entries.first { $0.pipeline == pipeline }?.schedule }
    }

    /// Ticks skipped (previous run still going) or missed (daemon late) so far.
    func misfires(pipeline: String) -> Int {
        lock.withLock { entries.first { $0.pipeline == pipeline }?.misfires ?? 0 }
    }

    private func countMisfire(_ pipeline: String) {
        metrics.misfire(pipeline: pipeline)
        lock.withLock {
            if let index = entries.firstIndex(where: { $0.pipeline == pipeline }) { entries[index].misfires += 1 }
        }
    }

    func run() async throws {
        // Stops at the first SIGTERM: no new scheduled runs while draining.
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                self.tick(now: Date())
                self.heartbeat.beat()
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
        logger.info("scheduler stopped")
    }

    func tick(now: Date) {
        var due: [(pipeline: String, tick: Date)] = []
        lock.withLock {
            for index in entries.indices {
                guard let next = entries[index].next, next <= now else { continue }
                due.append((entries[index].pipeline, next))
                // Ticks that also passed while we were late are not replayed.
                var following = entries[index].schedule.next(after: next)
                while let candidate = following, candidate <= now {
                    entries[index].misfires += 1
                    metrics.misfire(pipeline: entries[index].pipeline)
                    logger.warning("schedule tick missed (daemon was late)", metadata: ["pipeline": "\(entries[index].pipeline)", "tick": "\(candidate)"])
                    following = entries[index].schedule.next(after: candidate)
                }
                entries[index].next = following
            }
        }
        for (pipeline, tick) in due {
            if locks != nil {
                // Claiming a tick is a database round trip that may hang for the
                // connect timeout when the network does: never on the loop whose
                // turns /healthz watches.
                DispatchQueue.global().async { self.fire(pipeline: pipeline, tick: tick) }
            } else {
                fire(pipeline: pipeline, tick: tick)
            }
        }
    }

    private func fire(pipeline: String, tick: Date) {
        if let locks {
            do {
                guard try locks.claim(pipeline: pipeline, tick: tick) else {
                    logger.debug("schedule tick fired by another replica", metadata: ["pipeline": "\(pipeline)", "tick": "\(tick)"])
                    return
                }
            } catch {
                countMisfire(pipeline)
                logger.error("schedule tick not run: cannot claim it in the state store", metadata: ["pipeline": "\(pipeline)", "error": "\(error)"])
                return
            }
        }
        do {
            _ = try registry.start(pipeline: pipeline, trigger: .schedule, tick: tick)
        } catch .alreadyRunning(let runID) {
            countMisfire(pipeline)
            logger.warning("schedule tick skipped: the previous run is still going", metadata: ["pipeline": "\(pipeline)", "run_id": "\(runID)"])
        } catch .runningElsewhere {
            countMisfire(pipeline)
            logger.warning("schedule tick skipped: the pipeline is running on another replica", metadata: ["pipeline": "\(pipeline)"])
        } catch .coordinationFailed(let reason) {
            countMisfire(pipeline)
            logger.error("schedule tick not run", metadata: ["pipeline": "\(pipeline)", "error": "\(reason)"])
        } catch {
            logger.info("schedule tick not run", metadata: ["pipeline": "\(pipeline)", "reason": "\(error)"])
        }
    }
}

/// The time of the scheduler loop's last turn: /healthz fails if it stops turning.
final class Heartbeat: @unchecked Sendable {
    private let lock = NSLock()
    private var last = Date()

    func beat() { lock.withLock { last = Date() } }

    var age: TimeInterval { lock.withLock { Date().timeIntervalSince(last) } }
}

/// On SIGTERM (first in the shutdown order): refuse triggers, stop runs at a
/// committed checkpoint, wait for them within the grace period.
struct RunDrainer: Service {
    let registry: RunRegistry
    let gracePeriod: Double
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        logger.info("shutting down: refusing new runs, stopping running ones at their next commit", metadata: ["grace_period_s": "\(gracePeriod)"])
        let registry = self.registry
        let budget = max(0.5, gracePeriod - 1)
        let drained = await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: registry.drain(timeout: budget)) }.start()
        }
        if drained {
            logger.info("all runs stopped with their checkpoints committed")
        } else {
            logger.warning("runs still going at the end of the grace period: exiting; their checkpoints stay at the last commit")
        }
    }
}
