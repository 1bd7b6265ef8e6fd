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
    private let buffer = ByteBuffer(capacity: 4096)

    init(mode: Mode, pattern: CompiledPattern, nested: Bool) {
        self.mode = mode
        self.pattern = pattern
        self.nested = nested
    }

    /// A field name whose match failed (a limit): the record is rejected.
    struct Failure: Error {
        let code: Int32
    }

    /// The filtered record, valid until the next call.
    func filter(_ record: UnsafeRawBufferPointer, handles: MatchHandles) throws(Failure) -> UnsafeRawBufferPointer {
        buffer.removeAll()
        if let failure = write(record, isArray: false, handles: handles) { throw failure }
        return buffer.bytes
    }

    private func write(_ document: UnsafeRawBufferPointer, isArray: Bool, handles: MatchHandles) -> Failure? {
        let start = buffer.count
        buffer.append(littleEndian: Int32(0))
        var failure: Failure?
        BSONScanner.forEach(document) { element in
            if !isArray {
                let hit: Bool
                switch handles.match(pattern, element.key) {
                case .matched: hit = true
                case .notMatched: hit = false
                case .failed(let code):
                    failure = Failure(code: code)
                    return false
                }
                if hit != (mode == .keep) { return true }
            }
            buffer.append(byte: element.type)
            buffer.append(element.key)
            buffer.append(byte: 0)
            if nested, element.isContainer {
                failure = write(element.value, isArray: element.type == 0x04, handles: handles)
                return failure == nil
            }
            buffer.append(element.value)
            return true
        }
        if let failure { return failure }
        buffer.append(byte: 0)
        // After the appends: the buffer may have moved.
        buffer.base!.storeBytes(of: Int32(buffer.count - start).littleEndian, toByteOffset: start, as: Int32.self)
        return nil
    }

    /// The dead-letter reason of a failure.
    func reason(_ failure: Failure, matcher: Matcher) -> String {
        "regex_filter: fields.\(mode.rawValue) \(pattern.display) on a field name: \(matcher.describe(failure.code)); record rejected"
    }
}
