#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import FerryCore
import Foundation

/// Shows a run's progress: a redrawn bar on a terminal, a plain line every
/// few seconds otherwise (logs stay greppable).
final class ProgressDisplay: @unchecked Sendable {
    private let runner: LanedRun
    private let timer: any DispatchSourceTimer
    private let interactive: Bool
    private var lastLine = DispatchTime.now()

    init(runner: LanedRun, enabled: Bool) {
        self.runner = runner
        interactive = enabled && isatty(2) != 0
        timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "ferry.progress"))
        timer.schedule(deadline: .now() + .milliseconds(200), repeating: .milliseconds(interactive ? 200 : 5000))
        if enabled { timer.setEventHandler { [weak self] in self?.tick() } }
        // A dispatch source must be resumed before it is released, used or not.
        timer.resume()
    }

    func stop() {
        timer.cancel()
        if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    private func tick() {
        let stats = runner.snapshot()
        let line = Self.describe(stats)
        if interactive {
            FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8))
        } else {
            FileHandle.standardError.write(Data("progress: \(line)\n".utf8))
        }
    }

    static func describe(_ stats: RunStatistics) -> String {
        var text = ""
        if let total = stats.estimatedTotal, total > 0 {
            let fraction = min(1, Double(stats.read) / Double(total))
            let width = 24
            let filled = Int(fraction * Double(width))
            text += "[" + String(repeating: "=", count: filled) + (filled < width ? ">" : "")
                + String(repeating: " ", count: max(0, width - filled - 1)) + "] "
            text += String(format: "%3.0f%% ", fraction * 100)
            text += "\(count(stats.read))/\(count(Int(total))) records"
        } else {
            text += "\(count(stats.read)) records"
        }
        text += "  \(count(Int(stats.rate)))/s  written \(count(stats.written))"
        if stats.filtered > 0 { text += "  filtered \(count(stats.filtered))" }
        if stats.deadLettered > 0 { text += "  dead-lettered \(count(stats.deadLettered))" }
        if let eta = stats.etaSeconds { text += "  ETA \(duration(eta))" }
        return text
    }

    static func count(_ value: Int) -> String {
        switch value {
        case ..<10_000: "\(value)"
        case ..<10_000_000: String(format: "%.1fk", Double(value) / 1e3)
        default: String(format: "%.1fM", Double(value) / 1e6)
        }
    }

    static func duration(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        return total >= 3600
            ? String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60)
            : String(format: "%d:%02d", total / 60, total % 60)
    }
}
