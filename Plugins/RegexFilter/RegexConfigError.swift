/// A config problem found at open, at a field such as `rules[1].exclude`.
struct RegexConfigError: Error, CustomStringConvertible {
    let field: String
    let problem: String

    var description: String { "\(field): \(problem)" }
}
