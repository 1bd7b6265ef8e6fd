import CFerryPlugin
import FerryPluginKit
import Logging

/// What `ferry repair` changes: it writes missing and changed records through
/// the sink's normal write path (rejects dead-lettered with the reason) and
/// deletes the target's extra records, but only up to the limit it was given.
final class RepairWriter {
    private let plan: PipelinePlan
    private let options: RepairOptions
    private let sink: HostedInstance?
    private let deadLetters: DeadLetterWriter?
    private let pending = BatchBuilder()
    /// The keys of queued records that replace a target record, deleted just
    /// before they are written.
    private let replacedKeys = BatchBuilder()
    private let batchSize: Int
    private let comparator: DiffComparator
    private(set) var outcome: DiffReport.Repair

    init(plan: PipelinePlan, options: RepairOptions, sink: HostedInstance?, comparator: DiffComparator, deadLetterPath: String) {
        self.plan = plan
        self.comparator = comparator
        self.options = options
        self.sink = sink
        batchSize = plan.pipeline.batchSize
        deadLetters = options.dryRun ? nil : DeadLetterWriter(path: deadLetterPath, pipeline: plan.pipeline.name)
        outcome = DiffReport.Repair(dryRun: options.dryRun)
    }

    /// Queues a missing or changed source record to be written; `replacing`
    /// when the target holds a record with its key already. A replaced record
    /// is deleted first wherever the sink can delete, in the same commit: a
    /// sink configured to insert would refuse it as a duplicate, and one that
    /// appends would keep both copies. Without delete, only an upserting sink
    /// can replace it.
    func write(_ record: DocumentView, replacing: Bool) throws {
        let deleteFirst = replacing && plan.sink.plugin.canDelete
        if replacing && !deleteFirst && !plan.sink.plugin.capabilities.contains(.upsert) {
            outcome.notReplaced += 1
            return
        }
        if options.dryRun {
            outcome.written += 1
            return
        }
        if deleteFirst { comparator.appendKey(of: record, to: replacedKeys) }
        pending.append(record)
        if pending.count >= batchSize { try flush() }
    }


    /// Writes and commits what is queued.
    func flush() throws {
        guard let sink, !pending.isEmpty else { return }
        if !replacedKeys.isEmpty {
            var keys = ferry_batch()
            replacedKeys.finish(into: &keys)
            defer {
                BatchBuilder.release(&keys)
                replacedKeys.reset()
            }
            _ = try sink.deleteKeys(&keys)
        }
        var batch = ferry_batch()
        pending.finish(into: &batch)
        defer {
            BatchBuilder.release(&batch)
            pending.reset()
        }
        var result = ferry_result()
        try sink.write(&batch, &result)
        try sink.commit()
        let rejected = Int(result.reject_count)
        if rejected > 0, let deadLetters {
            let view = BatchView(batch)
            for offset in 0..<rejected {
                let reject = result.rejects[offset]
                try deadLetters.write(
                    stage: plan.sink.config.role, plugin: plan.sink.plugin.name,
                    reason: reject.reason.map { String(cString: $0) } ?? "(no reason given)", record: view.document(at: Int(reject.index)))
            }
            try deadLetters.sync()
            outcome.deadLetterPath = deadLetters.location
        }
        outcome.written += Int(batch.count) - rejected
        outcome.rejected += rejected
    }

    /// Deletes the extra records, all of them or none: above `maxDeletes`,
    /// or with a sink that cannot delete, it says why and deletes nothing.
    func delete(extra count: Int, each: ((DocumentView) throws -> Void) throws -> Void) throws {
        guard count > 0 else { return }
        if count > options.maxDeletes {
            outcome.deletesRefused =
                options.maxDeletes == 0
                ? "\(count) extra records were not deleted: repair deletes only with --max-deletes N (or max_deletes:), and N was 0"
                : "\(count) extra records were not deleted: more than --max-deletes \(options.maxDeletes)"
            return
        }
        if options.dryRun {
            outcome.deleted = count
            return
        }
        guard let sink, sink.plugin.canDelete else {
            outcome.deletesRefused =
                "\(count) extra records were not deleted: sink '\(plan.sink.plugin.name)' cannot delete by key"
                + (plan.sink.plugin.abiMinor < 1 ? " (it was built against ABI 1.0)" : "")
            return
        }
        let keys = BatchBuilder()
        func deleteQueued() throws {
            guard !keys.isEmpty else { return }
            var batch = ferry_batch()
            keys.finish(into: &batch)
            defer {
                BatchBuilder.release(&batch)
                keys.reset()
            }
            outcome.deleted += Int(try sink.deleteKeys(&batch))
            try sink.commit()
        }
        try each { record in
            comparator.appendKey(of: record, to: keys)
            if keys.count >= batchSize { try deleteQueued() }
        }
        try deleteQueued()
    }
}
