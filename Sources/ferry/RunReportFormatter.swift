import FerryCore
import FerryPluginKit
import Foundation

/// Renders a run report for people (text) or tools (JSON).
enum RunReportFormatter {
    static func text(_ report: RunReport) -> String {
        let stats = report.statistics
        var lines: [String] = []
        if report.dryRun {
            lines.append("dry run of '\(report.pipeline)': nothing was written, no state was saved")
            if report.sample.isEmpty {
                lines.append("no records would be written")
            } else {
                lines.append("first \(report.sample.count) records as they would be written:")
                lines += report.sample.map { "  \($0)" }
            }
            if report.sinkPreviewed {
                lines.append("would insert \(stats.inserted), update \(stats.updated), leave unchanged \(stats.unchanged), dead-letter \(stats.deadLettered)")
            } else {
                lines.append("the sink cannot preview: \(stats.written) records would be handed to it")
            }
        }
        let outcome: String
        switch report.outcome {
        case .completed: outcome = "completed"
        case .cancelled: outcome = "interrupted"
        case .failed: outcome = "FAILED"
        }
        lines.append(
            "\(report.pipeline): \(outcome) in \(String(format: "%.2f", stats.elapsedSeconds))s: read \(stats.read), filtered \(stats.filtered), written \(stats.written)"
                + " (inserted \(stats.inserted), updated \(stats.updated), unchanged \(stats.unchanged)), dead-lettered \(stats.deadLettered), "
                + "\(Int(stats.rate)) records/s")
        if stats.retries > 0 { lines.append("transient failures retried: \(stats.retries)") }
        if let path = report.deadLetterPath { lines.append("dead letters: \(stats.deadLettered) in \(path)") }
        if !report.dryRun, let location = report.checkpointLocation {
            if let checkpoint = report.checkpoint {
                lines.append("checkpoint: \(checkpoint.records) records committed (\(location))")
            } else {
                lines.append("checkpoint: none saved yet")
            }
        }
        return lines.joined(separator: "\n")
    }

    static func json(_ report: RunReport) -> String { report.jsonValue.jsonText }
}
