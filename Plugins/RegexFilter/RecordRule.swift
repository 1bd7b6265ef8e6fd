import FerryPluginKit

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

/// One record rule: a field path, a pattern and what a match means.
///
/// A path with `*` stands for several values; the field matches when any of
/// them matches. Values without a text form (documents, arrays, binary, …)
/// never match.
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

    /// Looks the field up in `record` and matches every value it names.
    @inline(__always)
    func match(_ record: DocumentView, matcher: Matcher, text: CanonicalText) -> FieldMatch {
        match(in: record, component: 0, matcher: matcher, text: text)
    }

    private func match(in document: DocumentView, component: Int, matcher: Matcher, text: CanonicalText) -> FieldMatch {
        switch path.components[component] {
        case .key(let key):
            for element in document where element.keyBytes.sameBytes(as: key) {
                return match(element, next: component + 1, matcher: matcher, text: text)
            }
            return .missing
        case .wildcard:
            var sawValue = false
            for element in document {
                switch match(element, next: component + 1, matcher: matcher, text: text) {
                case .matched: return .matched
                case .failed(let code): return .failed(code)
                case .notMatched: sawValue = true
                case .missing: break
                }
            }
            return sawValue ? .notMatched : .missing
        }
    }

    private func match(_ element: BSONElement, next: Int, matcher: Matcher, text: CanonicalText) -> FieldMatch {
        if next == path.components.count {
            if element.typeByte == BSONType.null.rawValue || element.typeByte == BSONType.undefined.rawValue { return .missing }
            guard let subject = text.text(of: element) else { return .notMatched }
            switch matcher.match(pattern, subject) {
            case .matched: return .matched
            case .notMatched: return .notMatched
            case .failed(let code): return .failed(code)
            }
        }
        guard let nested = element.documentValue else { return .missing }
        return match(in: nested, component: next, matcher: matcher, text: text)
    }
}
