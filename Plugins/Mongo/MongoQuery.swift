import FerryPluginKit

/// The find a source runs: the user's filter, this shard's slice and
/// everything after the saved position, sorted so that the position is a
/// total order — (cursor, key) for incremental reads, key otherwise.
struct MongoQuery {
    let userFilter: [UInt8]?
    let projection: [UInt8]?
    let keyField: String
    let cursorField: String?
    let shardIndex: Int
    let shardCount: Int
    /// Documents per server reply; nil lets the server fill 16 MiB replies.
    let batchSize: Int?
    let allowDiskUse: Bool

    /// The documents this shard reads at all.
    func filter() -> [UInt8] { combine([]) }

    /// The finds that read everything after `position`, run one after the
    /// other, in (cursor, key) order. With a cursor that is two simple
    /// range queries, each served by a {cursor: 1, key: 1} index:
    ///   1. `cursor = c AND key > k` — the rest of the tie group;
    ///   2. `cursor > c`.
    /// (One `$or` of both is the same set, but servers tend to answer it
    /// with a full scan: SecantusDB took 3.1 s for 20k documents where the
    /// two ranges took 0.2 s.)
    func phases(after position: MongoPosition?) -> [[UInt8]] {
        guard let position else { return [filter()] }
        let keyAfter = Self.greater(keyField, than: position.key)
        guard let cursorField, let cursor = position.cursor else { return [combine([keyAfter])] }
        return [
            combine([Self.equal(cursorField, cursor), keyAfter]),
            combine([Self.greater(cursorField, than: cursor)]),
        ]
    }

    /// The user's filter AND this shard's slice AND `extra`, as one flat
    /// document when no field repeats (SecantusDB only uses an index for
    /// top-level conditions, not inside `$and`), else as an `$and`.
    private func combine(_ extra: [BSONDocument]) -> [UInt8] {
        var parts: [BSONDocument] = []
        if let userFilter { parts.append(userFilter.withUnsafeBytes { DocumentView($0).decode() }) }
        if shardCount > 1 { parts.append(Self.shardSlice(keyField, index: shardIndex, count: shardCount)) }
        parts += extra
        var merged = BSONDocument()
        var seen = Set<String>()
        for part in parts {
            for field in part.fields {
                guard seen.insert(field.key).inserted else {
                    return BSONDocument([("$and", .array(parts.map(BSONValue.document)))]).encoded()
                }
                merged.fields.append(field)
            }
        }
        return merged.encoded()
    }

    /// `$gt` is type-bracketed (5 is not below "a"), and nothing is `$gt`
    /// null: past a null (or missing) value, every non-null value is next.
    static func greater(_ field: String, than value: BSONValue) -> BSONDocument {
        if Self.isNull(value) { return BSONDocument([(field, .document(BSONDocument([("$ne", .null)])))]) }
        return BSONDocument([(field, .document(BSONDocument([("$gt", value)])))])
    }

    /// `$eq: null` also matches a missing field, which sorts as null too.
    static func equal(_ field: String, _ value: BSONValue) -> BSONDocument {
        BSONDocument([(field, .document(BSONDocument([("$eq", Self.isNull(value) ? .null : value)])))])
    }

    static func isNull(_ value: BSONValue) -> Bool {
        switch value {
        case .null: return true
        case .raw(let type, _): return type == 0x0A || type == 0x06
        default: return false
        }
    }

    /// The find options: sort, projection (always keeping key and cursor, the
    /// resume position is read from them), server batch size.
    func options() -> [UInt8] {
        var sort: [(String, BSONValue)] = []
        if let cursorField { sort.append((cursorField, .int32(1))) }
        sort.append((keyField, .int32(1)))
        var fields: [(String, BSONValue)] = [("sort", .document(BSONDocument(sort)))]
        if let projection { fields.append(("projection", .document(Self.keeping([keyField, cursorField].compactMap { $0 }, in: projection)))) }
        if let batchSize { fields.append(("batchSize", .int32(Int32(clamping: batchSize)))) }
        if allowDiskUse { fields.append(("allowDiskUse", .bool(true))) }
        return BSONDocument(fields).encoded()
    }

    /// An inclusion projection gets the position fields added; an exclusion
    /// projection is left as it is (`validate` refused one that drops them).
    static func keeping(_ needed: [String], in projection: [UInt8]) -> BSONDocument {
        var document = projection.withUnsafeBytes { DocumentView($0).decode() }
        let isInclusion = document.fields.contains { $0.key != "_id" && isTruthy($0.value) }
        guard isInclusion else { return document }
        for field in needed where document[field] == nil { document.fields.append((field, .int32(1))) }
        return document
    }

    static func isTruthy(_ value: BSONValue) -> Bool {
        switch value {
        case .int32(let v): return v != 0
        case .int64(let v): return v != 0
        case .double(let v): return v != 0
        case .bool(let v): return v
        case .null: return false
        default: return true  // expressions ($slice, literals) count as inclusion
        }
    }

    /// A projection that would drop the key or cursor field cannot resume.
    static func validate(projection: [UInt8], keeps fields: [String]) throws(PluginError) {
        let document = projection.withUnsafeBytes { DocumentView($0).decode() }
        for field in fields {
            if let value = document[field], !isTruthy(value) {
                throw .config("mongo: field 'projection': it excludes '\(field)', which the source needs to resume (key or cursor)")
            }
        }
    }

    /// Shard `index` of `count`: numbers by `$mod` of their integer part
    /// (exact, balanced for integer keys); anything else by its text form's
    /// last three characters (an ObjectId's counter, a string's suffix).
    /// Each document gets exactly one bucket, whatever its key, so the slices
    /// are disjoint and together the whole collection. Uses only aggregation
    /// operators from MongoDB 4.0 that SecantusDB also implements
    /// (`$toHashedIndexKey` would hash better but needs 4.4+/7.0 and is
    /// missing from SecantusDB).
    static func shardSlice(_ field: String, index: Int, count: Int) -> BSONDocument {
        let path = BSONValue.string("$" + field)
        let text = BSONValue.document(BSONDocument([("$toString", path)]))
        func op(_ name: String, _ args: [BSONValue]) -> BSONValue { .document(BSONDocument([(name, .array(args))])) }
        func op(_ name: String, _ arg: BSONValue) -> BSONValue { .document(BSONDocument([(name, arg)])) }
        // Position of the character `back` places from the end in a fixed
        // alphabet (0 when absent), so the text hashes the same everywhere.
        func character(_ back: Int64) -> BSONValue {
            let start = op("$max", [.int32(0), op("$subtract", [op("$strLenCP", text), .int64(back)])])
            return op("$max", [.int32(0), op("$indexOfCP", [.string(Self.alphabet), op("$substrCP", [text, start, .int32(1)])])])
        }
        let textHash = op("$add", [
            op("$multiply", [character(3), .int32(4096)]), op("$multiply", [character(2), .int32(64)]), character(1),
        ])
        let bucket = op("$cond", [
            op("$isNumber", path),
            op("$abs", op("$mod", [op("$trunc", path), .int64(Int64(count))])),
            op("$mod", [textHash, .int64(Int64(count))]),
        ])
        // A missing or null key has no text: bucket 0.
        let guarded = op("$cond", [op("$eq", [op("$ifNull", [path, .null]), .null]), .int32(0), bucket])
        return BSONDocument([("$expr", op("$eq", [guarded, .int64(Int64(index))]))])
    }

    static let alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_:.,;/ "
}
