import FerryPluginKit
import Foundation

extension RunReport {
    /// The report for tools: `ferry run --output json` and the daemon's run API.
    public var jsonValue: JSONValue {
        let report = self
        let stats = report.statistics
        var object: [String: JSONValue] = [
            "pipeline": .string(report.pipeline),
            "dryRun": .bool(report.dryRun),
            "read": .integer(Int64(stats.read)), "filtered": .integer(Int64(stats.filtered)),
            "written": .integer(Int64(stats.written)), "inserted": .integer(Int64(stats.inserted)),
            "updated": .integer(Int64(stats.updated)), "unchanged": .integer(Int64(stats.unchanged)),
            "deadLettered": .integer(Int64(stats.deadLettered)), "retries": .integer(Int64(stats.retries)),
            "elapsedSeconds": .number(stats.elapsedSeconds), "recordsPerSecond": .number(stats.rate),
        ]
        switch report.outcome {
        case .completed: object["outcome"] = "completed"
        case .cancelled: object["outcome"] = "interrupted"
        case .failed(let message):
            object["outcome"] = "failed"
            object["error"] = .string(message)
        }
        if report.dryRun {
            object["sinkPreviewed"] = .bool(report.sinkPreviewed)
            object["sample"] = .array(report.sample.map { (try? JSONValue.parse($0)) ?? .string($0) })
        }
        if let checkpoint = report.checkpoint, !report.dryRun { object["checkpointRecords"] = .integer(Int64(checkpoint.records)) }
        if let path = report.deadLetterPath { object["deadLetterPath"] = .string(path) }
        return .object(object)
    }
}
