import FerryPluginKit

/// Compares two records field by field and says what differs, in words.
/// Numbers compare by value across int32, int64 and double, so a test can
/// write `stock: 3` whatever integer width the transform produced.
enum RecordDiff {
    static func compare(expected: BSONDocument, actual: BSONDocument, path: String) -> [String] {
        var differences: [String] = []
        for (key, wanted) in expected.fields {
            let fieldPath = "\(path): field '\(key)'"
            guard let got = actual[key] else {
                differences.append("\(fieldPath): expected \(render(wanted)), missing")
                continue
            }
            differences += compare(wanted, got, fieldPath)
        }
        for (key, got) in actual.fields where expected[key] == nil {
            differences.append("\(path): field '\(key)': not expected, got \(render(got))")
        }
        return differences
    }

    static func compare(_ wanted: BSONValue, _ got: BSONValue, _ path: String) -> [String] {
        if let a = wanted.numberAsDouble, let b = got.numberAsDouble {
            return a == b ? [] : ["\(path): expected \(render(wanted)), got \(render(got))"]
        }
        switch (wanted, got) {
        case (.document(let a), .document(let b)):
            return compare(expected: a, actual: b, path: path)
        case (.array(let a), .array(let b)):
            if a.count != b.count { return ["\(path): expected \(a.count) elements, got \(b.count): \(render(got))"] }
            return zip(a, b).enumerated().flatMap { compare($1.0, $1.1, "\(path)[\($0)]") }
        default:
            return wanted == got ? [] : ["\(path): expected \(render(wanted)), got \(render(got))"]
        }
    }

    /// A value as extended JSON with its BSON type, e.g. `"12.5" (string)`.
    static func render(_ value: BSONValue) -> String {
        let document = BSONDocument([("v", value)])
        let bytes = document.encoded()
        let json = bytes.withUnsafeBytes { ExtendedJSON.render(DocumentView($0)) } ?? "?"
        // Strip the wrapper `{ "v" : … }` added to render a lone value.
        var text = json
        if text.hasPrefix("{ \"v\" : "), text.hasSuffix(" }") { text = String(text.dropFirst(8).dropLast(2)) }
        return "\(text) (\(value.typeName))"
    }
}
