import FerryPluginKit

/// `ferry diff` on the source's rows: digests by the shared scheme
/// (DiffDigest) over what a full read yields, and reads kept to some buckets.
extension PostgresSource: DigestingPlugin {
    func diffInfo() throws -> DiffInfo {
        DiffInfo(key: keyColumns.isEmpty ? nil : keyColumns, fields: columns.map(\.name), digestScheme: DiffDigest.scheme)
    }

    /// What a full read selects: this shard's rows, with no resume position and in no order.
    var fullSelect: String {
        let conditions = shardConditions()
        return "SELECT \(selectList.map(SQL.ident).joined(separator: ", ")) FROM \(relationSQL)"
            + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "))
    }

    func digest(within: BucketSet, bits: Int) throws -> [BucketDigest] {
        if let existing = diffConnection, existing.isBroken { diffConnection = nil }
        let connection = try diffConnection ?? settings.connect()
        diffConnection = connection
        return try DiffDigest.digest(connection, select: fullSelect, columns: columns.map(\.name), within: within, bits: bits, label: relationLabel)
    }

    func selectBuckets(_ set: BucketSet) throws {
        try DiffDigest.validate(set, columns: columns.map(\.name), label: relationLabel)
        if copying {
            // A COPY cut short leaves its connection mid-protocol.
            reader.abandon()
            connection = nil
        }
        selection = set
        position = nil
        finished = false
        handedOut = false
    }
}
