import Dispatch
import Synchronization

/// What every thread of one run shares: the counters, the flags that stop
/// it, and whether dry-run samples are still wanted. The reader, the workers
/// and the commit loop each get this, not the runner.
final class RunLedger: @unchecked Sendable {
    /// Asked from outside (a signal, the API): stop reading, drain, commit.
    let cancelFlag = CancelFlag()
    /// Set on a failure: stop reading and skip queued work.
    let abortFlag = CancelFlag()
    let statistics = Mutex(RunStatistics())
    let sampleWanted = Mutex(true)
    private let started = DispatchTime.now()

    /// The counters so far (any thread).
    func snapshot() -> RunStatistics {
        var copy = statistics.withLock { $0 }
        copy.elapsedSeconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        return copy
    }

    func recordRead(records: Int) {
        statistics.withLock { stats in
            stats.read += records
            stats.batchesRead += 1
            stats.maxInFlight = max(stats.maxInFlight, stats.batchesRead - stats.batchesCommitted)
        }
    }

    /// Adds a committed batch's counts; returns the run's dead letters and reads so far.
    func recordCommitted(_ counts: BatchCounts, committedRecords: Int) -> (deadLettered: Int, read: Int) {
        statistics.withLock { stats in
            stats.add(counts)
            stats.batchesCommitted += 1
            stats.committedRecords = committedRecords
            return (stats.deadLettered, stats.read)
        }
    }
}

/// What one batch did on its way through the transforms and the sink.
struct BatchCounts: Sendable {
    var filtered = 0
    var written = 0
    var inserted = 0
    var updated = 0
    var unchanged = 0
    var deadLettered = 0
    var retries = 0
}

extension RunStatistics {
    mutating func add(_ counts: BatchCounts) {
        filtered += counts.filtered
        written += counts.written
        inserted += counts.inserted
        updated += counts.updated
        unchanged += counts.unchanged
        deadLettered += counts.deadLettered
        retries += counts.retries
    }

    /// Another lane's counters added in: sums, except the peaks and the clock.
    public mutating func add(_ other: RunStatistics) {
        read += other.read
        filtered += other.filtered
        written += other.written
        inserted += other.inserted
        updated += other.updated
        unchanged += other.unchanged
        deadLettered += other.deadLettered
        batchesRead += other.batchesRead
        batchesCommitted += other.batchesCommitted
        committedRecords += other.committedRecords
        retries += other.retries
        maxInFlight = max(maxInFlight, other.maxInFlight)
        if let estimate = other.estimatedTotal { estimatedTotal = (estimatedTotal ?? 0) + estimate }
        elapsedSeconds = max(elapsedSeconds, other.elapsedSeconds)
    }
}
