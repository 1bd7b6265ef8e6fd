import FerryCore

/// The text form of a diff (and repair) report.
enum DiffReportFormatter {
    static func text(_ report: DiffReport) -> String {
        var lines: [String] = []
        let verdict = report.failure != nil ? "comparison failed" : report.isEqual ? "target matches source" : "target differs from source"
        var how = "method: \(report.method.rawValue)"
        if report.method == .digest {
            how += ", \(report.buckets) buckets, \(report.differingBuckets) differing, \(report.recordsRead) records read"
        }
        lines.append("pipeline \(report.pipeline): \(verdict) (key: \(report.key.joined(separator: ", ")); \(how))")
        if let note = report.methodNote { lines.append("  not by digest: \(note)") }
        let rows: [(String, Int)] = [
            ("source records", report.sourceRecords), ("target records", report.targetRecords), ("matching", report.equal),
            ("missing", report.missing), ("extra", report.extra), ("changed", report.changed),
        ]
        for (name, value) in rows { lines.append("  \(name.padding(toLength: 16, withPad: " ", startingAt: 0))\(value)") }
        if report.sourceSkipped > 0 { lines.append("  source records a transform filtered or rejected: \(report.sourceSkipped)") }
        if report.sourceWithoutKey > 0 { lines.append("  source records without the key: \(report.sourceWithoutKey)") }
        if report.targetWithoutKey > 0 { lines.append("  target records without the key (ignored): \(report.targetWithoutKey)") }
        if report.duplicateTargetKeys > 0 { lines.append("  target records repeating a key: \(report.duplicateTargetKeys)") }
        for key in report.sampleMissing { lines.append("missing: \(key)") }
        for key in report.sampleExtra { lines.append("extra:   \(key)") }
        for item in report.sampleChanged {
            lines.append("changed: \(item.key) fields: \(item.fields.joined(separator: ", "))")
            lines.append("  source: \(item.source)")
            lines.append("  target: \(item.target)")
        }
        if let repair = report.repair {
            let verb = repair.dryRun ? "would write" : "wrote"
            let deleted = repair.dryRun ? "would delete" : "deleted"
            lines.append("repair: \(verb) \(repair.written) (\(repair.rejected) rejected), \(deleted) \(repair.deleted)")
            if let refused = repair.deletesRefused { lines.append("repair: \(refused)") }
            if repair.notReplaced > 0 {
                lines.append(
                    "repair: \(repair.notReplaced) changed records not written: sink '\(report.sinkPlugin)' can neither upsert nor delete, so a write would add a second copy")
            }
            if let path = repair.deadLetterPath, repair.rejected > 0 { lines.append("repair: rejected records are in \(path)") }
        }
        if let failure = report.failure { lines.append("error: \(failure.description)") }
        lines.append(String(format: "  elapsed %.2f s", report.elapsedSeconds))
        return lines.joined(separator: "\n")
    }

    /// After a repair: did it leave nothing behind?
    static func repairedEverything(_ report: DiffReport) -> Bool {
        guard let repair = report.repair, report.failure == nil else { return false }
        return repair.deletesRefused == nil && repair.rejected == 0 && repair.notReplaced == 0 && report.sourceWithoutKey == 0
    }
}
