#if canImport(Glibc)
import Glibc
#endif
import CFerryPlugin
import FerryPluginKit
import Foundation

/// Keeps rejected records, one entry per record: time, pipeline, stage, plugin,
/// reason and the record itself. Either appended to a JSON Lines file at once,
/// or collected and handed to a sink plugin (`dead_letters.sink`: a table, a
/// collection) as one batch at `sync`, which comes before every checkpoint: a
/// checkpoint never moves past a dead letter that is not stored.
final class DeadLetterWriter: @unchecked Sendable {
    let path: String
    let pipeline: String
    /// The sink plugin instance, when dead letters go to one instead of the file.
    private let sink: HostedInstance?
    private let lock = NSLock()
    private var fd: Int32 = -1
    private let pending = BatchBuilder()
    /// Set once the sink failed to store dead letters: every later `sync` fails
    /// too, so no later checkpoint can pass the ones that were lost with it.
    private var failure: StateError?
    private(set) var written = 0
    /// Made once: a formatter per dead letter cost more than the rest of the line.
    /// A value type, so workers format concurrently without a lock.
    private static let timeFormat = Date.ISO8601FormatStyle()

    private let budget: DeadLetterBudget?

    init(path: String, pipeline: String, sink: HostedInstance? = nil, budget: DeadLetterBudget? = nil) {
        self.path = path
        self.pipeline = pipeline
        self.sink = sink
        self.budget = budget
    }

    deinit {
        if fd >= 0 { close(fd) }
        sink?.close()
    }

    /// Where they go, for messages and the run report.
    var location: String {
        sink.map { "sink plugin '\($0.plugin.name)' (dead_letters.sink)" } ?? path
    }

    /// Records one dead letter: to the file now, or to the sink at the next `sync`.
    func write(stage: String, plugin: String, reason: String, record: DocumentView?) throws {
        if let budget, !budget.admit() {
            throw DeadLetterBudgetExceeded(maxRecords: budget.maxRecords, location: location)
        }
        let time = Date()
        let maskedReason = SecretMasking.mask(reason)
        if sink != nil {
            lock.lock()
            defer { lock.unlock() }
            pending.appendDocument { document in
                document.appendDatetime("time", milliseconds: Int64((time.timeIntervalSince1970 * 1000).rounded(.down)))
                document.append("pipeline", pipeline)
                document.append("stage", stage)
                document.append("plugin", plugin)
                document.append("reason", maskedReason)
                if let record, ExtendedJSON.firstInvalidOffset(record) == nil {
                    document.appendDocument("record") { nested in
                        for element in record { nested.append(element) }
                    }
                } else {
                    // Copying elements of an invalid document would make this one
                    // invalid too: keep its bytes whole instead.
                    document.appendNull("record")
                    if let record { document.append("record_bson", .binary(subtype: 0, data: Array(record.bytes))) }
                }
            }
            written += 1
            return
        }
        var line = "{\"time\":"
        JSONValue.writeString(Self.timeFormat.format(time), to: &line)
        line += ",\"pipeline\":"
        JSONValue.writeString(pipeline, to: &line)
        line += ",\"stage\":"
        JSONValue.writeString(stage, to: &line)
        line += ",\"plugin\":"
        JSONValue.writeString(plugin, to: &line)
        line += ",\"reason\":"
        JSONValue.writeString(maskedReason, to: &line)
        line += ",\"record\":"
        if let record, let json = ExtendedJSON.render(record, canonical: true) {
            line += json
        } else if let record {
            // Not valid BSON (a NUL in a field name, bad UTF-8, bad lengths): no
            // JSON can hold it, so the dead letter keeps its bytes instead.
            line += "null,\"record_bson_base64\":"
            JSONValue.writeString(Data(record.bytes).base64EncodedString(), to: &line)
        } else {
            line += "null"
        }
        line += "}\n"
        lock.lock()
        defer { lock.unlock() }
        if fd < 0 {
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw StateError("cannot open dead-letter file \(path): \(String(cString: strerror(errno)))") }
        }
        var bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StateError("cannot write dead-letter file \(path): \(String(cString: strerror(errno)))")
            }
            offset += n
        }
        bytes.removeAll()
        written += 1
    }

    /// Makes the dead letters durable before a checkpoint moves past them: an
    /// fsync of the file, or the pending ones written and committed by the sink.
    /// A dead letter the sink refuses fails the run: it has nowhere else to go.
    func sync() throws {
        lock.lock()
        defer { lock.unlock() }
        guard let sink else {
            if fd >= 0 { fsync(fd) }
            return
        }
        if let failure { throw failure }
        guard !pending.isEmpty else { return }
        let count = pending.count
        var batch = ferry_batch()
        pending.finish(into: &batch)
        defer { BatchBuilder.release(&batch) }
        var result = ferry_result()
        do {
            try sink.write(&batch, &result)
            try sink.commit()
        } catch {
            failure = StateError("cannot store \(count) dead letters in \(location): \(error)")
            throw failure!
        }
        if result.reject_count > 0 {
            let reason = result.rejects.map { $0[0].reason.map { String(cString: $0) } ?? "(no reason given)" } ?? "(no reason given)"
            failure = StateError("\(location) refused \(result.reject_count) of \(count) dead letters: \(reason)")
            throw failure!
        }
    }
}
