import Logging

/// Sets up a run the same way wherever it starts (`ferry run`, the daemon,
/// the child process the daemon starts): the pipeline's locations, the
/// saved-state store, the read-only copy of it a dry run works on, and the
/// lanes.
public struct RunLauncher: Sendable {
    /// Makes the saved-state store for a pipeline whose checkpoint directory
    /// (when it keeps files) is the argument.
    public typealias StoreFactory = @Sendable (_ stateDirectory: String) throws -> any StateStore

    /// `--state-dir` / the daemon's `state_dir`: nil keeps `.ferry/` beside each pipeline.
    public let stateDirectory: String?
    let makeStore: StoreFactory

    public init(stateDirectory: String?, makeStore: @escaping StoreFactory = { FileStateStore(directory: $0) }) {
        self.stateDirectory = stateDirectory
        self.makeStore = makeStore
    }

    public func locations(of plan: PipelinePlan) -> PipelineLocations {
        PipelineLocations(pipeline: plan.pipeline, stateDirectory: stateDirectory)
    }

    /// The store a real run of `plan` saves its checkpoints in.
    public func store(for plan: PipelinePlan) throws -> any StateStore {
        try makeStore(locations(of: plan).stateDirectory)
    }

    /// A run ready to `run()`; throws only when the state store setting is unusable.
    public func launch(plan: PipelinePlan, options: RunOptions, logger: Logger) throws -> LanedRun {
        let saved = try store(for: plan)
        // A dry run starts where a real run would: from the saved checkpoint, read-only.
        let store: any StateStore =
            options.dryRun
            ? MemoryStateStore.dryRun(copying: saved, pipeline: plan.pipeline.name, sourcePlugin: plan.source.plugin.name) : saved
        return LanedRun(plan: plan, options: options, store: store, deadLetterPath: locations(of: plan).deadLetterPath, logger: logger)
    }
}
