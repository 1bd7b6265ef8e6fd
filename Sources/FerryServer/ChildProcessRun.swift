#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import FerryCore
import Foundation
import Logging

/// A run in a child `ferry run` process of the same binary, which reports
/// over a pipe (docs/run-protocol.md). A plugin that crashes, aborts, hangs
/// or eats memory ends this run as `crashed` or `stalled`; the daemon and
/// every other run go on.
final class ChildProcessRun: RunExecution, @unchecked Sendable {
    /// What starts the child: the same binary, its arguments and environment.
    struct Command: Sendable {
        var executable: String
        var arguments: [String]
        var environment: [String: String]
    }

    let command: Command
    /// Where a pre-started process may come from (nil: always spawn one).
    let spares: SpareRunPool?
    let pipeline: String
    let limits: RunLimits
    let gracePeriod: Double
    let logger: Logger
    let dryRun: Bool

    private let lock = NSLock()
    private var pid: pid_t = 0
    private var statistics = RunStatistics()
    private var report: RunReport?
    private var crash: RunMessage?
    private var cancelRequested = false
    /// The child said hello: its SIGTERM handler is in place.
    private var ready = false
    private var stalled = false
    private var lastProgress = DispatchTime.now()
    private var exited = false

    init(
        command: Command, spares: SpareRunPool? = nil, pipeline: String, dryRun: Bool, limits: RunLimits, gracePeriod: Double,
        logger: Logger
    ) {
        self.command = command
        self.spares = spares
        self.pipeline = pipeline
        self.dryRun = dryRun
        self.limits = limits
        self.gracePeriod = gracePeriod
        self.logger = logger
    }

    func snapshot() -> RunStatistics { lock.withLock { statistics } }

    /// SIGTERM once the child is ready for it; before its hello the cancel
    /// waits, since the default action of SIGTERM would kill it mid-start.
    /// Signals go out under the lock, and only while `exited` is false, which
    /// is set before the child is reaped: a reaped pid may already be another
    /// process's.
    func cancel() {
        lock.withLock {
            cancelRequested = true
            if !exited && ready && pid > 0 { kill(pid, SIGTERM) }
        }
    }

    /// Spawns the child from this thread, which then reads its messages and
    /// reaps it: the thread lives as long as the child, as PR_SET_PDEATHSIG
    /// (armed by the child) needs, since it fires when the spawning thread exits.
    func run() -> RunReport {
        let started = DispatchTime.now()
        let child: pid_t
        let protocolRead: Int32
        if let spare = spares?.start(arguments: command.arguments) {
            child = spare.pid
            protocolRead = spare.protocolRead
        } else {
            guard let ends = ChildRunProcess.pipe() else { return failed(.internal, "cannot create the run's pipe: \(errnoText())") }
            do {
                child = try Self.spawn(command, stdin: nil, protocolWriteEnd: ends.write)
            } catch {
                close(ends.read)
                close(ends.write)
                return failed(.internal, "\(error)")
            }
            close(ends.write)
            protocolRead = ends.read
        }
        lock.withLock {
            pid = child
            lastProgress = .now()
        }
        let watchdog = startWatchdog(child)
        readMessages(fd: protocolRead)
        close(protocolRead)
        // Wait for the exit without reaping, mark it, then reap (see `cancel`).
        var info = siginfo_t()
        while waitid(P_PID, id_t(child), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
        lock.withLock { exited = true }
        watchdog?.cancel()
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        return outcome(status: status, elapsed: Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9)
    }

    // MARK: - Spawning

    struct SpawnError: Error, CustomStringConvertible {
        var description: String
    }

    /// Starts `command` with `stdin` (else /dev/null) as fd 0, `stdout` (else
    /// the daemon's stderr) as fd 1, `stderr` (else the daemon's) as fd 2, and
    /// `protocolWriteEnd` as fd 3.
    static func spawn(_ command: Command, stdin: Int32?, stdout: Int32? = nil, stderr: Int32? = nil, protocolWriteEnd: Int32) throws -> pid_t {
        // dup2 onto its own number clears nothing, and one fd dup2'd onto
        // another's target number would be lost: every fd handed in is first
        // moved above fd 3 (close-on-exec; the dup2 copies are not).
        var raised: [Int32] = []
        defer { raised.forEach { close($0) } }
        func above(_ fd: Int32) throws -> Int32 {
            guard fd <= ChildRunProcess.protocolFD else { return fd }
            let copy = fcntl(fd, F_DUPFD_CLOEXEC, ChildRunProcess.protocolFD + 1)
            guard copy >= 0 else { throw SpawnError(description: "cannot set up the run's pipes: \(errnoText())") }
            raised.append(copy)
            return copy
        }
        let writeEnd = try above(protocolWriteEnd)
        let input = try stdin.map(above)
        let output = try stdout.map(above)
        let errors = try stderr.map(above)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let input {
            posix_spawn_file_actions_adddup2(&actions, input, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        // What a plugin prints goes to the daemon's stderr, never into the protocol.
        posix_spawn_file_actions_adddup2(&actions, output ?? 2, 1)
        if let errors { posix_spawn_file_actions_adddup2(&actions, errors, 2) }
        posix_spawn_file_actions_adddup2(&actions, writeEnd, ChildRunProcess.protocolFD)
        // Nothing else of the daemon's: an inherited client socket would stay
        // open as long as the run (or a pre-started process) lives.
        withUnsafeMutablePointer(to: &actions) { ChildRunProcess.closeFrom(ChildRunProcess.protocolFD + 1, in: UnsafeMutableRawPointer($0)) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGPIPE, SIGHUP] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        // Its own process group: a Ctrl-C at the daemon's terminal reaches the
        // daemon, which then stops the run at a checkpoint, not the run directly.
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP))

        let argv = ([command.executable] + command.arguments).map { strdup($0) } + [nil]
        let envp = command.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let result = posix_spawn(&child, command.executable, &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw SpawnError(description: "cannot start the run's process \(command.executable): \(String(cString: strerror(result)))")
        }
        return child
    }

    // MARK: - Reading the protocol

    private func readMessages(fd: Int32) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var pending = Data()
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            pending.append(contentsOf: buffer[0..<count])
            while let newline = pending.firstIndex(of: 0x0A) {
                let line = pending[pending.startIndex..<newline]
                pending.removeSubrange(pending.startIndex...newline)
                if !line.isEmpty { handle(Data(line)) }
            }
            // A line longer than any message is not the protocol: drop it rather than grow without bound.
            if pending.count > 16 << 20 { pending.removeAll() }
        }
    }

    private func handle(_ line: Data) {
        guard let message = RunMessage.parse(line) else {
            logger.warning("run process sent a line that is not the run protocol", metadata: ["pipeline": "\(pipeline)", "bytes": "\(line.count)"])
            return
        }
        switch message.type {
        case .hello:
            lock.withLock {
                ready = true
                if cancelRequested && !exited && pid > 0 { kill(pid, SIGTERM) }
            }
        case .progress:
            guard let stats = message.statistics else { return }
            lock.withLock {
                if Self.moved(from: statistics, to: stats) { lastProgress = .now() }
                statistics = stats
            }
        case .log:
            let level = message.level.flatMap(Logger.Level.init(rawValue:)) ?? .info
            var metadata: Logger.Metadata = (message.metadata ?? [:]).mapValues { .string($0) }
            metadata["pipeline"] = metadata["pipeline"] ?? "\(pipeline)"
            logger.log(level: level, "\(message.message ?? "")", metadata: metadata)
        case .crash:
            lock.withLock { crash = message }
        case .report:
            guard let body = message.report else { return }
            lock.withLock {
                report = body.runReport
                statistics = body.statistics
            }
        }
    }

    /// Work done between two progress messages: the stall clock restarts.
    static func moved(from old: RunStatistics, to new: RunStatistics) -> Bool {
        old.read != new.read || old.written != new.written || old.batchesCommitted != new.batchesCommitted
            || old.deadLettered != new.deadLettered || old.filtered != new.filtered || old.retries != new.retries
    }

    // MARK: - Stalls

    private func startWatchdog(_ child: pid_t) -> (any DispatchSourceTimer)? {
        guard let timeout = limits.stallTimeoutSeconds else { return nil }
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "ferry.run.watchdog"))
        timer.schedule(deadline: .now() + .milliseconds(250), repeating: .milliseconds(250))
        let grace = gracePeriod
        timer.setEventHandler { [weak self] in
            guard let self else { return }
            let fire = self.lock.withLock { () -> Bool in
                guard !self.stalled, !self.exited else { return false }
                let idle = Double(DispatchTime.now().uptimeNanoseconds - self.lastProgress.uptimeNanoseconds) / 1e9
                guard idle >= Double(timeout) else { return false }
                self.stalled = true
                kill(child, SIGTERM)
                return true
            }
            guard fire else { return }
            self.logger.warning(
                "run stalled: no progress for \(timeout)s, stopping it",
                metadata: ["pipeline": "\(self.pipeline)", "grace_period_seconds": "\(grace)"])
            DispatchQueue.global().asyncAfter(deadline: .now() + grace) { [weak self] in
                guard let self else { return }
                self.lock.withLock { if !self.exited { kill(child, SIGKILL) } }
            }
        }
        timer.resume()
        return timer
    }

    // MARK: - The outcome

    private func outcome(status: Int32, elapsed: Double) -> RunReport {
        let (report, crash, stalled, stats) = lock.withLock { (self.report, self.crash, self.stalled, self.statistics) }
        var statistics = stats
        statistics.elapsedSeconds = max(statistics.elapsedSeconds, elapsed)
        let signalled = (status & 0x7f) != 0 && (status & 0x7f) != 0x7f
        let signal = status & 0x7f
        let exitCode = (status >> 8) & 0xff
        if stalled {
            var base = report ?? RunReport(pipeline: pipeline, dryRun: dryRun)
            base.statistics = report?.statistics ?? statistics
            base.outcome = .failed(RunFailure(
                .stall, "no progress for \(limits.stallTimeoutSeconds ?? 0)s: the run was stopped"
                    + (signalled ? " (killed with \(Self.name(of: signal)) after the \(Int(gracePeriod))s grace period)" : "")))
            return base
        }
        // Stopped before it could set up its own handler (it was still loading
        // the pipeline): nothing was committed past the saved checkpoint.
        if signalled && (signal == SIGTERM || signal == SIGINT) && lock.withLock({ cancelRequested }) {
            return RunReport(pipeline: pipeline, outcome: .cancelled, statistics: statistics, dryRun: dryRun)
        }
        if signalled {
            var failure = RunFailure(.crash, "", signal: signal)
            if let crash {
                failure.plugin = crash.plugin
                failure.stage = crash.stage
                failure.call = crash.call.map { $0.hasSuffix("()") ? String($0.dropLast(2)) : $0 }
                failure.message = "plugin '\(crash.plugin ?? "?")' (\(crash.path ?? "?")) crashed with \(Self.name(of: signal))"
                    + (crash.call.map { " during \($0)" } ?? "")
            } else {
                failure.message = "the run's process died of \(Self.name(of: signal)) outside any plugin call"
            }
            if let megabytes = limits.maxMemoryMB { failure.message += " (memory limit max_memory_mb: \(megabytes))" }
            return RunReport(pipeline: pipeline, outcome: .failed(failure), statistics: statistics, dryRun: dryRun)
        }
        if let report { return report }
        return RunReport(
            pipeline: pipeline,
            outcome: .failed(RunFailure(
                .internal, "the run's process exited with status \(exitCode) before its report (its errors are in the log)")),
            statistics: statistics, dryRun: dryRun)
    }

    private func failed(_ kind: RunFailure.Kind, _ message: String) -> RunReport {
        RunReport(pipeline: pipeline, outcome: .failed(RunFailure(kind, message)), dryRun: dryRun)
    }

    static func name(of signal: Int32) -> String {
        switch signal {
        case SIGSEGV: "SIGSEGV"
        case SIGBUS: "SIGBUS"
        case SIGILL: "SIGILL"
        case SIGFPE: "SIGFPE"
        case SIGABRT: "SIGABRT"
        case SIGKILL: "SIGKILL"
        case SIGTERM: "SIGTERM"
        case SIGTRAP: "SIGTRAP"
        default: "signal \(signal)"
        }
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }
