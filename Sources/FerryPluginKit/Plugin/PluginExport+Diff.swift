#if canImport(Glibc)
import Glibc
#endif
import CFerryPlugin

/// The C strings and bucket array a diff call hands out, kept alive until the
/// next diff call on the instance (or its close), as the ABI promises.
final class DiffAnswerStorage {
    private var strings: [UnsafeMutablePointer<CChar>] = []
    private var digests: UnsafeMutablePointer<ferry_bucket_digest>?

    func keep(_ text: String?) -> UnsafePointer<CChar>? {
        guard let text, let copy = strdup(text) else { return nil }
        strings.append(copy)
        return UnsafePointer(copy)
    }

    func keep(_ buckets: [BucketDigest]) -> UnsafePointer<ferry_bucket_digest>? {
        guard !buckets.isEmpty else { return nil }
        let items = UnsafeMutablePointer<ferry_bucket_digest>.allocate(capacity: buckets.count)
        for (offset, item) in buckets.enumerated() {
            items[offset] = ferry_bucket_digest(bucket: item.bucket, count: item.count, hash: item.hash)
        }
        digests = items
        return UnsafePointer(items)
    }

    func clear() {
        strings.forEach { free($0) }
        strings.removeAll()
        digests?.deallocate()
        digests = nil
    }

    deinit { clear() }
}

/// The ABI 1.1 entry points (diff and repair) shared by every SDK plugin.
enum DiffThunks {
    static func names(_ json: UnsafePointer<CChar>?, _ what: String) throws -> [String]? {
        guard let json else { return nil }
        guard case .array(let items) = try JSONValue.parse(String(cString: json)) else {
            throw PluginError.internal("\(what) is not a JSON array")
        }
        return try items.map {
            guard case .string(let name) = $0 else { throw PluginError.internal("\(what) holds a non-string") }
            return name
        }
    }

    static func bucketSet(_ pointer: UnsafePointer<ferry_buckets>?) throws -> BucketSet {
        guard let request = pointer?.pointee else { throw PluginError.internal("no bucket set given") }
        guard request.bits <= 32 else { throw PluginError.unsupported("bucket bits \(request.bits) above 32") }
        let buckets: [UInt64]? =
            if let list = request.buckets, request.count > 0 {
                Array(UnsafeBufferPointer(start: list, count: Int(request.count)))
            } else { nil }
        guard let key = try names(request.key_json, "key_json"), !key.isEmpty else {
            throw PluginError.internal("a bucket set needs key fields")
        }
        return BucketSet(bits: Int(request.bits), buckets: buckets, key: key, fields: try names(request.fields_json, "fields_json"))
    }

    static func jsonArray(_ names: [String]?) -> String? {
        names.map { JSONValue.array($0.map(JSONValue.string)).jsonText }
    }

    static let diffInfo: @convention(c) (
        UnsafeMutableRawPointer?, UnsafeMutablePointer<ferry_diff_info>?, UnsafeMutablePointer<ferry_error>?
    ) -> ferry_status = { pointer, info, errorOut in
        guard let box = InstanceBox.from(pointer), let describing = box.instance as? any DiffDescribing, let info else {
            return Thunks.fail(PluginError.unsupported("this instance cannot describe its records for a diff"), errorOut)
        }
        do {
            let answer = try describing.diffInfo()
            box.diffAnswers.clear()
            guard Int(info.pointee.struct_size) >= MemoryLayout<ferry_diff_info>.offset(of: \ferry_diff_info.digest_scheme)! + 8 else {
                throw PluginError.internal("the host's ferry_diff_info is smaller than ABI 1.1's")
            }
            info.pointee.key_json = box.diffAnswers.keep(jsonArray(answer.key))
            info.pointee.fields_json = box.diffAnswers.keep(jsonArray(answer.fields))
            info.pointee.digest_scheme = box.diffAnswers.keep(answer.digestScheme)
            return ferry_status(FERRY_OK)
        } catch {
            return Thunks.fail(error, errorOut)
        }
    }

    static let digest: @convention(c) (
        UnsafeMutableRawPointer?, UnsafePointer<ferry_buckets>?, UnsafeMutablePointer<ferry_digest>?,
        UnsafeMutablePointer<ferry_error>?
    ) -> ferry_status = { pointer, within, out, errorOut in
        guard let box = InstanceBox.from(pointer), let digesting = box.instance as? any DigestingPlugin, let out else {
            return Thunks.fail(PluginError.unsupported("this instance cannot digest"), errorOut)
        }
        do {
            let set = try bucketSet(within)
            let bits = Int(out.pointee.bits)
            guard bits >= set.bits, bits <= 32 else {
                throw PluginError.internal("digest bits \(bits) must lie in \(set.bits)...32")
            }
            let answer = try digesting.digest(within: set, bits: bits)
            box.diffAnswers.clear()
            out.pointee.buckets = box.diffAnswers.keep(answer)
            out.pointee.count = UInt64(answer.count)
            return ferry_status(FERRY_OK)
        } catch {
            return Thunks.fail(error, errorOut)
        }
    }

    static let selectBuckets: @convention(c) (
        UnsafeMutableRawPointer?, UnsafePointer<ferry_buckets>?, UnsafeMutablePointer<ferry_error>?
    ) -> ferry_status = { pointer, buckets, errorOut in
        guard let box = InstanceBox.from(pointer), let digesting = box.instance as? any DigestingPlugin else {
            return Thunks.fail(PluginError.unsupported("this instance cannot select buckets"), errorOut)
        }
        do {
            try digesting.selectBuckets(try bucketSet(buckets))
            return ferry_status(FERRY_OK)
        } catch {
            return Thunks.fail(error, errorOut)
        }
    }

    static let deleteKeys: @convention(c) (
        UnsafeMutableRawPointer?, UnsafePointer<ferry_batch>?, UnsafeMutablePointer<UInt64>?, UnsafeMutablePointer<ferry_error>?
    ) -> ferry_status = { pointer, keys, deleted, errorOut in
        guard let box = InstanceBox.from(pointer), let sink = box.instance as? any DeletingSink, let keys else {
            return Thunks.fail(PluginError.unsupported("this instance cannot delete by key"), errorOut)
        }
        do {
            let count = try sink.delete(keys: BatchView(keys.pointee))
            deleted?.pointee = count
            return ferry_status(FERRY_OK)
        } catch {
            return Thunks.fail(error, errorOut)
        }
    }
}
