/// numeric ⇄ BSON decimal128 without going through a float: the decimal
/// digits become the 113-bit coefficient and the exponent, exactly
/// (IEEE 754-2008 BID encoding, 16 little-endian bytes: low word, high word).
/// Text to decimal128 follows libbson's `bson_decimal128_from_string`: exact
/// or refused, never rounded; the same value keeps the same bits.
enum Decimal128Codec {
    static let exponentBias = 6176
    static let minExponent = -6176
    static let maxExponent = 6111
    static let maxDigits = 34
    /// 10^34 - 1: a larger coefficient is not canonical and reads as zero.
    static let maxCoefficient: UInt128 = 9_999_999_999_999_999_999_999_999_999_999_999
    /// Room for the longest text of any finite value: sign, "0.", 6176 fraction digits.
    static let maxTextLength = 6200

    /// The encoding of a decimal text (`-12.50`, `1E+3`, `NaN`, `Infinity`),
    /// or nil when it is not a number or its value has no exact decimal128:
    /// more than 34 significant digits (trailing zeros past 34 are dropped
    /// into the exponent), or an exponent no coefficient can reach.
    static func encode(_ text: UnsafeRawBufferPointer) -> (low: UInt64, high: UInt64)? {
        var index = 0
        var negative = false
        if index < text.count, text[index] == UInt8(ascii: "-") || text[index] == UInt8(ascii: "+") {
            negative = text[index] == UInt8(ascii: "-")
            index += 1
        }
        if index < text.count, text[index] > 0x39 {
            let rest = UnsafeRawBufferPointer(rebasing: text[index...])
            if equalsIgnoringCase(rest, "nan") { return (0, 0x7C00_0000_0000_0000) }
            if equalsIgnoringCase(rest, "infinity") || equalsIgnoringCase(rest, "inf") {
                return (0, (negative ? 0x8000_0000_0000_0000 : 0) | 0x7800_0000_0000_0000)
            }
            return nil
        }
        var digits = Digits()
        var afterPoint = false
        while index < text.count {
            let byte = text[index]
            if byte >= 0x30 && byte <= 0x39 {
                guard digits.add(byte - 0x30, afterPoint: afterPoint) else { return nil }
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
                    if value > 1_000_000 { return nil }
                    any = true
                    index += 1
                }
                guard any, index == text.count else { return nil }
                digits.exponent += exponentNegative ? -value : value
                break
            } else {
                return nil
            }
            index += 1
        }
        return digits.encode(negative: negative)
    }

    /// A decimal number taken in digit by digit as its text reads; the one
    /// rule for text (`encode`) and for PostgreSQL's binary numerics.
    struct Digits {
        var coefficient: UInt128 = 0
        var stored = 0
        var exponent = 0
        var sawDigit = false

        /// False for a 35th significant digit that is not zero: no exact decimal128.
        @inline(__always)
        mutating func add(_ digit: UInt8, afterPoint: Bool) -> Bool {
            sawDigit = true
            if afterPoint { exponent -= 1 }
            if stored == 0 && digit == 0 {
                // Leading zeros are not significant.
            } else if stored < maxDigits {
                stored += 1
                coefficient = coefficient * 10 + UInt128(digit)
            } else {
                // A 35th significant digit: only a zero can go, into the exponent.
                guard digit == 0 else { return false }
                exponent += 1
            }
            return true
        }

        /// The two halves, or nil with no digit or an exponent no coefficient can reach.
        func encode(negative: Bool) -> (low: UInt64, high: UInt64)? {
            guard sawDigit else { return nil }
            var coefficient = coefficient, stored = stored, exponent = exponent
            // An exponent out of range moves into the coefficient when that is exact
            // (zeros appended, or trailing zeros dropped); zero clamps.
            if exponent > maxExponent {
                if coefficient == 0 {
                    exponent = maxExponent
                } else {
                    while exponent > maxExponent {
                        guard stored < maxDigits else { return nil }
                        coefficient *= 10
                        stored += 1
                        exponent -= 1
                    }
                }
            } else if exponent < minExponent {
                if coefficient == 0 {
                    exponent = minExponent
                } else {
                    while exponent < minExponent {
                        guard coefficient % 10 == 0 else { return nil }
                        coefficient /= 10
                        exponent += 1
                    }
                }
            }
            let biased = UInt64(exponent + exponentBias)
            let high = (negative ? 0x8000_0000_0000_0000 : 0) | (biased << 49) | UInt64(truncatingIfNeeded: coefficient >> 64)
            return (UInt64(truncatingIfNeeded: coefficient), high)
        }
    }

    private static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ word: StaticString) -> Bool {
        guard bytes.count == word.utf8CodeUnitCount else { return false }
        let letters = word.utf8Start
        for index in 0..<bytes.count where bytes[index] | 0x20 != letters[index] { return false }
        return true
    }

    static func bytes(_ value: (low: UInt64, high: UInt64)) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: 16)
        withUnsafeBytes(of: value.low.littleEndian) { for i in 0..<8 { result[i] = $0[i] } }
        withUnsafeBytes(of: value.high.littleEndian) { for i in 0..<8 { result[8 + i] = $0[i] } }
        return result
    }

    enum Special { case nan, infinity }

    /// The sign, exponent and coefficient of 16 encoded bytes, or which special value they are.
    static func parts(_ value: UnsafeRawBufferPointer) -> (negative: Bool, exponent: Int, coefficient: UInt128, special: Special?) {
        let low = UInt64(littleEndian: value.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        let high = UInt64(littleEndian: value.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        let negative = high & 0x8000_0000_0000_0000 != 0
        if (high >> 61) & 3 == 3 {
            let special = (high >> 58) & 0x1F
            if special == 0x1F { return (negative, 0, 0, .nan) }
            if special == 0x1E { return (negative, 0, 0, .infinity) }
            // The large-coefficient form is never canonical (> 10^34 - 1): the value is zero.
            return (negative, Int((high >> 47) & 0x3FFF) - exponentBias, 0, nil)
        }
        var coefficient = (UInt128(high & 0x1_FFFF_FFFF_FFFF) << 64) | UInt128(low)
        if coefficient > maxCoefficient { coefficient = 0 }
        return (negative, Int((high >> 49) & 0x3FFF) - exponentBias, coefficient, nil)
    }

    /// True for NaN and the infinities.
    static func isSpecial(_ value: UnsafeRawBufferPointer) -> Bool {
        value[15] & 0x78 == 0x78
    }

    /// The exact decimal text of 16 encoded bytes: plain notation for
    /// exponents ≤ 0 (`19.90`), `E+n` above, `NaN` / `Infinity` / `-Infinity`.
    static func text(_ value: UnsafeRawBufferPointer) -> String {
        withText(value) { String(decoding: $0, as: UTF8.self) }
    }

    /// Calls `body` with the same bytes as `text(value)`, built on the stack
    /// (the sinks do this for every numeric field, and the String they used to
    /// build cost more than the rest of the conversion). Only a value with
    /// more than 80 fraction digits needs a larger, heap buffer.
    static func withText<R>(_ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let parts = parts(value)
        if parts.exponent < -80 && parts.special == nil {
            return try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: maxTextLength) { out in
                try body(UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: out[0..<render(parts, into: out)])))
            }
        }
        return try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 128) { out in
            try body(UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: out[0..<render(parts, into: out)])))
        }
    }

    /// Writes the text of `parts` at the start of `out` (large enough: 128
    /// bytes for exponents ≥ -80, `maxTextLength` for any); returns its length.
    /// Written with a plain index: a nested function capturing it would bring
    /// back the runtime exclusivity checks this path exists to avoid.
    private static func render(
        _ parts: (negative: Bool, exponent: Int, coefficient: UInt128, special: Special?), into out: UnsafeMutableBufferPointer<UInt8>
    ) -> Int {
        var length = 0
        if parts.negative && parts.special != .nan {
            out[length] = UInt8(ascii: "-")
            length += 1
        }
        if let special = parts.special {
            let word: StaticString = special == .nan ? "NaN" : "Infinity"
            for index in 0..<word.utf8CodeUnitCount {
                out[length] = word.utf8Start[index]
                length += 1
            }
            return length
        }
        // Digits of the coefficient, backwards, at the end of the buffer: the
        // low 19 digits, then the rest (a 34-digit coefficient is < 10^15 · 10^19).
        var digitsStart = out.count
        let coefficient = parts.coefficient
        if coefficient <= UInt128(UInt64.max) {
            var rest = UInt64(coefficient)
            repeat {
                digitsStart -= 1
                out[digitsStart] = UInt8(truncatingIfNeeded: rest % 10) + 0x30
                rest /= 10
            } while rest > 0
        } else {
            let split: UInt128 = 10_000_000_000_000_000_000
            var low = UInt64(coefficient % split)
            var high = UInt64(coefficient / split)
            for _ in 0..<19 {
                digitsStart -= 1
                out[digitsStart] = UInt8(truncatingIfNeeded: low % 10) + 0x30
                low /= 10
            }
            repeat {
                digitsStart -= 1
                out[digitsStart] = UInt8(truncatingIfNeeded: high % 10) + 0x30
                high /= 10
            } while high > 0
        }
        let digitCount = out.count - digitsStart
        if parts.exponent > 0 {
            for index in digitsStart..<out.count {
                out[length] = out[index]
                length += 1
            }
            out[length] = UInt8(ascii: "E")
            out[length + 1] = UInt8(ascii: "+")
            length += 2
            var exponentDigits = 0
            var rest = parts.exponent
            while rest > 0 {
                exponentDigits += 1
                rest /= 10
            }
            rest = parts.exponent
            for index in stride(from: length + exponentDigits - 1, through: length, by: -1) {
                out[index] = UInt8(truncatingIfNeeded: rest % 10) + 0x30
                rest /= 10
            }
            return length + exponentDigits
        }
        let fraction = -parts.exponent
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
        return length
    }
}
