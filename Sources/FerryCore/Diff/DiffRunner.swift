import CFerryPlugin
import Dispatch
import FerryPluginKit
import Foundation
import Logging

/// Compares what a pipeline's source would produce (read through its
/// transforms, as a run reads it) with what its sink's target holds, by the
/// sink's key, and repairs the difference when asked.
///
/// Two ways to compare. Digest: when the source and the sink speak the same
/// digest scheme and no transform stands between them, each side hashes its
/// records per key bucket where the data lives, buckets that match are
/// skipped, differing ones are split finer, and only the records of the
/// buckets still differing are read and compared here. Read: otherwise, the
/// target is read whole into an index and the source streams past it.
/// Either way the decision about a record is made here, by `DiffComparator`.
public final class DiffRunner: @unchecked Sendable {
    let plan: PipelinePlan
    let options: DiffOptions
    let logger: Logger
    let cancel: CancelFlag
    let store: (any StateStore)?
    let deadLetterPath: String

    /// Rows per bucket the first digest aims for, and the most records the
    /// differing buckets may hold before they are split finer.
    static let recordsPerBucket = 16.0
    static let readAtMost = 50_000

    public init(
        plan: PipelinePlan, options: DiffOptions, logger: Logger, cancel: CancelFlag = CancelFlag(),
        store: (any StateStore)? = nil, deadLetterPath: String
    ) {
        self.plan = plan
        self.options = options
        self.logger = logger
        self.cancel = cancel
        self.store = store
        self.deadLetterPath = deadLetterPath
    }

    private func open(
        _ stage: PipelinePlan.Stage, _ kind: PluginKinds, mode: SyncMode, repair: Bool = false
    ) throws(PluginCallError) -> HostedInstance {
        try HostedInstance(
            plugin: stage.plugin,
            options: plan.instanceOptions(stage, kind: kind, mode: mode, repair: repair),
            cancel: cancel, logger: logger)
    }

    public func run() -> DiffReport {
        let started = DispatchTime.now()
        var report = DiffReport(pipeline: plan.pipeline.name)
        report.sinkPlugin = plan.sink.plugin.name
        do {
            try compare(into: &report)
        } catch {
            report.failure = RunFailure(error, otherwise: .internal)
        }
        report.elapsedSeconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        return report
    }

    private func compare(into report: inout DiffReport) throws {
        let sinkPlugin = plan.sink.plugin
        guard sinkPlugin.canReadBack else {
            throw RunFailure(
                .config,
                "sink '\(sinkPlugin.name)' cannot read its target back, so its target cannot be compared"
                    + (sinkPlugin.abiMinor < 1 ? " (it was built against ABI 1.0; read-back came in 1.1)" : ""),
                plugin: sinkPlugin.name, stage: plan.sink.config.role)
        }
        // A repair that writes takes the run lock: it must not race a run of the same pipeline.
        let repairs = options.repair.map { !$0.dryRun } ?? false
        let lock = repairs ? try store?.lockRun(pipeline: plan.pipeline.name, shard: .whole) : nil
        defer { lock?.release() }

        // Incremental: a diff must never open a sink in a mode that replaces its target.
        let target = try open(plan.sink, .sink, mode: .incremental)
        defer { target.close() }
        let info = try target.diffInfo()
        guard let key = info.key, !key.isEmpty else {
            throw RunFailure(
                .config, "sink '\(sinkPlugin.name)' has no key, and records are compared by key: give the sink one (its key: setting)",
                plugin: sinkPlugin.name, stage: plan.sink.config.role)
        }
        report.key = key
        let source = try open(plan.source, .source, mode: .full)
        defer { source.close() }
        var transforms: [HostedInstance] = []
        defer { transforms.forEach { $0.close() } }
        for stage in plan.transforms { transforms.append(try open(stage, .transform, mode: .full)) }

        let comparator = DiffComparator(key: key, ignoredFields: Set(options.ignoredFields))
        let writer: RepairWriter? = try options.repair.map { repair in
            RepairWriter(
                plan: plan, options: repair, sink: repair.dryRun ? nil : try open(plan.sink, .sink, mode: .incremental, repair: true),
                comparator: comparator, deadLetterPath: deadLetterPath)
        }
        var session = Session(report: report, comparator: comparator, writer: writer, sampleSize: options.sampleSize)

        var useDigest = false
        if options.method != .read {
            let problem = digestProblem(source: source, target: target, targetInfo: info)
            if let problem, options.method == .digest {
                throw RunFailure(.config, "the digest method cannot be used: \(problem)")
            }
            session.report.methodNote = problem
            useDigest = problem == nil
        }
        if useDigest {
            session.report.method = .digest
            do {
                try digestCompare(source: source, target: target, key: key, fields: try source.diffInfo().fields!, session: &session)
            } catch let error as PluginCallError
                where error.status == Int32(FERRY_ERR_UNSUPPORTED) && error.call == "digest" && options.method == .auto
            {
                // A digest the plugin cannot make here (a column type it cannot
                // hash). Only digests ran, nothing was selected or read: read instead.
                session.report = DiffReport(pipeline: report.pipeline)
                session.report.sinkPlugin = report.sinkPlugin
                session.report.key = key
                session.report.methodNote = "the digest was refused: \(error.message)"
                useDigest = false
            }
        }
        if !useDigest {
            session.report.method = .read
            try readAll(target) { comparator.addTarget($0) }
            session.report.targetRecords = comparator.targetCount + comparator.targetWithoutKey + comparator.duplicateTargetKeys
            try readSource(source, transforms, session: &session)
        }
        try finish(&session, key: key)
        report = session.report
    }

    /// Why the digest method cannot compare these two, or nil when it can.
    private func digestProblem(source: HostedInstance, target: HostedInstance, targetInfo: DiffInfo) -> String? {
        if !plan.transforms.isEmpty { return "the pipeline has transforms, and only the host can run them" }
        if !plan.source.plugin.canDigest { return "source '\(plan.source.plugin.name)' cannot digest" }
        if !plan.sink.plugin.canDigest { return "sink '\(plan.sink.plugin.name)' cannot digest" }
        guard let sourceInfo = try? source.diffInfo() else { return "source '\(plan.source.plugin.name)' cannot describe its records" }
        guard let sourceScheme = sourceInfo.digestScheme, let targetScheme = targetInfo.digestScheme, sourceScheme == targetScheme else {
            return "the source's digest scheme (\(sourceInfo.digestScheme ?? "none")) is not the sink's (\(targetInfo.digestScheme ?? "none"))"
        }
        if sourceInfo.fields == nil { return "the source's records do not all have the same fields" }
        return nil
    }

    /// State shared by both methods while records pass.
    struct Session {
        var report: DiffReport
        let comparator: DiffComparator
        let writer: RepairWriter?
        let sampleSize: Int

        mutating func consider(_ record: DocumentView) throws {
            report.sourceRecords += 1
            let verdict = comparator.compare(record)
            switch verdict {
            case .equal:
                report.equal += 1
            case .noKey:
                report.sourceWithoutKey += 1
            case .missing:
                report.missing += 1
                if report.sampleMissing.count < sampleSize { report.sampleMissing.append(keyText(record)) }
                try writer?.write(record, replacing: false)
            case .repeated:
                report.changed += 1
                if report.sampleChanged.count < sampleSize {
                    report.sampleChanged.append(
                        DiffReport.Changed(
                            key: keyText(record), fields: ["(the target holds this key more than once)"],
                            source: ExtendedJSON.render(record) ?? "?", target: "?"))
                }
                try writer?.write(record, replacing: true)
            case .changed(let fields):
                report.changed += 1
                if report.sampleChanged.count < sampleSize {
                    let target = comparator.targetRecord(matching: record).flatMap { document in
                        document.encoded().withUnsafeBytes { ExtendedJSON.render(DocumentView($0)) }
                    }
                    report.sampleChanged.append(
                        DiffReport.Changed(
                            key: keyText(record), fields: fields, source: ExtendedJSON.render(record) ?? "?", target: target ?? "?"))
                }
                try writer?.write(record, replacing: true)
            }
        }

        func keyText(_ record: DocumentView) -> String {
            let builder = BatchBuilder()
            comparator.appendKey(of: record, to: builder)
            var documents = builder.view.makeIterator()
            return documents.next().flatMap { ExtendedJSON.render($0) } ?? "?"
        }
    }

    private func checkCancel() throws {
        if cancel.isCancelled { throw RunFailure(.internal, "cancelled before the comparison finished") }
    }

    /// Every record an instance reads (a source, or a sink reading back).
    private func readAll(_ instance: HostedInstance, _ body: (DocumentView) throws -> Void) throws {
        var batch = ferry_batch()
        while try instance.read(&batch) {
            defer { instance.release(&batch) }
            try checkCancel()
            let view = BatchView(batch)
            try view.validateFraming()
            for document in view { try body(document) }
        }
    }

    /// The source through the transforms, as a run would feed its sink.
    private func readSource(_ source: HostedInstance, _ transforms: [HostedInstance], session: inout Session) throws {
        var batch = ferry_batch()
        while try source.read(&batch) {
            defer { source.release(&batch) }
            try checkCancel()
            try BatchView(batch).validateFraming()
            var outputs: [(HostedInstance, UnsafeMutablePointer<ferry_batch>)] = []
            defer {
                for (instance, output) in outputs.reversed() {
                    if output.pointee.flags & UInt32(FERRY_BATCH_PASSTHROUGH) == 0 { instance.release(&output.pointee) }
                    output.deallocate()
                }
            }
            var current = withUnsafePointer(to: &batch) { $0 }
            for (transform, stage) in zip(transforms, plan.transforms) {
                let output = UnsafeMutablePointer<ferry_batch>.allocate(capacity: 1)
                output.initialize(to: ferry_batch())
                var result = ferry_result()
                do {
                    try transform.transform(current, &output.pointee, &result)
                } catch {
                    output.deallocate()
                    throw error
                }
                do {
                    try BatchStep.check(output.pointee, of: current.pointee, stage: stage)
                } catch {
                    transform.release(&output.pointee)
                    output.deallocate()
                    throw error
                }
                outputs.append((transform, output))
                current = UnsafePointer(output)
            }
            session.report.sourceSkipped += Int(batch.count) - Int(current.pointee.count)
            for document in BatchView(current.pointee) { try session.consider(document) }
        }
    }

    // MARK: digests

    private func digestBoth(
        source: HostedInstance, target: HostedInstance, within: BucketSet, bits: Int
    ) throws -> (source: [BucketDigest], target: [BucketDigest]) {
        // The two sides hash at the same time, each on its own connection.
        nonisolated(unsafe) var sourceResult: Result<[BucketDigest], PluginCallError> = .success([])
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) {
            sourceResult = Result { () throws(PluginCallError) in try source.digest(within: within, bits: bits) }
        }
        let targetDigest = Result { () throws(PluginCallError) in try target.digest(within: within, bits: bits) }
        group.wait()
        return (try sourceResult.get(), try targetDigest.get())
    }

    /// The buckets whose count or hash differ, and the most records either side has in them.
    static func differing(_ source: [BucketDigest], _ target: [BucketDigest]) -> (buckets: [UInt64], records: Int) {
        var buckets: [UInt64] = []
        var records = 0
        var i = 0
        var j = 0
        while i < source.count || j < target.count {
            let a = i < source.count ? source[i] : nil
            let b = j < target.count ? target[j] : nil
            if let a, let b, a.bucket == b.bucket {
                if a.count != b.count || a.hash != b.hash {
                    buckets.append(a.bucket)
                    records += Int(max(a.count, b.count))
                }
                i += 1
                j += 1
            } else if let a, b == nil || a.bucket < b!.bucket {
                buckets.append(a.bucket)
                records += Int(a.count)
                i += 1
            } else if let b {
                buckets.append(b.bucket)
                records += Int(b.count)
                j += 1
            }
        }
        return (buckets, records)
    }

    private func digestCompare(
        source: HostedInstance, target: HostedInstance, key: [String], fields: [String], session: inout Session
    ) throws {
        let ignored = Set(options.ignoredFields)
        let hashed = fields.filter { !ignored.contains($0) }
        let expected = Double(source.estimate() ?? 1_000_000)
        var bits = min(24, max(4, Int(log2(max(1, expected / Self.recordsPerBucket)).rounded(.up))))
        let all = BucketSet(bits: 0, key: key, fields: hashed)
        var (sourceDigest, targetDigest) = try digestBoth(source: source, target: target, within: all, bits: bits)
        let sourceTotal = sourceDigest.reduce(0) { $0 + Int($1.count) }
        session.report.targetRecords = targetDigest.reduce(0) { $0 + Int($1.count) }
        session.report.buckets = Set(sourceDigest.map(\.bucket)).union(targetDigest.map(\.bucket)).count
        var (buckets, records) = Self.differing(sourceDigest, targetDigest)
        // Split differing buckets finer while reading them would cost much and
        // a finer split can still narrow them down.
        while records > Self.readAtMost, bits + 8 <= 32, buckets.count * 4 < session.report.buckets {
            try checkCancel()
            let within = BucketSet(bits: bits, buckets: buckets, key: key, fields: hashed)
            bits += 8
            (sourceDigest, targetDigest) = try digestBoth(source: source, target: target, within: within, bits: bits)
            (buckets, records) = Self.differing(sourceDigest, targetDigest)
        }
        session.report.differingBuckets = buckets.count
        logger.debug(
            "digests compared",
            metadata: ["pipeline": "\(plan.pipeline.name)", "bits": "\(bits)", "differing": "\(buckets.count)", "records": "\(records)"])
        var matchedElsewhere = sourceTotal
        if !buckets.isEmpty {
            let selection = BucketSet(bits: bits, buckets: buckets, key: key)
            try target.selectBuckets(selection)
            try readAll(target) { session.comparator.addTarget($0) }
            try source.selectBuckets(selection)
            let before = session.report.sourceRecords
            try readAll(source) { try session.consider($0) }
            let fetched = session.report.sourceRecords - before
            session.report.recordsRead = fetched + session.comparator.targetCount
            matchedElsewhere = sourceTotal - fetched
        }
        // Records in matching buckets are equal without being read.
        session.report.sourceRecords += matchedElsewhere
        session.report.equal += matchedElsewhere
    }

    // MARK: the end

    private func finish(_ session: inout Session, key: [String]) throws {
        let comparator = session.comparator
        session.report.extra = comparator.unmatchedCount
        session.report.targetWithoutKey = comparator.targetWithoutKey
        session.report.duplicateTargetKeys = comparator.duplicateTargetKeys
        comparator.forEachUnmatched { record in
            if session.report.sampleExtra.count < session.sampleSize { session.report.sampleExtra.append(session.keyText(record)) }
        }
        if let writer = session.writer {
            try writer.flush()
            try writer.delete(extra: session.report.extra) { body in try comparator.forEachUnmatched(body) }
            session.report.repair = writer.outcome
        }
    }
}
