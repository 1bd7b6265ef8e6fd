#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import FerryCore
import FerryPluginKit
import Foundation
import Logging

/// A diff in a child `ferry diff PIPELINE --output json` process of the same
/// binary, started as a run's child is (same plugin folders, state options and
/// environment, its own process group, no inherited fds, death with the
/// daemon) but never from the spare pool, which holds `ferry run`s. Its stdout
/// is the report, its stderr goes to the daemon's log line by line, and fd 3
/// carries only a crash line, so a plugin that crashes ends the diff as
/// `crashed` with the plugin and call named.
final class ChildProcessDiff: DiffExecution, @unchecked Sendable {
    let command: ChildProcessRun.Command
    let pipeline: String
    let logger: Logger

    /// The most report bytes kept: a sample is capped by `sample`, this only
    /// stops a process that prints without end.
    static let maxReportBytes = 64 << 20

    private let lock = NSLock()
    private var pid: pid_t = 0
    private var exited = false
    private var cancelRequested = false

    init(command: ChildProcessRun.Command, pipeline: String, logger: Logger) {
        self.command = command
        self.pipeline = pipeline
        self.logger = logger
    }

    /// SIGTERM at any time: `ferry diff` writes nothing, so its default
    /// action (exit at once) loses nothing. Only before the child is reaped.
    func cancel() {
        lock.withLock {
            cancelRequested = true
            if !exited && pid > 0 { kill(pid, SIGTERM) }
        }
    }

    /// Spawns, reads and reaps from this thread, which lives as long as the
    /// child, as PR_SET_PDEATHSIG (armed by the child) needs.
    func run() -> DiffResult {
        guard let out = ChildRunProcess.pipe() else { return failed("cannot create the diff's pipes: \(errnoText())") }
        guard let err = ChildRunProcess.pipe() else {
            [out.read, out.write].forEach { close($0) }
            return failed("cannot create the diff's pipes: \(errnoText())")
        }
        guard let crash = ChildRunProcess.pipe() else {
            [out.read, out.write, err.read, err.write].forEach { close($0) }
            return failed("cannot create the diff's pipes: \(errnoText())")
        }
        let child: pid_t
        do {
            child = try ChildProcessRun.spawn(command, stdin: nil, stdout: out.write, stderr: err.write, protocolWriteEnd: crash.write)
        } catch {
            [out.read, out.write, err.read, err.write, crash.read, crash.write].forEach { close($0) }
            return failed("\(error)")
        }
        [out.write, err.write, crash.write].forEach { close($0) }
        let cancelNow = lock.withLock { () -> Bool in
            pid = child
            return cancelRequested
        }
        if cancelNow { cancel() }

        var output = ChildOutput(stdout: out.read, stderr: err.read, crash: crash.read)
        output.read(maxStdout: Self.maxReportBytes) { [self] line in
            logger.notice("\(line)", metadata: ["pipeline": "\(pipeline)", "from": "ferry diff"])
        }
        [out.read, err.read, crash.read].forEach { close($0) }
        // Wait without reaping, mark, then reap (see `cancel`).
        var info = siginfo_t()
        while waitid(P_PID, id_t(child), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
        let cancelled = lock.withLock { () -> Bool in
            exited = true
            return cancelRequested
        }
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        return outcome(status: status, output: output, cancelled: cancelled)
    }

    private func outcome(status: Int32, output: ChildOutput, cancelled: Bool) -> DiffResult {
        let signal = status & 0x7f
        let signalled = signal != 0 && signal != 0x7f
        if signalled && cancelled && (signal == SIGTERM || signal == SIGINT) {
            return DiffResult(report: nil, cancelled: true)
        }
        if signalled {
            var failure = RunFailure(.crash, "", signal: signal)
            if let crash = output.crashLines.lazy.compactMap({ RunMessage.parse(Data($0.utf8)) }).first(where: { $0.type == .crash }) {
                failure.plugin = crash.plugin
                failure.stage = crash.stage
                failure.call = crash.call.map { $0.hasSuffix("()") ? String($0.dropLast(2)) : $0 }
                failure.message = "plugin '\(crash.plugin ?? "?")' (\(crash.path ?? "?")) crashed with \(ChildProcessRun.name(of: signal))"
                    + (crash.call.map { " during \($0)" } ?? "")
            } else {
                failure.message = "the diff's process died of \(ChildProcessRun.name(of: signal)) outside any plugin call"
            }
            return DiffResult(report: nil, failure: failure)
        }
        // The report is the last line that is a JSON object naming the
        // pipeline: whatever a plugin printed to stdout comes before it.
        let report = output.stdoutLines.reversed().lazy.compactMap { try? JSONValue.parse($0) }.first { $0["pipeline"]?.stringValue != nil }
        if let report { return DiffResult(report: report) }
        let exitCode = (status >> 8) & 0xff
        return failed("the diff's process exited with status \(exitCode) without a report (its errors are in the log)")
    }

    private func failed(_ message: String) -> DiffResult {
        DiffResult(report: nil, failure: RunFailure(.internal, message))
    }
}

/// A child's stdout, stderr and crash pipe, read together until all three
/// close: reading one to its end first could leave the child blocked on a
/// full pipe of another.
struct ChildOutput {
    let fds: [Int32]
    private var buffers: [Data]
    private var truncated = false
    private(set) var stdoutLines: [String] = []
    private(set) var crashLines: [String] = []

    init(stdout: Int32, stderr: Int32, crash: Int32) {
        fds = [stdout, stderr, crash]
        buffers = [Data(), Data(), Data()]
    }

    /// Reads to the end of all three; `log` gets each stderr line as it comes.
    mutating func read(maxStdout: Int, log: (String) -> Void) {
        var open = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        var chunk = [UInt8](repeating: 0, count: 65536)
        while open.contains(where: { $0.fd >= 0 }) {
            let ready = poll(&open, nfds_t(open.count), -1)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            for index in open.indices where open[index].fd >= 0 && open[index].revents != 0 {
                let count = chunk.withUnsafeMutableBytes { Glibc.read(open[index].fd, $0.baseAddress, $0.count) }
                if count < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                if count <= 0 {
                    open[index].fd = -1
                    continue
                }
                if index == 0 && buffers[0].count + count > maxStdout {
                    truncated = true
                    continue
                }
                buffers[index].append(contentsOf: chunk[0..<count])
                if index == 1 { drainLines(of: 1).forEach(log) }
            }
        }
        stdoutLines = drainLines(of: 0, all: true)
        drainLines(of: 1, all: true).forEach(log)
        crashLines = drainLines(of: 2, all: true)
        if truncated { log("the diff's report was longer than \(maxStdout) bytes: it was dropped") }
    }

    private mutating func drainLines(of index: Int, all: Bool = false) -> [String] {
        var lines: [String] = []
        while let newline = buffers[index].firstIndex(of: 0x0A) {
            lines.append(String(decoding: buffers[index][buffers[index].startIndex..<newline], as: UTF8.self))
            buffers[index].removeSubrange(buffers[index].startIndex...newline)
        }
        if all && !buffers[index].isEmpty {
            lines.append(String(decoding: buffers[index], as: UTF8.self))
            buffers[index].removeAll()
        }
        return lines.filter { !$0.isEmpty }
    }
}

