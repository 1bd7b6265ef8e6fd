import FerryPluginKit

/// What `ferry diff` found, and what `ferry repair` did about it.
public struct DiffReport: Sendable {
    /// How the two sides were compared.
    public enum Method: String, Sendable {
        /// Both sides hashed per key bucket where the data lives; only differing buckets were read.
        case digest
        /// Both sides read in full and matched by key in the host.
        case read
    }

    /// One differing record, for the sample.
    public struct Changed: Sendable {
        public var key: String
        public var fields: [String]
        /// Extended JSON of the source's and the target's record.
        public var source: String
        public var target: String
    }

    public struct Repair: Sendable {
        public var dryRun = false
        /// Missing and changed records written through the sink.
        public var written = 0
        /// Of those, records the sink refused (dead-lettered, with the reason).
        public var rejected = 0
        /// Changed records that could not be written: the sink neither upserts nor deletes, so writing would add a second copy.
        public var notReplaced = 0
        public var deleted = 0
        /// Why the extra records were not deleted, when they were not.
        public var deletesRefused: String?
        public var deadLetterPath: String?
    }

    public var pipeline: String
    /// The sink's plugin, for messages about what it cannot do.
    public var sinkPlugin = ""
    public var method: Method = .read
    /// Why the digest method was not used, when it was not.
    public var methodNote: String?
    public var key: [String] = []
    public var sourceRecords = 0
    public var targetRecords = 0
    public var equal = 0
    public var missing = 0
    public var extra = 0
    public var changed = 0
    /// Source records a transform refused or filtered: a run would not write them either.
    public var sourceSkipped = 0
    public var sourceWithoutKey = 0
    public var targetWithoutKey = 0
    public var duplicateTargetKeys = 0
    /// Digest method: buckets compared, buckets that differed, records read from both sides to settle them.
    public var buckets = 0
    public var differingBuckets = 0
    public var recordsRead = 0
    public var sampleMissing: [String] = []
    public var sampleExtra: [String] = []
    public var sampleChanged: [Changed] = []
    public var repair: Repair?
    public var elapsedSeconds = 0.0
    /// Set when the diff stopped early (a plugin failure, a cancel): the counts are then partial.
    public var failure: RunFailure?

    public init(pipeline: String) { self.pipeline = pipeline }

    /// True when the target holds exactly what the source would produce.
    public var isEqual: Bool {
        failure == nil && missing == 0 && extra == 0 && changed == 0 && sourceWithoutKey == 0 && duplicateTargetKeys == 0
    }

    /// `--output json` and the daemon's run API. Record values appear only
    /// in the samples, and only when `withValues` (the daemon's unauthenticated views leave them out).
    public func jsonValue(withValues: Bool = true) -> JSONValue {
        func int(_ value: Int) -> JSONValue { .integer(Int64(value)) }
        var object: [String: JSONValue] = [
            "pipeline": .string(pipeline), "method": .string(method.rawValue), "equal": .bool(isEqual),
            "key": .array(key.map(JSONValue.string)),
            "sourceRecords": int(sourceRecords), "targetRecords": int(targetRecords), "matching": int(equal),
            "missing": int(missing), "extra": int(extra), "changed": int(changed), "sourceSkipped": int(sourceSkipped),
            "sourceWithoutKey": int(sourceWithoutKey), "targetWithoutKey": int(targetWithoutKey),
            "duplicateTargetKeys": int(duplicateTargetKeys), "elapsedSeconds": .number(elapsedSeconds),
        ]
        if let methodNote { object["methodNote"] = .string(methodNote) }
        if method == .digest {
            object["buckets"] = int(buckets)
            object["differingBuckets"] = int(differingBuckets)
            object["recordsRead"] = int(recordsRead)
        }
        if withValues {
            object["sample"] = .object([
                "missing": .array(sampleMissing.map(JSONValue.string)),
                "extra": .array(sampleExtra.map(JSONValue.string)),
                "changed": .array(sampleChanged.map {
                    .object([
                        "key": .string($0.key), "fields": .array($0.fields.map(JSONValue.string)),
                        "source": .string($0.source), "target": .string($0.target),
                    ])
                }),
            ])
        }
        if let repair {
            var fields: [String: JSONValue] = [
                "dryRun": .bool(repair.dryRun), "written": int(repair.written), "rejected": int(repair.rejected),
                "deleted": int(repair.deleted), "notReplaced": int(repair.notReplaced),
            ]
            if let refused = repair.deletesRefused { fields["deletesRefused"] = .string(refused) }
            if let path = repair.deadLetterPath { fields["deadLetterPath"] = .string(path) }
            object["repair"] = .object(fields)
        }
        if let failure {
            object["error"] = .string(failure.description)
            object["failure"] = failure.jsonValue
        }
        return .object(object)
    }
}
