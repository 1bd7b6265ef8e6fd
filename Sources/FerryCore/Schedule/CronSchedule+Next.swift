import FerryPluginKit
import Foundation

extension CronSchedule {
    /// How far ahead ``next(after:)`` looks before giving up: the longest gap between two
    /// February 29ths (e.g. 2096 to 2104), so `0 0 29 2 *` is always found.
    static let searchYears = 8

    /// The first fire time strictly after `date` (a whole minute), or nil if there is none
    /// within ``searchYears`` years (an expression that never matches, like `0 0 30 2 *`).
    ///
    /// The search jumps field by field (month, then day, hour, minute) in wall-clock time,
    /// so it costs at most a few thousand steps even when it fails.
    public func next(after date: Date) -> Date? {
        if let interval {
            let now = Int(date.timeIntervalSince1970.rounded(.down))
            return Date(timeIntervalSince1970: Double((floorDiv(now, interval) + 1) * interval))
        }
        let instantNow = Int(date.timeIntervalSince1970.rounded(.down))
        let localNow = instantNow + WallClock.offset(timeZone, at: instantNow)
        // The first whole wall-clock minute after `date`.
        var local = (localNow - mod(localNow, 60)) + 60

        var days = floorDiv(local, 86400)
        var (year, month, day) = CivilDate.civil(days: days)
        var secondOfDay = local - days * 86400
        var hour = secondOfDay / 3600
        var minute = (secondOfDay % 3600) / 60
        let lastYear = year + Self.searchYears

        while year <= lastYear {
            guard let nextMonth = months.next(from: month) else {
                year += 1; month = 1; day = 1; hour = 0; minute = 0
                continue
            }
            if nextMonth != month { month = nextMonth; day = 1; hour = 0; minute = 0 }

            let lastDay = CivilDate.daysInMonth(year: year, month: month)
            days = CivilDate.days(year: year, month: month, day: day)
            while day <= lastDay, !dayMatches(day: day, weekday: WallClock.weekday(days: days)) {
                day += 1; days += 1; hour = 0; minute = 0
            }
            if day > lastDay {
                month += 1; day = 1; hour = 0; minute = 0
                if month > 12 { month = 1; year += 1 }
                continue
            }

            guard let nextHour = hours.next(from: hour) else {
                day += 1; hour = 0; minute = 0
                continue
            }
            if nextHour != hour { hour = nextHour; minute = 0 }

            guard let nextMinute = minutes.next(from: minute) else {
                hour += 1; minute = 0
                if hour > 23 { hour = 0; day += 1 }
                continue
            }
            minute = nextMinute

            secondOfDay = hour * 3600 + minute * 60
            local = days * 86400 + secondOfDay
            let (instant, exists) = WallClock.instant(local: local, in: timeZone)
            // A wall time in a repeated hour maps to its first occurrence, which can lie at or
            // before `date` when `date` is in the second occurrence: it has fired already.
            // A wall time in a gap fires at the transition, unless the schedule runs every
            // hour anyway: then it is skipped (see the DST section of the type's doc comment).
            if instant > instantNow, exists || !runsEveryHour {
                return Date(timeIntervalSince1970: TimeInterval(instant))
            }
            minute += 1
            if minute > 59 {
                minute = 0; hour += 1
                if hour > 23 { hour = 0; day += 1 }
            }
        }
        return nil
    }

    /// Whether the hour field allows all 24 hours, however it is written (`*`, `*/1`, `0-23`).
    var runsEveryHour: Bool { hours.bits == (1 << 24) - 1 }

    /// The next `count` fire times after `date`, fewer if the schedule runs out.
    public func next(after date: Date, count: Int) -> [Date] {
        var result: [Date] = []
        var current = date
        while result.count < count, let fire = next(after: current) {
            result.append(fire)
            current = fire
        }
        return result
    }
}

private func floorDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }
private func mod(_ a: Int, _ b: Int) -> Int { a - floorDiv(a, b) * b }
