/// The precision and scale of a `numeric(p,s)` column. The server rounds a
/// value with more decimal places than s to fit, without a word; the sink
/// checks first, so such a value is rejected (naming the field), never stored
/// changed. Scale may be negative (PostgreSQL 15: numeric(2,-3) holds 12000).
struct NumericLimit: Equatable {
    let precision: Int
    let scale: Int

    /// From `atttypmod`: ((p << 16) | s) + 4, s an 11-bit signed field; nil for plain numeric.
    init?(typmod: Int32) {
        guard typmod >= 4 else { return nil }
        let bits = Int(typmod - 4)
        precision = (bits >> 16) & 0xFFFF
        scale = ((bits & 0x7FF) ^ 1024) - 1024
    }

    init(precision: Int, scale: Int) {
        self.precision = precision
        self.scale = scale
    }

    var sqlName: String { "numeric(\(precision),\(scale))" }

    /// Why the number in `text` cannot be stored unchanged, or nil when it can
    /// (or when it is not a number at all: the parser or server says so).
    /// Allocation-free unless it refuses.
    func violation(_ text: UnsafeRawBufferPointer) -> String? {
        var index = 0
        if index < text.count, text[index] == UInt8(ascii: "-") || text[index] == UInt8(ascii: "+") { index += 1 }
        if index < text.count, text[index] > 0x39 {
            let word = text[index] | 0x20
            // NaN fits any numeric(p,s); the infinities fit none.
            if word == UInt8(ascii: "i") { return "\(String(decoding: text, as: UTF8.self)) cannot be stored in \(sqlName)" }
            return nil
        }
        // Each digit's power of ten: integer digits count down to 0 at the point.
        var integerDigits = 0
        var cursor = index
        while cursor < text.count, text[cursor] >= 0x30, text[cursor] <= 0x39 {
            integerDigits += 1
            cursor += 1
        }
        var highest = Int.min
        var lowest = Int.max
        var position = 0
        var exponent = 0
        while index < text.count {
            let byte = text[index]
            if byte >= 0x30 && byte <= 0x39 {
                if byte != 0x30 {
                    let power = integerDigits - 1 - position
                    if highest == Int.min { highest = power }
                    lowest = power
                }
                position += 1
            } else if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
                var value = 0
                var negative = false
                var cursor = index + 1
                if cursor < text.count, text[cursor] == UInt8(ascii: "-") || text[cursor] == UInt8(ascii: "+") {
                    negative = text[cursor] == UInt8(ascii: "-")
                    cursor += 1
                }
                while cursor < text.count, text[cursor] >= 0x30, text[cursor] <= 0x39, value < 10_000_000 {
                    value = value * 10 + Int(text[cursor] - 0x30)
                    cursor += 1
                }
                exponent = negative ? -value : value
                break
            } else if byte != UInt8(ascii: ".") {
                return nil
            }
            index += 1
        }
        guard highest != Int.min else { return nil }  // zero fits
        if lowest + exponent < -scale {
            let value = String(decoding: text, as: UTF8.self)
            if scale < 0 { return "\(value) is not a multiple of 1E+\(-scale); \(sqlName) would round it" }
            return "\(value) has \(-(lowest + exponent)) decimal places; \(sqlName) would round it"
        }
        let needed = highest + exponent + 1
        if needed > precision - scale {
            return "\(String(decoding: text, as: UTF8.self)) needs \(needed) digits before the decimal point; \(sqlName) holds \(precision - scale)"
        }
        return nil
    }
}
