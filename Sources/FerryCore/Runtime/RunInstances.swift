import FerryPluginKit
import Logging

/// Every plugin instance one run (or one lane) uses, opened together before
/// anything is read, so a config error costs no data movement, and closed
/// together at the end.
final class RunInstances: @unchecked Sendable {
    let source: HostedInstance
    let workers: [Worker]
    /// The one sink instance of a sink that needs its batches in order.
    let orderedSink: HostedInstance?
    let deadLetterSink: HostedInstance?

    /// Opens the source (resuming from `resume`), `workerCount` transform
    /// chains, and the sink instances the run needs: none in a dry run whose
    /// sink cannot preview, one for an ordered sink, else one per worker.
    init(
        plan: PipelinePlan, options: RunOptions, resume: Checkpoint?, workerCount: Int, batchSize: Int, sourceBatchSize: Int,
        cancel: CancelFlag, logger: Logger, metrics: (any PluginMetricsSink)?
    ) throws(PluginCallError) {
        let pipeline = plan.pipeline
        let shard = options.shard
        let sinkIsOrdered = plan.sink.plugin.capabilities.contains(.orderedSink)
        let needSink = !options.dryRun || plan.sink.plugin.hasPreview
        func open(
            _ stage: PipelinePlan.Stage, _ kind: PluginKinds, resume: [UInt8]? = nil, mode: SyncMode? = nil
        ) throws(PluginCallError) -> HostedInstance {
            let instanceOptions = InstanceOptions(
                kind: kind, stage: stage.config.role, configJSON: stage.config.configJSON, resumeState: resume,
                mode: mode ?? pipeline.mode, batchSize: kind == .source ? sourceBatchSize : batchSize, shardIndex: shard.index,
                shardCount: shard.count, pipelineName: pipeline.name)
            return try HostedInstance(plugin: stage.plugin, options: instanceOptions, cancel: cancel, logger: logger, metrics: metrics)
        }

        var opened: [HostedInstance] = []
        var workers: [Worker] = []
        do {
            source = try open(plan.source, .source, resume: resume.map { Array($0.state) })
            opened.append(source)
            orderedSink = needSink && sinkIsOrdered ? try open(plan.sink, .sink) : nil
            if let orderedSink { opened.append(orderedSink) }
            for _ in 0..<workerCount {
                var transforms: [HostedInstance] = []
                for stage in plan.transforms {
                    let instance = try open(stage, .transform)
                    opened.append(instance)
                    transforms.append(instance)
                }
                let sink = needSink && !sinkIsOrdered ? try open(plan.sink, .sink) : nil
                if let sink { opened.append(sink) }
                workers.append(Worker(transforms: transforms, sink: sink))
            }
            // A dry run stores no dead letters, so it does not open their sink either.
            if let stage = plan.deadLetterSink, !options.dryRun {
                // Dead letters append: `full` must not replace those of earlier runs.
                deadLetterSink = try open(stage, .sink, mode: .incremental)
            } else {
                deadLetterSink = nil
            }
        } catch {
            opened.reversed().forEach { $0.close() }
            throw error
        }
        self.workers = workers
    }

    /// Closes the sinks and transforms first, then the source. The dead-letter
    /// sink is closed by its writer, after its last sync.
    func close() {
        workers.forEach { $0.close() }
        orderedSink?.close()
        source.close()
    }
}
