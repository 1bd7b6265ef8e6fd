#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import FerryCore
import FerryPluginKit
import Foundation
import Logging

/// Keeps one run process started ahead of time, so a trigger does not wait
/// for a new process to load its libraries and warm up (see `SpareRun` in the
/// CLI): the run is handed its arguments on stdin and starts at once. When
/// no spare is ready (two runs at the same moment), a run spawns its own.
///
/// Spares are spawned by one thread that lives as long as the daemon:
/// PR_SET_PDEATHSIG fires when the *thread* that spawned a process exits, so
/// a spare spawned by a run's thread would die with that run.
final class SpareRunPool: @unchecked Sendable {
    /// A waiting spare: its pid, the write end of its stdin, the read end of its protocol pipe.
    struct Spare {
        let pid: pid_t
        let arguments: Int32
        let protocolRead: Int32
    }

    private let command: ChildProcessRun.Command
    private let logger: Logger
    private let lock = NSLock()
    private var spare: Spare?
    private var stopped = false
    /// Signalled when a spare is wanted. Created at 0 and signalled once at
    /// start: libdispatch traps when a semaphore goes away below its initial value.
    private let wanted = DispatchSemaphore(value: 0)

    init(command: ChildProcessRun.Command, logger: Logger) {
        var spareCommand = command
        spareCommand.arguments = ["spare", "--protocol-fd", "\(ChildRunProcess.protocolFD)"]
        spareCommand.environment[ChildRunProcess.spareVariable] = "1"
        self.command = spareCommand
        self.logger = logger
        // A spare that died before it got its run must not kill the daemon on write.
        signal(SIGPIPE, SIG_IGN)
        wanted.signal()
        let thread = Thread { [weak self] in self?.keepOneReady() }
        thread.name = "ferry.spare-runs"
        thread.start()
    }

    /// The waiting spare, handed `arguments` (a `ferry run` command line
    /// without the executable); nil when none is ready or it would not take them.
    func start(arguments: [String]) -> Spare? {
        guard let taken = lock.withLock({ () -> Spare? in
            defer { spare = nil }
            return spare
        }) else { return nil }
        wanted.signal()
        var line = JSONValue.array(arguments.map { .string($0) }).jsonText
        line += "\n"
        let sent = line.utf8CString.withUnsafeBufferPointer { buffer -> Bool in
            let count = buffer.count - 1
            var offset = 0
            while offset < count {
                let written = write(taken.arguments, buffer.baseAddress! + offset, count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return false }
                offset += written
            }
            return true
        }
        close(taken.arguments)
        guard sent else {
            close(taken.protocolRead)
            kill(taken.pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(taken.pid, &status, 0) < 0 && errno == EINTR {}
            return nil
        }
        return taken
    }

    /// No more spares; the waiting one exits (its stdin closes). The thread
    /// that spawned them stays, parked: see `keepOneReady`.
    func stop() {
        let idle = lock.withLock { () -> Spare? in
            stopped = true
            defer { spare = nil }
            return spare
        }
        wanted.signal()
        if let idle {
            close(idle.arguments)
            close(idle.protocolRead)
            var status: Int32 = 0
            while waitpid(idle.pid, &status, 0) < 0 && errno == EINTR {}
        }
    }

    /// Never returns: the processes this thread spawned, the pre-started ones
    /// that now carry runs included, would get their death signal if it did.
    private func keepOneReady() -> Never {
        while true {
            wanted.wait()
            if lock.withLock({ stopped }) { continue }
            guard let next = spawnSpare() else {
                // Could not start one (out of processes, say): runs spawn their own; try again later.
                Thread.sleep(forTimeInterval: 1)
                wanted.signal()
                continue
            }
            let keep = lock.withLock { () -> Bool in
                guard !stopped, spare == nil else { return false }
                spare = next
                return true
            }
            if !keep {
                close(next.arguments)
                close(next.protocolRead)
                var status: Int32 = 0
                while waitpid(next.pid, &status, 0) < 0 && errno == EINTR {}
            }
        }
    }

    private func spawnSpare() -> Spare? {
        guard let input = ChildRunProcess.pipe() else { return nil }
        guard let output = ChildRunProcess.pipe() else {
            close(input.read)
            close(input.write)
            return nil
        }
        do {
            let pid = try ChildProcessRun.spawn(command, stdin: input.read, protocolWriteEnd: output.write)
            close(input.read)
            close(output.write)
            return Spare(pid: pid, arguments: input.write, protocolRead: output.read)
        } catch {
            logger.warning("cannot pre-start a run process: \(error)")
            [input.read, input.write, output.read, output.write].forEach { close($0) }
            return nil
        }
    }
}
