import Foundation

/// Proleptic Gregorian calendar arithmetic on wall-clock times, and the mapping from a
/// wall-clock minute in a time zone to the instant it happens (the DST policy lives here).
///
/// Wall-clock times are counted as seconds since 1970-01-01 00:00 *local*, so stepping a day
/// or a minute is plain integer arithmetic; only the final mapping asks the time zone.
enum WallClock {
    /// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
    static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The civil date of a day count (Hinnant's `civil_from_days`).
    static func civil(days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// 0 = Sunday.
    static func weekday(days: Int) -> Int {
        let w = (days + 4) % 7  // 1970-01-01 was a Thursday
        return w < 0 ? w + 7 : w
    }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    static func offset(_ timeZone: TimeZone, at instant: Int) -> Int {
        timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant)))
    }

    /// The instant (seconds since the epoch, UTC) at which wall-clock time `local` happens,
    /// and whether that wall time exists at all.
    ///
    /// - A wall time that happens twice (clocks fall back) maps to its first occurrence.
    /// - A wall time that does not exist (clocks spring forward) maps to the transition instant,
    ///   i.e. the first existing wall time after the gap, with `exists` false.
    static func instant(local: Int, in timeZone: TimeZone) -> (instant: Int, exists: Bool) {
        // Offsets are within ±14 h (+ a little history), so the instant is within ±15 h of
        // `local`, and the offsets on either side of that window are the only candidates
        // (time zones do not change offset twice within 30 hours).
        let window = 15 * 3600
        let before = offset(timeZone, at: local - window)
        let after = offset(timeZone, at: local + window)
        var best: Int?
        for candidateOffset in Set([before, after, offset(timeZone, at: local)]) {
            let instant = local - candidateOffset
            if offset(timeZone, at: instant) == candidateOffset, best.map({ instant < $0 }) ?? true {
                best = instant
            }
        }
        if let best { return (best, true) }

        // In a gap: with the earlier offset the wall time would be reached at `local - before`
        // (already after the transition); with the later one at `local - after` (before it).
        // The transition is the first second in between whose offset is no longer `before`.
        var low = local - after  // offset here is still `before`
        var high = local - before  // offset here is already the new one
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if offset(timeZone, at: middle) == before { low = middle } else { high = middle }
        }
        return (high, false)
    }
}
