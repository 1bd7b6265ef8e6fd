#if canImport(Glibc)
import Glibc
#endif

/// A number bound for a float4/float8 column is stored only when the column
/// gives it back unchanged: a decimal128 or int64 with more digits than a
/// double holds, or a double with more than a float4 holds, is refused
/// instead of rounded in silence. "Unchanged" means the stored float's
/// shortest text (what the server prints) reads back as the same number.
enum FloatFit {
    struct Refusal: Error { let message: String }

    /// The double of a decimal128, when that double is the same number.
    static func double(decimal128 value: UnsafeRawBufferPointer) throws(Refusal) -> Double {
        let parts = Decimal128Codec.parts(value)
        if parts.special == .nan { return .nan }
        if parts.special == .infinity { return parts.negative ? -.infinity : .infinity }
        let text = Decimal128Codec.text(value)
        let double = text.withCString { strtod($0, nil) }
        guard double.isFinite, sameValue(parts, "\(double)") else {
            throw Refusal(message: "decimal \(text) has no exact double (it would be stored as \(double))")
        }
        return double
    }

    /// The double of an int64 that a double holds exactly.
    static func double(_ integer: Int64) throws(Refusal) -> Double {
        guard let double = Double(exactly: integer) else {
            throw Refusal(message: "\(integer) has no exact double (it would be stored as \(Double(integer)))")
        }
        return double
    }

    /// `double` as a float4, when the float4 reads back as the same double.
    static func float(_ double: Double) throws(Refusal) -> Float {
        let float = Float(double)
        guard double.isNaN || Double("\(float)") == double else {
            throw Refusal(message: "\(double) has no exact real/float4 (it would be stored as \(float))")
        }
        return float
    }

    /// True when `text` (a finite number) equals the decimal `parts`, at any scale.
    private static func sameValue(_ parts: (negative: Bool, exponent: Int, coefficient: UInt128, special: Decimal128Codec.Special?), _ text: String) -> Bool {
        var text = text
        guard let encoded = text.withUTF8({ Decimal128Codec.encode(UnsafeRawBufferPointer($0)) }) else { return false }
        let other = Decimal128Codec.bytes(encoded).withUnsafeBytes { Decimal128Codec.parts($0) }
        func normal(_ coefficient: UInt128, _ exponent: Int) -> (UInt128, Int) {
            var (c, e) = (coefficient, exponent)
            if c == 0 { return (0, 0) }
            while c % 10 == 0 { c /= 10; e += 1 }
            return (c, e)
        }
        let a = normal(parts.coefficient, parts.exponent), b = normal(other.coefficient, other.exponent)
        return a == b && (a.0 == 0 || parts.negative == other.negative)
    }
}
