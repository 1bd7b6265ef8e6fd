import FerryPluginKit

/// A text with `{path}` placeholders (`"{first_name} {last_name}"`), parsed
/// once at open. `{{` and `}}` stand for literal braces.
struct FieldTemplate: Sendable {
    enum Part: Equatable, Sendable {
        case literal(String)
        case field(FieldPath)
    }

    let parts: [Part]

    /// - Throws: a message naming the character position (from 1) of an
    ///   unterminated or empty placeholder, a bad path or a lone `}`.
    init(parsing text: String) throws(ValueError) {
        var parts: [Part] = []
        var literal = ""
        var characters = Array(text)[...]
        var position = 0
        func next() -> Character? {
            guard let character = characters.popFirst() else { return nil }
            position += 1
            return character
        }
        while let character = next() {
            switch character {
            case "{" where characters.first == "{":
                _ = next()
                literal.append("{")
            case "{":
                let start = position
                var name = ""
                var closed = false
                while let inner = next() {
                    if inner == "}" {
                        closed = true
                        break
                    }
                    guard inner != "{" else {
                        throw ValueError("placeholder at character \(start) contains '{'; write '{{' for a literal brace")
                    }
                    name.append(inner)
                }
                guard closed else {
                    throw ValueError("unterminated placeholder '{\(name)' at character \(start); write '{{' for a literal brace")
                }
                guard let path = FieldPath(name) else {
                    throw ValueError("placeholder '{\(name)}' at character \(start) is not a field path")
                }
                if !literal.isEmpty { parts.append(.literal(literal)); literal = "" }
                parts.append(.field(path))
            case "}" where characters.first == "}":
                _ = next()
                literal.append("}")
            case "}":
                throw ValueError("lone '}' at character \(position); write '}}' for a literal brace")
            default:
                literal.append(character)
            }
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        self.parts = parts
    }

    /// The text for one record: each placeholder replaced by the canonical text
    /// of its value (`BSONValue.canonicalText`); missing and null give "".
    ///
    /// - Throws: `ValueError` when a placeholder's value has no text form
    ///   (a document, an array, binary data…).
    func render(_ document: BSONDocument) throws(ValueError) -> String {
        var text = ""
        for part in parts {
            switch part {
            case .literal(let literal):
                text += literal
            case .field(let path):
                guard let value = document.value(at: path), value != .null else { continue }
                guard let valueText = value.canonicalText else {
                    throw ValueError("placeholder {\(path)} is \(value.typeName.withArticle), which has no text form")
                }
                text += valueText
            }
        }
        return text
    }
}
