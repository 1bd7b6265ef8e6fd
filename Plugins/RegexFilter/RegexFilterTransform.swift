import FerryPluginKit

/// Keeps or drops records by regex rules on their fields, and optionally
/// keeps or drops fields by name. Matches run on the string bytes inside
/// the BSON (no decoding); when every record of a batch is kept unchanged,
/// the batch passes through without a copy.
final class RegexFilterTransform: TransformPlugin {
    let evaluator: RuleEvaluator?
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
        evaluator = compiled.evaluator
        fieldFilter = compiled.fieldFilter
        matcher = try Matcher(limits: compiled.limits)
    }

    deinit { text.deallocate() }

    func transform(_ input: BatchView, into output: BatchBuilder, rejects: inout Rejects) throws -> TransformOutcome {
        // Until the first record left out, the output is the input: nothing is
        // copied unless something is dropped, rejected or rewritten.
        var copying = fieldFilter != nil
        var index = 0
        for record in input {
            let verdict = evaluator?.evaluate(record, matcher: matcher, text: text) ?? .keep
            switch verdict {
            case .keep:
                if copying { emit(record, index: index, into: output, rejects: &rejects) }
            case .drop:
                if !copying { copying = startCopying(input, before: index, into: output) }
            case .failed, .missing:
                rejects.reject(index, evaluator!.reason(verdict, matcher: matcher))
                if !copying { copying = startCopying(input, before: index, into: output) }
            }
            index += 1
        }
        return copying ? .built : .passthrough
    }

    /// Copies the records before `index`, all kept unchanged so far.
    private func startCopying(_ input: BatchView, before index: Int, into output: BatchBuilder) -> Bool {
        var iterator = input.makeIterator()
        for _ in 0..<index {
            guard let record = iterator.next() else { break }
            output.append(record)
        }
        return true
    }

    @inline(__always)
    private func emit(_ record: DocumentView, index: Int, into output: BatchBuilder, rejects: inout Rejects) {
        guard let fieldFilter else {
            output.append(record)
            return
        }
        do throws(FieldNameFilter.Failure) {
            output.append(encoded: try fieldFilter.filter(record, matcher: matcher))
        } catch {
            rejects.reject(index, fieldFilter.reason(error, matcher: matcher))
        }
    }
}
