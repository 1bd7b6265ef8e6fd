import FerryPluginKit
import Foundation

/// What became of one value on one path: the same value and type, a
/// conversion (labelled), a dead letter, a loud run failure, or a change.
enum FidelityOutcome: Equatable {
    case kept
    case converted(String)
    case refused(String)
    case runFailed(String)
    case altered(String)
}

/// Compares a value as sent with the value read back, at the BSON level
/// (doubles by bits, decimal128 by value, documents field by field).
enum FidelityJudge {
    /// Exact sameness: type and value; NaN is NaN, -0.0 is not 0.0.
    static func same(_ a: BSONValue, _ b: BSONValue) -> Bool {
        switch (a, b) {
        case (.double(let x), .double(let y)): return x.isNaN ? y.isNaN : x.bitPattern == y.bitPattern
        case (.decimal128(let x), .decimal128(let y)): return x == y
        case (.document(let x), .document(let y)):
            return x.fields.count == y.fields.count && zip(x.fields, y.fields).allSatisfy { $0.key == $1.key && same($0.value, $1.value) }
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
        default: return a == b
        }
    }

    static func typeName(_ value: BSONValue) -> String {
        switch value {
        case .double: "double"
        case .string: "string"
        case .document: "document"
        case .array: "array"
        case .binary(let subtype, _): "binary(\(subtype))"
        case .objectId: "ObjectId"
        case .bool: "bool"
        case .datetime: "datetime"
        case .null: "null"
        case .regex: "regex"
        case .int32: "int32"
        case .timestamp: "timestamp"
        case .int64: "int64"
        case .decimal128: "decimal128"
        case .minKey: "minKey"
        case .maxKey: "maxKey"
        case .raw(let type, _): "type 0x\(String(type, radix: 16))"
        }
    }

    /// Extended JSON of one value, for messages.
    static func show(_ value: BSONValue?) -> String {
        guard let value else { return "(missing)" }
        let text = BSONDocument([("v", value)]).encoded().withUnsafeBytes { ExtendedJSON.render(DocumentView($0), canonical: true) } ?? "?"
        return String(text.dropFirst(8).dropLast(2))
    }

    /// A number as sign, significant digits and exponent ("-|123|-2" is -1.23),
    /// so an int, a double and a decimal128 of one value compare equal; -0 keeps its sign.
    static func numberKey(_ value: BSONValue) -> String? {
        switch value {
        case .int32(let v): return decimalKey(String(v))
        case .int64(let v): return decimalKey(String(v))
        case .double(let v): return v.isNaN ? "NaN" : v.isInfinite ? (v < 0 ? "-Inf" : "Inf") : decimalKey("\(v)")
        case .decimal128:
            let text = show(value)
            guard let start = text.range(of: "\"$numberDecimal\" : \"")?.upperBound else { return nil }
            let body = String(text[start...].prefix { $0 != "\"" })
            switch body.lowercased() {
            case "nan", "-nan": return "NaN"
            case "inf", "infinity": return "Inf"
            case "-inf", "-infinity": return "-Inf"
            default: return decimalKey(body)
            }
        default: return nil
        }
    }

    /// Decimal text (integer, fraction, exponent) to its canonical key.
    static func decimalKey(_ text: String) -> String? {
        var chars = Substring(text.lowercased())
        var negative = false
        if chars.first == "-" || chars.first == "+" { negative = chars.first == "-"; chars = chars.dropFirst() }
        switch chars {
        case "nan": return "NaN"
        case "inf", "infinity": return negative ? "-Inf" : "Inf"
        default: break
        }
        var exponent = 0
        if let e = chars.firstIndex(of: "e") {
            guard let value = Int(chars[chars.index(after: e)...]) else { return nil }
            exponent = value
            chars = chars[..<e]
        }
        var digits = ""
        var seenPoint = false
        for character in chars {
            if character == "." { seenPoint = true; continue }
            guard character.isASCII, character.isNumber else { return nil }
            digits.append(character)
            if seenPoint { exponent -= 1 }
        }
        while digits.first == "0" { digits.removeFirst() }
        while digits.last == "0" { digits.removeLast(); exponent += 1 }
        if digits.isEmpty { return negative ? "-0" : "0" }
        return "\(negative ? "-" : "")|\(digits)|\(exponent)"
    }

    /// ISO-8601 UTC text of a BSON date, as a JSON or text column would hold it.
    static func iso(milliseconds: Int64) -> [String] {
        let days = milliseconds >= 0 ? milliseconds / 86_400_000 : (milliseconds - 86_399_999) / 86_400_000
        let rest = milliseconds - days * 86_400_000
        let (year, month, day) = civil(days)
        let seconds = rest / 1000, millis = rest % 1000
        func pad(_ v: Int64, _ n: Int) -> String { String(repeating: "0", count: max(0, n - String(v).count)) + String(v) }
        let base = "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(seconds / 3600, 2)):\(pad(seconds / 60 % 60, 2)):\(pad(seconds % 60, 2))"
        return millis == 0 ? [base + "Z", base + ".000Z"] : [base + "." + pad(millis, 3) + "Z"]
    }

    /// Days since 1970-01-01 to a proleptic Gregorian date.
    static func civil(_ days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// A signed zero: double -0.0 or decimal128 -0 (with any exponent).
    static func isNegativeZero(_ value: BSONValue) -> Bool {
        switch value {
        case .double(let v): return v == 0 && v.sign == .minus
        case .decimal128: return show(value).contains("\"-0") && zeroKey(numberKey(value))
        default: return false
        }
    }

    /// A number key of zero, signed or not.
    static func zeroKey(_ key: String?) -> Bool {
        guard let key, let zero = numberKey(.int32(0)) else { return false }
        return key == zero || key == "-" + zero || key.hasPrefix("-") && decimalKey(String(key.dropFirst())) == zero
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// Text that stands for a value with no form in the target, if `text` is one.
    static func textForm(of value: BSONValue, _ text: String) -> String? {
        switch value {
        case .datetime(let ms): return iso(milliseconds: ms).contains(text) ? "→ string (ISO-8601)" : nil
        case .objectId(let bytes): return text == hex(bytes) ? "→ string (hex)" : nil
        case .binary(4, let bytes) where text.replacingOccurrences(of: "-", with: "") == hex(bytes) && text.count == 36: return "→ string (uuid text)"
        case .regex(let pattern, _): return text == pattern || text == "/\(pattern)/" ? "→ string (pattern)" : nil
        default: return nil
        }
    }

    /// Sent `a`, read back `b`: kept, a conversion that keeps the value, or altered.
    static func judge(_ a: BSONValue, _ b: BSONValue?) -> [FidelityOutcome] {
        guard let b else { return [.altered("\(show(a)) was not read back")] }
        if same(a, b) { return [.kept] }
        if isNegativeZero(a), zeroKey(numberKey(b)) { return [.converted("-0 → 0")] }
        switch (a, b) {
        case (.document(let x), .document(let y)):
            let xKeys = x.keys, yKeys = y.keys
            guard Set(xKeys) == Set(yKeys), xKeys.count == yKeys.count else { return [.altered("\(show(a)) became \(show(b))")] }
            var outcomes: [FidelityOutcome] = xKeys == yKeys ? [] : [.converted("keys reordered")]
            for key in xKeys { outcomes += judge(x[key]!, y[key]).filter { $0 != .kept } }
            return outcomes.isEmpty ? [.kept] : outcomes
        case (.array(let x), .array(let y)):
            guard x.count == y.count else { return [.altered("\(show(a)) became \(show(b))")] }
            let outcomes = zip(x, y).flatMap { judge($0, $1) }.filter { $0 != .kept }
            return outcomes.isEmpty ? [.kept] : outcomes
        case (.decimal128, .decimal128):
            // By value: 1.23E+40 read back as 1230000000000000000000000000000000E+7 is the same number.
            if let k = numberKey(a), k == numberKey(b) { return [.kept] }
        case (_, .string(let text)):
            if let label = textForm(of: a, text) { return [.converted(label)] }
        default:
            if let k = numberKey(a), k == numberKey(b) { return [.converted("→ \(typeName(b))")] }
        }
        return [.altered("\(show(a)) became \(show(b))")]
    }
}

/// Plain JSON as PostgreSQL prints a json/jsonb value: a small parser into
/// BSON values (numbers kept as decimal text, compared by value).
struct PlainJSON {
    indirect enum Value: Equatable {
        case object([(String, Value)])
        case array([Value])
        case string(String)
        case number(String)
        case bool(Bool)
        case null

        static func == (a: Value, b: Value) -> Bool {
            switch (a, b) {
            case (.object(let x), .object(let y)): return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
            case (.array(let x), .array(let y)): return x == y
            case (.string(let x), .string(let y)): return x == y
            case (.number(let x), .number(let y)): return FidelityJudge.decimalKey(x) == FidelityJudge.decimalKey(y)
            case (.bool(let x), .bool(let y)): return x == y
            case (.null, .null): return true
            default: return false
            }
        }
    }

    let bytes: [UInt8]
    var index = 0

    static func parse(_ text: String) -> Value? {
        var parser = PlainJSON(bytes: Array(text.utf8))
        guard let value = parser.value() else { return nil }
        parser.space()
        return parser.index == parser.bytes.count ? value : nil
    }

    mutating func space() { while index < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[index]) { index += 1 } }

    mutating func value() -> Value? {
        space()
        guard index < bytes.count else { return nil }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            index += 1
            var fields: [(String, Value)] = []
            space()
            if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(fields) }
            while true {
                space()
                guard let key = string() else { return nil }
                space()
                guard bytes[index] == UInt8(ascii: ":") else { return nil }
                index += 1
                guard let item = value() else { return nil }
                fields.append((key, item))
                space()
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(fields) }
                return nil
            }
        case UInt8(ascii: "["):
            index += 1
            var items: [Value] = []
            space()
            if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
            while true {
                guard let item = value() else { return nil }
                items.append(item)
                space()
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
                return nil
            }
        case UInt8(ascii: "\""): return string().map(Value.string)
        case UInt8(ascii: "t"): index += 4; return .bool(true)
        case UInt8(ascii: "f"): index += 5; return .bool(false)
        case UInt8(ascii: "n"): index += 4; return .null
        default:
            let start = index
            while index < bytes.count, "0123456789+-.eE".utf8.contains(bytes[index]) { index += 1 }
            return index > start ? .number(String(decoding: bytes[start..<index], as: UTF8.self)) : nil
        }
    }

    mutating func string() -> String? {
        guard bytes[index] == UInt8(ascii: "\"") else { return nil }
        index += 1
        var out: [UInt8] = []
        var pendingHigh: UInt32?
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if byte == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
            guard byte == UInt8(ascii: "\\") else { out.append(byte); continue }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "u"):
                guard let scalar = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16) else { return nil }
                index += 4
                if (0xD800..<0xDC00).contains(scalar) { pendingHigh = scalar; continue }
                var code = scalar
                if let high = pendingHigh { code = 0x10000 + ((high - 0xD800) << 10) + (scalar - 0xDC00); pendingHigh = nil }
                out.append(contentsOf: String(Character(Unicode.Scalar(code) ?? "\u{FFFD}")).utf8)
            default: out.append(escape)
            }
        }
        return nil
    }

    /// The JSON a BSON value should become in a json/jsonb column, or nil
    /// when JSON has no form for it (NaN, dates, binary, regex…).
    static func image(of value: BSONValue) -> Value? {
        switch value {
        case .document(let document):
            var fields: [(String, Value)] = []
            for (key, item) in document.fields {
                guard let image = image(of: item) else { return nil }
                fields.append((key, image))
            }
            return .object(fields)
        case .array(let items):
            var images: [Value] = []
            for item in items {
                guard let image = image(of: item) else { return nil }
                images.append(image)
            }
            return .array(images)
        case .string(let text): return .string(text)
        case .bool(let flag): return .bool(flag)
        case .null: return .null
        case .int32, .int64, .double, .decimal128:
            guard let key = FidelityJudge.numberKey(value), !["NaN", "Inf", "-Inf"].contains(key) else { return nil }
            switch value {
            case .int32(let v): return .number(String(v))
            case .int64(let v): return .number(String(v))
            case .double(let v): return .number("\(v)")
            default:
                let text = FidelityJudge.show(value)
                let start = text.range(of: "\"$numberDecimal\" : \"")!.upperBound
                return .number(String(text[start...].prefix { $0 != "\"" }))
            }
        default: return nil
        }
    }

    /// Sent `a` into a json/jsonb column, PostgreSQL holds `b`.
    static func judge(_ a: BSONValue, _ b: Value) -> [FidelityOutcome] {
        if let image = image(of: a) {
            if image == b { return [.kept] }
            if case .object(let x) = image, case .object(let y) = b, x.count == y.count {
                let sorted = { (fields: [(String, Value)]) in fields.sorted { $0.0 < $1.0 } }
                if zip(sorted(x), sorted(y)).allSatisfy({ $0.0 == $1.0 && $0.1 == $1.1 }) {
                    if case .document(let document) = a, document.fields.count > 1 { return [.converted("keys reordered")] }
                }
            }
            if case .number(let x) = image, case .number(let y) = b, FidelityJudge.decimalKey(x) == FidelityJudge.decimalKey(y) {
                return [.kept]
            }
            if case .number(let y) = b, FidelityJudge.isNegativeZero(a), FidelityJudge.zeroKey(FidelityJudge.decimalKey(y)) {
                return [.converted("-0 → 0")]
            }
            if case .document(let document) = a, case .object(let y) = b {
                // Look inside: the change is in one of the fields.
                var outcomes: [FidelityOutcome] = []
                let stored = Dictionary(y, uniquingKeysWith: { first, _ in first })
                for (key, item) in document.fields {
                    guard let got = stored[key] else { return [.altered("\(FidelityJudge.show(a)) lost field '\(key)' in JSON")] }
                    outcomes += judge(item, got).filter { $0 != .kept }
                }
                if outcomes.isEmpty { outcomes = [.converted("keys reordered")] }
                return outcomes
            }
            if case .array(let items) = a, case .array(let y) = b, items.count == y.count {
                let outcomes = zip(items, y).flatMap { judge($0, $1) }.filter { $0 != .kept }
                return outcomes.isEmpty ? [.kept] : outcomes
            }
            return [.altered("\(FidelityJudge.show(a)) stored as JSON \(describe(b))")]
        }
        if case .string(let text) = b, let label = FidelityJudge.textForm(of: a, text) { return [.converted(label)] }
        return [.altered("\(FidelityJudge.show(a)) stored as JSON \(describe(b))")]
    }

    static func describe(_ value: Value) -> String {
        switch value {
        case .object(let fields): return "{" + fields.map { "\"\($0.0)\": \(describe($0.1))" }.joined(separator: ", ") + "}"
        case .array(let items): return "[" + items.map(describe).joined(separator: ", ") + "]"
        case .string(let text): return "\"\(text)\""
        case .number(let text): return text
        case .bool(let flag): return flag ? "true" : "false"
        case .null: return "null"
        }
    }
}
