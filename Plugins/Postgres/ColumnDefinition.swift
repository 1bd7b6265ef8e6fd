import FerryPluginKit

/// One `create_table` entry, "name type [constraints]", checked to be a single
/// column definition before it is spliced into CREATE TABLE: the name is
/// quoted as an identifier, and the rest may not end the statement or the
/// column list, hide text in a comment, or open a dollar quote. What it refuses:
/// `;`, `--`, `/*`, `$`, `\`, a `)` that closes more than it opened, an
/// unclosed `(` or quote.
enum ColumnDefinition {
    /// The SQL for `definition`, or a config error naming entry `index`.
    static func sql(_ definition: String, index: Int) throws -> String {
        func refuse(_ why: String) -> PluginError {
            PluginError.config("postgres: field 'create_table'[\(index)]: \(why); give one column definition, \"name type\"")
        }
        let trimmed = definition.trimmingPrefixSpaces()
        guard let space = trimmed.firstIndex(of: " ") else { throw refuse("'\(definition)' is not \"name type\"") }
        let name = String(trimmed[..<space])
        let rest = trimmed[trimmed.index(after: space)...]
        var depth = 0
        var quote: Character?
        var previous: Character = " "
        for character in rest {
            // Anywhere, quoted or not: E'\'' and backslash escapes would move where a quote ends.
            if character == "\\" { throw refuse("'\\' is not accepted") }
            if let open = quote {
                if character == open { quote = nil }
                previous = character
                continue
            }
            switch character {
            case ";": throw refuse("a ';' would end the statement")
            case "$": throw refuse("'$' (a dollar quote) is not accepted")
            case "'", "\"": quote = character
            case "(": depth += 1
            case ")":
                depth -= 1
                if depth < 0 { throw refuse("a ')' closes more than it opened") }
            case "-" where previous == "-", "*" where previous == "/":
                throw refuse("comments ('--', '/*') are not accepted")
            default: break
            }
            previous = character
        }
        if quote != nil { throw refuse("a quote is not closed") }
        if depth != 0 { throw refuse("a '(' is not closed") }
        return SQL.ident(name) + " " + rest
    }
}
