import CFerryPlugin
import FerryCore
import FerryPluginKit
import Foundation
import Logging

/// A built plugin loaded by path, driven the way the host drives it: open an
/// instance, feed it batches, collect what comes back. Every batch a plugin
/// returns is checked (framing, declared count, libbson validation) before
/// anything reads it, so a broken plugin fails with a reason, not a crash.
public final class PluginHarness: @unchecked Sendable {
    public let plugin: LoadedPlugin
    public let cancel = CancelFlag()
    public var logger: Logger
    /// Told the name of every ABI call just before it is made, so a crash
    /// can be pinned on the last one.
    public var onCall: (@Sendable (String) -> Void)?

    /// Loads the file after the same trust checks as `ferry run`
    /// (`PluginFileTrust`, relaxed only by `FERRY_PLUGIN_TRUST=insecure-dev`):
    /// a plugin the host would refuse must not pass its tests.
    public init(path: String, trust: PluginFileTrust.Mode = PluginFileTrust.mode()) throws(PluginLoadError) {
        plugin = try PluginLoader.load(path: path, trust: trust)
        logger = Logger(label: "ferry.plugin-test") { _ in SwiftLogNoOpLogHandler() }
    }

    /// Opens one instance of `kind`.
    public func open(
        _ kind: PluginKinds, config: String = "{}", resume: [UInt8]? = nil, mode: SyncMode = .incremental,
        batchSize: Int = 100, shardIndex: Int = 0, shardCount: Int = 1
    ) throws(PluginCallError) -> Instance {
        onCall?("open")
        let options = InstanceOptions(
            kind: kind, stage: Self.stageName(kind), configJSON: config, resumeState: resume, mode: mode,
            batchSize: batchSize, shardIndex: shardIndex, shardCount: shardCount, pipelineName: "plugin-test")
        let instance = try HostedInstance(plugin: plugin, options: options, cancel: cancel, logger: logger)
        return Instance(instance: instance, harness: self)
    }

    static func stageName(_ kind: PluginKinds) -> String {
        kind == .source ? "source" : kind == .sink ? "sink" : "transform"
    }

    /// One open instance. Like the host, it calls the plugin from one thread at a time.
    public final class Instance: @unchecked Sendable {
        public let instance: HostedInstance
        let harness: PluginHarness

        init(instance: HostedInstance, harness: PluginHarness) {
            self.instance = instance
            self.harness = harness
        }

        private var pluginName: String { harness.plugin.name }

        func call(_ name: String) { harness.onCall?(name) }

        /// The next batch (copied out, then released), or nil at the end.
        public func read() throws -> SourceBatch? {
            var batch = ferry_batch()
            call("read")
            guard try instance.read(&batch) else { return nil }
            defer {
                call("release")
                instance.release(&batch)
            }
            let records = try Self.records(of: batch, plugin: pluginName, call: "read")
            let state = batch.state.map { Array(UnsafeBufferPointer(start: $0, count: Int(batch.state_size))) } ?? []
            return SourceBatch(records: records, state: state)
        }

        /// Reads until the end or `maxBatches`; `exhausted` says which.
        public func readAll(maxBatches: Int = .max) throws -> (batches: [SourceBatch], exhausted: Bool) {
            var batches: [SourceBatch] = []
            while batches.count < maxBatches {
                guard let batch = try read() else { return (batches, true) }
                batches.append(batch)
            }
            return (batches, false)
        }

        public func estimate() -> UInt64? {
            call("estimate")
            return instance.estimate()
        }

        /// Runs one transform call over `records`.
        public func transform(_ records: [Record]) throws -> TransformOutput {
            try withInput(records) { input in
                var output = ferry_batch()
                var result = ferry_result()
                call("transform")
                try instance.transform(input, &output, &result)
                defer {
                    call("release")
                    instance.release(&output)
                }
                let rejects = try Self.rejects(result, inputCount: records.count, plugin: pluginName, call: "transform")
                let passthrough = output.flags & UInt32(FERRY_BATCH_PASSTHROUGH) != 0
                if passthrough {
                    guard output.data == input.pointee.data, output.count == input.pointee.count else {
                        throw HarnessError.invalidOutput(plugin: pluginName, call: "transform", detail: "flagged its output as passthrough but it is not the input")
                    }
                    return TransformOutput(records: records, rejects: rejects, passthrough: true)
                }
                let out = try Self.records(of: output, plugin: pluginName, call: "transform")
                return TransformOutput(records: out, rejects: rejects, passthrough: false)
            }
        }

        /// Writes `records` (not yet durable: call `commit`).
        public func write(_ records: [Record]) throws -> WriteOutput {
            try withInput(records) { input in
                var result = ferry_result()
                call("write")
                try instance.write(input, &result)
                return WriteOutput(
                    inserted: result.inserted, updated: result.updated, unchanged: result.unchanged,
                    rejects: try Self.rejects(result, inputCount: records.count, plugin: pluginName, call: "write"))
            }
        }

        /// What `write` would do, changing nothing.
        public func preview(_ records: [Record]) throws -> WriteOutput {
            try withInput(records) { input in
                var result = ferry_result()
                call("preview")
                try instance.preview(input, &result)
                return WriteOutput(
                    inserted: result.inserted, updated: result.updated, unchanged: result.unchanged,
                    rejects: try Self.rejects(result, inputCount: records.count, plugin: pluginName, call: "preview"))
            }
        }

        public func commit() throws {
            call("commit")
            try instance.commit()
        }

        public func check() throws {
            call("check")
            try instance.healthCheck()
        }

        public func close() {
            call("close")
            instance.close()
        }

        func withInput<T>(_ records: [Record], _ body: (UnsafePointer<ferry_batch>) throws -> T) throws -> T {
            let builder = BatchBuilder()
            for record in records {
                record.bytes.withUnsafeBytes { builder.append(encoded: $0) }
            }
            var batch = ferry_batch()
            builder.finish(into: &batch)
            defer { BatchBuilder.release(&batch) }
            return try withUnsafePointer(to: &batch) { try body($0) }
        }

        /// Copies the records out of a plugin's batch, refusing a malformed one.
        static func records(of batch: ferry_batch, plugin: String, call: String) throws -> [Record] {
            let view = BatchView(batch)
            do {
                try view.validateFraming()
            } catch {
                throw HarnessError.invalidOutput(plugin: plugin, call: call, detail: "malformed batch: \(error)")
            }
            var records: [Record] = []
            records.reserveCapacity(view.count)
            for (index, document) in view.enumerated() {
                if let offset = ExtendedJSON.firstInvalidOffset(document) {
                    throw HarnessError.invalidOutput(plugin: plugin, call: call, detail: "record \(index) is not valid BSON (byte \(offset))")
                }
                records.append(Record(bytes: Array(document.bytes)))
            }
            guard records.count == view.count else {
                throw HarnessError.invalidOutput(
                    plugin: plugin, call: call, detail: "batch declares \(view.count) records but holds \(records.count)")
            }
            return records
        }

        static func rejects(_ result: ferry_result, inputCount: Int, plugin: String, call: String) throws -> [Reject] {
            guard result.reject_count > 0 else { return [] }
            guard let rejects = result.rejects else {
                throw HarnessError.invalidOutput(plugin: plugin, call: call, detail: "reject_count is \(result.reject_count) but rejects is NULL")
            }
            return try (0..<Int(result.reject_count)).map { offset in
                let reject = rejects[offset]
                guard Int(reject.index) < inputCount else {
                    throw HarnessError.invalidOutput(
                        plugin: plugin, call: call, detail: "reject index \(reject.index) is past the batch (\(inputCount) records)")
                }
                return Reject(index: Int(reject.index), reason: reject.reason.map { String(cString: $0) } ?? "")
            }
        }
    }
}

/// One record as raw BSON, comparable byte for byte.
public struct Record: Equatable, Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// A record from extended JSON, e.g. `{"_id": 1, "name": "x"}`.
    public init(json: String) throws {
        bytes = try ExtendedJSON.parse(json)
    }

    /// Relaxed extended JSON, one line.
    public var json: String {
        bytes.withUnsafeBytes { ExtendedJSON.render(DocumentView($0)) } ?? "<invalid BSON>"
    }

    public var description: String { json }
}

public struct SourceBatch: Sendable {
    public var records: [Record]
    /// The position after these records, opaque to the host.
    public var state: [UInt8]
}

public struct Reject: Equatable, Sendable {
    public var index: Int
    public var reason: String
}

public struct TransformOutput: Sendable {
    public var records: [Record]
    public var rejects: [Reject]
    /// The plugin handed the input back unchanged, without a copy.
    public var passthrough: Bool
}

public struct WriteOutput: Sendable {
    public var inserted: UInt64
    public var updated: UInt64
    public var unchanged: UInt64
    public var rejects: [Reject]
}

/// A plugin broke the ABI contract in what it returned.
public enum HarnessError: Error, CustomStringConvertible, Sendable {
    case invalidOutput(plugin: String, call: String, detail: String)

    public var description: String {
        switch self {
        case .invalidOutput(let plugin, let call, let detail): "plugin '\(plugin)' \(call): \(detail)"
        }
    }
}
