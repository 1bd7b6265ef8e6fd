#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import FerryCore
import FerryPluginKit
import Foundation
import Logging

/// What /readyz checks: the state store can be written, and each pipeline's
/// source opens and its sink (and dead-letter sink, if any) opens and passes
/// `check`, each within a timeout.
///
/// With run isolation (the default) the plugins are opened in a child
/// `ferry validate --connect` per pipeline, never in the daemon: a plugin that
/// crashes in `open` would otherwise take the daemon down on every probe, and
/// one that hangs would leave a thread behind on every probe. A child that
/// takes too long on a stage is killed. Without isolation (`--run-isolation
/// thread`) they are opened on threads of the daemon, and a hung one is
/// abandoned there.
struct ReadinessProbe: Sendable {
    let registry: RunRegistry
    let timeout: Double
    let logger: Logger
    /// How a child check starts (this binary, its plugin folders, log level and
    /// environment); nil: check in the daemon's own process.
    var childCommand: ChildProcessRun.Command?
    /// Seconds a child check may take to start, on top of its first stage's timeout.
    static let childStartGrace = 5.0

    struct PipelineStatus: Sendable {
        var name: String
        var problems: [Problem]
    }

    /// What failed, and why. The why is an error message, which can quote a
    /// secret (a DSN expanded from `${file:…}`): only callers with the token see it.
    struct Problem: Sendable {
        var subject: String
        var detail: String
        /// A timeout's detail is the daemon's own words, safe for anyone.
        var detailIsPublic = false

        func text(trusted: Bool) -> String {
            "\(subject): \(trusted || detailIsPublic ? detail : APIRoutes.errorDetailsHidden)"
        }
    }

    func run() -> (ready: Bool, pipelines: [PipelineStatus]) {
        let plans = registry.pipelines.values.sorted { $0.pipeline.name < $1.pipeline.name }
        let results = Locked([String: [Problem]]())
        let group = DispatchGroup()
        for plan in plans {
            // A queue of its own per pipeline: each check mostly waits (on a
            // child or a server), and the shared pool would run only a few at once.
            DispatchQueue(label: "ferry.readiness").async(group: group) {
                let problems = check(plan)
                results.withLock { $0[plan.pipeline.name] = problems }
            }
        }
        // A child check may take a process start and then `timeout` per stage
        // (source, sink, dead-letter sink) before it is killed.
        let overall = childCommand == nil ? timeout + 1 : Self.childStartGrace + 3 * timeout + 1
        let finished = group.wait(timeout: .now() + overall)
        let collected = results.withLock { $0 }
        let statuses = plans.map { plan in
            PipelineStatus(
                name: plan.pipeline.name,
                problems: collected[plan.pipeline.name] ?? (finished == .timedOut ? [Problem(subject: "checks", detail: "did not finish within \(overall)s", detailIsPublic: true)] : []))
        }
        return (statuses.allSatisfy { $0.problems.isEmpty }, statuses)
    }

    private func check(_ plan: PipelinePlan) -> [Problem] {
        var problems: [Problem] = []
        if let problem = checkStateStore(plan) { problems.append(problem) }
        let checks = plan.connectChecks(logger: logger)
        if let childCommand {
            return problems + checkInChild(plan, subjects: checks.map(\.subject), command: childCommand)
        }
        return problems + checks.compactMap { within($0.subject, $0.body) }
    }

    /// Runs `ferry validate --connect --output json` for the pipeline's file and
    /// reads its line per stage; the stage after the last line is the one that
    /// hung (killed after `timeout`) or crashed.
    private func checkInChild(_ plan: PipelinePlan, subjects: [String], command: ChildProcessRun.Command) -> [Problem] {
        var command = command
        command.arguments = ["validate", plan.pipeline.file, "--connect", "--output", "json", "--crash-fd", "\(ChildRunProcess.protocolFD)"]
            + command.arguments
        guard let out = ChildRunProcess.pipe() else {
            return [Problem(subject: "checks", detail: "cannot create a pipe for the check's process: \(errnoText())", detailIsPublic: true)]
        }
        guard let err = ChildRunProcess.pipe() else {
            [out.read, out.write].forEach { close($0) }
            return [Problem(subject: "checks", detail: "cannot create a pipe for the check's process: \(errnoText())", detailIsPublic: true)]
        }
        let child: pid_t
        do {
            // Its stage lines and a crash line both come back on stdout's pipe. Its
            // stderr (warnings, a plugin's log) is logged here, in the daemon's format.
            child = try ChildProcessRun.spawn(command, stdin: nil, stdout: out.write, stderr: err.write, protocolWriteEnd: out.write)
        } catch {
            [out.read, out.write, err.read, err.write].forEach { close($0) }
            return [Problem(subject: "checks", detail: "\(error)", detailIsPublic: true)]
        }
        [out.write, err.write].forEach { close($0) }
        var results: [String: String?] = [:]  // subject: nil when it passed, else the problem
        var crash: RunMessage?
        var timedOut = false
        var pending = [[UInt8](), [UInt8]()]
        var buffer = [UInt8](repeating: 0, count: 16384)
        var open = [out.read, err.read].map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        // Process start-up gets a grace of its own; then each stage has `timeout`.
        var deadline = DispatchTime.now() + Self.childStartGrace + timeout
        func take(_ line: Data, from index: Int) {
            if index == 1 {
                logger.notice("\(String(decoding: line, as: UTF8.self))", metadata: ["pipeline": "\(plan.pipeline.name)", "from": "ferry validate"])
            } else if let message = RunMessage.parse(line), message.type == .crash {
                crash = message
            } else if let message = try? JSONValue.parse(String(decoding: line, as: UTF8.self)), let subject = message["subject"]?.stringValue {
                results[subject] = message["ok"] == .bool(true) ? .some(nil) : .some(message["detail"]?.stringValue ?? "failed")
                deadline = DispatchTime.now() + timeout
            }
        }
        while open.contains(where: { $0.fd >= 0 }) {
            let left = Int64(deadline.uptimeNanoseconds) - Int64(DispatchTime.now().uptimeNanoseconds)
            if left <= 0 {
                timedOut = true
                break
            }
            let ready = poll(&open, nfds_t(open.count), Int32(min(left / 1_000_000 + 1, 60_000)))
            if ready <= 0 { continue }
            for index in open.indices where open[index].fd >= 0 && open[index].revents != 0 {
                let count = buffer.withUnsafeMutableBytes { read(open[index].fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 {
                    open[index].fd = -1
                    continue
                }
                pending[index] += buffer[0..<count]
                while let newline = pending[index].firstIndex(of: 0x0A) {
                    let line = Data(pending[index][..<newline])
                    pending[index].removeSubrange(...newline)
                    if !line.isEmpty { take(line, from: index) }
                }
                // A line longer than any of the child's is not one of them (a plugin's
                // own output shares the pipe): drop it rather than grow without bound.
                if pending[index].count > 1 << 20 { pending[index].removeAll() }
            }
        }
        if timedOut { kill(child, SIGKILL) }
        [out.read, err.read].forEach { close($0) }
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}

        let signal = status & 0x7F
        let code = (status >> 8) & 0xFF
        if !timedOut && signal == 0 && code == 2 && results.isEmpty {
            // Invalid before any stage was tried: not a source or sink problem.
            return [
                Problem(
                    subject: "pipeline",
                    detail: "ferry validate finds it invalid now (a transform that does not open, or a file changed since the daemon started); its reasons are in the daemon's log",
                    detailIsPublic: true)
            ]
        }
        var problems: [Problem] = []
        for subject in subjects {
            if let result = results[subject] {
                if let detail = result { problems.append(Problem(subject: subject, detail: detail)) }
                continue
            }
            // The first stage without a line is where the child stopped.
            if timedOut {
                problems.append(Problem(subject: subject, detail: "no answer within \(timeout)s", detailIsPublic: true))
            } else if signal != 0 {
                let plugin = crash?.plugin.map { "plugin '\($0)'" } ?? "the plugin"
                let name = ChildProcessRun.name(of: signal)
                let call = crash?.call.map { " in \($0)" } ?? ""
                problems.append(
                    Problem(subject: subject, detail: "\(plugin) crashed (\(name))\(call) while being checked; the daemon goes on", detailIsPublic: true))
            } else {
                problems.append(Problem(subject: subject, detail: "not checked: the check's process exited \(code) before it", detailIsPublic: true))
            }
            break
        }
        return problems
    }

    private func checkStateStore(_ plan: PipelinePlan) -> Problem? {
        let registry = self.registry
        return within("state store") {
            try registry.store(for: plan).checkWritable()
            try registry.locks?.check()
        }
    }

    /// Runs `body` on its own thread; a problem if it throws or takes too long.
    private func within(_ what: String, _ body: @escaping @Sendable () throws -> Void) -> Problem? {
        let outcome = Locked<Problem??>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            var problem: Problem?
            do { try body() } catch { problem = Problem(subject: what, detail: "\(error)") }
            outcome.withLock { $0 = .some(problem) }
            done.signal()
        }.start()
        guard done.wait(timeout: .now() + timeout) == .success else {
            return Problem(subject: what, detail: "no answer within \(timeout)s", detailIsPublic: true)
        }
        return outcome.withLock { $0 } ?? nil
    }
}
