/// One key of a config section: what the parser accepts and what the docs'
/// key tables say about it, written once.
public struct ConfigKey: Sendable {
    /// The values a key takes where a range applies; the parser checks them
    /// and the docs show them.
    public enum Bounds: Sendable {
        case none
        case integer(ClosedRange<Int>)
        case number(ClosedRange<Double>)
    }

    public var name: String
    public var bounds: Bounds
    /// The default as the docs write it: `100`, `` `incremental` ``, `(required)`, `—`.
    public var defaultText: String
    public var meaning: String

    public init(_ name: String, default defaultText: String, bounds: Bounds = .none, _ meaning: String) {
        self.name = name
        self.bounds = bounds
        self.defaultText = defaultText
        self.meaning = meaning
    }

    /// The integer range; only asked of keys declared with one.
    public var integerBounds: ClosedRange<Int> {
        guard case .integer(let range) = bounds else { preconditionFailure("config key '\(name)' has no integer bounds") }
        return range
    }

    /// The number range; only asked of keys declared with one.
    public var numberBounds: ClosedRange<Double> {
        guard case .number(let range) = bounds else { preconditionFailure("config key '\(name)' has no number bounds") }
        return range
    }

    /// The meaning as the docs' table shows it, with the range.
    public var documentedMeaning: String {
        switch bounds {
        case .none: meaning
        case .integer(let range): "\(meaning) (\(range.lowerBound) to \(range.upperBound))"
        case .number(let range): "\(meaning) (\(Self.plain(range.lowerBound)) to \(Self.plain(range.upperBound)))"
        }
    }

    /// 1 rather than 1.0, 0.1 as 0.1.
    public static func plain(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}

/// The keys of one section of a config file (the pipeline file's top level,
/// its `retry:`, the daemon file's `pipelines:` entries…), in the order the
/// docs list them.
public struct ConfigKeyTable: Sendable {
    /// Which keys these are: `pipeline`, `pipeline.retry`, `daemon.pipelines`…;
    /// the docs show the table between `<!-- keys:NAME -->` and `<!-- /keys:NAME -->`.
    public var name: String
    /// The parent's key whose row in the docs describes these keys, instead
    /// of a table of their own; nil: the docs have this table.
    public var describedInRow: String?
    public var keys: [ConfigKey]
    private var positions: [String: Int]

    public init(_ name: String, describedInRow: String? = nil, _ keys: [ConfigKey]) {
        self.name = name
        self.describedInRow = describedInRow
        self.keys = keys
        positions = Dictionary(keys.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
        precondition(positions.count == keys.count, "a config key table names a key twice")
    }

    public var names: [String] { keys.map(\.name) }

    public func contains(_ name: String) -> Bool { positions[name] != nil }

    /// A declared key; asking for an undeclared one is a mistake in the code.
    public subscript(name: String) -> ConfigKey {
        guard let position = positions[name] else { preconditionFailure("config key '\(name)' is not in its table") }
        return keys[position]
    }

    /// The names sorted, as unknown-key errors list them.
    public var knownList: String { names.sorted().joined(separator: ", ") }

    /// The entries of a mapping whose key the table does not declare.
    public func unknown(in entries: [(key: String, keyLine: Int, value: ConfigNode)]) -> [(key: String, keyLine: Int)] {
        entries.filter { !contains($0.key) }.map { ($0.key, $0.keyLine) }
    }

    /// The table as the docs show it.
    public var markdown: String {
        var lines = ["| key | default | meaning |", "| --- | --- | --- |"]
        for key in keys {
            lines.append("| `\(key.name)` | \(key.defaultText) | \(key.documentedMeaning) |")
        }
        return lines.joined(separator: "\n")
    }
}

/// The docs' key tables, between `<!-- keys:NAME -->` and `<!-- /keys:NAME -->`
/// (NAME is a table's `name`): read back, and written from the code.
public enum ConfigKeyDocs {
    /// Each region of a page: NAME → the text between its markers, without them.
    public static func regions(in page: String) -> [String: String] {
        var regions: [String: String] = [:]
        var rest = page[...]
        while let open = rest.range(of: "<!-- keys:") {
            guard let nameEnd = rest[open.upperBound...].range(of: " -->") else { break }
            let name = String(rest[open.upperBound..<nameEnd.lowerBound])
            guard let close = rest[nameEnd.upperBound...].range(of: "<!-- /keys:\(name) -->") else { break }
            regions[name] = String(rest[nameEnd.upperBound..<close.lowerBound])
            rest = rest[close.upperBound...]
        }
        return regions
    }

    /// The page with the region of each table that has one replaced by the table's markdown.
    public static func regenerate(_ page: String, from tables: [ConfigKeyTable]) -> String {
        var page = page
        for table in tables {
            let name = table.name
            guard table.describedInRow == nil, let old = regions(in: page)[name] else { continue }
            let open = "<!-- keys:\(name) -->", close = "<!-- /keys:\(name) -->"
            page = page.replacingOccurrences(of: open + old + close, with: open + "\n" + table.markdown + "\n" + close)
        }
        return page
    }

    /// The keys a markdown key table lists: each row's first cell, `` `name` ``.
    public static func keys(inTable markdown: String) -> [String] {
        markdown.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("| `") else { return nil }
            let name = line.dropFirst(3).prefix { $0 != "`" }
            return name.isEmpty ? nil : String(name)
        }
    }

    /// Tables as markdown, each under its name: `PipelineLoader.keyTables`,
    /// `DaemonConfig.keyTables`.
    public static func markdown(_ tables: [ConfigKeyTable]) -> String {
        tables.map { "`\($0.name)` keys:\n\n\($0.markdown)" }.joined(separator: "\n\n")
    }
}
