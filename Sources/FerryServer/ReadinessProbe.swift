import Dispatch
import FerryCore
import FerryPluginKit
import Foundation
import Logging

/// What /readyz checks: the state store can be written, and each pipeline's
/// source opens and its sink (and dead-letter sink, if any) opens and passes
/// `check`, each within a timeout.
/// A plugin call that hangs is abandoned on its thread, never waited for.
struct ReadinessProbe: Sendable {
    let registry: RunRegistry
    let timeout: Double
    let logger: Logger

    struct PipelineStatus: Sendable {
        var name: String
        var problems: [Problem]
    }

    /// What failed, and why. The why is an error message, which can quote a
    /// secret (a DSN expanded from `${file:…}`): only callers with the token see it.
    struct Problem: Sendable {
        var subject: String
        var detail: String
        /// A timeout's detail is the daemon's own words, safe for anyone.
        var detailIsPublic = false

        func text(trusted: Bool) -> String {
            "\(subject): \(trusted || detailIsPublic ? detail : APIRoutes.errorDetailsHidden)"
        }
    }

    func run() -> (ready: Bool, pipelines: [PipelineStatus]) {
        let plans = registry.pipelines.values.sorted { $0.pipeline.name < $1.pipeline.name }
        let results = Locked([String: [Problem]]())
        let group = DispatchGroup()
        for plan in plans {
            DispatchQueue.global().async(group: group) {
                let problems = check(plan)
                results.withLock { $0[plan.pipeline.name] = problems }
            }
        }
        let finished = group.wait(timeout: .now() + timeout + 1)
        let collected = results.withLock { $0 }
        let statuses = plans.map { plan in
            PipelineStatus(
                name: plan.pipeline.name,
                problems: collected[plan.pipeline.name] ?? (finished == .timedOut ? [Problem(subject: "checks", detail: "did not finish within \(timeout)s", detailIsPublic: true)] : []))
        }
        return (statuses.allSatisfy { $0.problems.isEmpty }, statuses)
    }

    private func check(_ plan: PipelinePlan) -> [Problem] {
        var problems: [Problem] = []
        if let problem = checkStateStore(plan) { problems.append(problem) }
        let pipeline = plan.pipeline
        func options(_ stage: PipelinePlan.Stage, kind: PluginKinds) -> InstanceOptions {
            InstanceOptions(
                kind: kind, stage: stage.config.role, configJSON: stage.config.configJSON, mode: pipeline.mode,
                batchSize: pipeline.batchSize, pipelineName: pipeline.name)
        }
        let sourceOptions = options(plan.source, kind: .source)
        let sinkOptions = options(plan.sink, kind: .sink)
        let logger = self.logger
        let source = within("source '\(plan.source.plugin.name)'") {
            let instance = try HostedInstance(
                plugin: plan.source.plugin, options: sourceOptions, cancel: CancelFlag(), logger: logger)
            instance.close()
        }
        let sink = within("sink '\(plan.sink.plugin.name)'") {
            let instance = try HostedInstance(
                plugin: plan.sink.plugin, options: sinkOptions, cancel: CancelFlag(), logger: logger)
            defer { instance.close() }
            try instance.healthCheck()
        }
        // Where rejected records go must work too, or the first one fails the run.
        var deadLetterSink: Problem?
        if let stage = plan.deadLetterSink {
            let deadLetterOptions = options(stage, kind: .sink)
            deadLetterSink = within("dead-letter sink '\(stage.plugin.name)'") {
                let instance = try HostedInstance(plugin: stage.plugin, options: deadLetterOptions, cancel: CancelFlag(), logger: logger)
                defer { instance.close() }
                try instance.healthCheck()
            }
        }
        return problems + [source, sink, deadLetterSink].compactMap { $0 }
    }

    private func checkStateStore(_ plan: PipelinePlan) -> Problem? {
        let registry = self.registry
        return within("state store") {
            try registry.store(for: plan).checkWritable()
            try registry.locks?.check()
        }
    }

    /// Runs `body` on its own thread; a problem if it throws or takes too long.
    private func within(_ what: String, _ body: @escaping @Sendable () throws -> Void) -> Problem? {
        let outcome = Locked<Problem??>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            var problem: Problem?
            do { try body() } catch { problem = Problem(subject: what, detail: "\(error)") }
            outcome.withLock { $0 = .some(problem) }
            done.signal()
        }.start()
        guard done.wait(timeout: .now() + timeout) == .success else {
            return Problem(subject: what, detail: "no answer within \(timeout)s", detailIsPublic: true)
        }
        return outcome.withLock { $0 } ?? nil
    }
}
