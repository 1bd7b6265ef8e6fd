import FerryCore
import Foundation
import Testing

@Suite("CronSchedule")
struct CronScheduleTests {
    static let utc = TimeZone(identifier: "UTC")!
    static let newYork = TimeZone(identifier: "America/New_York")!
    static let berlin = TimeZone(identifier: "Europe/Berlin")!
    static let kolkata = TimeZone(identifier: "Asia/Kolkata")!

    static func date(_ iso: String) -> Date { try! Date(iso, strategy: .iso8601) }
    static func iso(_ date: Date) -> String { date.formatted(.iso8601) }

    // MARK: - Parse errors

    @Test("bad expressions are refused with field, token and offset", arguments: [
        ("", #"cron "": expected 5 fields (minute hour day-of-month month day-of-week) or a macro such as @daily, found an empty expression (at offset 0)"#),
        ("* * * *", #"cron "* * * *": expected 5 fields (minute hour day-of-month month day-of-week) or a macro such as @daily, found 4 fields (at offset 0)"#),
        ("0 * * * * *", #"cron "0 * * * * *": expected 5 fields (minute hour day-of-month month day-of-week) or a macro such as @daily, found 6 fields (there is no seconds or year field) (at offset 0)"#),
        ("*/0 * * * *", #"cron "*/0 * * * *": minute "*/0": step must be at least 1 (at offset 0)"#),
        ("*/x * * * *", #"cron "*/x * * * *": minute "x": step must be a whole number, found "x" (at offset 2)"#),
        ("60 * * * *", #"cron "60 * * * *": minute "60": 60 is out of range 0-59 (at offset 0)"#),
        ("0  24 * * *", #"cron "0  24 * * *": hour "24": 24 is out of range 0-23 (at offset 3)"#),
        ("0 0 0 * *", #"cron "0 0 0 * *": day of month "0": 0 is out of range 1-31 (at offset 4)"#),
        ("0 0 1 1-13 *", #"cron "0 0 1 1-13 *": month "13": 13 is out of range 1-12 (at offset 8)"#),
        ("0 0 * * 8", #"cron "0 0 * * 8": day of week "8": 8 is out of range 0-7 (at offset 8)"#),
        ("0 0 * foo *", #"cron "0 0 * foo *": month "foo": not a number or a month name (jan-dec) (at offset 6)"#),
        ("0 0 * * mon-frx", #"cron "0 0 * * mon-frx": day of week "frx": not a number or a weekday name (sun-sat) (at offset 12)"#),
        ("mon * * * *", #"cron "mon * * * *": minute "mon": not a number (only month and day of week accept names) (at offset 0)"#),
        ("0 22-2 * * *", #"cron "0 22-2 * * *": hour "22-2": range start 22 is after its end 2; ranges do not wrap around, write a list instead (e.g. 22-23,0-2) (at offset 2)"#),
        ("1,,2 * * * *", #"cron "1,,2 * * * *": minute "": empty list element (two commas in a row, or a comma at the start or end) (at offset 2)"#),
        ("0 0 * * 1#2", ##"cron "0 0 * * 1#2": day of week "1#2": "#" (a Quartz/croniter extension) is not supported; use numbers, names, *, -, / and , (at offset 8)"##),
        ("0 0 L * *", #"cron "0 0 L * *": day of month "L": "L" (a Quartz/croniter extension) is not supported; use numbers, names, *, -, / and , (at offset 4)"#),
        ("0 0 1- * *", #"cron "0 0 1- * *": day of month "": missing number (at offset 6)"#),
        ("@often", #"cron "@often": unknown macro "@often"; expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly (at offset 0)"#),
    ])
    func parseErrors(expression: String, message: String) {
        #expect(throws: CronError.self) { try CronSchedule(expression) }
        do {
            _ = try CronSchedule(expression)
        } catch {
            #expect(error.description == message)
        }
    }

    // MARK: - Hand-checked cases

    struct Case: Sendable, CustomTestStringConvertible {
        var expression: String
        var timeZone: TimeZone
        var start: String
        var expected: [String]
        var testDescription: String { "\(expression) in \(timeZone.identifier) after \(start)" }
    }

    static let handChecked: [Case] = [
        // Steps from a non-zero start, and a start with seconds: strictly after, seconds zero.
        Case(expression: "*/15 * * * *", timeZone: utc, start: "2024-01-01T00:07:30Z",
             expected: ["2024-01-01T00:15:00Z", "2024-01-01T00:30:00Z", "2024-01-01T00:45:00Z"]),
        Case(expression: "5/15 * * * *", timeZone: utc, start: "2024-01-01T00:50:00Z",
             expected: ["2024-01-01T01:05:00Z", "2024-01-01T01:20:00Z", "2024-01-01T01:35:00Z"]),
        // Strictly after a fire time.
        Case(expression: "0 * * * *", timeZone: utc, start: "2024-01-01T05:00:00Z",
             expected: ["2024-01-01T06:00:00Z"]),
        // Both day fields restricted: 13th OR Friday (2024-01-05 and 01-12 are Fridays).
        Case(expression: "0 0 13 * fri", timeZone: utc, start: "2024-01-01T00:00:00Z",
             expected: ["2024-01-05T00:00:00Z", "2024-01-12T00:00:00Z", "2024-01-13T00:00:00Z", "2024-01-19T00:00:00Z"]),
        // Vixie's rule: a day field starting with `*` is unrestricted, so this is AND (Mondays on
        // odd days: Jan 8 and 22 are even), while `1-31/2` is restricted, so OR.
        Case(expression: "0 0 */2 * mon", timeZone: utc, start: "2024-01-01T00:00:00Z",
             expected: ["2024-01-15T00:00:00Z", "2024-01-29T00:00:00Z"]),
        Case(expression: "0 0 1-31/2 * mon", timeZone: utc, start: "2024-01-01T00:00:00Z",
             expected: ["2024-01-03T00:00:00Z", "2024-01-05T00:00:00Z", "2024-01-07T00:00:00Z", "2024-01-08T00:00:00Z", "2024-01-09T00:00:00Z"]),
        // An equal range is its one value (croniter 7 reads it as the whole field).
        Case(expression: "0 0 5-5 * *", timeZone: utc, start: "2024-01-01T00:00:00Z",
             expected: ["2024-01-05T00:00:00Z", "2024-02-05T00:00:00Z"]),
        // Only day of week restricted: AND (Mondays in January 2024).
        Case(expression: "30 9 * JAN Mon", timeZone: utc, start: "2024-01-20T00:00:00Z",
             expected: ["2024-01-22T09:30:00Z", "2024-01-29T09:30:00Z", "2025-01-06T09:30:00Z"]),
        // Weekdays from a Friday evening.
        Case(expression: "0 9 * * mon-fri", timeZone: utc, start: "2024-01-05T10:00:00Z",
             expected: ["2024-01-08T09:00:00Z", "2024-01-09T09:00:00Z"]),
        // 7 is Sunday; a range may end on sun.
        Case(expression: "0 12 * * 7", timeZone: utc, start: "2024-01-01T00:00:00Z", expected: ["2024-01-07T12:00:00Z"]),
        Case(expression: "0 0 * * fri-sun", timeZone: utc, start: "2024-01-01T00:00:00Z",
             expected: ["2024-01-05T00:00:00Z", "2024-01-06T00:00:00Z", "2024-01-07T00:00:00Z", "2024-01-12T00:00:00Z"]),
        // Lists of ranges with steps.
        Case(expression: "0 1-5/2,22 * * *", timeZone: utc, start: "2024-01-01T00:00:00Z",
             expected: ["2024-01-01T01:00:00Z", "2024-01-01T03:00:00Z", "2024-01-01T05:00:00Z", "2024-01-01T22:00:00Z", "2024-01-02T01:00:00Z"]),
        // Macros.
        Case(expression: "@weekly", timeZone: utc, start: "2024-01-01T00:00:00Z", expected: ["2024-01-07T00:00:00Z"]),
        Case(expression: "@monthly", timeZone: utc, start: "2024-01-31T23:59:00Z", expected: ["2024-02-01T00:00:00Z"]),
        Case(expression: "@ANNUALLY", timeZone: utc, start: "2024-01-01T00:00:00Z", expected: ["2025-01-01T00:00:00Z"]),
        Case(expression: "@hourly", timeZone: kolkata, start: "2024-01-01T00:00:00Z",
             expected: ["2024-01-01T00:30:00Z", "2024-01-01T01:30:00Z"]),
        // Leap days: the next Feb 29, and the 8-year gap across 2100.
        Case(expression: "0 0 29 2 *", timeZone: utc, start: "2024-03-01T00:00:00Z", expected: ["2028-02-29T00:00:00Z"]),
        Case(expression: "0 0 29 2 *", timeZone: utc, start: "2097-01-01T00:00:00Z", expected: ["2104-02-29T00:00:00Z"]),
        // Kolkata is UTC+5:30 all year.
        Case(expression: "30 5 * * *", timeZone: kolkata, start: "2024-06-01T00:00:00Z", expected: ["2024-06-02T00:00:00Z"]),
        // New York spring forward, 2024-03-10 02:00 EST -> 03:00 EDT (07:00Z): the missing
        // 02:30 fires at the transition; */20 in hour 2 fires once.
        Case(expression: "30 2 * * *", timeZone: newYork, start: "2024-03-09T12:00:00Z",
             expected: ["2024-03-10T07:00:00Z", "2024-03-11T06:30:00Z"]),
        Case(expression: "*/20 2 * * *", timeZone: newYork, start: "2024-03-10T00:00:00Z",
             expected: ["2024-03-10T07:00:00Z", "2024-03-11T06:00:00Z"]),
        // ... but with every hour allowed the missing 02:30 is skipped: 01:30 EST, 03:30 EDT.
        Case(expression: "30 * * * *", timeZone: newYork, start: "2024-03-10T06:10:00Z",
             expected: ["2024-03-10T06:30:00Z", "2024-03-10T07:30:00Z"]),
        // New York fall back, 2024-11-03 02:00 EDT -> 01:00 EST (06:00Z): 01:30 fires once
        // (at EDT), hourly skips the second 01:00.
        Case(expression: "30 1 * * *", timeZone: newYork, start: "2024-11-02T12:00:00Z",
             expected: ["2024-11-03T05:30:00Z", "2024-11-04T06:30:00Z"]),
        Case(expression: "0 * * * *", timeZone: newYork, start: "2024-11-03T04:30:00Z",
             expected: ["2024-11-03T05:00:00Z", "2024-11-03T07:00:00Z", "2024-11-03T08:00:00Z"]),
        // Starting inside the second 01:xx: 01:30 already fired at its first occurrence.
        Case(expression: "30 1 * * *", timeZone: newYork, start: "2024-11-03T06:10:00Z",
             expected: ["2024-11-04T06:30:00Z"]),
        // Berlin fall back, 2024-10-27 03:00 CEST -> 02:00 CET (01:00Z).
        Case(expression: "0 2 * * *", timeZone: berlin, start: "2024-10-26T12:00:00Z",
             expected: ["2024-10-27T00:00:00Z", "2024-10-28T01:00:00Z"]),
    ]

    @Test("hand-checked next fire times", arguments: handChecked)
    func handCheckedCases(_ testCase: Case) throws {
        let schedule = try CronSchedule(testCase.expression, timeZone: testCase.timeZone)
        let fires = schedule.next(after: Self.date(testCase.start), count: testCase.expected.count).map(Self.iso)
        #expect(fires == testCase.expected)
    }

    @Test("an expression that never matches returns nil, quickly")
    func neverMatches() throws {
        let clock = ContinuousClock()
        let schedule = try CronSchedule("0 0 30 2 *")
        var result: Date? = Date()
        let elapsed = clock.measure { result = schedule.next(after: Self.date("2024-01-01T00:00:00Z")) }
        #expect(result == nil)
        #expect(schedule.next(after: Self.date("2024-01-01T00:00:00Z"), count: 5).isEmpty)
        #expect(elapsed < .milliseconds(200), "searching 8 years took \(elapsed)")
    }

    @Test("description, equality and the default time zone")
    func descriptionAndEquality() throws {
        #expect(try CronSchedule("0 3 * * *").description == "0 3 * * *")
        #expect(try CronSchedule("0 3 * * *", timeZone: Self.berlin).description == "0 3 * * * (Europe/Berlin)")
        #expect(try CronSchedule("0 3 * * *") == CronSchedule("0 3 * * *", timeZone: .gmt))
        #expect(try CronSchedule("0 3 * * *") != CronSchedule("0 3 * * *", timeZone: Self.berlin))
        #expect(try CronSchedule("0 3 * * *") != CronSchedule("0 4 * * *"))
    }

    // MARK: - Cross-check against croniter

    struct ReferenceCase: Codable {
        var expr: String
        var tz: String
        var start: String
    }

    struct ReferenceAnswer: Codable {
        var next: [String]?
        var error: String?
    }

    @Test("next 5 fire times agree with croniter over at least 200 expressions")
    func crossCheckWithCroniter() throws {
        let cases = CronCaseGenerator.cases()
        #expect(cases.count >= 200)

        let venv = ProcessInfo.processInfo.environment["FERRY_VENV"] ?? TestSupport.repoRoot.appendingPathComponent(".venv").path
        let python = "\(venv)/bin/python"
        let script = TestSupport.repoRoot.appendingPathComponent("scripts/cron_reference.py").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            Issue.record("no Python at \(python): run scripts/setup.sh (or set FERRY_VENV) to create the venv with croniter")
            return
        }

        let directory = try TestSupport.temporaryDirectory("ferry-cron")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let input = "\(directory)/cases.jsonl"
        let encoder = JSONEncoder()
        let lines = try cases.map { String(decoding: try encoder.encode($0), as: UTF8.self) }
        try (lines.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script]
        process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: input))
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            Issue.record("""
                scripts/cron_reference.py failed (status \(process.terminationStatus)): \(String(decoding: errData, as: UTF8.self))
                croniter must be installed in \(venv): run scripts/setup.sh
                """)
            return
        }

        let answers = try String(decoding: outData, as: UTF8.self).split(separator: "\n")
            .map { try JSONDecoder().decode(ReferenceAnswer.self, from: Data($0.utf8)) }
        try #require(answers.count == cases.count, "croniter answered \(answers.count) of \(cases.count) cases")

        var agreed = 0
        var neverMatching = 0
        for (testCase, answer) in zip(cases, answers) {
            let schedule = try CronSchedule(testCase.expr, timeZone: TimeZone(identifier: testCase.tz)!)
            let ours = schedule.next(after: Self.date(testCase.start), count: 5).map(Self.iso)
            if let expected = answer.next {
                #expect(ours == expected, "\(testCase.expr) in \(testCase.tz) after \(testCase.start)")
                if ours == expected { agreed += 1 }
            } else if answer.error?.hasPrefix("CroniterBadDateError") == true, ours.isEmpty {
                agreed += 1  // never matches (e.g. 30 February): croniter gives up, we return nil
                neverMatching += 1
            } else {
                Issue.record("croniter refused \(testCase.expr) in \(testCase.tz): \(answer.error ?? "?")")
            }
        }
        #expect(agreed == cases.count, "\(agreed) of \(cases.count) agreed")
        // Most cases must have real fire times, or the comparison proves little.
        #expect(neverMatching <= cases.count / 50, "\(neverMatching) of \(cases.count) cases never match")
        #expect(Set(cases.map(\.expr)).count >= 200)
    }

    @Test("@every fires on multiples of the interval since the epoch, whatever the time zone; bad durations are refused")
    func every() throws {
        let two = try CronSchedule("@every 2s")
        #expect(two.interval == 2)
        #expect(two.next(after: Date(timeIntervalSince1970: 10)) == Date(timeIntervalSince1970: 12))
        #expect(two.next(after: Date(timeIntervalSince1970: 10.5)) == Date(timeIntervalSince1970: 12))
        #expect(two.next(after: Date(timeIntervalSince1970: 11.999)) == Date(timeIntervalSince1970: 12))
        let long = try CronSchedule("@every 1h30m", timeZone: TimeZone(identifier: "Asia/Kolkata")!)
        #expect(long.interval == 5400)
        #expect(long.next(after: Date(timeIntervalSince1970: 5400 * 3 + 1)) == Date(timeIntervalSince1970: 5400 * 4))
        #expect(try CronSchedule("@every 5m").next(after: Date(timeIntervalSince1970: 1_800_000_000), count: 3).map(\.timeIntervalSince1970)
            == [1_800_000_300, 1_800_000_600, 1_800_000_900])
        for bad in ["@every", "@every 0s", "@every 25h", "@every 5x", "@every 5", "@every s", "@every -5s"] {
            #expect(throws: CronError.self, "\(bad)") { try CronSchedule(bad) }
        }
        #expect(try CronSchedule("@every 2s") != CronSchedule("@every 3s"))
    }
}
