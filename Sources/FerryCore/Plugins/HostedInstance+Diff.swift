import CFerryPlugin
import FerryPluginKit

/// The ABI 1.1 calls of `ferry diff` and `ferry repair`. Each is absent on a
/// plugin built against ABI 1.0 (its descriptor ends before them), and says so.
extension HostedInstance {
    private func absent(_ call: String, _ what: String) -> PluginCallError {
        let built = plugin.abiMinor < 1 ? " (it was built against ABI \(plugin.abiMajor).\(plugin.abiMinor))" : ""
        return PluginCallError(
            plugin: plugin.name, stage: stage, call: call, status: Int32(FERRY_ERR_UNSUPPORTED),
            message: "'\(plugin.name)' cannot \(what)\(built)")
    }

    private static func jsonArray(_ names: [String]) -> [CChar] {
        Array(JSONValue.array(names.map(JSONValue.string)).jsonText.utf8CString)
    }

    /// A field list as the plugin answered it; anything but a JSON array of
    /// strings is refused, not read as "no key" (a diff by a wrong key is worse than none).
    private func names(_ text: UnsafePointer<CChar>?, _ field: String) throws(PluginCallError) -> [String]? {
        guard let text else { return nil }
        let json = String(cString: text)
        if case .array(let items)? = try? JSONValue.parse(json) {
            let names = items.compactMap { if case .string(let name) = $0 { name } else { nil } }
            if names.count == items.count { return names }
        }
        throw PluginCallError(
            plugin: plugin.name, stage: stage, call: "diff_info", status: Int32(FERRY_ERR_INTERNAL),
            message: "\(field) is not a JSON array of strings: \(json.prefix(200))")
    }

    /// The instance's key, fields and digest scheme.
    public func diffInfo() throws(PluginCallError) -> DiffInfo {
        guard let function = plugin.descriptor.diff_info else { throw absent("diff_info", "describe its records for a diff") }
        var info = ferry_diff_info()
        info.struct_size = UInt32(MemoryLayout<ferry_diff_info>.size)
        errorBuffer[0] = 0
        try check("diff_info", calling(.diffInfo) { function(handle, &info, &error) })
        return DiffInfo(
            key: try names(info.key_json, "key_json"), fields: try names(info.fields_json, "fields_json"),
            digestScheme: info.digest_scheme.map { String(cString: $0) })
    }

    private func withBuckets<T>(_ set: BucketSet, _ body: (UnsafePointer<ferry_buckets>) -> T) -> T {
        let key = Self.jsonArray(set.key)
        let fields = set.fields.map(Self.jsonArray)
        let list = set.buckets ?? []
        return key.withUnsafeBufferPointer { keyBuffer in
            list.withUnsafeBufferPointer { listBuffer in
                func go(_ fieldsPointer: UnsafePointer<CChar>?) -> T {
                    var request = ferry_buckets()
                    request.struct_size = UInt32(MemoryLayout<ferry_buckets>.size)
                    request.bits = UInt32(set.bits)
                    request.buckets = listBuffer.isEmpty ? nil : listBuffer.baseAddress
                    request.count = UInt64(listBuffer.count)
                    request.key_json = keyBuffer.baseAddress
                    request.fields_json = fieldsPointer
                    return withUnsafePointer(to: &request) { body($0) }
                }
                if let fields { return fields.withUnsafeBufferPointer { go($0.baseAddress) } }
                return go(nil)
            }
        }
    }

    /// Per bucket at `bits`, the count and hash of the records in `within`.
    public func digest(within: BucketSet, bits: Int) throws(PluginCallError) -> [BucketDigest] {
        guard let function = plugin.descriptor.digest else { throw absent("digest", "digest its records") }
        var out = ferry_digest()
        out.struct_size = UInt32(MemoryLayout<ferry_digest>.size)
        out.bits = UInt32(bits)
        errorBuffer[0] = 0
        let status = withBuckets(within) { request in calling(.digest) { function(handle, request, &out, &error) } }
        try check("digest", status)
        guard out.count > 0, let buckets = out.buckets else { return [] }
        return UnsafeBufferPointer(start: buckets, count: Int(out.count)).map {
            BucketDigest(bucket: $0.bucket, count: $0.count, hash: $0.hash)
        }
    }

    /// Restricts the next reads to the records in `buckets`.
    public func selectBuckets(_ buckets: BucketSet) throws(PluginCallError) {
        guard let function = plugin.descriptor.select_buckets else { throw absent("select_buckets", "select key buckets") }
        errorBuffer[0] = 0
        let status = withBuckets(buckets) { request in calling(.selectBuckets) { function(handle, request, &error) } }
        try check("select_buckets", status)
    }

    /// Deletes the records whose keys are in `keys`; returns how many existed.
    public func deleteKeys(_ keys: UnsafePointer<ferry_batch>) throws(PluginCallError) -> UInt64 {
        guard let function = plugin.descriptor.delete_keys else { throw absent("delete_keys", "delete by key") }
        var deleted: UInt64 = 0
        errorBuffer[0] = 0
        try check("delete_keys", calling(.deleteKeys) { function(handle, keys, &deleted, &error) })
        return deleted
    }
}
