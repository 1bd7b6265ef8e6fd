import FerryPluginKit

extension APIRoutes {
    /// What a run shows a caller without the token. A dry run's report carries
    /// records (customer data, often): the counts stay, the records go. An error
    /// message can quote a value expanded from `${file:…}` or `${VAR}`, so its
    /// text goes too; the status and outcome say that the run failed.
    static func redacted(_ run: JSONValue) -> JSONValue {
        guard case .object(var object) = run else { return run }
        if object["error"] != nil { object["error"] = .string(errorDetailsHidden) }
        object["failure"] = object["failure"].map(redactedFailure)
        if case .object(var report)? = object["report"] {
            if report["sample"] != nil {
                report["sample"] = nil
                report["sampleHidden"] = .string("the sample records need the API token (Authorization: Bearer …)")
            }
            if report["error"] != nil { report["error"] = .string(errorDetailsHidden) }
            report["failure"] = report["failure"].map(redactedFailure)
            object["report"] = .object(report)
        }
        return .object(object)
    }

    /// A typed failure keeps what tells an alert or a retry policy what
    /// happened (kind, plugin, call, signal, status); its message goes.
    static func redactedFailure(_ failure: JSONValue) -> JSONValue {
        guard case .object(var fields) = failure else { return failure }
        if fields["message"] != nil { fields["message"] = .string(errorDetailsHidden) }
        return .object(fields)
    }

    static let errorDetailsHidden = "error details need the API token (Authorization: Bearer …)"
}
