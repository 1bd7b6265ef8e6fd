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
