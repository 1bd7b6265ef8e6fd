import FerryPluginKit

/// The text forms of a value: its canonical text (what `cast … to string` and
/// templates produce), its type's name and a short form for reasons.
extension BSONValue {
    /// Strings as they are; integers in decimal; doubles in Swift's shortest
    /// round-trip form (`12.5`, `12.0`, `1e+16`); decimals as libbson writes them;
    /// bools as `true`/`false`; dates as ISO-8601 UTC with milliseconds; ObjectIds
    /// as 24 lowercase hex digits. Nil for types without a text form, or a date
    /// outside years 0000–9999.
    var canonicalText: String? {
        switch self {
        case .string(let string): string
        case .int32(let value): String(value)
        case .int64(let value): String(value)
        case .double(let value): value.description
        case .decimal128(let bytes): Decimal128.text(bytes)
        case .bool(let value): value ? "true" : "false"
        case .datetime(let milliseconds): ISO8601.format(milliseconds)
        case .objectId(let bytes): Self.hex(bytes)
        default: nil
        }
    }

    /// The value as a reason shows it: strings quoted (long ones cut short),
    /// scalars as text, containers by their type.
    var reasonText: String {
        switch self {
        case .string(let string):
            var quoted = ""
            let limit = 60
            JSONValue.writeString(string.count > limit ? String(string.prefix(limit)) + "…" : string, to: &quoted)
            return quoted
        case .datetime(let milliseconds):
            return ISO8601.format(milliseconds) ?? "date \(milliseconds) ms"
        case .null:
            return "null"
        default:
            return canonicalText ?? typeName.withArticle
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    static func hex(_ bytes: [UInt8]) -> String {
        var digits: [UInt8] = []
        digits.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            digits.append(hexDigits[Int(byte >> 4)])
            digits.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: digits, as: UTF8.self)
    }
}

extension String {
    /// "an int32", "a string": for "'a' is a string, not a document".
    var withArticle: String {
        (first.map { "aeiouAEIOU".contains($0) } ?? false ? "an " : "a ") + self
    }
}
