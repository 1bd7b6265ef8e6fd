/// numeric ⇄ BSON decimal128 without going through a float: the decimal
/// digits become the 113-bit coefficient and the exponent, exactly
/// (IEEE 754-2008 BID encoding, 16 little-endian bytes: low word, high word).
enum Decimal128Codec {
    static let exponentBias = 6176
    static let maxDigits = 34
    static let maxCoefficient: UInt128 = 9_999_999_999_999_999_999_999_999_999_999

    /// The encoding of a decimal text (`-12.50`, `1E+3`, `NaN`, `Infinity`),
    /// or nil when it has more than 34 significant digits or is not a number.
    static func encode(_ text: UnsafeRawBufferPointer) -> (low: UInt64, high: UInt64)? {
        var index = 0
        var negative = false
        if index < text.count, text[index] == UInt8(ascii: "-") || text[index] == UInt8(ascii: "+") {
            negative = text[index] == UInt8(ascii: "-")
            index += 1
        }
        if index < text.count, text[index] > 0x39 {
            let rest = UnsafeRawBufferPointer(rebasing: text[index...])
            if rest.elementsEqual("NaN".utf8) { return (0, 0x7C00_0000_0000_0000) }
            if rest.elementsEqual("Infinity".utf8) || rest.elementsEqual("inf".utf8) {
                return (0, (negative ? 0x8000_0000_0000_0000 : 0) | 0x7800_0000_0000_0000)
            }
            return nil
        }
        var coefficient: UInt128 = 0
        var digits = 0
        var exponent = 0
        var sawDigit = false
        var afterPoint = false
        while index < text.count {
            let byte = text[index]
            if byte >= 0x30 && byte <= 0x39 {
                sawDigit = true
                if afterPoint { exponent -= 1 }
                if coefficient == 0 && byte == 0x30 {
                    // Leading zeros are not significant.
                } else {
                    digits += 1
                    if digits > maxDigits { return nil }
                    coefficient = coefficient * 10 + UInt128(byte - 0x30)
                }
            } else if byte == UInt8(ascii: ".") && !afterPoint {
                afterPoint = true
            } else if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
                index += 1
                var exponentNegative = false
                if index < text.count, text[index] == UInt8(ascii: "-") || text[index] == UInt8(ascii: "+") {
                    exponentNegative = text[index] == UInt8(ascii: "-")
                    index += 1
                }
                var value = 0
                var any = false
                while index < text.count, text[index] >= 0x30, text[index] <= 0x39 {
                    value = value * 10 + Int(text[index] - 0x30)
                    if value > 100_000 { return nil }
                    any = true
                    index += 1
                }
                guard any, index == text.count else { return nil }
                exponent += exponentNegative ? -value : value
                break
            } else {
                return nil
            }
            index += 1
        }
        guard sawDigit else { return nil }
        guard exponent >= -exponentBias, exponent <= 6111 else { return nil }
        let biased = UInt64(exponent + exponentBias)
        let high = (negative ? 0x8000_0000_0000_0000 : 0) | (biased << 49) | UInt64(truncatingIfNeeded: coefficient >> 64)
        return (UInt64(truncatingIfNeeded: coefficient), high)
    }

    static func bytes(_ value: (low: UInt64, high: UInt64)) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: 16)
        withUnsafeBytes(of: value.low.littleEndian) { for i in 0..<8 { result[i] = $0[i] } }
        withUnsafeBytes(of: value.high.littleEndian) { for i in 0..<8 { result[8 + i] = $0[i] } }
        return result
    }

    /// The sign, exponent and coefficient of 16 encoded bytes, or the text of a special value.
    private static func parts(_ value: UnsafeRawBufferPointer) -> (negative: Bool, exponent: Int, coefficient: UInt128, special: String?) {
        let low = UInt64(littleEndian: value.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        let high = UInt64(littleEndian: value.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        let negative = high & 0x8000_0000_0000_0000 != 0
        if (high >> 61) & 3 == 3 {
            let special = (high >> 58) & 0x1F
            if special == 0x1F { return (negative, 0, 0, "NaN") }
            if special == 0x1E { return (negative, 0, 0, negative ? "-Infinity" : "Infinity") }
            // The large-coefficient form is never canonical (> 10^34 - 1): the value is zero.
            return (negative, Int((high >> 47) & 0x3FFF) - exponentBias, 0, nil)
        }
        var coefficient = (UInt128(high & 0x1_FFFF_FFFF_FFFF) << 64) | UInt128(low)
        if coefficient > maxCoefficient { coefficient = 0 }
        return (negative, Int((high >> 49) & 0x3FFF) - exponentBias, coefficient, nil)
    }

    /// The exact decimal text of 16 encoded bytes: plain notation for
    /// exponents ≤ 0 (`19.90`), `E+n` above, `NaN` / `Infinity` / `-Infinity`.
    static func text(_ value: UnsafeRawBufferPointer) -> String {
        let (negative, exponent, coefficient, special) = parts(value)
        if let special { return special }
        let sign = negative ? "-" : ""
        // UInt128's generic printing is slow; most coefficients fit 64 bits.
        let digits = coefficient <= UInt128(UInt64.max) ? String(UInt64(coefficient)) : String(coefficient)
        if exponent > 0 { return sign + digits + "E+" + String(exponent) }
        if exponent == 0 { return sign + digits }
        let fraction = -exponent
        if digits.count > fraction {
            let split = digits.index(digits.endIndex, offsetBy: -fraction)
            return sign + digits[..<split] + "." + digits[split...]
        }
        return sign + "0." + String(repeating: "0", count: fraction - digits.count) + digits
    }

    /// Calls `body` with the same bytes as `text(value)`, built on the stack
    /// for the common case (a 64-bit coefficient, at most 40 fraction digits):
    /// the binary COPY sink does this for every numeric field, and the String
    /// it used to build cost more than the rest of the conversion.
    static func withText<R>(_ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let (negative, exponent, coefficient, special) = parts(value)
        guard special == nil, exponent <= 0, exponent >= -40, coefficient <= UInt128(UInt64.max) else {
            var text = text(value)
            return try text.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
        }
        return try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 96) { out in
            // Digits of the coefficient, backwards, at the end of the buffer.
            var digitsStart = out.count
            var rest = UInt64(coefficient)
            repeat {
                digitsStart -= 1
                out[digitsStart] = UInt8(truncatingIfNeeded: rest % 10) + 0x30
                rest /= 10
            } while rest > 0
            let digitCount = out.count - digitsStart
            let fraction = -exponent
            // Written with a plain index: a nested function capturing it would
            // bring back the runtime exclusivity checks this path exists to avoid.
            var length = 0
            if negative {
                out[length] = UInt8(ascii: "-")
                length += 1
            }
            let integerDigits = max(0, digitCount - fraction)
            if integerDigits == 0 {
                out[length] = UInt8(ascii: "0")
                length += 1
            }
            for index in 0..<integerDigits {
                out[length] = out[digitsStart + index]
                length += 1
            }
            if fraction > 0 {
                out[length] = UInt8(ascii: ".")
                length += 1
                for _ in 0..<max(0, fraction - digitCount) {
                    out[length] = 0x30
                    length += 1
                }
                for index in integerDigits..<digitCount {
                    out[length] = out[digitsStart + index]
                    length += 1
                }
            }
            return try body(UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: out[0..<length])))
        }
    }
}
