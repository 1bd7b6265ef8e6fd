/// One parsed field of a cron expression: the set of values it allows, as a bit set
/// (bit `v` set when value `v` is allowed), and whether it was written starting with `*`.
struct CronField: Sendable, Equatable {
    var bits: UInt64
    /// Vixie cron's test for an unrestricted day field (its DOM_STAR/DOW_STAR flags): the
    /// field starts with `*`, so `*/2` counts as unrestricted. It decides whether day of
    /// month and day of week are OR-ed (both restricted) or AND-ed.
    var startsWithStar: Bool

    func contains(_ value: Int) -> Bool { bits & (1 << UInt64(value)) != 0 }

    /// The smallest allowed value that is `>= value`, or nil.
    func next(from value: Int) -> Int? {
        guard value < 64 else { return nil }
        let remaining = bits & ~((UInt64(1) << UInt64(value)) &- 1)
        return remaining == 0 ? nil : remaining.trailingZeroBitCount
    }
}

/// What each of the five positions accepts.
enum CronFieldKind: Int, CaseIterable, Sendable {
    case minute, hour, dayOfMonth, month, dayOfWeek

    var name: String {
        switch self {
        case .minute: "minute"
        case .hour: "hour"
        case .dayOfMonth: "day of month"
        case .month: "month"
        case .dayOfWeek: "day of week"
        }
    }

    /// Bounds a written value may take. Day of week accepts 7 for Sunday.
    var bounds: ClosedRange<Int> {
        switch self {
        case .minute: 0...59
        case .hour: 0...23
        case .dayOfMonth: 1...31
        case .month: 1...12
        case .dayOfWeek: 0...7
        }
    }

    /// The range `*` and an open `a/n` cover. For day of week it stops at 6 (Saturday),
    /// so `5/1` is Friday and Saturday only, as in croniter.
    var starRange: ClosedRange<Int> {
        self == .dayOfWeek ? 0...6 : bounds
    }

    var names: [String] {
        switch self {
        case .month: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        case .dayOfWeek: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
        default: []
        }
    }

    /// Value of the first name in `names`.
    var firstNameValue: Int { self == .month ? 1 : 0 }
}

extension CronField {
    /// Parses one whitespace-free field that starts at `offset` in `expression`.
    static func parse(_ text: Substring, kind: CronFieldKind, offset: Int, expression: String) throws(CronError) -> CronField {
        var bits: UInt64 = 0
        var elementOffset = offset
        for element in text.split(separator: ",", omittingEmptySubsequences: false) {
            bits |= try parseElement(element, kind: kind, offset: elementOffset, expression: expression)
            elementOffset += element.count + 1
        }
        if kind == .dayOfWeek, bits & (1 << 7) != 0 {
            bits = (bits & ~(1 << 7)) | 1  // 7 is Sunday, like 0
        }
        return CronField(bits: bits, startsWithStar: text.hasPrefix("*"))
    }

    /// `*`, `*/n`, `a`, `a-b`, `a-b/n` or `a/n` (which means `a` to the end of the range, every `n`).
    private static func parseElement(_ element: Substring, kind: CronFieldKind, offset: Int, expression: String) throws(CronError) -> UInt64 {
        func fail(_ reason: String, token: Substring? = nil, at: Int? = nil) -> CronError {
            CronError(expression: expression, field: kind.name, token: String(token ?? element), offset: at ?? offset, reason: reason)
        }
        guard !element.isEmpty else {
            throw fail("empty list element (two commas in a row, or a comma at the start or end)")
        }
        if let bad = element.first(where: { $0 == "#" || $0 == "?" }) {
            throw fail(unsupported(bad))
        }

        let rangePart: Substring
        var step = 1
        var hasStep = false
        if let slash = element.firstIndex(of: "/") {
            rangePart = element[..<slash]
            let stepText = element[element.index(after: slash)...]
            let stepOffset = offset + element.distance(from: element.startIndex, to: slash) + 1
            guard !stepText.isEmpty, stepText.allSatisfy(\.isASCIIDigit), let value = Int(stepText) else {
                throw fail("step must be a whole number, found \"\(stepText)\"", token: stepText.isEmpty ? element : stepText, at: stepText.isEmpty ? offset : stepOffset)
            }
            guard value >= 1 else { throw fail("step must be at least 1") }
            step = value
            hasStep = true
        } else {
            rangePart = element
        }

        var low: Int
        var high: Int
        if rangePart == "*" {
            low = kind.starRange.lowerBound
            high = kind.starRange.upperBound
        } else if let dash = rangePart.firstIndex(of: "-") {
            let lowText = rangePart[..<dash]
            let highText = rangePart[rangePart.index(after: dash)...]
            low = try value(lowText, kind: kind, offset: offset, expression: expression)
            high = try value(highText, kind: kind, offset: offset + rangePart.distance(from: rangePart.startIndex, to: dash) + 1, expression: expression)
            // `fri-sun` reads naturally and croniter accepts it: Sunday as the end of a range is 7.
            if kind == .dayOfWeek, high == 0, low > 0 { high = 7 }
            guard low <= high else {
                throw fail("range start \(low) is after its end \(high); ranges do not wrap around, write a list instead (e.g. 22-23,0-2)")
            }
        } else {
            low = try value(rangePart, kind: kind, offset: offset, expression: expression)
            // `a/n` runs from a to the end of the field's range, as in croniter.
            high = hasStep ? max(low, kind.starRange.upperBound) : low
        }

        var bits: UInt64 = 0
        var v = low
        while v <= high {
            bits |= 1 << UInt64(v)
            v += step
        }
        return bits
    }

    /// A number or (in month and day of week) a three-letter name, case-insensitive.
    private static func value(_ text: Substring, kind: CronFieldKind, offset: Int, expression: String) throws(CronError) -> Int {
        func fail(_ reason: String) -> CronError {
            CronError(expression: expression, field: kind.name, token: String(text), offset: offset, reason: reason)
        }
        if text.isEmpty {
            throw fail("missing number")
        }
        if text.allSatisfy(\.isASCIIDigit) {
            guard let number = Int(text), kind.bounds.contains(number) else {
                throw fail("\(text) is out of range \(kind.bounds.lowerBound)-\(kind.bounds.upperBound)")
            }
            return number
        }
        if let index = kind.names.firstIndex(of: text.lowercased()) {
            return index + kind.firstNameValue
        }
        if let last = text.last, last == "L" || last == "W", text.dropLast().allSatisfy(\.isASCIIDigit) {
            throw fail(unsupported(last))
        }
        if kind.names.isEmpty {
            throw fail("not a number (only month and day of week accept names)")
        }
        let list = "\(kind.names.first!)-\(kind.names.last!)"
        throw fail("not a number or a \(kind == .month ? "month" : "weekday") name (\(list))")
    }
}

/// Quartz/croniter extensions are refused by name, so the error says why rather than "not a number".
private func unsupported(_ character: Character) -> String {
    "\"\(character)\" (a Quartz/croniter extension) is not supported; use numbers, names, *, -, / and ,"
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
