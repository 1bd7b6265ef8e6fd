import FerryPluginKit

/// PostgreSQL's ISO text for dates and timestamps (the session runs with
/// DateStyle=ISO and TimeZone=UTC) ⇄ epoch microseconds / BSON milliseconds.
enum Timestamps {
    /// Days since 1970-01-01 of a proleptic Gregorian date.
    @inline(__always)
    static func days(year: Int, month: Int, day: Int) -> Int { CivilDate.days(year: year, month: month, day: day) }

    @inline(__always)
    static func civil(days: Int) -> (year: Int, month: Int, day: Int) { CivilDate.civil(days: days) }

    /// Microseconds since the epoch of `YYYY-MM-DD[ HH:MM:SS[.ffffff]][+HH[:MM]][ BC]`,
    /// or nil for anything else (infinity).
    static func microseconds(_ text: UnsafeRawBufferPointer, applyOffset: Bool = true) -> Int64? {
        var text = text
        let count = text.count
        let bc = count > 3 && text[count - 3] == 0x20 && text[count - 2] == UInt8(ascii: "B") && text[count - 1] == UInt8(ascii: "C")
        if bc { text = UnsafeRawBufferPointer(rebasing: text[0..<(count - 3)]) }
        var scan = Scanner(text: text)
        guard var year = scan.number(7), scan.skip(UInt8(ascii: "-")), let month = scan.number(2), scan.skip(UInt8(ascii: "-")),
            let day = scan.number(2)
        else { return nil }
        // 1 BC is year 0 of the proleptic Gregorian calendar.
        if bc { year = 1 - year }
        // The last 29 years of PostgreSQL's range overflow 64-bit microseconds since 1970: nil, not a trap.
        let (dayMicros, overflow) = Int64(days(year: year, month: month, day: day)).multipliedReportingOverflow(by: 86_400_000_000)
        guard !overflow, dayMicros < Int64.max - 2 * 86_400_000_000 else { return nil }
        var micros = dayMicros
        if scan.atEnd { return micros }
        guard scan.skip(UInt8(ascii: " ")) || scan.skip(UInt8(ascii: "T")), let hour = scan.number(2), scan.skip(UInt8(ascii: ":")),
            let minute = scan.number(2), scan.skip(UInt8(ascii: ":")), let second = scan.number(2)
        else { return nil }
        micros += Int64(hour * 3600 + minute * 60 + second) * 1_000_000
        if scan.skip(UInt8(ascii: ".")) {
            var fraction = 0
            var digits = 0
            while let digit = scan.digit() {
                if digits < 6 { fraction = fraction * 10 + digit }
                digits += 1
            }
            for _ in digits..<max(digits, 6) { fraction *= 10 }
            micros += Int64(fraction)
        }
        if let sign: Int64 = scan.skip(UInt8(ascii: "+")) ? 1 : scan.skip(UInt8(ascii: "-")) ? -1 : nil {
            guard let offsetHours = scan.number(2) else { return nil }
            var offset = offsetHours * 3600
            if scan.skip(UInt8(ascii: ":")) { offset += (scan.number(2) ?? 0) * 60 }
            if scan.skip(UInt8(ascii: ":")) { offset += scan.number(2) ?? 0 }
            if applyOffset { micros -= sign * Int64(offset) * 1_000_000 }
        } else {
            _ = scan.skip(UInt8(ascii: "Z"))
        }
        return scan.atEnd ? micros : nil
    }

    /// A cursor over the text. A struct with mutating methods, not nested
    /// functions capturing an index: captured vars are boxed and every access
    /// went through the runtime's exclusivity check (about 10% of a copy's CPU).
    private struct Scanner {
        let text: UnsafeRawBufferPointer
        var index = 0

        var atEnd: Bool { index == text.count }

        mutating func digit() -> Int? {
            guard index < text.count, text[index] >= 0x30, text[index] <= 0x39 else { return nil }
            index += 1
            return Int(text[index - 1] - 0x30)
        }

        mutating func number(_ maxDigits: Int) -> Int? {
            var value = 0
            var count = 0
            while count < maxDigits, let digit = digit() {
                value = value * 10 + digit
                count += 1
            }
            return count == 0 ? nil : value
        }

        mutating func skip(_ byte: UInt8) -> Bool {
            guard index < text.count, text[index] == byte else { return false }
            index += 1
            return true
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ` (fraction trimmed to what is needed: none, 3 or 6 digits).
    static func iso(microseconds: Int64) -> String {
        var days = microseconds / 86_400_000_000
        var rest = microseconds % 86_400_000_000
        if rest < 0 { rest += 86_400_000_000; days -= 1 }
        return iso(days: days, microsecondOfDay: rest)
    }

    /// Any BSON date, even one whose microseconds since 1970 overflow 64 bits.
    static func iso(milliseconds: Int64) -> String {
        let days = floorDay(milliseconds)
        return iso(days: days, microsecondOfDay: (milliseconds - days * 86_400_000) * 1000)
    }

    private static func iso(days: Int64, microsecondOfDay rest: Int64) -> String {
        let (year, month, day) = civil(days: Int(days))
        let seconds = Int(rest / 1_000_000)
        let fraction = Int(rest % 1_000_000)
        var out = pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2) + "T"
        out += pad(seconds / 3600, 2) + ":" + pad(seconds / 60 % 60, 2) + ":" + pad(seconds % 60, 2)
        if fraction != 0 {
            out += fraction % 1000 == 0 ? "." + pad(fraction / 1000, 3) : "." + pad(fraction, 6)
        }
        return out + "Z"
    }

    /// The instants a timestamp column holds, as BSON milliseconds: from
    /// 4714-11-24 BC (Julian day 0) up to, not including, 294277-01-01.
    static let firstMillisecond: Int64 = -210_866_803_200_000
    static let endMillisecond: Int64 = 9_224_318_016_000_000
    /// The days a date column holds: Julian day 0 up to, not including, 5874898-01-01.
    static let firstDay: Int64 = -2_440_588
    static let endDay: Int64 = 2_145_042_906

    static func timestampHolds(milliseconds: Int64) -> Bool {
        milliseconds >= firstMillisecond && milliseconds < endMillisecond
    }

    /// Why a BSON date cannot go into a date column unchanged, or nil.
    static func dateRefusal(milliseconds: Int64) -> String? {
        let day = floorDay(milliseconds)
        guard day >= firstDay && day < endDay else { return "date \(milliseconds) ms is outside the range of a date column" }
        guard milliseconds - day * 86_400_000 == 0 else {
            return "\(iso(milliseconds: milliseconds)) has a time of day, which a date column would drop"
        }
        return nil
    }

    static func floorDay(_ milliseconds: Int64) -> Int64 {
        var day = milliseconds / 86_400_000
        if milliseconds % 86_400_000 < 0 { day -= 1 }
        return day
    }

    /// PostgreSQL input for a UTC instant, `YYYY-MM-DD HH:MM:SS.fff+00`, with
    /// years before 1 written as BC (1 BC is year 0 of the proleptic calendar).
    static func copyText(milliseconds: Int64) -> String {
        let day = floorDay(milliseconds)
        let rest = Int(milliseconds - day * 86_400_000)
        let (year, month, dayOfMonth) = civil(days: Int(day))
        let seconds = rest / 1000
        var out = pad(year > 0 ? year : 1 - year, 4) + "-" + pad(month, 2) + "-" + pad(dayOfMonth, 2) + " "
        out += pad(seconds / 3600, 2) + ":" + pad(seconds / 60 % 60, 2) + ":" + pad(seconds % 60, 2)
        if rest % 1000 != 0 { out += "." + pad(rest % 1000, 3) }
        return out + "+00" + (year > 0 ? "" : " BC")
    }

    /// PostgreSQL input for a date, years before 1 as BC.
    static func copyDate(days: Int64) -> String {
        let (year, month, day) = civil(days: Int(days))
        return pad(year > 0 ? year : 1 - year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2) + (year > 0 ? "" : " BC")
    }

    static func date(milliseconds: Int64) -> String {
        var days = milliseconds / 86_400_000
        if milliseconds % 86_400_000 < 0 { days -= 1 }
        let (year, month, day) = civil(days: Int(days))
        return pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2)
    }

    static func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}
