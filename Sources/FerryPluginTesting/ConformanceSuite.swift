import CFerryPlugin
import FerryCore
import FerryPluginKit
import Foundation

/// What a conformance run may use besides the plugin file.
public struct ConformanceOptions: Sendable {
    /// Config JSON per role; a role without one is opened with `{}`.
    public var sourceConfig: String?
    public var transformConfig: String?
    public var sinkConfig: String?
    /// Source checks read at most this many batches.
    public var sampleBatches = 3
    /// Records fed to transforms and sinks (default: `SampleRecords.standard`).
    public var input: [Record] = SampleRecords.standard
    public var batchSize = 4
    /// The sync mode sources are opened in (the round trip reads in `full`).
    public var mode: SyncMode = .incremental
    public var openCloseCycles = 1000
    /// More resident memory than this after the cycles counts as a leak.
    public var maxResidentGrowth = 8 << 20
    /// A plugin that cannot open with its config (given, else `{}`) fails the
    /// checks that need an instance, unless this says the config error is
    /// expected (a connector with no server to reach): then they are skipped.
    public var expectConfigError = false

    public init() {}

    func given(_ kind: PluginKinds) -> String? {
        kind == .source ? sourceConfig : kind == .sink ? sinkConfig : transformConfig
    }

    func config(_ kind: PluginKinds) -> String { given(kind) ?? "{}" }
}

public struct CheckResult: Sendable, Codable, Equatable {
    public enum Status: String, Sendable, Codable { case pass, fail, skip }
    public var id: String
    public var title: String
    public var status: Status
    public var detail: String

    public init(id: String, title: String, status: Status, detail: String) {
        self.id = id
        self.title = title
        self.status = status
        self.detail = detail
    }
}

/// The checks every plugin must pass, in the order they run: the contract of
/// docs/plugin-abi.md exercised on the real `.so`. Each check is independent
/// (it loads and opens what it needs), so a runner can isolate any one of them.
public struct ConformanceSuite: Sendable {
    public struct Check: Sendable {
        public let id: String
        public let title: String
        let body: @Sendable (Context) throws -> Outcome
    }

    enum Outcome {
        case pass(String)
        case skip(String)
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    final class Context: @unchecked Sendable {
        let path: String
        let options: ConformanceOptions
        let onCall: (@Sendable (String) -> Void)?

        init(path: String, options: ConformanceOptions, onCall: (@Sendable (String) -> Void)?) {
            self.path = path
            self.options = options
            self.onCall = onCall
        }

        func harness() throws -> PluginHarness {
            let harness = try PluginHarness(path: path)
            harness.onCall = onCall
            return harness
        }
    }

    public let path: String
    public let options: ConformanceOptions

    public init(path: String, options: ConformanceOptions = ConformanceOptions()) {
        self.path = path
        self.options = options
    }

    public var checks: [Check] { Self.all }

    /// Runs one check in this process; `onCall` hears every ABI call first.
    public func run(_ check: Check, onCall: (@Sendable (String) -> Void)? = nil) -> CheckResult {
        let context = Context(path: path, options: options, onCall: onCall)
        do {
            switch try check.body(context) {
            case .pass(let detail): return CheckResult(id: check.id, title: check.title, status: .pass, detail: detail)
            case .skip(let detail): return CheckResult(id: check.id, title: check.title, status: .skip, detail: detail)
            }
        } catch let skip as SkipSignal {
            return CheckResult(id: check.id, title: check.title, status: .skip, detail: skip.reason)
        } catch {
            return CheckResult(id: check.id, title: check.title, status: .fail, detail: "\(error)")
        }
    }

    /// Runs every check in this process (a crash takes the caller down: the
    /// `ferry plugin test` command runs them in a child process instead).
    public func runAll() -> [CheckResult] { checks.map { run($0) } }

    // MARK: - The checks

    static let all: [Check] = [
        Check(id: "load", title: "entry symbol and ABI version", body: load),
        Check(id: "descriptor", title: "descriptor fields", body: descriptor),
        Check(id: "config-schema", title: "config schema is a valid JSON Schema", body: configSchema),
        Check(id: "open-empty-config", title: "open with an empty config: opens, or fails with a clear message", body: openEmpty),
        Check(id: "open-invalid-config", title: "open with an invalid config fails with a clear message", body: openInvalid),
        Check(id: "close-after-failed-open", title: "close is safe after a failed open", body: closeAfterFailedOpen),
        // Sinks first: a plugin that is both then has written records for the source checks to read.
        Check(id: "sink-write-commit", title: "sink: write then commit succeeds", body: sinkWriteCommit),
        Check(id: "sink-round-trip", title: "sink and source: what was written reads back equal", body: sinkRoundTrip),
        Check(id: "diff-repair", title: "diff and repair (ABI 1.1): diff_info answers, read-back, digest and delete keep their promises", body: diffRepair),
        Check(id: "source-batches", title: "source: valid BSON batches with the declared count and a state", body: sourceBatches),
        Check(id: "source-resume", title: "source: two reads from the same state give the same records", body: sourceResume),
        Check(id: "source-future-state", title: "source: the final state gives no records", body: sourceFutureState),
        Check(id: "transform-output", title: "transform: valid output, never more records than it got", body: transformOutput),
        Check(id: "thread-handoff", title: "an instance opened on one thread works when called from another", body: threadHandoff),
        Check(id: "open-close-cycles", title: "open/close cycles do not grow memory", body: openCloseCycles),
    ]

    static func load(_ context: Context) throws -> Outcome {
        let plugin = try context.harness().plugin
        return .pass("ABI \(plugin.abiMajor).\(plugin.abiMinor) (host \(FERRY_ABI_MAJOR).\(FERRY_ABI_MINOR))")
    }

    static func descriptor(_ context: Context) throws -> Outcome {
        let plugin = try context.harness().plugin
        var problems: [String] = []
        if plugin.name.wholeMatch(of: /[a-z][a-z0-9_-]{0,62}/) == nil {
            problems.append("name '\(plugin.name)' must be lowercase letters, digits, '-' or '_', starting with a letter, at most 63 characters")
        }
        if plugin.version.wholeMatch(of: /(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?/) == nil {
            problems.append("version '\(plugin.version)' is not a semantic version (MAJOR.MINOR.PATCH)")
        }
        if plugin.kinds.isEmpty { problems.append("kinds is empty: declare source, transform and/or sink") }
        if plugin.summary.trimmingCharacters(in: .whitespaces).isEmpty { problems.append("description is empty") }
        if plugin.summary.count > 200 { problems.append("description is \(plugin.summary.count) characters (at most 200: one line)") }
        if plugin.capabilities.contains(.shardedRead) && !plugin.kinds.contains(.source) {
            problems.append("declares sharded-read but is not a source")
        }
        if plugin.capabilities.contains(.orderedSink) && !plugin.kinds.contains(.sink) {
            problems.append("declares ordered-sink but is not a sink")
        }
        if plugin.hasPreview && !plugin.kinds.contains(.sink) { problems.append("has preview but is not a sink") }
        if plugin.hasEstimate && !plugin.kinds.contains(.source) { problems.append("has estimate but is not a source") }
        if plugin.capabilities.contains(.readBack) && !plugin.kinds.contains(.sink) { problems.append("declares read-back but is not a sink") }
        if plugin.capabilities.contains(.delete) && !plugin.kinds.contains(.sink) { problems.append("declares delete but is not a sink") }
        if plugin.capabilities.contains(.digest) && plugin.kinds.isDisjoint(with: [.source, .sink]) {
            problems.append("declares digest but is neither a source nor a sink")
        }
        problems += try DescriptorFields(of: plugin).missingForCapabilities(plugin.capabilities)
        guard problems.isEmpty else { throw Failure(problems.joined(separator: "; ")) }
        return .pass("\(plugin.name) \(plugin.version), \(plugin.kindNames.joined(separator: "+"))")
    }

    static func configSchema(_ context: Context) throws -> Outcome {
        let plugin = try context.harness().plugin
        let problems = SchemaLint.problems(in: plugin.configSchema)
        guard problems.isEmpty else { throw Failure(problems.joined(separator: "; ")) }
        let count = plugin.configSchema["properties"]?.objectValue?.count ?? 0
        return .pass("\(count) option\(count == 1 ? "" : "s")")
    }

    /// A failed open's message must be there, bounded and printable.
    static func checkMessage(_ error: PluginCallError, what: String) throws {
        if error.message.isEmpty { throw Failure("\(what) failed (\(error.statusName)) with an empty error message") }
        if error.message.utf8.count >= Int(FERRY_ERROR_CAPACITY) {
            throw Failure("\(what): error message fills the whole buffer (\(error.message.utf8.count) bytes)")
        }
        if error.message.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" && $0 != "\n" }) {
            throw Failure("\(what): error message holds control characters")
        }
    }

    static func openEmpty(_ context: Context) throws -> Outcome {
        let harness = try context.harness()
        var notes: [String] = []
        for kind in kinds(of: harness.plugin) {
            let role = PluginHarness.stageName(kind)
            do {
                let instance = try harness.open(kind, config: "{}")
                instance.close()
                notes.append("\(role): opens")
            } catch {
                try checkMessage(error, what: "\(role) open with {}")
                notes.append("\(role): refused (\(error.message))")
            }
        }
        return .pass(notes.joined(separator: "; "))
    }

    static let invalidConfigs = ["[1, 2, 3]", "\"not an object\"", "{\"ferry-conformance-unknown-key\": {\"x\": [true]}}"]

    static func openInvalid(_ context: Context) throws -> Outcome {
        let harness = try context.harness()
        let strict = harness.plugin.configSchema["additionalProperties"] == .bool(false)
        var notes: [String] = []
        for kind in kinds(of: harness.plugin) {
            let role = PluginHarness.stageName(kind)
            // An unknown key is only invalid where the schema says so.
            for config in invalidConfigs where strict || !config.hasPrefix("{") {
                do {
                    let instance = try harness.open(kind, config: config)
                    instance.close()
                    throw Failure("\(role) opened with the invalid config \(config)")
                } catch let error as PluginCallError {
                    try checkMessage(error, what: "\(role) open with \(config)")
                    if error.status == FERRY_ERR_TRANSIENT {
                        throw Failure("\(role) open with \(config): a config error reported as transient (the host would retry it)")
                    }
                    notes.append(error.message)
                }
            }
        }
        return .pass("e.g. \(notes.first ?? "")")
    }

    static func closeAfterFailedOpen(_ context: Context) throws -> Outcome {
        let harness = try context.harness()
        // HostedInstance calls close on whatever a failed open left behind.
        for kind in kinds(of: harness.plugin) {
            for _ in 0..<50 {
                if let instance = try? harness.open(kind, config: "[]") { instance.close() }
            }
        }
        return .pass("50 failed opens per kind, each closed")
    }

    static func sourceBatches(_ context: Context) throws -> Outcome {
        let harness = try context.harness()
        guard harness.plugin.kinds.contains(.source) else { return .skip("not a source") }
        let source = try openOrSkip(harness, .source, context)
        defer { source.close() }
        let estimate = source.estimate()
        let (batches, exhausted) = try source.readAll(maxBatches: context.options.sampleBatches)
        for (index, batch) in batches.enumerated() {
            if batch.records.count > context.options.batchSize {
                throw Failure("batch \(index) holds \(batch.records.count) records, more than the batch size \(context.options.batchSize)")
            }
            if !batch.records.isEmpty && batch.state.isEmpty {
                throw Failure("batch \(index) has records but no state blob: the host could not resume after it")
            }
        }
        let records = batches.reduce(0) { $0 + $1.records.count }
        if records == 0 { return .skip("the source returned no records (give it a config with data: --config)") }
        return .pass(
            "\(batches.count) batches, \(records) records\(exhausted ? ", then the end" : "")"
                + (estimate.map { ", estimate \($0)" } ?? ""))
    }

    static func sourceResume(_ context: Context) throws -> Outcome {
        let harness = try context.harness()
        guard harness.plugin.kinds.contains(.source) else { return .skip("not a source") }
        let first = try openOrSkip(harness, .source, context)
        let (batches, _) = try first.readAll(maxBatches: 1)
        first.close()
        guard let state = batches.first?.state, !state.isEmpty else { return .skip("the source returned no batch to resume from") }
        func readFrom() throws -> [Record] {
            let instance = try harness.open(
                .source, config: context.options.config(.source), resume: state, mode: context.options.mode, batchSize: context.options.batchSize)
            defer { instance.close() }
            return try instance.readAll(maxBatches: context.options.sampleBatches).batches.flatMap(\.records)
        }
        let once = try readFrom()
        let twice = try readFrom()
        let missing = Set(once).subtracting(twice)
        if !missing.isEmpty {
            throw Failure("\(missing.count) records read the first time were not read again from the same state, e.g. \(missing.first!)")
        }
        if let overlap = once.first(where: { batches[0].records.contains($0) }) {
            throw Failure("reading from the state after batch 0 returned a record of batch 0 again: \(overlap)")
        }
        return .pass("\(once.count) records from the state after batch 0, twice")
    }

    static func sourceFutureState(_ context: Context) throws -> Outcome {
        let harness = try context.harness()
        guard harness.plugin.kinds.contains(.source) else { return .skip("not a source") }
        let source = try openOrSkip(harness, .source, context)
        var last: [UInt8] = []
        var exhausted = false
        for _ in 0..<10_000 {
            guard let batch = try source.read() else {
                exhausted = true
                break
            }
            if !batch.state.isEmpty { last = batch.state }
        }
        source.close()
        guard exhausted else { return .skip("the source did not end within 10000 batches") }
        guard !last.isEmpty else { return .skip("the source returned no state") }
        let again = try harness.open(
            .source, config: context.options.config(.source), resume: last, mode: context.options.mode, batchSize: context.options.batchSize)
        defer { again.close() }
        let (batches, _) = try again.readAll(maxBatches: 3)
        let records = batches.reduce(0) { $0 + $1.records.count }
        if records > 0 { throw Failure("resuming from the final state returned \(records) records again, e.g. \(batches.flatMap(\.records)[0])") }
        return .pass("no records after the final state")
    }

    static func sinkWriteCommit(_ context: Context) throws -> Outcome {
        let harness = try context.harness()
        guard harness.plugin.kinds.contains(.sink) else { return .skip("not a sink") }
        let sink = try openOrSkip(harness, .sink, context)
        defer { sink.close() }
        let input = context.options.input
        let result = try sink.write(input)
        try sink.commit()
        let counted = result.inserted + result.updated + result.unchanged + UInt64(result.rejects.count)
        if counted > UInt64(input.count) {
            throw Failure("write reported \(counted) records (inserted+updated+unchanged+rejected) for a batch of \(input.count)")
        }
        // What the plugin itself said in ferry_result, not the batch size.
        var counts = "\(input.count) records sent: \(result.inserted) inserted, \(result.updated) updated, "
            + "\(result.unchanged) unchanged, \(result.rejects.count) rejected"
        let unreported = UInt64(input.count) - counted
        if unreported > 0 { counts += ", \(unreported) not reported (the host counts them as written)" }
        if let first = result.rejects.first { counts += "; e.g. record \(first.index): \(first.reason)" }
        return .pass(counts + "; committed")
    }

    static func sinkRoundTrip(_ context: Context) throws -> Outcome {
        let harness = try context.harness()
        guard harness.plugin.kinds.contains(.sink) && harness.plugin.kinds.contains(.source) else {
            return .skip("not both a source and a sink")
        }
        let sink = try openOrSkip(harness, .sink, context, mode: .full)
        let input = context.options.input
        let result = try sink.write(input)
        try sink.commit()
        sink.close()
        if !result.rejects.isEmpty { throw Failure("the sink rejected \(result.rejects.count) of the sample records: \(result.rejects[0].reason)") }
        let batches = try {
            let source = try harness.open(.source, config: context.options.config(.source), mode: .full, batchSize: context.options.batchSize)
            defer { source.close() }
            return try source.readAll(maxBatches: 10_000).batches
        }()
        let read = batches.flatMap(\.records).map { $0.bytes.withUnsafeBytes { DocumentView($0).decode() } }
        for record in input {
            let written = record.bytes.withUnsafeBytes { DocumentView($0).decode() }
            let found = read.contains { candidate in written.fields.allSatisfy { sameValue(candidate[$0.key], $0.value) } }
            if !found { throw Failure("written record not read back with equal fields: \(record)") }
        }
        let replaced = try fullRunReplaces(harness, context)
        return .pass("\(input.count) records written, read back among \(read.count); \(replaced)")
    }

    /// plugin-abi.md §8: a sink without keys opened in `mode: full` replaces
    /// the target's contents, so a second full run that writes one record
    /// leaves one. A keyed sink (upsert) re-writes by key instead: not checked.
    static func fullRunReplaces(_ harness: PluginHarness, _ context: Context) throws -> String {
        if harness.plugin.capabilities.contains(.upsert) { return "mode full not checked (an upsert sink writes by key)" }
        guard let first = context.options.input.first else { return "no record to check mode full with" }
        let sink = try harness.open(.sink, config: context.options.config(.sink), mode: .full, batchSize: context.options.batchSize)
        _ = try sink.write([first])
        try sink.commit()
        sink.close()
        let source = try harness.open(.source, config: context.options.config(.source), mode: .full, batchSize: context.options.batchSize)
        defer { source.close() }
        let count = try source.readAll(maxBatches: 10_000).batches.reduce(0) { $0 + $1.records.count }
        if count != 1 {
            throw Failure("a second run in mode full wrote 1 record, then \(count) read back: in mode full a sink must replace the target's contents")
        }
        return "a second full run of 1 record left 1"
    }

    static func transformOutput(_ context: Context) throws -> Outcome {
        let harness = try context.harness()
        guard harness.plugin.kinds.contains(.transform) else { return .skip("not a transform") }
        let transform = try openOrSkip(harness, .transform, context)
        defer { transform.close() }
        let input = context.options.input
        var notes: [String] = []
        for batch in [input, [], Array(input.prefix(1))] {
            let output = try transform.transform(batch)
            if output.records.count + output.rejects.count > batch.count {
                throw Failure("returned \(output.records.count) records and \(output.rejects.count) rejects for \(batch.count) input records")
            }
            if Set(output.rejects.map(\.index)).count != output.rejects.count {
                throw Failure("rejected the same input record twice")
            }
            if let empty = output.rejects.first(where: { $0.reason.isEmpty }) {
                throw Failure("rejected record \(empty.index) without a reason")
            }
            notes.append("\(batch.count) in, \(output.records.count) out, \(output.rejects.count) rejected")
        }
        return .pass(notes.joined(separator: "; "))
    }

    static func threadHandoff(_ context: Context) throws -> Outcome {
        let harness = try context.harness()
        let kind = kinds(of: harness.plugin).first!
        let opened = Locked<Result<PluginHarness.Instance, any Error>?>(nil)
        onThread {
            opened.value = Result { try harness.open(kind, config: context.options.config(kind), batchSize: context.options.batchSize) }
        }
        let instance: PluginHarness.Instance
        switch opened.value! {
        case .success(let value): instance = value
        case .failure(let error as PluginCallError): throw openFailure(error, kind, context)
        case .failure(let error): throw error
        }
        let used = Locked<(any Error)?>(nil)
        onThread {
            do {
                switch kind {
                case .source: _ = try instance.read()
                case .transform: _ = try instance.transform(context.options.input)
                default: _ = try instance.preview(context.options.input)
                }
            } catch let error as PluginCallError where error.status == FERRY_ERR_UNSUPPORTED {
                // A sink without preview: nothing to call without writing.
            } catch {
                used.value = error
            }
        }
        onThread { instance.close() }
        if let error = used.value { throw Failure("called from a second thread: \(error)") }
        return .pass("opened, used and closed on three different threads")
    }

    static func openCloseCycles(_ context: Context) throws -> Outcome {
        let harness = try context.harness()
        // Quiet: 1000 cycles would flood the crash trace.
        harness.onCall = nil
        var refusal: (PluginKinds, PluginCallError)?
        var opened: PluginKinds?
        for kind in kinds(of: harness.plugin) where opened == nil {
            do throws(PluginCallError) {
                try harness.open(kind, config: context.options.config(kind)).close()
                opened = kind
            } catch {
                if refusal == nil { refusal = (kind, error) }
            }
        }
        guard let kind = opened else {
            guard let (kind, error) = refusal else { return .skip("no kind to open") }
            throw openFailure(error, kind, context)
        }
        let config = context.options.config(kind)
        func cycle(_ count: Int) throws {
            for _ in 0..<count { try harness.open(kind, config: config).close() }
        }
        try cycle(100)
        let before = residentBytes()
        try cycle(context.options.openCloseCycles)
        let growth = residentBytes() - before
        if growth > context.options.maxResidentGrowth {
            throw Failure("resident memory grew by \(growth >> 10) KiB over \(context.options.openCloseCycles) open/close cycles (limit \(context.options.maxResidentGrowth >> 10) KiB): a leak per instance")
        }
        return .pass("\(context.options.openCloseCycles) cycles of the \(PluginHarness.stageName(kind)), resident memory \(growth >= 0 ? "+" : "")\(growth >> 10) KiB")
    }

    // MARK: - Helpers

    static func kinds(of plugin: LoadedPlugin) -> [PluginKinds] {
        [PluginKinds.source, .transform, .sink].filter { plugin.kinds.contains($0) }
    }

    /// Equal, or the same number in another width (an int32 that comes back as
    /// an int64 from a bigint column reads back equal).
    static func sameValue(_ read: BSONValue?, _ written: BSONValue) -> Bool {
        guard let read else { return false }
        if read == written { return true }
        switch (read, written) {
        case (.array(let a), .array(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { sameValue($0, $1) }
        case (.document(let a), .document(let b)):
            return a.fields.count == b.fields.count && b.fields.allSatisfy { sameValue(a[$0.key], $0.value) }
        default:
            guard let x = read.numberAsDouble, let y = written.numberAsDouble else { return false }
            return x == y
        }
    }

    static func openOrSkip(
        _ harness: PluginHarness, _ kind: PluginKinds, _ context: Context, mode: SyncMode? = nil
    ) throws -> PluginHarness.Instance {
        let mode = mode ?? (kind == .source ? context.options.mode : .incremental)
        do {
            return try harness.open(kind, config: context.options.config(kind), mode: mode, batchSize: context.options.batchSize)
        } catch {
            throw openFailure(error, kind, context)
        }
    }

    /// A plugin that cannot open with its config tested nothing: that is a
    /// failure, not a skip, unless a config error was announced as expected.
    static func openFailure(_ error: PluginCallError, _ kind: PluginKinds, _ context: Context) -> any Error {
        let role = PluginHarness.stageName(kind)
        let config = context.options.given(kind) == nil ? "{}" : "the given config"
        if context.options.expectConfigError && error.status == FERRY_ERR_CONFIG {
            return SkipSignal(reason: "the \(role) did not open with \(config), as expected (\(error.message))")
        }
        if context.options.given(kind) == nil {
            return Failure("the \(role) did not open with {} (\(error.statusName): \(error.message)): "
                + "pass --config, or --expect-config-error if it cannot open here")
        }
        return Failure("the \(role) did not open with the given config (\(error.statusName): \(error.message))"
            + (error.status == FERRY_ERR_CONFIG ? "; pass --expect-config-error if that is expected" : ""))
    }

    /// Runs `body` on a new thread and waits for it.
    static func onThread(_ body: @escaping @Sendable () -> Void) {
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            body()
            done.signal()
        }
        thread.start()
        done.wait()
    }

    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// Thrown by a check that cannot run here; reported as skipped, not failed.
struct SkipSignal: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}
