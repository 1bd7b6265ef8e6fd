import FerryPluginKit

/// Keeps only the fields whose names match (`keep`), or drops the ones that
/// match (`drop`), at the top level or, with `nested`, inside documents and
/// documents in arrays too. Array elements are not fields: their indexes are
/// never matched, and arrays keep every element.
///
/// Writes the rewritten record into its own buffer, reused for every record.
final class FieldNameFilter {
    enum Mode: String {
        case keep
        case drop
    }

    let mode: Mode
    let pattern: CompiledPattern
    let nested: Bool
    private let writer = RecordWriter()
    private let cache = NameVerdictCache()

    init(mode: Mode, pattern: CompiledPattern, nested: Bool) {
        self.mode = mode
        self.pattern = pattern
        self.nested = nested
    }

    deinit { cache.deallocate() }

    /// Whether the field named `key` stays, from the cache or PCRE2.
    @inline(__always)
    private func keeps(_ key: UnsafeRawBufferPointer, handles: MatchHandles) -> Result<Bool, Failure> {
        let hash = NameVerdictCache.hash(key)
        if let keep = cache.verdict(key, hash: hash) { return .success(keep) }
        let keep: Bool
        switch handles.match(pattern, key) {
        case .matched: keep = mode == .keep
        case .notMatched: keep = mode == .drop
        case .failed(let code): return .failure(Failure(code: code))
        }
        cache.store(key, hash: hash, keep: keep)
        return .success(keep)
    }

    /// A field name whose match failed (a limit), or a record nested past
    /// `maxDepth`: the record is rejected.
    struct Failure: Error {
        /// The PCRE2 error; nil for too deep a record.
        let code: Int32?
    }

    /// Deeper documents are refused rather than recursed into, so a hostile
    /// record cannot exhaust the worker's stack (MongoDB stops at 100).
    static let maxDepth = 200

    /// The filtered record, valid until the next call.
    func filter(_ record: UnsafeRawBufferPointer, handles: MatchHandles) throws(Failure) -> UnsafeRawBufferPointer {
        writer.removeAll()
        if let failure = write(record, isArray: false, depth: 0, handles: handles) { throw failure }
        return writer.bytes
    }

    private func write(_ document: UnsafeRawBufferPointer, isArray: Bool, depth: Int, handles: MatchHandles) -> Failure? {
        guard depth <= Self.maxDepth else { return Failure(code: nil) }
        let start = writer.beginLength()
        var cursor = BSONScanner.Cursor(document)
        while let element = cursor.next() {
            if !isArray {
                switch keeps(element.key, handles: handles) {
                case .success(true): break
                case .success(false): continue
                case .failure(let failure): return failure
                }
            }
            writer.append(byte: element.type)
            writer.append(element.key)
            writer.append(byte: 0)
            if nested, element.isContainer {
                if let failure = write(element.value, isArray: element.type == 0x04, depth: depth + 1, handles: handles) { return failure }
            } else {
                writer.append(element.value)
            }
        }
        writer.append(byte: 0)
        writer.endLength(at: start)
        return nil
    }

    /// The dead-letter reason of a failure.
    func reason(_ failure: Failure, matcher: Matcher) -> String {
        guard let code = failure.code else {
            return "regex_filter: fields.\(mode.rawValue): the record nests documents deeper than \(Self.maxDepth) levels; record rejected"
        }
        return "regex_filter: fields.\(mode.rawValue) \(pattern.display) on a field name: \(matcher.describe(code)); record rejected"
    }
}
