/// Hides the password of any `scheme://user:password@host`, and any libpq
/// style `password=…` key/value, in a message, so a DSN never reaches a log
/// or an error in clear.
public enum SecretMasking {
    public static func mask(_ text: String) -> String {
        maskURIs(maskKeyValues(text))
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
