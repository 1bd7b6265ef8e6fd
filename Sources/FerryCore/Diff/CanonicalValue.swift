import FerryPluginKit

/// The canonical bytes of a BSON value, for deciding whether a source's value
/// and a target's value are the same: two values are equal exactly when their
/// canonical bytes are.
///
/// The rules are the type-fidelity rules of the connector pairs: a number is
/// its exact decimal value, whatever type carries it (int32 1, int64 1,
/// double 1.0 and decimal 1.00 are one value; a double is its shortest
/// round-trip text, which is what a pipeline writes into a decimal column);
/// a document's fields compare regardless of order; everything else compares
/// by type and bytes. Every variable part is length-prefixed, so no two
/// different values share an encoding.
enum CanonicalValue {
    private enum Tag: UInt8 {
        case number = 0x4E, notANumber = 0x6E, infinity = 0x49, string = 0x53, document = 0x44, array = 0x41
        case date = 0x54, bool = 0x42, null = 0x5A, objectId = 0x4F, binary = 0x58, regex = 0x52, timestamp = 0x50
        case minKey = 0x3C, maxKey = 0x3E, other = 0x3F
    }

    /// Appends the canonical bytes of `element`'s value to `out`.
    static func append(_ element: BSONElement, to out: inout [UInt8]) {
        let value = element.value
        switch element.typeByte {
        case BSONType.int32.rawValue, BSONType.int64.rawValue:
            appendInteger(element.int64Value!, to: &out)
        case BSONType.double.rawValue:
            appendDouble(element.doubleValue!, to: &out)
        case BSONType.decimal128.rawValue:
            appendDecimal128(value, to: &out)
        case BSONType.string.rawValue:
            out.append(Tag.string.rawValue)
            appendBytes(element.stringBytes!, to: &out)
        case BSONType.document.rawValue:
            appendDocument(DocumentView(value), to: &out)
        case BSONType.array.rawValue:
            out.append(Tag.array.rawValue)
            let items = Array(DocumentView(value))
            appendLength(items.count, to: &out)
            for item in items { append(item, to: &out) }
        case BSONType.datetime.rawValue:
            out.append(Tag.date.rawValue)
            appendLength(Int(element.int64Value!), to: &out)
        case BSONType.bool.rawValue:
            out.append(Tag.bool.rawValue)
            out.append(value[0] != 0 ? 1 : 0)
        case BSONType.null.rawValue, BSONType.undefined.rawValue:
            out.append(Tag.null.rawValue)
        case BSONType.objectId.rawValue:
            out.append(Tag.objectId.rawValue)
            out.append(contentsOf: value)
        case BSONType.binary.rawValue:
            out.append(Tag.binary.rawValue)
            appendBytes(UnsafeRawBufferPointer(rebasing: value[4...]), to: &out)
        case BSONType.regex.rawValue:
            out.append(Tag.regex.rawValue)
            appendBytes(value, to: &out)
        case BSONType.timestamp.rawValue:
            out.append(Tag.timestamp.rawValue)
            out.append(contentsOf: value)
        case BSONType.minKey.rawValue:
            out.append(Tag.minKey.rawValue)
        case BSONType.maxKey.rawValue:
            out.append(Tag.maxKey.rawValue)
        default:
            out.append(Tag.other.rawValue)
            out.append(element.typeByte)
            appendBytes(value, to: &out)
        }
    }

    /// A document: its fields sorted by name, each name and value.
    static func appendDocument(_ document: DocumentView, to out: inout [UInt8]) {
        out.append(Tag.document.rawValue)
        let fields = document.sorted { $0.keyBytes.lexicographicallyPrecedes($1.keyBytes) }
        appendLength(fields.count, to: &out)
        for field in fields {
            appendBytes(field.keyBytes, to: &out)
            append(field, to: &out)
        }
    }

    /// The canonical bytes of a null, which is also what a missing field compares as.
    static let null: [UInt8] = [Tag.null.rawValue]

    private static func appendLength(_ length: Int, to out: inout [UInt8]) {
        withUnsafeBytes(of: Int64(length).littleEndian) { out.append(contentsOf: $0) }
    }

    private static func appendBytes(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        appendLength(bytes.count, to: &out)
        out.append(contentsOf: bytes)
    }

    // MARK: numbers as (sign, digits without leading or trailing zeros, exponent)

    private static func appendNumber(negative: Bool, digits: some Collection<UInt8>, exponent: Int, to out: inout [UInt8]) {
        var digits = Array(digits.drop { $0 == UInt8(ascii: "0") })
        var exponent = exponent
        while let last = digits.last, last == UInt8(ascii: "0") {
            digits.removeLast()
            exponent += 1
        }
        out.append(Tag.number.rawValue)
        if digits.isEmpty {
            out.append(UInt8(ascii: "0"))  // zero has one form: no sign, no exponent
            return
        }
        out.append(negative ? UInt8(ascii: "-") : UInt8(ascii: "+"))
        appendLength(digits.count, to: &out)
        out.append(contentsOf: digits)
        appendLength(exponent, to: &out)
    }

    static func appendInteger(_ value: Int64, to out: inout [UInt8]) {
        appendNumber(negative: value < 0, digits: Array(String(value.magnitude).utf8), exponent: 0, to: &out)
    }

    static func appendDouble(_ value: Double, to out: inout [UInt8]) {
        if value.isNaN { return out.append(Tag.notANumber.rawValue) }
        if value.isInfinite { return out.append(contentsOf: [Tag.infinity.rawValue, value < 0 ? 1 : 0]) }
        // Swift's description is the shortest text that reads back as the same double.
        let text = Array(String(value.magnitude).utf8)
        var mantissa = text[...]
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) {
            mantissa = text[..<e]
            exponent = Int(String(decoding: text[(e + 1)...], as: UTF8.self)) ?? 0
        }
        var digits: [UInt8] = []
        if let dot = mantissa.firstIndex(of: UInt8(ascii: ".")) {
            digits = Array(mantissa[..<dot]) + Array(mantissa[(dot + 1)...])
            exponent -= mantissa.distance(from: dot, to: mantissa.endIndex) - 1
        } else {
            digits = Array(mantissa)
        }
        appendNumber(negative: value.sign == .minus, digits: digits, exponent: exponent, to: &out)
    }

    /// IEEE 754-2008 decimal128 in its binary integer decimal (BID) encoding.
    static func appendDecimal128(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        let low = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        let high = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        let negative = high >> 63 == 1
        let combination = (high >> 58) & 0x1F
        if combination == 0x1F { return out.append(Tag.notANumber.rawValue) }
        if combination == 0x1E { return out.append(contentsOf: [Tag.infinity.rawValue, negative ? 1 : 0]) }
        let exponent: Int
        var coefficient: UInt128
        if (high >> 61) & 3 == 3 {
            // The second form's coefficient is always above 10^34 - 1: non-canonical, read as zero.
            exponent = Int((high >> 47) & 0x3FFF) - 6176
            coefficient = 0
        } else {
            exponent = Int((high >> 49) & 0x3FFF) - 6176
            coefficient = UInt128(high & 0x0001_FFFF_FFFF_FFFF) << 64 | UInt128(low)
            if coefficient > UInt128("9999999999999999999999999999999999")! { coefficient = 0 }
        }
        appendNumber(negative: negative, digits: Array(String(coefficient).utf8), exponent: exponent, to: &out)
    }
}
