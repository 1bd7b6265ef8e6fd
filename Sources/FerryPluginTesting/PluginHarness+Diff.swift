import CFerryPlugin
import FerryCore
import FerryPluginKit

/// The ABI 1.1 calls of `ferry diff` and `ferry repair`, as the host makes them.
extension PluginHarness.Instance {
    /// The instance's key, fields and digest scheme; a key or field list that
    /// is not a JSON array of strings fails.
    public func diffInfo() throws -> DiffInfo {
        call("diff_info")
        return try instance.diffInfo()
    }

    /// Per bucket at `bits`, the count and hash of the records in `within`;
    /// an answer that is not ascending, non-empty buckets below 2^bits fails.
    public func digest(within: BucketSet, bits: Int) throws -> [BucketDigest] {
        call("digest")
        let answer = try instance.digest(within: within, bits: bits)
        var previous: UInt64?
        for item in answer {
            let detail: String? =
                if item.count == 0 { "bucket \(item.bucket) is listed with no records" }
                else if bits < 64 && item.bucket >> UInt64(bits) != 0 { "bucket \(item.bucket) does not fit in \(bits) bits" }
                else if let previous, item.bucket <= previous { "buckets are not strictly ascending (\(previous), then \(item.bucket))" }
                else { nil }
            if let detail { throw HarnessError.invalidOutput(plugin: harness.plugin.name, call: "digest", detail: detail) }
            previous = item.bucket
        }
        return answer
    }

    /// The next reads yield only the records in `buckets`, from the start.
    public func selectBuckets(_ buckets: BucketSet) throws {
        call("select_buckets")
        try instance.selectBuckets(buckets)
    }

    /// Deletes the records whose keys are in `keys` (documents holding only
    /// the key fields); returns how many existed. Durable at the next `commit`.
    public func deleteKeys(_ keys: [Record]) throws -> UInt64 {
        try withInput(keys) { batch in
            call("delete_keys")
            return try instance.deleteKeys(batch)
        }
    }
}
