import FerryPluginKit

/// Record rules combined with and (`all`) / or (`any`), nested as deep as
/// the config nests them. Leaves index into the flat list of rules.
indirect enum RuleTree {
    case rule(Int)
    case all([RuleTree])
    case any([RuleTree])
}

/// What the rules decide for one record. Rejections carry the rule's index,
/// so no reason text is built unless a record is actually rejected.
enum Verdict {
    case keep
    case drop
    /// A PCRE2 error (a limit) while matching the rule at this index.
    case failed(rule: Int, code: Int32)
    /// The rule's field is missing and its policy is `reject`.
    case missing(rule: Int)
}

/// Evaluates a rule tree against records, stopping as soon as the outcome
/// is known (`all` at the first drop, `any` at the first keep); a rejection
/// ends the evaluation at once.
struct RuleEvaluator {
    let tree: RuleTree
    let rules: [RecordRule]

    @inline(__always)
    func evaluate(_ record: DocumentView, matcher: Matcher, text: CanonicalText) -> Verdict {
        evaluate(tree, record, matcher: matcher, text: text)
    }

    private func evaluate(_ node: RuleTree, _ record: DocumentView, matcher: Matcher, text: CanonicalText) -> Verdict {
        switch node {
        case .rule(let index):
            return evaluate(rule: index, record, matcher: matcher, text: text)
        case .all(let children):
            for child in children {
                let verdict = evaluate(child, record, matcher: matcher, text: text)
                if case .keep = verdict { continue }
                return verdict
            }
            return .keep
        case .any(let children):
            for child in children {
                let verdict = evaluate(child, record, matcher: matcher, text: text)
                if case .drop = verdict { continue }
                return verdict
            }
            return .drop
        }
    }

    @inline(__always)
    private func evaluate(rule index: Int, _ record: DocumentView, matcher: Matcher, text: CanonicalText) -> Verdict {
        let rule = rules[index]
        let hit: Bool
        switch rule.match(record, matcher: matcher, text: text) {
        case .matched: hit = true
        case .notMatched: hit = false
        case .failed(let code): return .failed(rule: index, code: code)
        case .missing:
            switch rule.missing {
            case .nonmatch: hit = false
            case .match: hit = true
            case .reject: return .missing(rule: index)
            }
        }
        return hit == (rule.action == .include) ? .keep : .drop
    }

    /// The dead-letter reason of a rejecting verdict.
    func reason(_ verdict: Verdict, matcher: Matcher) -> String {
        switch verdict {
        case .failed(let index, let code):
            let rule = rules[index]
            return "regex_filter: \(rule.label) \(rule.pattern.display) on field '\(rule.path.text)': \(matcher.describe(code)); record rejected"
        case .missing(let index):
            let rule = rules[index]
            return "regex_filter: \(rule.label): field '\(rule.path.text)' is missing (missing: reject)"
        case .keep, .drop:
            return "regex_filter: no rejection"
        }
    }
}
