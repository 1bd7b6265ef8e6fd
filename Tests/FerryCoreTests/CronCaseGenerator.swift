import Foundation

/// The deterministic set of (expression, time zone, start) cases the croniter cross-check
/// runs: a fixed list aimed at DST transitions and edge cases, plus expressions from a
/// seeded generator that uses every feature of the syntax.
enum CronCaseGenerator {
    typealias Case = CronScheduleTests.ReferenceCase

    static let zones = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Sydney"]

    /// Starts just before, inside and after the 2024/2025 DST changes of New York (Mar 10,
    /// Nov 3 at 06:00/07:00Z), Berlin (Mar 31, Oct 27 at 01:00Z) and Sydney (Apr 7, Oct 6),
    /// plus the odd ones: Lord Howe's 30-minute shift, Santiago's change at midnight (the
    /// day starts at 01:00), Dublin (negative DST in tzdata) and Apia, which skipped
    /// 30 December 2011 entirely.
    static let dstStarts: [String: [String]] = [
        "America/New_York": ["2024-03-10T06:10:00Z", "2024-03-10T06:59:30Z", "2024-11-03T04:50:00Z",
                             "2024-11-03T06:20:00Z", "2025-03-09T04:00:00Z", "2025-11-02T05:45:00Z"],
        "Europe/Berlin": ["2024-03-31T00:20:00Z", "2024-03-30T23:00:00Z", "2024-10-27T00:10:00Z",
                          "2024-10-27T01:15:00Z", "2025-03-30T00:45:00Z", "2025-10-26T00:30:00Z"],
        "Australia/Sydney": ["2024-04-06T15:10:00Z", "2024-04-06T16:20:00Z", "2024-10-05T15:30:00Z"],
        "Australia/Lord_Howe": ["2024-04-06T14:10:00Z", "2024-04-06T14:50:00Z", "2024-10-05T15:00:00Z", "2024-10-05T15:20:00Z"],
        "America/Santiago": ["2024-09-07T03:10:00Z", "2024-09-08T03:50:00Z", "2024-04-07T02:10:00Z", "2024-04-07T02:50:00Z"],
        "Pacific/Apia": ["2011-12-29T08:00:00Z", "2011-12-29T09:50:00Z"],
        "Europe/Dublin": ["2024-03-31T00:50:00Z", "2024-10-27T00:10:00Z", "2024-10-27T01:10:00Z"],
    ]

    /// Expressions whose next five fires land on a DST change when started near one.
    static let dstExpressions = [
        "*/15 * * * *", "0 * * * *", "30 * * * *", "*/20 1-3 * * *", "30 2 * * *", "30 1 * * *",
        "0 2 * * *", "15,45 1-3 * * *", "0 */2 * * *", "59 1 * * *", "0 3 * * *", "*/7 2 * * *",
        "0 1,2,3 * * *", "10 2 * * sun", "0 2 * * 0", "0 0 * * *", "*/10 0 * * *", "30 0 * * *", "0 23 * * *", "15 */3 * * *", "@daily", "0 0 30 12 *", "0 12 * * *",
    ]

    /// Edge cases worth pinning in every zone.
    static let fixed = [
        "@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually",
        "0 0 13 * fri", "0 0 */2 * mon", "0 0 1-31/2 * mon", "0 0 1,15 * sun", "5/15 * * * *",
        "0 0 * * 7", "0 0 * * 0-7/2", "0 0 * * */3", "0 0 * * 5/1", "0 0 * * fri-sun", "0 0 * * SAT,sun",
        "0 0 1 */5 *", "0 0 1 2/3 *", "0 0 1 jan-mar/2 *", "0 0 31 * *", "0 0 29 2 *", "0 12 * JUN-aug MON-fri",
        "59 23 31 12 *", "0 0 30 2 *", "0 0 31 4,6 *", "0 0 5/10 * *", "0-59/30 0-23/6 * * *", "1-4,7 */5 3,4 * *",
    ]

    static func cases() -> [Case] {
        var cases: [Case] = []
        for (zone, starts) in dstStarts.sorted(by: { $0.key < $1.key }) {
            for expression in dstExpressions {
                for start in starts { cases.append(Case(expr: expression, tz: zone, start: start)) }
            }
        }
        var random = SplitMix64(seed: 0xF3_77E7)
        for expression in fixed {
            for zone in ["UTC", "America/New_York", "Asia/Kolkata"] {
                cases.append(Case(expr: expression, tz: zone, start: randomStart(&random)))
            }
        }
        for _ in 0..<300 {
            let zone = zones[random.below(zones.count)]
            cases.append(Case(expr: randomExpression(&random), tz: zone, start: randomStart(&random)))
        }
        return cases
    }

    /// A start between 2024 and 2027, sometimes with seconds, sometimes on the hour.
    static func randomStart(_ random: inout SplitMix64) -> String {
        let base = 1_704_067_200  // 2024-01-01T00:00:00Z
        var seconds = base + random.below(4 * 365 * 86400)
        switch random.below(3) {
        case 0: seconds -= seconds % 3600
        case 1: seconds -= seconds % 60
        default: break
        }
        return Date(timeIntervalSince1970: TimeInterval(seconds)).formatted(.iso8601)
    }

    static func randomExpression(_ random: inout SplitMix64) -> String {
        // Sparse minutes and hours would make 5 fires span years; keep some fields dense.
        [
            field(&random, min: 0, max: 59, names: nil),
            field(&random, min: 0, max: 23, names: nil),
            field(&random, min: 1, max: 31, names: nil),
            field(&random, min: 1, max: 12, names: months),
            field(&random, min: 0, max: 7, names: weekdays),
        ].joined(separator: " ")
    }

    static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    static let weekdays = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

    static func field(_ random: inout SplitMix64, min: Int, max: Int, names: [String]?) -> String {
        if random.below(3) == 0 { return "*" }
        let count = random.below(4) == 0 ? 2 + random.below(2) : 1
        return (0..<count).map { _ in element(&random, min: min, max: max, names: names) }.joined(separator: ",")
    }

    static func element(_ random: inout SplitMix64, min: Int, max: Int, names: [String]?) -> String {
        // Day of week: `*` and `a/n` run to 6 (croniter), and croniter mishandles ranges that
        // start at 7 (`7-7` matches every day but Monday) — so starts stay within 0-6.
        let isWeekday = max == 7
        let startMax = isWeekday ? 6 : max
        func value(_ v: Int) -> String {
            guard let names, random.below(3) == 0, !(isWeekday && v == 7) else { return String(v) }
            let name = names[v - min]
            switch random.below(3) {
            case 0: return name.uppercased()
            case 1: return name.prefix(1).uppercased() + name.dropFirst()
            default: return name
            }
        }
        let step = 1 + random.below(Swift.max(2, (max - min) / 3))
        switch random.below(6) {
        case 0:
            return value(min + random.below(max - min + 1))
        case 1:
            // croniter 7 reads a written equal range (`5-5`, `Jan-Jan`) as the whole field;
            // we read it as the one value, like Vixie cron, so ranges here are never equal.
            let low = min + random.below(startMax - min)
            let high = low + 1 + random.below(max - low)
            return "\(value(low))-\(value(high))"
        case 2:
            return "*/\(step)"
        case 3:
            // croniter 7 reads a written equal range (`5-5`, `Jan-Jan`) as the whole field;
            // we read it as the one value, like Vixie cron, so ranges here are never equal.
            let low = min + random.below(startMax - min)
            let high = low + 1 + random.below(max - low)
            return "\(value(low))-\(value(high))/\(step)"
        case 4:
            return "\(value(min + random.below(startMax - min + 1)))/\(step)"
        default:
            return String(min + random.below(startMax - min + 1))
        }
    }
}

/// Small, seedable, and the same on every platform (unlike SystemRandomNumberGenerator).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}
