/// What an instance says about its records, for `ferry diff` (ABI 1.1).
public struct DiffInfo: Sendable, Equatable {
    /// The fields that identify a record; nil when the instance has none.
    public var key: [String]?
    /// The fields every record has (a table's columns); nil when records vary.
    public var fields: [String]?
    /// The digest scheme's name, for instances that can digest.
    public var digestScheme: String?

    public init(key: [String]? = nil, fields: [String]? = nil, digestScheme: String? = nil) {
        self.key = key
        self.fields = fields
        self.digestScheme = digestScheme
    }
}

/// A set of key buckets: a record's bucket at `bits` is the top `bits` bits
/// of its 64-bit key hash (as the digest scheme defines that hash).
public struct BucketSet: Sendable, Equatable {
    public var bits: Int
    /// Ascending bucket numbers at `bits`; nil is every bucket.
    public var buckets: [UInt64]?
    /// The key fields to hash.
    public var key: [String]
    /// `digest`: the fields to hash; nil is every field a record has.
    public var fields: [String]?

    public init(bits: Int, buckets: [UInt64]? = nil, key: [String], fields: [String]? = nil) {
        self.bits = bits
        self.buckets = buckets
        self.key = key
        self.fields = fields
    }

    /// The bucket of a 64-bit key hash at `bits`.
    public static func bucket(ofKeyHash hash: UInt64, bits: Int) -> UInt64 {
        bits == 0 ? 0 : hash >> UInt64(64 - bits)
    }
}

/// One non-empty bucket of a digest.
public struct BucketDigest: Sendable, Equatable {
    public var bucket: UInt64
    public var count: UInt64
    /// The sum of the records' hashes, modulo 2^64.
    public var hash: UInt64

    public init(bucket: UInt64, count: UInt64, hash: UInt64) {
        self.bucket = bucket
        self.count = count
        self.hash = hash
    }
}

/// An instance that can describe its records' key and fields.
public protocol DiffDescribing: PluginInstance {
    func diffInfo() throws -> DiffInfo
}

/// An instance that can hash its records per key bucket where they are
/// stored, and restrict its reads to some buckets (diff push-down).
public protocol DigestingPlugin: DiffDescribing {
    /// Per bucket at `bits` (>= `within.bits`), the count and hash of the
    /// records in `within`: ascending, non-empty buckets only.
    func digest(within: BucketSet, bits: Int) throws -> [BucketDigest]
    /// The next reads yield only the records in `buckets`, from the start.
    func selectBuckets(_ buckets: BucketSet) throws
}

/// A sink that can read its target back, shaped as the pipeline wrote it.
public protocol ReadBackSink: SinkPlugin, DiffDescribing {
    /// As `SourcePlugin.read`: appends up to a batch of the target's records;
    /// false when none are left.
    func readBack(into batch: BatchBuilder) throws -> Bool
}

/// A sink that can delete records by key (made durable by `commit`).
public protocol DeletingSink: SinkPlugin {
    /// Deletes the records whose keys are in `keys` (documents holding only
    /// the key fields); returns how many existed.
    func delete(keys: BatchView) throws -> UInt64
}
