import CLibBSON
import FerryPluginKit

/// Writes the text a non-string value is matched on into a scratch buffer,
/// without allocating:
///
/// | BSON type | text |
/// | --- | --- |
/// | int32, int64 | decimal: `42`, `-7` |
/// | double | Swift's shortest round-trip form: `12.5`, `12.0`, `1e+16`, `nan`, `inf` |
/// | decimal128 | libbson's canonical string: `19.99`, `1.0E+3`, `NaN` |
/// | bool | `true`, `false` |
/// | date | ISO-8601 UTC with milliseconds: `2026-11-25T10:00:00.000Z` |
/// | ObjectId | 24 lowercase hex digits |
///
/// The same forms as the map plugin's `cast … to string`. Other types
/// (documents, arrays, binary, timestamps, regexes, …) have no text form.
struct CanonicalText {
    /// Enough for every form above (decimal128's longest is 43 bytes + NUL).
    static let capacity = 64
    let scratch: UnsafeMutableRawBufferPointer

    init() {
        scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.capacity, alignment: 8)
    }

    func deallocate() { scratch.deallocate() }

    /// The bytes to match for `element`, nil if its type has no text form.
    /// Strings are returned in place; the rest is written to the scratch buffer,
    /// valid until the next call.
    @inline(__always)
    func text(of element: ScannedElement) -> UnsafeRawBufferPointer? {
        if let bytes = element.stringBytes { return bytes }
        return formatted(element)
    }

    private func formatted(_ element: ScannedElement) -> UnsafeRawBufferPointer? {
        let value = element.value
        switch element.type {
        case BSONType.int32.rawValue:
            return integer(Int64(Int32(littleEndian: value.loadUnaligned(as: Int32.self))))
        case BSONType.int64.rawValue:
            return integer(Int64(littleEndian: value.loadUnaligned(as: Int64.self)))
        case BSONType.double.rawValue:
            var text = Double(bitPattern: UInt64(littleEndian: value.loadUnaligned(as: UInt64.self))).description
            return text.withUTF8 { copy(UnsafeRawBufferPointer($0)) }
        case BSONType.bool.rawValue:
            let text: StaticString = value[0] != 0 ? "true" : "false"
            return copy(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
        case BSONType.datetime.rawValue:
            return date(Int64(littleEndian: value.loadUnaligned(as: Int64.self)))
        case BSONType.objectId.rawValue:
            for index in 0..<12 {
                scratch[index * 2] = Self.hexDigits[Int(value[index] >> 4)]
                scratch[index * 2 + 1] = Self.hexDigits[Int(value[index] & 0x0F)]
            }
            return UnsafeRawBufferPointer(rebasing: scratch[0..<24])
        case BSONType.decimal128.rawValue:
            var decimal = bson_decimal128_t()
            decimal.low = UInt64(littleEndian: value.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
            decimal.high = UInt64(littleEndian: value.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            let characters = scratch.baseAddress!.assumingMemoryBound(to: CChar.self)
            bson_decimal128_to_string(&decimal, characters)
            return UnsafeRawBufferPointer(rebasing: scratch[0..<strlen(characters)])
        default:
            return nil
        }
    }

    private func copy(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        let count = min(bytes.count, Self.capacity)
        UnsafeMutableRawBufferPointer(rebasing: scratch[0..<count]).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<count]))
        return UnsafeRawBufferPointer(rebasing: scratch[0..<count])
    }

    private func integer(_ value: Int64) -> UnsafeRawBufferPointer {
        // Digits from the right end of the scratch buffer; the magnitude as
        // UInt64 so Int64.min has one.
        var magnitude = value.magnitude
        var start = Self.capacity
        repeat {
            start -= 1
            scratch[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
            magnitude /= 10
        } while magnitude > 0
        if value < 0 {
            start -= 1
            scratch[start] = UInt8(ascii: "-")
        }
        return UnsafeRawBufferPointer(rebasing: scratch[start..<Self.capacity])
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`; nil outside years 0000–9999.
    private func date(_ milliseconds: Int64) -> UnsafeRawBufferPointer? {
        let (seconds, millisecond) = Self.floorDivide(milliseconds, 1_000)
        let (days, secondOfDay) = Self.floorDivide(seconds, 86_400)
        let civil = CivilDate.civil(days: Int(days))
        let (year, month, day) = (Int64(civil.year), Int64(civil.month), Int64(civil.day))
        guard (0...9999).contains(year) else { return nil }
        var position = 0
        func put(_ value: Int64, width: Int) {
            var value = value
            for index in stride(from: position + width - 1, through: position, by: -1) {
                scratch[index] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
            }
            position += width
        }
        func put(_ character: Unicode.Scalar) {
            scratch[position] = UInt8(ascii: character)
            position += 1
        }
        put(year, width: 4); put("-"); put(month, width: 2); put("-"); put(day, width: 2); put("T")
        put(secondOfDay / 3_600, width: 2); put(":"); put(secondOfDay % 3_600 / 60, width: 2); put(":")
        put(secondOfDay % 60, width: 2); put("."); put(millisecond, width: 3); put("Z")
        return UnsafeRawBufferPointer(rebasing: scratch[0..<position])
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let quotient = value / divisor
        let remainder = value % divisor
        return remainder < 0 ? (quotient - 1, remainder + divisor) : (quotient, remainder)
    }
}
