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
                lines.append("first \(report.sample.count) records as they would be written (--output json for every field in full):")
                lines += table(report.sample).map { "  \($0)" }
            }
            if report.sinkPreviewed {
                lines.append("would insert \(stats.inserted), update \(stats.updated), leave unchanged \(stats.unchanged), dead-letter \(stats.deadLettered)")
            } else {
                lines.append("the sink cannot preview: \(stats.written) records would be handed to it")
            }
        }
        let outcome = report.failure == nil ? report.outcome.name : report.outcome.name.uppercased()
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
        if let propagation = report.propagation {
            lines.append(
                "deletes: propagate: \(propagation.missing) missing, \(propagation.changed) changed, \(propagation.extra) extra;"
                    + " wrote \(propagation.written), deleted \(propagation.deleted)")
            if let refused = propagation.deletesRefused { lines.append("deletes: propagate: \(refused)") }
            if let error = propagation.error { lines.append("deletes: propagate failed: \(error)") }
        }
        return lines.joined(separator: "\n")
    }

    static func json(_ report: RunReport) -> String { report.jsonValue.jsonText }

    /// The sample as a table: one column per top-level field, in first-seen
    /// order; cells cut to 28 characters; nested values as compact JSON.
    static func table(_ records: [String]) -> [String] {
        let parsed = records.map { (try? JSONValue.parse($0)) ?? .object(["record": .string($0)]) }
        var columns: [String] = []
        for record in parsed {
            for key in orderedKeys(record, text: records[parsed.firstIndex(of: record) ?? 0]) where !columns.contains(key) {
                columns.append(key)
            }
        }
        func cell(_ value: JSONValue?) -> String {
            let text: String
            switch value {
            case nil: text = ""
            case .string(let string)?: text = string
            case .object(let fields)? where fields.count == 1 && fields.keys.first!.hasPrefix("$"):
                // {"$date": …}, {"$numberDecimal": …}, {"$oid": …}: the value says enough.
                text = fields.values.first!.stringValue ?? fields.values.first!.jsonText
            case let other?: text = other.jsonText
            }
            let flat = text.replacingOccurrences(of: "\n", with: " ")
            return flat.count > 28 ? String(flat.prefix(27)) + "…" : flat
        }
        let rows = [columns] + parsed.map { record in columns.map { cell(record[$0]) } }
        let widths = columns.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.enumerated().flatMap { index, row -> [String] in
            let line = row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: " | ")
            let trimmed = String(line.reversed().drop(while: { $0 == " " }).reversed())
            return index == 0 ? [trimmed, widths.map { String(repeating: "-", count: $0) }.joined(separator: "-+-")] : [trimmed]
        }
    }

    /// Top-level keys in the order the record's text has them (JSONValue objects are unordered).
    static func orderedKeys(_ record: JSONValue, text: String) -> [String] {
        guard case .object(let fields) = record else { return [] }
        return fields.keys.sorted { (text.range(of: "\"\($0)\"")?.lowerBound ?? text.endIndex) < (text.range(of: "\"\($1)\"")?.lowerBound ?? text.endIndex) }
    }
}
