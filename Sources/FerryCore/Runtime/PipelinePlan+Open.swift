import FerryPluginKit
import Logging

extension PipelinePlan {
    /// How `stage` is opened as `kind` in this pipeline: its role, config and
    /// name, the pipeline's mode and batch size unless the caller's run says
    /// otherwise.
    func instanceOptions(
        _ stage: Stage, kind: PluginKinds, mode: SyncMode? = nil, batchSize: Int? = nil, resume: [UInt8]? = nil,
        shard: ShardSpec = .whole, repair: Bool = false
    ) -> InstanceOptions {
        InstanceOptions(
            kind: kind, stage: stage.config.role, configJSON: stage.config.configJSON, resumeState: resume,
            mode: mode ?? pipeline.mode, batchSize: batchSize ?? pipeline.batchSize, shardIndex: shard.index,
            shardCount: shard.count, pipelineName: pipeline.name, repair: repair)
    }

    /// Opens and closes each transform once, so errors only a plugin can see
    /// (a regex that does not compile, a bad mapping) surface at validate time.
    /// Sources and sinks are left alone: opening them may connect to a server.
    public func openTransforms(logger: Logger) -> [ConfigError] {
        var errors: [ConfigError] = []
        let cancel = CancelFlag()
        for stage in transforms {
            do {
                let instance = try HostedInstance(
                    plugin: stage.plugin, options: instanceOptions(stage, kind: .transform), cancel: cancel, logger: logger)
                instance.close()
            } catch {
                errors.append(ConfigError(file: pipeline.file, line: stage.config.line, field: stage.config.role, error.description))
            }
        }
        return errors
    }
}

/// One stage a connect check tries: what it is (`sink 'postgres'`) and the
/// open (and, for a sink, `check`) that throws its problem.
public struct ConnectCheck: Sendable {
    public let subject: String
    /// Whether `body` runs the plugin's `check` after opening it (sinks do).
    public let runsCheck: Bool
    public let body: @Sendable () throws -> Void
}

extension PipelinePlan {
    /// What `/readyz` and `ferry validate --connect` ask of a pipeline, in
    /// order: the source opens; the sink, and the dead-letter sink if any
    /// (where the first rejected record would go), open and pass `check`.
    /// Opening may connect to a server, so the caller decides where these run.
    public func connectChecks(logger: Logger) -> [ConnectCheck] {
        let source = self.source, sourceOptions = instanceOptions(source, kind: .source)
        var checks = [
            ConnectCheck(subject: "source '\(source.plugin.name)'", runsCheck: false) {
                try HostedInstance(plugin: source.plugin, options: sourceOptions, cancel: CancelFlag(), logger: logger).close()
            }
        ]
        func sinkCheck(_ subject: String, _ stage: Stage) -> ConnectCheck {
            let stageOptions = instanceOptions(stage, kind: .sink)
            return ConnectCheck(subject: "\(subject) '\(stage.plugin.name)'", runsCheck: true) {
                let instance = try HostedInstance(plugin: stage.plugin, options: stageOptions, cancel: CancelFlag(), logger: logger)
                defer { instance.close() }
                try instance.healthCheck()
            }
        }
        checks.append(sinkCheck("sink", sink))
        if let stage = deadLetterSink { checks.append(sinkCheck("dead-letter sink", stage)) }
        return checks
    }
}
