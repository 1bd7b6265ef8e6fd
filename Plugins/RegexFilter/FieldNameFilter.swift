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
    func filter(_ record: DocumentView, matcher: Matcher) throws(Failure) -> UnsafeRawBufferPointer {
        buffer.removeAll()
        try write(record, isArray: false, matcher: matcher)
        return buffer.bytes
    }

    private func write(_ document: DocumentView, isArray: Bool, matcher: Matcher) throws(Failure) {
        let start = buffer.count
        buffer.append(littleEndian: Int32(0))
        for element in document {
            if !isArray {
                let hit: Bool
                switch matcher.match(pattern, element.keyBytes) {
                case .matched: hit = true
                case .notMatched: hit = false
                case .failed(let code): throw Failure(code: code)
                }
                if hit != (mode == .keep) { continue }
            }
            if nested, let inner = element.documentValue {
                buffer.append(byte: element.typeByte)
                buffer.append(element.keyBytes)
                buffer.append(byte: 0)
                try write(inner, isArray: element.typeByte == BSONType.array.rawValue, matcher: matcher)
            } else {
                buffer.append(element.element)
            }
        }
        buffer.append(byte: 0)
        // After the appends: the buffer may have moved.
        buffer.base!.storeBytes(of: Int32(buffer.count - start).littleEndian, toByteOffset: start, as: Int32.self)
    }

    /// The dead-letter reason of a failure.
    func reason(_ failure: Failure, matcher: Matcher) -> String {
        "regex_filter: fields.\(mode.rawValue) \(pattern.display) on a field name: \(matcher.describe(failure.code)); record rejected"
    }
}
