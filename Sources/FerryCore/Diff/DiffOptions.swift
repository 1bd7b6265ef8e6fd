/// How `ferry diff` compares, and whether it repairs.
public struct DiffOptions: Sendable {
    public enum Method: String, Sendable, CaseIterable {
        /// Digests where both plugins can (same scheme, no transforms), else reading.
        case auto
        /// Digests, or fails saying why it cannot.
        case digest
        /// Reads both sides in full.
        case read
    }

    public var method: Method
    /// Records of each kind (missing, extra, changed) the report shows.
    public var sampleSize: Int
    /// Fields never compared (a column the target sets itself, say).
    public var ignoredFields: [String]
    /// Set for `ferry repair`.
    public var repair: RepairOptions?

    public init(method: Method = .auto, sampleSize: Int = 10, ignoredFields: [String] = [], repair: RepairOptions? = nil) {
        self.method = method
        self.sampleSize = sampleSize
        self.ignoredFields = ignoredFields
        self.repair = repair
    }
}

/// What `ferry repair` may change.
public struct RepairOptions: Sendable {
    /// Reports what it would write and delete, and changes nothing.
    public var dryRun: Bool
    /// The most extra records it deletes. Above it, it deletes none: deleting
    /// is the one thing a sync must never do by surprise. 0 never deletes.
    public var maxDeletes: Int

    public init(dryRun: Bool = false, maxDeletes: Int = 0) {
        self.dryRun = dryRun
        self.maxDeletes = maxDeletes
    }
}
