import FerryPluginKit

/// Matches source records with the target's by key and says, per source
/// record, whether the target has it, and which fields differ.
///
/// The target side is loaded first (all of it, or the buckets a digest found
/// different): its records are kept as BSON in one arena, indexed by the
/// canonical bytes of their key. Then the source streams past. A field is
/// compared when the source record has it (the target may hold columns of its
/// own); a field the target lacks compares as null, since sinks write a
/// missing field as NULL or leave it out.
final class DiffComparator {
    enum Verdict: Equatable {
        case equal
        case missing
        case changed([String])
        /// The target holds this key more than once: whatever the fields say, it is not what a keyed run leaves.
        case repeated
        /// The source record lacks a key field: a run could not place it either.
        case noKey
    }

    let key: [String]
    let ignoredFields: Set<String>
    private var arena: [UInt8] = []
    private var slots: [(offset: Int, length: Int, matched: Bool, repeated: Bool)] = []
    private var index: [[UInt8]: Int] = [:]
    private var scratchSource: [UInt8] = []
    private var scratchTarget: [UInt8] = []
    /// Target records whose key another target record already had.
    private(set) var duplicateTargetKeys = 0
    /// Target records without one of the key fields (never matched, never deleted).
    private(set) var targetWithoutKey = 0

    init(key: [String], ignoredFields: Set<String> = []) {
        self.key = key
        self.ignoredFields = ignoredFields
    }

    var targetCount: Int { slots.count }

    /// The canonical bytes of a record's key, or nil when a key field is missing.
    func canonicalKey(_ document: DocumentView) -> [UInt8]? {
        var bytes: [UInt8] = []
        for field in key {
            guard let element = document.element(forKey: field) else { return nil }
            CanonicalValue.append(element, to: &bytes)
        }
        return bytes
    }

    /// Appends a document holding only `record`'s key fields to `builder`
    /// (what delete_keys takes, and what samples show).
    func appendKey(of record: DocumentView, to builder: BatchBuilder) {
        builder.appendDocument { writer in
            for field in key { if let element = record.element(forKey: field) { writer.append(element) } }
        }
    }

    func addTarget(_ document: DocumentView) {
        guard let keyBytes = canonicalKey(document) else {
            targetWithoutKey += 1
            return
        }
        if let slot = index[keyBytes] {
            duplicateTargetKeys += 1
            slots[slot].repeated = true
            return
        }
        index[keyBytes] = slots.count
        slots.append((arena.count, document.byteCount, false, false))
        arena.append(contentsOf: document.bytes)
    }

    /// Compares one source record with its target record, and marks that one seen.
    func compare(_ source: DocumentView) -> Verdict {
        guard let keyBytes = canonicalKey(source) else { return .noKey }
        guard let slot = index[keyBytes] else { return .missing }
        slots[slot].matched = true
        if slots[slot].repeated { return .repeated }
        let (offset, length, _, _) = slots[slot]
        return arena.withUnsafeBytes { bytes in
            let target = DocumentView(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)]))
            var changed: [String] = []
            for field in source {
                let name = field.key
                if ignoredFields.contains(name) || key.contains(name) { continue }
                scratchSource.removeAll(keepingCapacity: true)
                scratchTarget.removeAll(keepingCapacity: true)
                CanonicalValue.append(field, to: &scratchSource)
                if let other = target.element(forKey: name) {
                    CanonicalValue.append(other, to: &scratchTarget)
                } else {
                    scratchTarget.append(contentsOf: CanonicalValue.null)
                }
                if scratchSource != scratchTarget { changed.append(name) }
            }
            return changed.isEmpty ? .equal : .changed(changed)
        }
    }

    /// The target record with the same key as `source`, for samples.
    func targetRecord(matching source: DocumentView) -> BSONDocument? {
        guard let keyBytes = canonicalKey(source), let slot = index[keyBytes] else { return nil }
        let (offset, length, _, _) = slots[slot]
        return arena.withUnsafeBytes { DocumentView(UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + length)])).decode() }
    }

    /// Calls `body` with each target record no source record matched (once per key).
    func forEachUnmatched(_ body: (DocumentView) throws -> Void) rethrows {
        try arena.withUnsafeBytes { bytes in
            for slot in slots where !slot.matched {
                try body(DocumentView(UnsafeRawBufferPointer(rebasing: bytes[slot.offset..<(slot.offset + slot.length)])))
            }
        }
    }

    var unmatchedCount: Int { slots.reduce(0) { $0 + ($1.matched ? 0 : 1) } }

    /// Forgets the target records (between buckets of a digest-guided diff).
    func reset() {
        arena.removeAll(keepingCapacity: true)
        slots.removeAll(keepingCapacity: true)
        index.removeAll(keepingCapacity: true)
    }
}
