import FerryCore
import Foundation

/// The cron parser (`CronSchedule.init`) and its fire-time search. For an
/// expression that parses, in a few time zones (one without DST, one with,
/// one with a 30-minute shift, one that skipped a whole day) and from a few
/// starting instants (around DST changes, before 1970, fractional seconds):
/// - `next(after:)` is strictly later than the given time and a whole second
///   (a whole minute for a cron expression);
/// - the fire after it is later still;
/// - asked again from just before that fire, the answer is the same fire.
func fuzzCron(_ data: [UInt8]) throws {
    guard data.count <= 256 else { return }
    let text = String(decoding: data, as: UTF8.self)
    for zone in cronZones {
        guard let schedule = try? CronSchedule(text, timeZone: zone) else { return }
        for start in cronStarts {
            guard let first = schedule.next(after: start) else { continue }
            let where_ = "'\(text)' in \(zone.identifier) after \(start.timeIntervalSince1970)"
            try fuzzRequire(first > start, "cron", "\(where_): next is \(first.timeIntervalSince1970), not later")
            let seconds = first.timeIntervalSince1970
            try fuzzRequire(seconds.rounded(.down) == seconds, "cron", "\(where_): next \(seconds) is not a whole second")
            if schedule.interval == nil {
                try fuzzRequire(Int(seconds).isMultiple(of: 60), "cron", "\(where_): next \(seconds) is not a whole minute")
            }
            if let second = schedule.next(after: first) {
                try fuzzRequire(second > first, "cron", "\(where_): the fire after \(seconds) is \(second.timeIntervalSince1970)")
            }
            let again = schedule.next(after: first.addingTimeInterval(-1))
            try fuzzRequire(
                again == first, "cron",
                "\(where_): next is \(seconds), but next after \(seconds - 1) is \(again.map { "\($0.timeIntervalSince1970)" } ?? "none")")
        }
    }
}

private let cronZones: [TimeZone] = ["UTC", "America/New_York", "Australia/Lord_Howe", "Pacific/Apia"].compactMap(TimeZone.init(identifier:))

private let cronStarts: [Date] = [
    0, 1_772_953_170, 1_793_511_000, 1_325_152_800, -86_400.5, 4_107_542_399.25,
].map(Date.init(timeIntervalSince1970:))
