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

    /// True for NaN and the infinities, which have no place in a price column.
    static func isFinite(_ bytes: [UInt8]) -> Bool {
        // The combination field's top bits 11110 (infinity) or 11111 (NaN).
        bytes.count == 16 && (bytes[15] & 0x7C) != 0x78 && (bytes[15] & 0x7C) != 0x7C
    }
}
