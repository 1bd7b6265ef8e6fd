/// What a record rule does when its field matches.
enum RuleAction: String {
    /// Keep the record only if the field matches.
    case include
    /// Keep the record only if the field does not match.
    case exclude
}

/// What a missing field (absent, null, or a path through a non-document) counts as.
enum MissingPolicy: String, CaseIterable {
    case nonmatch
    case match
    /// Dead-letter the record.
    case reject
}

/// The outcome of looking a field up and matching it.
enum FieldMatch {
    case matched
    case notMatched
    case missing
    case failed(Int32)
}

/// One record rule as configured: a field path, a pattern and what a match
/// means. It owns the path and the compiled pattern; `leaf` is the trivial
/// value the hot path evaluates.
final class RecordRule {
    /// `rules[1] (exclude 'name')`, for reasons.
    let label: String
    let action: RuleAction
    let path: FieldPath
    let pattern: CompiledPattern
    let missing: MissingPolicy

    init(label: String, action: RuleAction, path: FieldPath, pattern: CompiledPattern, missing: MissingPolicy) {
        self.label = label
        self.action = action
        self.path = path
        self.pattern = pattern
        self.missing = missing
    }

    /// Valid while this rule is alive.
    var leaf: LeafRule {
        LeafRule(
            code: pattern.code, isJIT: pattern.isJIT, include: action == .include, missing: missing,
            steps: UnsafeBufferPointer(path.steps))
    }
}

/// A record rule as plain values (pointers borrowed from its `RecordRule`).
///
/// A path with `*` stands for several values; the field matches when any of
/// them matches. Values without a text form (documents, arrays, binary, …)
/// never match.
struct LeafRule {
    let code: OpaquePointer
    let isJIT: Bool
    let include: Bool
    let missing: MissingPolicy
    let steps: UnsafeBufferPointer<PathStep>

    /// Looks the field up in `record` (one BSON document) and matches every value it names.
    @inline(__always)
    func match(_ record: UnsafeRawBufferPointer, handles: MatchHandles, text: CanonicalText) -> FieldMatch {
        let first = steps[0]
        if !first.isWildcard {
            guard let element = BSONScanner.find(first, in: record) else { return .missing }
            return match(element, next: 1, handles: handles, text: text)
        }
        return match(in: record, step: 0, handles: handles, text: text)
    }

    private func match(in document: UnsafeRawBufferPointer, step: Int, handles: MatchHandles, text: CanonicalText) -> FieldMatch {
        let current = steps[step]
        if !current.isWildcard {
            guard let element = BSONScanner.find(current, in: document) else { return .missing }
            return match(element, next: step + 1, handles: handles, text: text)
        }
        var result = FieldMatch.missing
        BSONScanner.forEach(document) { element in
            switch match(element, next: step + 1, handles: handles, text: text) {
            case .matched:
                result = .matched
                return false
            case .failed(let code):
                result = .failed(code)
                return false
            case .notMatched:
                result = .notMatched
                return true
            case .missing:
                return true
            }
        }
        return result
    }

    @inline(__always)
    private func match(_ element: ScannedElement, next: Int, handles: MatchHandles, text: CanonicalText) -> FieldMatch {
        if next == steps.count {
            // null and undefined count as missing.
            if element.type == 0x0A || element.type == 0x06 { return .missing }
            guard let subject = text.text(of: element) else { return .notMatched }
            switch handles.match(code, jit: isJIT, subject) {
            case .matched: return .matched
            case .notMatched: return .notMatched
            case .failed(let code): return .failed(code)
            }
        }
        guard element.isContainer else { return .missing }
        return match(in: element.value, step: next, handles: handles, text: text)
    }
}
