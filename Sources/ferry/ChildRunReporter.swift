#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import FerryCore
import Foundation
import Logging

/// The child side of the run protocol (docs/run-protocol.md): `ferry run`
/// started by `ferry serve` writes its hello, progress, log records and final
/// report as JSON lines to the protocol fd instead of printing them.
final class ChildRunReporter: @unchecked Sendable {
    private let fd: Int32
    private let lock = NSLock()
    private var timer: (any DispatchSourceTimer)?

    init(fd: Int32) {
        self.fd = fd
        // Nobody reading any more (the daemon died) must not kill the run with
        // SIGPIPE before its death signal does: writes then just fail.
        signal(SIGPIPE, SIG_IGN)
    }

    func send(_ message: RunMessage) {
        let data = message.line()
        lock.lock()
        defer { lock.unlock() }
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written <= 0 {
                    if written < 0 && errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }

    func hello(runID: String) {
        var message = RunMessage(type: .hello)
        message.pid = getpid()
        message.run = runID
        send(message)
    }

    /// Progress every `interval` seconds until `stop`.
    func startProgress(every interval: Double, snapshot: @escaping @Sendable () -> RunStatistics) {
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "ferry.child.progress"))
        timer.schedule(deadline: .now(), repeating: interval)
        timer.setEventHandler { [weak self] in
            var message = RunMessage(type: .progress)
            message.statistics = snapshot()
            self?.send(message)
        }
        timer.resume()
        self.timer = timer
    }

    func finish(_ report: RunReport) {
        timer?.cancel()
        var message = RunMessage(type: .report)
        message.report = RunMessage.Report(report)
        send(message)
    }

    func logger(level: Logger.Level) -> Logger {
        var logger = Logger(label: "ferry") { _ in ProtocolLogHandler(reporter: self) }
        logger.logLevel = level
        return logger
    }
}

/// Log records as `log` messages: the daemon logs them as its own, with the run's id.
struct ProtocolLogHandler: LogHandler {
    let reporter: ChildRunReporter
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var message = RunMessage(type: .log)
        message.level = event.level.rawValue
        message.message = "\(event.message)"
        var fields = self.metadata.mapValues { "\($0)" }
        for (key, value) in event.metadata ?? [:] { fields[key] = "\(value)" }
        message.metadata = fields.isEmpty ? nil : fields
        reporter.send(message)
    }
}
