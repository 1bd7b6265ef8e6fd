import FerryPluginKit

/// Keeps or drops records by regex rules on their fields, and optionally
/// keeps or drops fields by name. Matches run on the string bytes inside
/// the BSON (no decoding); when every record of a batch is kept unchanged,
/// the batch passes through without a copy.
final class RegexFilterTransform: TransformPlugin {
    let program: RuleProgram?
    let fieldFilter: FieldNameFilter?
    /// This instance's own match data, context and JIT stack (one per worker).
    let matcher: Matcher
    let text = CanonicalText()

    /// - Throws: `PluginError.config` naming the field (and for a bad
    ///   pattern, the pattern and PCRE2's offset and message).
    init(config: PluginConfig, context: PluginContext) throws {
        let compiled: RegexFilterConfig
        do {
            compiled = try RegexFilterConfig(config)
        } catch let error as RegexConfigError {
            throw PluginError.config("regex_filter: \(error)")
        }
        program = compiled.program
        fieldFilter = compiled.fieldFilter
        matcher = try Matcher(limits: compiled.limits)
    }

    deinit { text.deallocate() }

    func transform(_ input: BatchView, into output: BatchBuilder, rejects: inout Rejects) throws -> TransformOutcome {
        // Plain values in locals: the loop below touches no reference counts.
        let code = program?.code
        let handles = matcher.handles
        let text = self.text
        // Until the first record left out, the output is the input: nothing is
        // copied unless something is dropped, rejected or rewritten.
        var copying = fieldFilter != nil
        var index = 0
        var offset = 0
        let bytes = input.bytes
        while offset + 5 <= bytes.count {
            let length = Int(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self)))
            guard length >= 5, offset + length <= bytes.count else { break }
            let record = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])
            let verdict = code?.evaluate(record, handles: handles, text: text) ?? .keep
            switch verdict {
            case .keep:
                if copying { emit(record, index: index, into: output, rejects: &rejects) }
            case .drop:
                if !copying { copying = startCopying(bytes, count: index, into: output) }
            case .failed, .missing:
                rejects.reject(index, program!.reason(verdict, matcher: matcher))
                if !copying { copying = startCopying(bytes, count: index, into: output) }
            }
            offset += length
            index += 1
        }
        return copying ? .built : .passthrough
    }

    /// Copies the first `count` records, all kept unchanged so far.
    private func startCopying(_ bytes: UnsafeRawBufferPointer, count: Int, into output: BatchBuilder) -> Bool {
        var offset = 0
        for _ in 0..<count {
            let length = Int(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self)))
            output.append(encoded: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)]))
            offset += length
        }
        return true
    }

    @inline(__always)
    private func emit(_ record: UnsafeRawBufferPointer, index: Int, into output: BatchBuilder, rejects: inout Rejects) {
        guard let fieldFilter else {
            output.append(encoded: record)
            return
        }
        do throws(FieldNameFilter.Failure) {
            output.append(encoded: try fieldFilter.filter(record, handles: matcher.handles))
        } catch {
            rejects.reject(index, fieldFilter.reason(error, matcher: matcher))
        }
    }
}
