import CLibBSON

/// decimal128 ⇄ text through libbson. BSON stores a decimal128 as 16
/// little-endian bytes: the low 64 bits, then the high 64 bits.
enum Decimal128 {
    /// The 16 bytes of `text`, or nil when libbson refuses it (not a number,
    /// more than 34 significant digits, exponent out of range). Accepts
    /// libbson's `NaN` and `Infinity` too; callers check the syntax first.
    static func parse(_ text: String) -> [UInt8]? {
        var value = bson_decimal128_t()
        guard bson_decimal128_from_string(text, &value) else { return nil }
        var bytes = [UInt8](repeating: 0, count: 16)
        withUnsafeBytes(of: value.low.littleEndian) { bytes.replaceSubrange(0..<8, with: $0) }
        withUnsafeBytes(of: value.high.littleEndian) { bytes.replaceSubrange(8..<16, with: $0) }
        return bytes
    }

    /// libbson's canonical text (`19.99`, `1.0E+3`, `NaN`, `-Infinity`).
    static func text(_ bytes: [UInt8]) -> String {
        precondition(bytes.count == 16, "decimal128 is 16 bytes")
        var value = bson_decimal128_t()
        bytes.withUnsafeBytes { raw in
            value.low = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
            value.high = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        }
        var buffer = [CChar](repeating: 0, count: Int(BSON_DECIMAL128_STRING))
        bson_decimal128_to_string(&value, &buffer)
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// The int64 equal to the decimal, or nil when it is not a whole number in
    /// the int64 range. Exact from the coefficient and exponent: a detour
    /// through Double would round 9007199254740993.0 to 9007199254740992.
    static func integer(_ bytes: [UInt8]) -> Int64? {
        guard bytes.count == 16, isFinite(bytes) else { return nil }
        let low = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)) }
        let high = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) }
        let negative = high & 0x8000_0000_0000_0000 != 0
        var coefficient: UInt128
        var exponent: Int
        if (high >> 61) & 3 == 3 {
            // The large-coefficient form is never canonical: the value is zero.
            return 0
        }
        coefficient = (UInt128(high & 0x1_FFFF_FFFF_FFFF) << 64) | UInt128(low)
        exponent = Int((high >> 49) & 0x3FFF) - 6176
        if coefficient > 9_999_999_999_999_999_999_999_999_999_999_999 || coefficient == 0 { return 0 }
        while exponent < 0 {
            guard coefficient % 10 == 0 else { return nil }
            coefficient /= 10
            exponent += 1
        }
        while exponent > 0 {
            guard coefficient <= UInt128(UInt64.max) else { return nil }
            coefficient *= 10
            exponent -= 1
        }
        let magnitude = UInt128(Int64.max) + (negative ? 1 : 0)
        guard coefficient <= magnitude else { return nil }
        return negative ? Int64(truncatingIfNeeded: 0 &- UInt64(coefficient)) : Int64(coefficient)
    }

    /// True for NaN and the infinities, which have no place in a price column.
    static func isFinite(_ bytes: [UInt8]) -> Bool {
        // The combination field's top bits 11110 (infinity) or 11111 (NaN).
        bytes.count == 16 && (bytes[15] & 0x7C) != 0x78 && (bytes[15] & 0x7C) != 0x7C
    }
}
