import CFerryPlugin
import FerryCore
import FerryPluginKit

/// The `diff-repair` check: what plugin-abi.md §12 asks of a plugin that
/// declares FERRY_CAP_READ_BACK, FERRY_CAP_DIGEST or FERRY_CAP_DELETE, on the
/// target its config names (sinks opened in incremental mode, as diff and
/// repair open them).
extension ConformanceSuite {
    static let diffCapabilities: PluginCapabilities = [.readBack, .digest, .delete]
    /// The granularity the digest checks ask for: 256 buckets.
    static let digestBits = 8

    static func diffRepair(_ context: Context) throws -> Outcome {
        let harness = try context.harness()
        let plugin = harness.plugin
        guard !plugin.capabilities.isDisjoint(with: diffCapabilities) else {
            return .skip("declares none of read-back, digest and delete (ABI 1.1)")
        }
        let missing = try DescriptorFields(of: plugin).missingForCapabilities(plugin.capabilities)
        guard missing.isEmpty else { throw Failure(missing.joined(separator: "; ")) }
        var notes: [String] = []
        if plugin.kinds.contains(.source) && plugin.canDigest {
            let source = try openOrSkip(harness, .source, context)
            defer { source.close() }
            let info = try source.diffInfo()
            guard let scheme = info.digestScheme else {
                throw Failure("source: declares FERRY_CAP_DIGEST but diff_info gives no digest_scheme")
            }
            notes.append("source: key \(describe(info.key)), digest scheme \(scheme)")
        }
        guard plugin.kinds.contains(.sink) else { return .pass(notes.joined(separator: "; ")) }

        let key = try sinkKey(harness, context)
        if let key {
            notes.append("sink: key \(describe(key))")
        } else if plugin.canReadBack || plugin.canDigest {
            notes.append("sink: diff_info gives no key with this config, so a diff cannot use it (give a keyed target to check digest and delete)")
        }
        let written = try writeSample(harness, context)
        var readBack: [BSONDocument]?
        if plugin.canReadBack {
            let records = try readAllBack(harness, context)
            // By key when there is one; without, whole records, as the round trip compares them.
            let lost = written.filter { record in
                if let key {
                    guard let wanted = keyOf(record, key) else { return false }
                    return !records.contains { sameKey(keyOf($0, key), wanted) }
                }
                return !records.contains { sameKey($0, record) }
            }
            if let first = lost.first {
                let example = key.flatMap { key in first[key[0]].map { "\(key[0]) = \($0)" } } ?? Record(bytes: first.encoded()).json
                throw Failure(
                    "read-back after writing \(written.count) records lacks \(lost.count) of them\(key == nil ? "" : " by key"), e.g. \(example): "
                        + "a read-back sink must yield every record its target holds")
            }
            readBack = records
            notes.append("wrote \(written.count), read back \(records.count) holding every written \(key == nil ? "record" : "key")")
        }
        if plugin.canDigest, let key { notes.append(try checkDigest(harness, context, key: key, readBack: readBack)) }
        if plugin.canDelete {
            if let key, let record = written.first(where: { keyOf($0, key) != nil }) {
                notes.append(try checkDelete(harness, context, key: key, record: record, readsBack: plugin.canReadBack))
            } else {
                notes.append("delete_keys not exercised (no key from diff_info, or no written record holds it)")
            }
        }
        return .pass(notes.joined(separator: "; "))
    }

    /// The sink's key from diff_info: nil when its config names none (as a
    /// file sink without `key:`), which diff refuses but the ABI allows.
    static func sinkKey(_ harness: PluginHarness, _ context: Context) throws -> [String]? {
        let plugin = harness.plugin
        guard plugin.canReadBack || plugin.canDigest else { return nil }
        let sink = try openOrSkip(harness, .sink, context)
        defer { sink.close() }
        let info = try sink.diffInfo()
        if plugin.canDigest && info.digestScheme == nil {
            throw Failure("sink: declares FERRY_CAP_DIGEST but diff_info gives no digest_scheme")
        }
        if info.key?.isEmpty == true { throw Failure("sink: diff_info gives an empty key_json ([]): no key is NULL") }
        return info.key
    }

    /// Writes the sample records and commits; returns the ones the sink did not reject, decoded.
    static func writeSample(_ harness: PluginHarness, _ context: Context) throws -> [BSONDocument] {
        let sink = try openOrSkip(harness, .sink, context)
        defer { sink.close() }
        let input = context.options.input
        let result = try sink.write(input)
        try sink.commit()
        let rejected = Set(result.rejects.map(\.index))
        return input.enumerated().filter { !rejected.contains($0.offset) }.map { decode($0.element) }
    }

    /// Everything a fresh sink instance reads back, from the start.
    static func readAllBack(_ harness: PluginHarness, _ context: Context, select: BucketSet? = nil) throws -> [BSONDocument] {
        let sink = try openOrSkip(harness, .sink, context)
        defer { sink.close() }
        var records: [BSONDocument] = []
        if let select {
            // A read before select_buckets: the selected reads must still start from the start.
            _ = try sink.read()
            try sink.selectBuckets(select)
        }
        records += try sink.readAll(maxBatches: 100_000).batches.flatMap(\.records).map(decode)
        return records
    }

    /// digest agrees with itself at two granularities, with read-back, and
    /// select_buckets reads exactly the records of the buckets it selects.
    static func checkDigest(_ harness: PluginHarness, _ context: Context, key: [String], readBack: [BSONDocument]?) throws -> String {
        let (whole, fine) = try {
            let sink = try openOrSkip(harness, .sink, context)
            defer { sink.close() }
            let all = BucketSet(bits: 0, key: key)
            return (try sink.digest(within: all, bits: 0), try sink.digest(within: all, bits: digestBits))
        }()
        let total = whole.reduce(0) { $0 + $1.count }
        let fineTotal = fine.reduce(0) { $0 + $1.count }
        if fineTotal != total {
            throw Failure("digest counts \(total) records in one bucket but \(fineTotal) over \(fine.count) buckets at \(digestBits) bits")
        }
        guard let readBack else { return "digest: \(total) records in \(fine.count) buckets at \(digestBits) bits" }
        if total != UInt64(readBack.count) {
            throw Failure("digest counts \(total) records, read-back yields \(readBack.count): both must cover the whole target")
        }
        guard let bucket = fine.first else { return "digest: an empty target" }
        let selected = try readAllBack(harness, context, select: BucketSet(bits: digestBits, buckets: [bucket.bucket], key: key))
        if UInt64(selected.count) != bucket.count {
            throw Failure(
                "after select_buckets([\(bucket.bucket)]) at \(digestBits) bits, read-back yielded \(selected.count) records; "
                    + "digest counts \(bucket.count) in that bucket: the reads must yield exactly the selected buckets, from the start")
        }
        return "digest: \(total) records in \(fine.count) buckets at \(digestBits) bits, agreeing with read-back and select_buckets"
    }

    /// delete_keys counts what existed, twice, and the record is gone; then it is written back.
    static func checkDelete(_ harness: PluginHarness, _ context: Context, key: [String], record: BSONDocument, readsBack: Bool) throws -> String {
        let keyRecord = Record(bytes: keyOf(record, key)!.encoded())
        let sink = try openOrSkip(harness, .sink, context)
        defer { sink.close() }
        let first = try sink.deleteKeys([keyRecord])
        try sink.commit()
        if first != 1 {
            throw Failure("delete_keys of \(keyRecord), written and committed before, reported \(first) deleted; *deleted is how many existed (1)")
        }
        let second = try sink.deleteKeys([keyRecord])
        try sink.commit()
        if second != 0 {
            throw Failure("delete_keys of \(keyRecord) a second time reported \(second) deleted; *deleted is how many existed (0)")
        }
        if readsBack, try readAllBack(harness, context).contains(where: { sameKey(keyOf($0, key), keyOf(record, key)!) }) {
            throw Failure("after delete_keys of \(keyRecord) and commit, read-back still yields that key")
        }
        // Leave the target as the sample left it, for the checks that follow.
        _ = try sink.write([Record(bytes: record.encoded())])
        try sink.commit()
        return "delete_keys counted 1, then 0" + (readsBack ? ", and the key no longer read back" : "")
    }

    static func decode(_ record: Record) -> BSONDocument {
        record.bytes.withUnsafeBytes { DocumentView($0).decode() }
    }

    /// The record's key fields, in key order; nil when it lacks one.
    static func keyOf(_ record: BSONDocument, _ key: [String]) -> BSONDocument? {
        var fields: [(String, BSONValue)] = []
        for name in key {
            guard let value = record[name] else { return nil }
            fields.append((name, value))
        }
        return BSONDocument(fields)
    }

    static func sameKey(_ read: BSONDocument?, _ written: BSONDocument) -> Bool {
        guard let read else { return false }
        return written.fields.allSatisfy { sameValue(read[$0.key], $0.value) }
    }

    static func describe(_ names: [String]?) -> String {
        names.map { "[\($0.joined(separator: ", "))]" } ?? "none"
    }
}
