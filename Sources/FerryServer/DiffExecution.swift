import FerryCore
import FerryPluginKit
import Foundation
import Logging

/// How the daemon carries out one diff: in a child `ferry diff` process
/// (`ChildProcessDiff`) or on a thread of its own (`ThreadDiff`). A diff only
/// reads; the daemon never repairs.
protocol DiffExecution: AnyObject, Sendable {
    /// Stops the comparison; it has written nothing, so nothing is left half done.
    func cancel()
    /// Compares to the end, on the calling thread.
    func run() -> DiffResult
}

/// What the API's diff asks for (`method`, `sample`).
struct DiffRequest: Sendable, Equatable {
    var method: DiffOptions.Method = .auto
    var sample = 10
}

/// A finished diff as the daemon keeps it.
struct DiffResult: Sendable {
    /// `DiffReport.jsonValue(withValues: true)`, samples included (the API
    /// hides them from callers without the token); nil when no report came.
    var report: JSONValue?
    /// Why there is no verdict: the report's own failure, or the process's end.
    var failure: RunFailure?
    var cancelled = false

    init(report: JSONValue?, failure: RunFailure? = nil, cancelled: Bool = false) {
        self.report = report
        self.failure = failure ?? report?["failure"].flatMap(RunFailure.init(json:))
        self.cancelled = cancelled
    }

    /// The run record's status: the words a run's outcome uses.
    var status: String {
        if cancelled { return RunOutcome.cancelled.name }
        if let failure { return RunOutcome.failed(failure).name }
        return RunOutcome.completed.name
    }

    /// The counts of a comparison that finished; nil when it did not.
    var counts: (missing: Int, extra: Int, changed: Int)? {
        guard !cancelled, failure == nil, let report, let missing = report["missing"]?.intValue,
            let extra = report["extra"]?.intValue, let changed = report["changed"]?.intValue
        else { return nil }
        return (Int(missing), Int(extra), Int(changed))
    }

    /// `ferry_diffs_total`'s outcome label: a cancel leaves no verdict either.
    var verdict: String {
        guard counts != nil else { return "failed" }
        return report?["equal"]?.boolValue == true ? "equal" : "different"
    }
}

/// A diff on a thread of the daemon.
final class ThreadDiff: DiffExecution, @unchecked Sendable {
    let runner: DiffRunner
    let flag: CancelFlag
    private let lock = NSLock()
    private var cancelRequested = false

    init(plan: PipelinePlan, request: DiffRequest, launcher: RunLauncher, logger: Logger) {
        flag = CancelFlag()
        runner = DiffRunner(
            plan: plan, options: DiffOptions(method: request.method, sampleSize: request.sample), logger: logger, cancel: flag,
            deadLetterPath: launcher.locations(of: plan).deadLetterPath)
    }

    func cancel() {
        lock.withLock { cancelRequested = true }
        flag.cancel()
    }

    func run() -> DiffResult {
        let report = runner.run()
        let cancelled = lock.withLock { cancelRequested } && report.failure != nil
        return DiffResult(report: report.jsonValue(withValues: true), cancelled: cancelled)
    }
}
