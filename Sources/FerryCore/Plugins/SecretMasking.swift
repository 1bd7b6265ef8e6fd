/// Hides the password of any `scheme://user:password@host`, and any libpq
/// style `password=…` key/value, in a message, so a DSN never reaches a log
/// or an error in clear.
public enum SecretMasking {
    public static func mask(_ text: String) -> String {
        maskSubstituted(maskURIs(maskKeyValues(text)))
    }

    /// Values config files took from `${file:…}`, or from a `${VAR}` whose name
    /// says it is a secret: any of them may be one, and a plugin or a library may echo one back in an error
    /// ("database 'hunter2' does not exist"). Every message that leaves the
    /// process goes through `mask`, which hides them.
    private static let substituted = Locked<[String]>([])

    /// Shorter values are left alone: hiding "1" or "true" everywhere would
    /// garble every message, and values that short are no secret worth the name.
    public static let shortestMasked = 4
    /// Whether a variable's name says it holds a secret.
    public static func namesSecret(_ variable: String) -> Bool {
        let upper = variable.uppercased()
        return ["PASS", "SECRET", "TOKEN", "KEY", "CRED", "AUTH", "DSN", "URI", "URL"].contains { upper.contains($0) }
    }

    /// Remembers a value taken from the environment or a file. A multi-line
    /// or NUL-separated value (a whole env file) is remembered line by line too.
    public static func registerSubstituted(_ value: String, shortest: Int = shortestMasked) {
        var pieces = [value]
        let parts = value.split(whereSeparator: { $0 == "\n" || $0 == "\0" || $0 == "\r" })
        if parts.count > 1 { pieces += parts.map(String.init) }
        // Of `KEY=value` lines, the value alone is what an echo would show.
        pieces += pieces.compactMap { piece in piece.firstIndex(of: "=").map { String(piece[piece.index(after: $0)...]) } }
        let kept = pieces.map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0.count >= shortest }
        guard !kept.isEmpty else { return }
        substituted.withLock { values in
            for piece in kept where !values.contains(piece) { values.append(piece) }
            // Longest first, so a value is hidden whole before a part of it is.
            values.sort { $0.count > $1.count }
        }
    }

    static func maskSubstituted(_ text: String) -> String {
        let values = substituted.withLock { $0 }
        guard !values.isEmpty else { return text }
        var result = text
        for value in values where result.contains(value) {
            result = result.replacingOccurrences(of: value, with: "[value from ${…}]")
        }
        return result
    }

    /// `password=secret` and `password = 'it''s'` (libpq conninfo) become `password=***`.
    static func maskKeyValues(_ text: String) -> String {
        guard text.range(of: "password", options: .caseInsensitive) != nil else { return text }
        return text.replacing(/(?i)(password\s*=\s*)('(?:[^'\\]|\\.|'')*'|[^\s'"]+)/) { match in "\(match.output.1)***" }
    }

    static func maskURIs(_ text: String) -> String {
        guard text.contains("://") else { return text }
        var result = ""
        var rest = Substring(text)
        while let scheme = rest.range(of: "://") {
            result += rest[..<scheme.upperBound]
            rest = rest[scheme.upperBound...]
            let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == " " || $0 == "\"" || $0 == "'" || $0 == "\n" }) ?? rest.endIndex
            let authority = rest[..<authorityEnd]
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                result += authority[..<colon] + ":***" + authority[at...]
            } else {
                result += authority
            }
            rest = rest[authorityEnd...]
        }
        return result + rest
    }
}
