import FerryPluginKit

/// The types `cast` converts to, and the conversion rules. `integer` means
/// int64; `date` means a BSON datetime (UTC milliseconds).
enum CastTarget: String, CaseIterable, Sendable {
    case string, integer, double, decimal, bool, date

    /// `value` converted; null stays null.
    ///
    /// - Throws: `ValueError` naming the value when it cannot be converted, or
    ///   when its type has no rule for this target.
    func convert(_ value: BSONValue) throws(ValueError) -> BSONValue {
        if value == .null { return .null }
        let converted: BSONValue?
        switch self {
        case .string: converted = try toString(value)
        case .integer: converted = try toInteger(value)
        case .double: converted = try toDouble(value)
        case .decimal: converted = try toDecimal(value)
        case .bool: converted = try toBool(value)
        case .date: converted = try toDate(value)
        }
        guard let converted else { throw ValueError("\(value.typeName.withArticle) cannot be cast to \(rawValue)") }
        return converted
    }

    private func toString(_ value: BSONValue) throws(ValueError) -> BSONValue? {
        switch value {
        case .string, .int32, .int64, .double, .decimal128, .bool, .objectId:
            return value.canonicalText.map(BSONValue.string)
        case .datetime(let milliseconds):
            guard let text = ISO8601.format(milliseconds) else {
                throw ValueError("date \(milliseconds) ms is outside years 0000-9999")
            }
            return .string(text)
        default:
            return nil
        }
    }

    private func toInteger(_ value: BSONValue) throws(ValueError) -> BSONValue? {
        switch value {
        case .int32(let number): return .int64(Int64(number))
        case .int64: return value
        case .datetime(let milliseconds): return .int64(milliseconds)
        case .double(let number):
            guard number.isFinite, number.rounded(.towardZero) == number else {
                throw ValueError("\(value.reasonText) is not a whole number")
            }
            guard let integer = Int64(exactly: number) else { throw ValueError("\(value.reasonText) is out of the 64-bit integer range") }
            return .int64(integer)
        case .string(let string):
            let text = trimmed(string)
            if let integer = Int64(text) { return .int64(integer) }
            let unsigned = text.first == "-" || text.first == "+" ? text.dropFirst() : text
            if !unsigned.isEmpty, unsigned.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
                throw ValueError("\(value.reasonText) is out of the 64-bit integer range")
            }
            throw ValueError("\(value.reasonText) is not an integer")
        case .decimal128(let bytes):
            guard let integer = Decimal128.integer(bytes) else {
                throw ValueError("\(value.reasonText) is not a whole number within the 64-bit integer range")
            }
            return .int64(integer)
        default:
            return nil
        }
    }

    private func toDouble(_ value: BSONValue) throws(ValueError) -> BSONValue? {
        switch value {
        case .double: return value
        case .int32(let number): return .double(Double(number))
        case .int64(let number):
            guard let double = Double(exactly: number) else { throw ValueError("\(number) has no exact double") }
            return .double(double)
        case .string(let string):
            let text = trimmed(string)
            guard NumberSyntax.isDecimalNumber(text), let double = Double(text) else {
                throw ValueError("\(value.reasonText) is not a number")
            }
            guard double.isFinite else { throw ValueError("\(value.reasonText) is out of the double range") }
            return .double(double)
        case .decimal128(let bytes):
            guard Decimal128.isFinite(bytes), let double = Double(Decimal128.text(bytes)), double.isFinite else {
                throw ValueError("\(value.reasonText) is not a finite double")
            }
            return .double(double)
        default:
            return nil
        }
    }

    private func toDecimal(_ value: BSONValue) throws(ValueError) -> BSONValue? {
        let text: String
        switch value {
        case .decimal128: return value
        case .int32(let number): text = String(number)
        case .int64(let number): text = String(number)
        case .double(let number):
            guard number.isFinite else { throw ValueError("\(value.reasonText) is not a finite number") }
            // The shortest text that reads back as the same double: 0.1 becomes 0.1, not 0.1000000000000000055…
            text = number.description
        case .string(let string):
            let candidate = trimmed(string)
            guard NumberSyntax.isDecimalNumber(candidate) else { throw ValueError("\(value.reasonText) is not a number") }
            text = String(candidate)
        default:
            return nil
        }
        guard let bytes = Decimal128.parse(text) else {
            throw ValueError("\(value.reasonText) does not fit decimal128 (at most 34 significant digits)")
        }
        return .decimal128(bytes)
    }

    private func toBool(_ value: BSONValue) throws(ValueError) -> BSONValue? {
        switch value {
        case .bool: return value
        case .string(let string):
            switch trimmed(string).lowercased() {
            case "true", "1", "yes": return .bool(true)
            case "false", "0", "no": return .bool(false)
            default: throw ValueError("\(value.reasonText) is not a boolean (true/false, 1/0, yes/no)")
            }
        case .int32(let number) where number == 0 || number == 1: return .bool(number == 1)
        case .int64(let number) where number == 0 || number == 1: return .bool(number == 1)
        case .int32, .int64: throw ValueError("\(value.reasonText) is not a boolean (only 1 and 0 are)")
        default: return nil
        }
    }

    private func toDate(_ value: BSONValue) throws(ValueError) -> BSONValue? {
        switch value {
        case .datetime: return value
        case .int32(let milliseconds): return .datetime(Int64(milliseconds))
        case .int64(let milliseconds): return .datetime(milliseconds)
        case .string(let string):
            guard let milliseconds = ISO8601.parse(trimmed(string)) else {
                throw ValueError("\(value.reasonText) is not an ISO-8601 date-time such as 2026-11-25T10:00:00Z")
            }
            return .datetime(milliseconds)
        default:
            return nil
        }
    }

    /// Surrounding spaces, tabs and newlines are not part of a value (CSV cells, hand-typed input).
    private func trimmed(_ string: String) -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let start = string.firstIndex(where: { !isSpace($0) }) else { return string[string.endIndex...] }
        let end = string.lastIndex(where: { !isSpace($0) })!
        return string[start...end]
    }
}
