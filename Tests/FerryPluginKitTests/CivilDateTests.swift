import FerryPluginKit
import Foundation
import Testing

@Suite("Civil dates: day counts ⇄ proleptic Gregorian dates")
struct CivilDateTests {
    /// Foundation's Gregorian calendar switches to the Julian one before this day
    /// (1582-10-15); from here on it is an independent oracle.
    static let gregorianReform = -141_427
    /// 9999-12-31.
    static let lastFourDigitDay = 2_932_896

    @Test("fixed points: the epoch, the Gregorian reform, 2000-02-29, 1 BC and year 1")
    func anchors() {
        #expect(CivilDate.days(year: 1970, month: 1, day: 1) == 0)
        #expect(CivilDate.civil(days: 0) == (1970, 1, 1))
        #expect(CivilDate.civil(days: -1) == (1969, 12, 31))
        #expect(CivilDate.days(year: 1582, month: 10, day: 15) == Self.gregorianReform)
        #expect(CivilDate.days(year: 2000, month: 2, day: 29) == 11_016)
        #expect(CivilDate.days(year: 1, month: 1, day: 1) == -719_162)
        #expect(CivilDate.civil(days: -719_163) == (0, 12, 31))
        #expect(CivilDate.days(year: 9999, month: 12, day: 31) == Self.lastFourDigitDay)
    }

    @Test("every third day from 1582-10-15 to 9999-12-31 matches Foundation's Gregorian calendar in UTC, both ways")
    func againstFoundation() {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var mismatches: [String] = []
        for days in stride(from: Self.gregorianReform, through: Self.lastFourDigitDay, by: 3) {
            let parts = calendar.dateComponents([.year, .month, .day], from: Date(timeIntervalSince1970: Double(days) * 86_400))
            let expected = (parts.year!, parts.month!, parts.day!)
            let got = CivilDate.civil(days: days)
            let back = CivilDate.days(year: expected.0, month: expected.1, day: expected.2)
            if got != expected || back != days {
                mismatches.append("day \(days): Foundation \(expected), civil \(got), days \(back)")
                if mismatches.count == 10 { break }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "\n"))")
    }

    /// Days counted one by one with the leap rule written out, from 10000 BC
    /// (year -9999) to 10000-12-31: every negative year, year 0 and the years
    /// before the reform, where Foundation's calendar is Julian.
    @Test("every day from year -9999 to 10000 matches a day-by-day proleptic count, both ways")
    func againstProlepticCount() {
        func leap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }
        let lengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        // Days from 0000-01-01 to 1970-01-01: 1970 years, 478 of them leap (493 multiples of 4
        // from 0 to 1968, less the 15 centuries not divisible by 400).
        var days = -(1970 * 365 + 478)
        for year in -9999..<0 { days -= leap(year) ? 366 : 365 }
        var mismatches: [String] = []
        outer: for year in -9999...10000 {
            for month in 1...12 {
                let length = month == 2 && leap(year) ? 29 : lengths[month - 1]
                if CivilDate.daysInMonth(year: year, month: month) != length {
                    mismatches.append("\(year)-\(month): \(CivilDate.daysInMonth(year: year, month: month)) days, counted \(length)")
                }
                for day in 1...length {
                    let got = CivilDate.civil(days: days)
                    let back = CivilDate.days(year: year, month: month, day: day)
                    if got != (year, month, day) || back != days {
                        mismatches.append("day \(days): counted \(year)-\(month)-\(day), civil \(got), days \(back)")
                        if mismatches.count == 10 { break outer }
                    }
                    days += 1
                }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "\n"))")
        #expect(CivilDate.civil(days: days) == (10001, 1, 1))
    }

    @Test("far days round-trip: ±10⁹ years either side of the epoch")
    func farDays() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<100_000 {
            let days = Int.random(in: -365_242_500_000...365_242_500_000, using: &generator)
            let (year, month, day) = CivilDate.civil(days: days)
            #expect((1...12).contains(month) && (1...CivilDate.daysInMonth(year: year, month: month)).contains(day))
            #expect(CivilDate.days(year: year, month: month, day: day) == days)
        }
    }

    @Test("leap years: divisible by 4, except centuries not divisible by 400")
    func leapYears() {
        #expect(CivilDate.isLeapYear(2000) && CivilDate.isLeapYear(2024) && CivilDate.isLeapYear(0) && CivilDate.isLeapYear(-4))
        #expect(!CivilDate.isLeapYear(1900) && !CivilDate.isLeapYear(2100) && !CivilDate.isLeapYear(2023) && !CivilDate.isLeapYear(-100))
    }
}
