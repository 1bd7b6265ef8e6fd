import FerryPluginKit

/// A pipeline whose stages are resolved to loaded plugins of the right kind
/// and whose configs passed each plugin's schema: ready to run.
public struct PipelinePlan: Sendable {
    public struct Stage: Sendable {
        public var config: StageConfig
        public var plugin: LoadedPlugin
    }

    public var pipeline: PipelineConfig
    public var source: Stage
    public var transforms: [Stage]
    public var sink: Stage
    /// Where rejected records go when it is a sink plugin rather than the file.
    public var deadLetterSink: Stage?

    /// Resolves every stage; collects every problem before failing.
    public static func resolve(_ pipeline: PipelineConfig, catalog: PluginCatalog) throws(ConfigErrors) -> PipelinePlan {
        var errors: [ConfigError] = []
        func resolveStage(_ stage: StageConfig, kind: PluginKinds, kindName: String) -> Stage? {
            let plugin: LoadedPlugin
            do {
                plugin = try catalog.resolve(stage.plugin)
            } catch {
                errors.append(ConfigError(file: pipeline.file, line: stage.line, field: "\(stage.role).plugin", error.description))
                return nil
            }
            guard plugin.kinds.contains(kind) else {
                errors.append(ConfigError(
                    file: pipeline.file, line: stage.line, field: "\(stage.role).plugin",
                    "plugin '\(plugin.name)' is not a \(kindName) (it is: \(plugin.kindNames.joined(separator: ", ")))"))
                return nil
            }
            let validator = SchemaValidator(schema: plugin.configSchema, plugin: plugin.name, file: pipeline.file)
            errors += validator.validate(stage.config, path: "\(stage.role).config", line: stage.line)
            return Stage(config: stage, plugin: plugin)
        }
        let source = resolveStage(pipeline.source, kind: .source, kindName: "source")
        let transforms = pipeline.transforms.map { resolveStage($0, kind: .transform, kindName: "transform") }
        let sink = resolveStage(pipeline.sink, kind: .sink, kindName: "sink")
        let deadLetterSink = pipeline.deadLetters.sink.flatMap { resolveStage($0, kind: .sink, kindName: "sink") }
        if let source, let sink, pipeline.readLanes > 1 {
            let plan = PipelinePlan(pipeline: pipeline, source: source, transforms: [], sink: sink, deadLetterSink: nil)
            if let problem = plan.laneProblem(lanes: pipeline.readLanes) {
                errors.append(ConfigError(file: pipeline.file, line: pipeline.readLanesLine, field: "read_lanes", problem))
            }
        }
        // Checked here, not after the first run: a propagation that can never
        // work would fail every run after copying.
        if let sink, pipeline.deletes == .propagate, !(sink.plugin.canReadBack && sink.plugin.canDelete) {
            errors.append(ConfigError(
                file: pipeline.file, line: pipeline.deletesLine, field: "deletes",
                "deletes: propagate needs a sink that reads its target back and deletes by key (ABI 1.1); '\(sink.plugin.name)' cannot"))
        }
        guard errors.isEmpty, let source, let sink else { throw ConfigErrors(errors: errors) }
        return PipelinePlan(
            pipeline: pipeline, source: source, transforms: transforms.compactMap { $0 }, sink: sink, deadLetterSink: deadLetterSink)
    }
}

extension PipelinePlan {
    /// Why this pipeline cannot run in `lanes` read lanes, or nil.
    public func laneProblem(lanes: Int) -> String? {
        guard lanes > 1 else { return nil }
        if !source.plugin.capabilities.contains(.shardedRead) {
            return "read_lanes: \(lanes) needs a source that can read shards; '\(source.plugin.name)' cannot"
        }
        // Each lane would open its own instance of a sink that promises one
        // instance and one order (a file it appends to, a stream): the lanes'
        // writes would interleave or replace each other.
        if sink.plugin.capabilities.contains(.orderedSink) {
            return "read_lanes: \(lanes) cannot feed sink '\(sink.plugin.name)': it is an ordered sink (one instance, records in order), and every lane would open its own; use read_lanes: 1 or a sink that is not ordered"
        }
        return nil
    }
}
