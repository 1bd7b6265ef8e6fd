import FerryPluginKit
import Foundation

/// Wall-clock times (their calendar is FerryPluginKit's `CivilDate`), and the mapping from a
/// wall-clock minute in a time zone to the instant it happens (the DST policy lives here).
///
/// Wall-clock times are counted as seconds since 1970-01-01 00:00 *local*, so stepping a day
/// or a minute is plain integer arithmetic; only the final mapping asks the time zone.
enum WallClock {
    /// 0 = Sunday.
    static func weekday(days: Int) -> Int {
        let w = (days + 4) % 7  // 1970-01-01 was a Thursday
        return w < 0 ? w + 7 : w
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
