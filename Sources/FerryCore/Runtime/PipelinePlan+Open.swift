import FerryPluginKit
import Logging

extension PipelinePlan {
    /// Opens and closes each transform once, so errors only a plugin can see
    /// (a regex that does not compile, a bad mapping) surface at validate time.
    /// Sources and sinks are left alone: opening them may connect to a server.
    public func openTransforms(logger: Logger) -> [ConfigError] {
        var errors: [ConfigError] = []
        let cancel = CancelFlag()
        for stage in transforms {
            do {
                let instance = try HostedInstance(
                    plugin: stage.plugin,
                    options: InstanceOptions(
                        kind: .transform, stage: stage.config.role, configJSON: stage.config.configJSON, mode: pipeline.mode,
                        batchSize: pipeline.batchSize, pipelineName: pipeline.name),
                    cancel: cancel, logger: logger)
                instance.close()
            } catch {
                errors.append(ConfigError(file: pipeline.file, line: stage.config.line, field: stage.config.role, error.description))
            }
        }
        return errors
    }
}
