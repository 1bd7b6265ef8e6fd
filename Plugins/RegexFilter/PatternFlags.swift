import CPCRE2

/// The compile flags a rule may set, each defaulting to the plugin-level key
/// of the same name.
struct PatternFlags: Equatable {
    /// PCRE2_CASELESS: with `utf`, case folding covers all of Unicode (`ÉCOLE` ~ `école`).
    var caseInsensitive = false
    /// PCRE2_UTF with PCRE2_MATCH_INVALID_UTF: patterns and subjects are UTF-8
    /// code points; invalid UTF-8 in a record never matches across the bad bytes
    /// and is never an error. Off: bytes.
    var utf = true
    /// PCRE2_UCP: `\w`, `\d`, `\s`, `\b` and POSIX classes use Unicode properties.
    var ucp = true
    /// PCRE2_ANCHORED: the match must start at the first character.
    var anchored = false

    static let keys = ["case_insensitive", "utf", "ucp", "anchored"]

    var compileOptions: UInt32 {
        var options: UInt32 = 0
        if caseInsensitive { options |= PCRE2_CASELESS }
        if utf { options |= PCRE2_UTF | PCRE2_MATCH_INVALID_UTF }
        if ucp { options |= PCRE2_UCP }
        if anchored { options |= PCRE2_ANCHORED }
        return options
    }

    /// The flags that differ from none, for messages: `/x/iu`.
    var suffix: String {
        (caseInsensitive ? "i" : "") + (utf ? "u" : "") + (ucp ? "p" : "") + (anchored ? "A" : "")
    }
}
