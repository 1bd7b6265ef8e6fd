import FerryPluginKit

/// ISO-8601 / RFC 3339 date-times ⇄ BSON datetimes (UTC milliseconds since the
/// epoch), without Foundation's formatters or their per-call allocations.
enum ISO8601 {
    /// Parses `2026-11-25T10:00:00Z`, `2026-11-25T10:00:00.5+01:00`,
    /// `2026-11-25 10:00:00.123456-0530`: a date, `T` (or a space), a time with
    /// seconds, an optional fraction (digits past milliseconds are truncated)
    /// and a required `Z` or `±HH:MM` / `±HHMM` offset. Nil for anything else,
    /// including impossible dates such as February 30.
    static func parse(_ text: Substring) -> Int64? {
        var scanner = Scanner(bytes: text.utf8[...])
        guard let year = scanner.digits(4), scanner.skip("-"),
            let month = scanner.digits(2), scanner.skip("-"),
            let day = scanner.digits(2),
            scanner.skip("T") || scanner.skip("t") || scanner.skip(" "),
            let hour = scanner.digits(2), scanner.skip(":"),
            let minute = scanner.digits(2), scanner.skip(":"),
            let second = scanner.digits(2)
        else { return nil }
        var milliseconds: Int64 = 0
        if scanner.skip(".") || scanner.skip(",") {
            let fraction = scanner.bytes.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
            guard !fraction.isEmpty else { return nil }
            for digit in fraction.prefix(3) { milliseconds = milliseconds * 10 + Int64(digit - UInt8(ascii: "0")) }
            for _ in fraction.count..<max(3, fraction.count) { milliseconds *= 10 }
            scanner.bytes = scanner.bytes.dropFirst(fraction.count)
        }
        var offsetMinutes: Int64 = 0
        if scanner.skip("Z") || scanner.skip("z") {
            offsetMinutes = 0
        } else if let sign = scanner.bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            scanner.bytes = scanner.bytes.dropFirst()
            guard let hours = scanner.digits(2) else { return nil }
            _ = scanner.skip(":")
            guard let minutes = scanner.digits(2), hours <= 23, minutes <= 59 else { return nil }
            offsetMinutes = (hours * 60 + minutes) * (sign == UInt8(ascii: "-") ? -1 : 1)
        } else {
            return nil
        }
        guard scanner.bytes.isEmpty,
            (1...12).contains(month), (1...Int64(CivilDate.daysInMonth(year: Int(year), month: Int(month)))).contains(day),
            hour <= 23, minute <= 59, second <= 59
        else { return nil }
        let seconds = Int64(CivilDate.days(year: Int(year), month: Int(month), day: Int(day))) * 86_400
            + hour * 3_600 + minute * 60 + second - offsetMinutes * 60
        return seconds * 1_000 + milliseconds
    }

    /// `2026-11-25T10:00:00.000Z`; nil outside years 0000–9999, which four
    /// digits cannot write.
    static func format(_ milliseconds: Int64) -> String? {
        let (seconds, millisecond) = floorDivide(milliseconds, 1_000)
        let (days, secondOfDay) = floorDivide(seconds, 86_400)
        let date = CivilDate.civil(days: Int(days))
        let (year, month, day) = (Int64(date.year), Int64(date.month), Int64(date.day))
        guard (0...9999).contains(year) else { return nil }
        var text = ""
        text.reserveCapacity(24)
        func append(_ value: Int64, width: Int) {
            let digits = String(value)
            text += String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        append(year, width: 4); text += "-"
        append(month, width: 2); text += "-"
        append(day, width: 2); text += "T"
        append(secondOfDay / 3_600, width: 2); text += ":"
        append(secondOfDay % 3_600 / 60, width: 2); text += ":"
        append(secondOfDay % 60, width: 2); text += "."
        append(millisecond, width: 3); text += "Z"
        return text
    }

    private struct Scanner {
        var bytes: Substring.UTF8View.SubSequence

        mutating func skip(_ character: Unicode.Scalar) -> Bool {
            guard bytes.first == UInt8(ascii: character) else { return false }
            bytes = bytes.dropFirst()
            return true
        }

        /// Exactly `count` ASCII digits as a number.
        mutating func digits(_ count: Int) -> Int64? {
            var value: Int64 = 0
            for _ in 0..<count {
                guard let byte = bytes.first, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
                bytes = bytes.dropFirst()
            }
            return value
        }
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let quotient = value / divisor
        let remainder = value % divisor
        return remainder < 0 ? (quotient - 1, remainder + divisor) : (quotient, remainder)
    }
}
