/// A cron expression that cannot be parsed: which field, which token, where, and why.
///
/// `description` is meant to be shown to the operator as is, e.g.
/// `cron "*/0 * * * *": minute "*/0": step must be at least 1 (at offset 0)`.
public struct CronError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The expression as given.
    public var expression: String
    /// The field the problem is in (`minute`, `hour`, `day of month`, `month`, `day of week`),
    /// or nil when the problem is the expression's shape (field count, unknown macro).
    public var field: String?
    /// The offending piece of the expression.
    public var token: String
    /// Character offset of `token` in `expression`, from 0.
    public var offset: Int
    /// What is wrong.
    public var reason: String

    public init(expression: String, field: String?, token: String, offset: Int, reason: String) {
        self.expression = expression
        self.field = field
        self.token = token
        self.offset = offset
        self.reason = reason
    }

    public var description: String {
        if let field {
            return "cron \"\(expression)\": \(field) \"\(token)\": \(reason) (at offset \(offset))"
        }
        return "cron \"\(expression)\": \(reason) (at offset \(offset))"
    }
}
