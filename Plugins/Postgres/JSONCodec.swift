import FerryPluginKit

/// json/jsonb text ⇄ BSON values. Plain JSON only: `{"$oid": …}` stays a
/// document with a `$oid` key (extended JSON would silently change it).
/// Numbers keep their exact text: integers become int32/int64, a fraction
/// becomes a double when the double prints back identically, else decimal128.
struct JSONToBSON {
    let bytes: UnsafeRawBufferPointer
    var index = 0

    struct Failure: Error { let message: String }

    static func append(_ key: String, json: UnsafeRawBufferPointer, to writer: inout DocumentWriter) throws {
        var parser = JSONToBSON(bytes: json)
        parser.skipSpace()
        try parser.value(key, &writer)
        parser.skipSpace()
        guard parser.index == json.count else { throw Failure(message: "trailing characters in JSON at byte \(parser.index)") }
    }

    mutating func skipSpace() {
        while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 {
            index += 1
        }
    }

    mutating func expect(_ byte: UInt8) throws {
        skipSpace()
        guard index < bytes.count, bytes[index] == byte else {
            throw Failure(message: "expected '\(Character(Unicode.Scalar(byte)))' in JSON at byte \(index)")
        }
        index += 1
    }

    mutating func value(_ key: String, _ writer: inout DocumentWriter) throws {
        skipSpace()
        guard index < bytes.count else { throw Failure(message: "unexpected end of JSON") }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            index += 1
            try writer.appendDocument(key) { nested in
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return }
                while true {
                    skipSpace()
                    let name = try string()
                    try expect(UInt8(ascii: ":"))
                    try value(name, &nested)
                    skipSpace()
                    guard index < bytes.count else { throw Failure(message: "unterminated JSON object") }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    if bytes[index] == UInt8(ascii: "}") { index += 1; return }
                    throw Failure(message: "expected ',' or '}' in JSON at byte \(index)")
                }
            }
        case UInt8(ascii: "["):
            index += 1
            try writer.appendArray(key) { nested in
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return }
                while true {
                    try value(nested.nextKey(), &nested)
                    skipSpace()
                    guard index < bytes.count else { throw Failure(message: "unterminated JSON array") }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    if bytes[index] == UInt8(ascii: "]") { index += 1; return }
                    throw Failure(message: "expected ',' or ']' in JSON at byte \(index)")
                }
            }
        case UInt8(ascii: "\""):
            writer.append(key, try string())
        case UInt8(ascii: "t"):
            try literal("true")
            writer.append(key, true)
        case UInt8(ascii: "f"):
            try literal("false")
            writer.append(key, false)
        case UInt8(ascii: "n"):
            try literal("null")
            writer.appendNull(key)
        default:
            try number(key, &writer)
        }
    }

    mutating func literal(_ word: String) throws {
        for byte in word.utf8 {
            guard index < bytes.count, bytes[index] == byte else { throw Failure(message: "invalid JSON literal at byte \(index)") }
            index += 1
        }
    }

    mutating func number(_ key: String, _ writer: inout DocumentWriter) throws {
        let start = index
        var isInteger = true
        while index < bytes.count {
            let byte = bytes[index]
            if (byte >= 0x30 && byte <= 0x39) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+") {
                index += 1
            } else if byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
                isInteger = false
                index += 1
            } else {
                break
            }
        }
        guard index > start else { throw Failure(message: "invalid JSON value at byte \(start)") }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        if isInteger, let integer = Int64(text) {
            if let small = Int32(exactly: integer) { writer.append(key, small) } else { writer.append(key, integer) }
            return
        }
        if let double = Double(text), "\(double)" == text {
            writer.append(key, double)
            return
        }
        guard let decimal = UnsafeRawBufferPointer(rebasing: bytes[start..<index]).withMemoryRebound(to: UInt8.self, { Decimal128Codec.encode(UnsafeRawBufferPointer($0)) }) else {
            throw Failure(message: "JSON number '\(text)' has more than 34 significant digits")
        }
        writer.append(key, BSONValue.decimal128(Decimal128Codec.bytes(decimal)))
    }

    mutating func string() throws -> String {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw Failure(message: "expected a JSON string at byte \(index)") }
        index += 1
        var out: [UInt8] = []
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if byte == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
            if byte != UInt8(ascii: "\\") { out.append(byte); continue }
            guard index < bytes.count else { break }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if scalar >= 0xD800 && scalar < 0xDC00, index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                    index += 2
                    let lowSurrogate = try hex4()
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (lowSurrogate - 0xDC00)
                }
                out.append(contentsOf: String(Character(Unicode.Scalar(scalar) ?? "\u{FFFD}")).utf8)
            default: out.append(escape)
            }
        }
        throw Failure(message: "unterminated JSON string")
    }

    mutating func hex4() throws -> UInt32 {
        guard index + 4 <= bytes.count else { throw Failure(message: "short \\u escape in JSON") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            index += 1
            let digit: UInt32
            switch byte {
            case 0x30...0x39: digit = UInt32(byte - 0x30)
            case 0x61...0x66: digit = UInt32(byte - 0x61 + 10)
            case 0x41...0x46: digit = UInt32(byte - 0x41 + 10)
            default: throw Failure(message: "bad \\u escape in JSON")
            }
            value = value * 16 + digit
        }
        return value
    }
}

/// BSON values to JSON text for json/jsonb columns.
enum BSONToJSON {
    struct Failure: Error { let message: String }

    static func write(_ element: BSONElement, to out: inout [UInt8]) throws {
        switch element.type {
        case .document?:
            out.append(UInt8(ascii: "{"))
            var first = true
            for field in element.documentValue! {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                writeString(field.keyBytes, to: &out)
                out.append(UInt8(ascii: ":"))
                try write(field, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        case .array?:
            out.append(UInt8(ascii: "["))
            var first = true
            for item in element.documentValue! {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                try write(item, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .string?: writeString(element.stringBytes!, to: &out)
        case .int32?, .int64?: out.append(contentsOf: String(element.int64Value!).utf8)
        case .double?:
            let value = element.doubleValue!
            guard value.isFinite else { throw Failure(message: "\(value) has no JSON form") }
            out.append(contentsOf: "\(value)".utf8)
        case .decimal128?:
            let text = Decimal128Codec.text(element.value)
            guard !text.hasSuffix("Infinity"), text != "NaN" else { throw Failure(message: "\(text) has no JSON form") }
            out.append(contentsOf: text.utf8)
        case .bool?: out.append(contentsOf: (element.boolValue! ? "true" : "false").utf8)
        case .null?: out.append(contentsOf: "null".utf8)
        case .datetime?:
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: Timestamps.iso(milliseconds: element.int64Value!).utf8)
            out.append(UInt8(ascii: "\""))
        case .objectId?:
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: Hex.string(element.value).utf8)
            out.append(UInt8(ascii: "\""))
        case .binary? where element.value[4] == 4 && element.value.count == 21:
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: UUIDText.string(UnsafeRawBufferPointer(rebasing: element.value[5...])).utf8)
            out.append(UInt8(ascii: "\""))
        default:
            throw Failure(message: "BSON type 0x\(String(element.typeByte, radix: 16)) has no JSON form")
        }
    }

    static func writeString(_ utf8: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 15)]])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

enum Hex {
    static let digits = Array("0123456789abcdef".utf8)

    static func string(_ bytes: UnsafeRawBufferPointer) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func value(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x61...0x66: byte - 0x61 + 10
        case 0x41...0x46: byte - 0x41 + 10
        default: nil
        }
    }
}

enum UUIDText {
    /// 8-4-4-4-12 lower-case hex.
    static func string(_ bytes: UnsafeRawBufferPointer) -> String {
        let hex = Array(Hex.string(bytes).utf8)
        var out: [UInt8] = []
        for (index, byte) in hex.enumerated() {
            if index == 8 || index == 12 || index == 16 || index == 20 { out.append(UInt8(ascii: "-")) }
            out.append(byte)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// 16 bytes from hex text, dashes and braces ignored.
    static func bytes(_ text: UnsafeRawBufferPointer) -> [UInt8]? {
        var out: [UInt8] = []
        var high: UInt8?
        for byte in text {
            if byte == UInt8(ascii: "-") || byte == UInt8(ascii: "{") || byte == UInt8(ascii: "}") { continue }
            guard let value = Hex.value(byte) else { return nil }
            if let h = high { out.append(h << 4 | value); high = nil } else { high = value }
        }
        return out.count == 16 && high == nil ? out : nil
    }
}
