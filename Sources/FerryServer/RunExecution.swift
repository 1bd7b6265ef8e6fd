import FerryCore
import Foundation

/// How the daemon carries out one run: in a child process (the default,
/// `ChildProcessRun`) or on a thread of its own (`ThreadRun`, for
/// `--run-isolation thread`).
protocol RunExecution: AnyObject, Sendable {
    /// The counters so far (any thread).
    func snapshot() -> RunStatistics
    /// Asks the run to stop at a committed checkpoint.
    func cancel()
    /// Runs it to the end, on the calling thread, and returns its report.
    func run() -> RunReport
}

/// How the daemon runs pipelines.
public enum RunIsolation: String, Sendable, CaseIterable {
    /// A child `ferry` process per run: a plugin that crashes, hangs or eats
    /// memory takes down its run only.
    case process
    /// A thread of the daemon per run: no start-up cost, no isolation.
    case thread
}

/// Per-pipeline limits on a run in a child process (daemon config).
public struct RunLimits: Sendable, Equatable {
    /// The child's data segment cap (RLIMIT_DATA).
    public var maxMemoryMB: Int?
    /// No progress for this long: SIGTERM, then SIGKILL after the grace period.
    public var stallTimeoutSeconds: Int?

    public init(maxMemoryMB: Int? = nil, stallTimeoutSeconds: Int? = nil) {
        self.maxMemoryMB = maxMemoryMB
        self.stallTimeoutSeconds = stallTimeoutSeconds
    }
}

/// A run on a thread of the daemon.
final class ThreadRun: RunExecution, @unchecked Sendable {
    let runner: LanedRun
    /// After the run, what `ferry run` does after one: `deletes: propagate`.
    let afterwards: @Sendable (RunReport) -> DeletePropagation?

    init(runner: LanedRun, afterwards: @escaping @Sendable (RunReport) -> DeletePropagation? = { _ in nil }) {
        self.runner = runner
        self.afterwards = afterwards
    }

    func snapshot() -> RunStatistics { runner.snapshot() }
    func cancel() { runner.cancel() }
    func run() -> RunReport {
        var report = runner.run()
        report.propagation = afterwards(report)
        return report
    }
}
