import Foundation

/// A cron schedule: a standard 5-field cron expression evaluated in one time zone.
///
/// ## Syntax
///
/// Five fields separated by spaces or tabs: `minute hour day-of-month month day-of-week`.
///
/// | field        | values | names (case-insensitive)            |
/// |--------------|--------|-------------------------------------|
/// | minute       | 0-59   |                                     |
/// | hour         | 0-23   |                                     |
/// | day of month | 1-31   |                                     |
/// | month        | 1-12   | `jan` … `dec`                       |
/// | day of week  | 0-7    | `sun` … `sat` (0 and 7 are Sunday)  |
///
/// Each field is a comma-separated list of elements:
/// - `*` — every value;
/// - `a` — one value (number or name);
/// - `a-b` — `a` to `b` inclusive; ranges do not wrap around (`22-2` is an error), except that a
///   day-of-week range may end on Sunday written as `0`/`sun` (`fri-sun` = 5-7);
/// - `*/n`, `a-b/n` — every `n`th value of the range, starting at its first value;
/// - `a/n` — `a` to the end of the field's range, every `n`th (`5/15` in minutes = 5,20,35,50).
///   For day of week "the end" is 6 (Saturday), so `5/1` is Friday and Saturday, as in croniter.
///
/// Macros: `@yearly` and `@annually` (`0 0 1 1 *`), `@monthly` (`0 0 1 * *`), `@weekly`
/// (`0 0 * * 0`), `@daily` and `@midnight` (`0 0 * * *`), `@hourly` (`0 * * * *`).
/// There is no seconds field, and no `L`, `W`, `#`, `?` or `@reboot`.
///
/// `@every DURATION` (as in Go's robfig/cron) fires at a fixed interval instead: `@every 30s`,
/// `@every 5m`, `@every 1h30m` (units `s`, `m`, `h`; 1 s to 24 h). Fire times are multiples of
/// the interval since the Unix epoch, not since the daemon started, so every replica of a
/// daemon names the same ticks — which is what lets them agree on who fires one. The time
/// zone does not apply.
///
/// A time matches when minute, hour and month match and the day matches. The day rule is
/// Vixie cron's: if day of month and day of week are both restricted, a day matches when
/// EITHER matches (`0 0 13 * fri` fires on every 13th and every Friday); if either of them
/// starts with `*` (`*` or `*/n`), both must match (`0 0 */2 * mon` fires on Mondays that
/// fall on an odd day of the month). croniter by default only treats a full field as
/// unrestricted and would OR the latter; its `implement_cron_bug=True` is our rule.
///
/// A range whose ends are equal is that one value (`5-5` = 5), as in Vixie cron; croniter 7
/// reads a written equal range as the whole field.
///
/// ## Time zones and daylight saving time
///
/// Fields are matched against the wall-clock time in ``timeZone``; fire times are whole minutes.
/// - **Gap** (clocks spring forward; e.g. 02:00-02:59 does not exist in New York on the second
///   Sunday in March): if the hour field allows every hour (`*`, `*/1`, `0-23`), the missing
///   wall times are skipped, since the schedule fires in the next hour anyway (`30 * * * *`
///   runs at 01:30 EST and then 03:30 EDT). Otherwise every matching wall time inside the
///   gap fires once, together, at the instant of the transition (03:00 local, the first
///   existing minute after the gap): a daily `30 2 * * *` still runs that day, at 03:00, and
///   `*/15 2 * * *` runs once. This is what croniter does (and what Vixie cron does for
///   "fixed-time" jobs).
/// - **Overlap** (clocks fall back; e.g. 01:00-01:59 happens twice in New York on the first
///   Sunday in November): each wall time fires once, at its first occurrence (the daylight-time
///   one). So `30 1 * * *` runs once that night, and `0 * * * *` runs at 01:00 EDT and next at
///   02:00 EST, two real hours later. croniter instead fires at both occurrences; we do not,
///   so that a nightly job does not run twice.
///
/// ## Limits
///
/// ``next(after:)`` looks at most 8 years ahead (the longest gap between two February 29ths),
/// and returns nil for expressions that never match, such as `0 0 30 2 *`.
public struct CronSchedule: Sendable, Equatable, CustomStringConvertible {
    /// The expression as written.
    public let expression: String
    public let timeZone: TimeZone

    let minutes: CronField
    let hours: CronField
    let daysOfMonth: CronField
    let months: CronField
    let daysOfWeek: CronField
    /// Seconds between fires, for `@every`; nil for a cron expression.
    public let interval: Int?

    static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *",
        "@annually": "0 0 1 1 *",
        "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *",
        "@midnight": "0 0 * * *",
        "@hourly": "0 * * * *",
    ]

    public init(_ expression: String, timeZone: TimeZone = .gmt) throws(CronError) {
        self.expression = expression
        self.timeZone = timeZone

        let trimmed = expression.trimmingCharacters(in: .whitespaces)
        if trimmed.lowercased().hasPrefix("@every") {
            let spec = trimmed.dropFirst("@every".count).trimmingCharacters(in: .whitespaces)
            guard let seconds = Self.parseInterval(spec), (1...86400).contains(seconds) else {
                throw CronError(expression: expression, field: nil, token: spec, offset: 0,
                                reason: "@every needs a duration from 1s to 24h such as 30s, 5m or 1h30m, found \"\(spec)\"")
            }
            interval = seconds
            let every = try! CronField.parse("*", kind: .minute, offset: 0, expression: "*")
            (minutes, hours, daysOfMonth, months, daysOfWeek) = (every, every, every, every, every)
            return
        }
        interval = nil

        // Fields with the character offset at which each starts.
        var fields: [(text: Substring, offset: Int)] = []
        var offset = 0
        var start: Int?
        var fieldStart = expression.startIndex
        for (index, character) in zip(expression.indices, expression) {
            if character == " " || character == "\t" {
                if let s = start { fields.append((expression[fieldStart..<index], s)); start = nil }
            } else if start == nil {
                start = offset
                fieldStart = index
            }
            offset += 1
        }
        if let s = start { fields.append((expression[fieldStart...], s)) }

        if fields.count == 1, fields[0].text.hasPrefix("@") {
            let macro = fields[0].text.lowercased()
            guard let body = Self.macros[macro] else {
                throw CronError(expression: expression, field: nil, token: String(fields[0].text), offset: fields[0].offset,
                                reason: "unknown macro \"\(fields[0].text)\"; expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly")
            }
            fields = body.split(separator: " ").map { ($0, fields[0].offset) }
        }
        guard fields.count == 5 else {
            let found = fields.isEmpty ? "an empty expression" : "\(fields.count) field\(fields.count == 1 ? "" : "s")"
            let extra = fields.count == 6 ? " (there is no seconds or year field)" : ""
            throw CronError(expression: expression, field: nil, token: expression, offset: 0,
                            reason: "expected 5 fields (minute hour day-of-month month day-of-week) or a macro such as @daily, found \(found)\(extra)")
        }

        var parsed: [CronField] = []
        for (kind, field) in zip(CronFieldKind.allCases, fields) {
            parsed.append(try CronField.parse(field.text, kind: kind, offset: field.offset, expression: expression))
        }
        minutes = parsed[0]
        hours = parsed[1]
        daysOfMonth = parsed[2]
        months = parsed[3]
        daysOfWeek = parsed[4]
    }

    /// `1h30m` → 5400; nil when it is not a sequence of number+unit (s, m, h).
    static func parseInterval(_ text: String) -> Int? {
        var total = 0
        var digits = ""
        for character in text {
            if character.isASCII, character.isNumber {
                digits.append(character)
                continue
            }
            guard let value = Int(digits), value <= 86400 else { return nil }
            switch character {
            case "s": total += value
            case "m": total += value * 60
            case "h": total += value * 3600
            default: return nil
            }
            digits = ""
        }
        return digits.isEmpty && !text.isEmpty ? total : nil
    }

    public var description: String {
        timeZone == .gmt ? expression : "\(expression) (\(timeZone.identifier))"
    }

    /// Whether a calendar day matches the day-of-month and day-of-week fields (see the type's
    /// doc comment for the OR rule). `weekday` is 0 for Sunday.
    func dayMatches(day: Int, weekday: Int) -> Bool {
        let domMatches = daysOfMonth.contains(day)
        let dowMatches = daysOfWeek.contains(weekday)
        if daysOfMonth.startsWithStar || daysOfWeek.startsWithStar { return domMatches && dowMatches }
        return domMatches || dowMatches
    }
}
