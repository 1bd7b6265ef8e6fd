import FerryCore
import FerryPluginKit
import Foundation
import Logging

/// Diffs in the registry: run records of kind `diff`, which hold their
/// pipeline as a run does and report `ferry diff`'s object.
extension RunRegistry {
    /// Starts a diff of the pipeline's source with its target, as a run record
    /// of kind `diff`. It holds the pipeline as a run does (a diff while the
    /// pipeline writes would compare a moving target, and a run while it
    /// compares would make its counts wrong), but takes no cluster-wide lock:
    /// it writes nothing.
    func startDiff(pipeline name: String, request: DiffRequest) throws(StartError) -> String {
        guard let plan = pipelines[name] else { throw .unknownPipeline(name) }
        let id = UUID().uuidString.lowercased()
        var diffLogger = logger
        diffLogger[metadataKey: "run_id"] = "\(id)"
        try reserve(name, id: id)
        let execution: any DiffExecution
        if isolation == .process, var command = diffCommand {
            command.arguments = ["diff", plan.pipeline.file] + command.arguments
                + ["--method", request.method.rawValue, "--sample", "\(request.sample)"]
            execution = ChildProcessDiff(command: command, pipeline: name, logger: diffLogger)
        } else {
            execution = ThreadDiff(plan: plan, request: request, launcher: launcher, logger: diffLogger)
        }
        let run = Run(id: id, pipeline: name, trigger: .api, work: .diff(execution, request))
        record(run, isRun: false)
        if shutdownRequested { execution.cancel() }
        diffLogger.info(
            "diff started",
            metadata: ["pipeline": "\(name)", "method": "\(request.method.rawValue)", "isolation": "\(isolation.rawValue)"])
        let thread = Thread { [self] in
            let result = execution.run()
            finish(run, diff: result)
        }
        thread.name = "ferry.diff.\(name)"
        thread.start()
        return id
    }

    private func finish(_ run: Run, diff result: DiffResult) {
        settle(run) { $0.diff = result }
        metrics.diffFinished(pipeline: run.pipeline, result: result)
        var metadata: Logger.Metadata = ["pipeline": "\(run.pipeline)", "run_id": "\(run.id)", "outcome": "\(result.status)"]
        if let counts = result.counts {
            metadata["missing"] = "\(counts.missing)"
            metadata["extra"] = "\(counts.extra)"
            metadata["changed"] = "\(counts.changed)"
            metadata["equal"] = "\(result.verdict == "equal")"
        }
        if let failure = result.failure {
            metadata["error"] = "\(failure)"
            metadata["failure_kind"] = "\(failure.kind.rawValue)"
            if let plugin = failure.plugin { metadata["plugin"] = "\(plugin)" }
            if let signal = failure.signal { metadata["signal"] = "\(ChildProcessRun.name(of: signal))" }
        }
        let level: Logger.Level = result.failure.map { $0.kind == .crash ? .error : .warning } ?? .info
        logger.log(level: level, "diff finished", metadata: metadata)
    }

    /// A diff: what it was asked, and when finished its report (`ferry diff
    /// --output json`'s object) and why it failed. No progress: a diff
    /// reports only at its end.
    func describeDiff(_ run: Run) -> JSONValue {
        guard case .diff(_, let request) = run.work else { return .null }
        var object: [String: JSONValue] = [
            "id": .string(run.id), "kind": .string(run.work.kind), "pipeline": .string(run.pipeline), "trigger": .string(run.trigger.rawValue),
            "status": .string(Self.status(of: run)), "startedAt": .string(Self.time(run.startedAt)),
            "diff": .object(["method": .string(request.method.rawValue), "sample": .integer(Int64(request.sample))]),
        ]
        if let finished = run.finishedAt { object["finishedAt"] = .string(Self.time(finished)) }
        if let result = run.diff {
            if let report = result.report { object["report"] = report }
            if let failure = result.failure {
                object["error"] = .string(failure.description)
                object["failure"] = failure.jsonValue
            }
        }
        return .object(object)
    }
}
