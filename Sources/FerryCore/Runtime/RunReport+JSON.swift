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
        object["outcome"] = .string(report.outcome.name)
        if let failure = report.failure {
            object["error"] = .string(failure.description)
            object["failure"] = failure.jsonValue
        }
        if report.dryRun {
            object["sinkPreviewed"] = .bool(report.sinkPreviewed)
            object["sample"] = .array(report.sample.map { (try? JSONValue.parse($0)) ?? .string($0) })
        }
        if let checkpoint = report.checkpoint, !report.dryRun { object["checkpointRecords"] = .integer(Int64(checkpoint.records)) }
        if let path = report.deadLetterPath { object["deadLetterPath"] = .string(path) }
        if let propagation = report.propagation {
            var fields: [String: JSONValue] = [
                "missing": .integer(Int64(propagation.missing)), "extra": .integer(Int64(propagation.extra)),
                "changed": .integer(Int64(propagation.changed)), "written": .integer(Int64(propagation.written)),
                "deleted": .integer(Int64(propagation.deleted)),
            ]
            if let refused = propagation.deletesRefused { fields["deletesRefused"] = .string(refused) }
            if let error = propagation.error { fields["error"] = .string(error) }
            object["propagation"] = .object(fields)
        }
        return .object(object)
    }
}

extension RunFailure {
    /// The typed fields, for tools that decide on the kind (retry, alert) rather than parse the text.
    public var jsonValue: JSONValue {
        var object: [String: JSONValue] = ["kind": .string(kind.rawValue), "message": .string(message)]
        if let plugin { object["plugin"] = .string(plugin) }
        if let stage { object["stage"] = .string(stage) }
        if let call { object["call"] = .string(call) }
        if let status { object["status"] = .integer(Int64(status)) }
        if let signal { object["signal"] = .integer(Int64(signal)) }
        if let lane { object["lane"] = .integer(Int64(lane)) }
        return .object(object)
    }

    /// The inverse of `jsonValue` (the run protocol carries failures this way).
    public init?(json: JSONValue) {
        guard case .object(let object) = json, case .string(let kindName)? = object["kind"], let kind = Kind(rawValue: kindName),
            case .string(let message)? = object["message"]
        else { return nil }
        func string(_ key: String) -> String? {
            if case .string(let value)? = object[key] { return value }
            return nil
        }
        func int(_ key: String) -> Int64? {
            if case .integer(let value)? = object[key] { return value }
            return nil
        }
        self.init(
            kind, message, plugin: string("plugin"), stage: string("stage"), call: string("call"), status: int("status").map { Int32(truncatingIfNeeded: $0) },
            signal: int("signal").map { Int32(truncatingIfNeeded: $0) }, lane: int("lane").map { Int($0) })
    }
}
