import Dispatch
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
        let sinkIsOrdered = plan.sink.plugin.capabilities.contains(.orderedSink)
        let needSink = !options.dryRun || plan.sink.plugin.hasPreview
        func open(
            _ stage: PipelinePlan.Stage, _ kind: PluginKinds, resume: [UInt8]? = nil, mode: SyncMode? = nil
        ) throws(PluginCallError) -> HostedInstance {
            let instanceOptions = plan.instanceOptions(
                stage, kind: kind, mode: mode, batchSize: kind == .source ? sourceBatchSize : batchSize, resume: resume, shard: options.shard)
            return try HostedInstance(plugin: stage.plugin, options: instanceOptions, cancel: cancel, logger: logger, metrics: metrics)
        }

        // Every instance the run needs, in plan order. They are opened at the
        // same time: an open is mostly a wait on a server (connect, look up the
        // table), and in a run that finds nothing to do those waits, one after
        // the other, were most of its time. Different instances may run
        // concurrently under the ABI, so opening them so is within its rules.
        enum Role { case source, orderedSink, transform(worker: Int), sink(worker: Int), deadLetters }
        var jobs: [(role: Role, open: () throws(PluginCallError) -> HostedInstance)] = []
        jobs.append((.source, { () throws(PluginCallError) in try open(plan.source, .source, resume: resume.map { Array($0.state) }) }))
        if needSink && sinkIsOrdered { jobs.append((.orderedSink, { () throws(PluginCallError) in try open(plan.sink, .sink) })) }
        for worker in 0..<workerCount {
            for stage in plan.transforms {
                jobs.append((.transform(worker: worker), { () throws(PluginCallError) in try open(stage, .transform) }))
            }
            if needSink && !sinkIsOrdered { jobs.append((.sink(worker: worker), { () throws(PluginCallError) in try open(plan.sink, .sink) })) }
        }
        // A dry run stores no dead letters, so it does not open their sink either.
        if let stage = plan.deadLetterSink, !options.dryRun {
            // Dead letters append: `full` must not replace those of earlier runs.
            jobs.append((.deadLetters, { () throws(PluginCallError) in try open(stage, .sink, mode: .incremental) }))
        }

        let results = Self.openAll(jobs.map(\.open))
        // One failure closes what did open; the error reported is the first in
        // plan order, so it does not depend on which open happened to end first.
        if let failure = results.lazy.compactMap({ result -> PluginCallError? in
            if case .failure(let error) = result { return error }
            return nil
        }).first {
            for case .success(let instance) in results.reversed() { instance.close() }
            throw failure
        }
        var source: HostedInstance?
        var orderedSink: HostedInstance?
        var deadLetterSink: HostedInstance?
        var transforms = [[HostedInstance]](repeating: [], count: workerCount)
        var sinks = [HostedInstance?](repeating: nil, count: workerCount)
        for (job, result) in zip(jobs, results) {
            guard case .success(let instance) = result else { continue }
            switch job.role {
            case .source: source = instance
            case .orderedSink: orderedSink = instance
            case .transform(let worker): transforms[worker].append(instance)
            case .sink(let worker): sinks[worker] = instance
            case .deadLetters: deadLetterSink = instance
            }
        }
        self.source = source!
        self.orderedSink = orderedSink
        self.deadLetterSink = deadLetterSink
        let workers = (0..<workerCount).map { Worker(transforms: transforms[$0], sink: sinks[$0]) }
        self.workers = workers
    }

    /// Closes the sinks and transforms first, then the source. The dead-letter
    /// sink is closed by its writer, after its last sync.
    func close() {
        workers.forEach { $0.close() }
        orderedSink?.close()
        source.close()
    }

    /// Runs each open on its own thread (the first on this one) and waits for all.
    private static func openAll(
        _ opens: [() throws(PluginCallError) -> HostedInstance]
    ) -> [Result<HostedInstance, PluginCallError>] {
        let batch = OpenBatch(opens)
        let group = DispatchGroup()
        for index in opens.indices.dropFirst() {
            DispatchQueue(label: "ferry.open.\(index)").async(group: group) { batch.run(index) }
        }
        if !opens.isEmpty { batch.run(0) }
        group.wait()
        return batch.results.withLock { $0.map { $0! } }
    }
}

/// The opens of one `RunInstances`, shared with the threads that run them:
/// each thread runs one open and stores its own result slot.
private final class OpenBatch: @unchecked Sendable {
    let opens: [() throws(PluginCallError) -> HostedInstance]
    /// Behind an NSLock rather than a `Mutex`: ThreadSanitizer sees a pthread
    /// lock's ordering, so a run under it checks these threads for real.
    let results: Locked<[Result<HostedInstance, PluginCallError>?]>

    init(_ opens: [() throws(PluginCallError) -> HostedInstance]) {
        self.opens = opens
        results = Locked(Array(repeating: nil, count: opens.count))
    }

    func run(_ index: Int) {
        let result: Result<HostedInstance, PluginCallError>
        do throws(PluginCallError) { result = .success(try opens[index]()) } catch { result = .failure(error) }
        results.withLock { $0[index] = result }
    }
}
