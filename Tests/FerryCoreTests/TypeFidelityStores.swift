import FerryPluginKit
import Foundation

/// The connectors' ends for the type-fidelity matrix: pipeline snippets for
/// each, and readers that look at a target without going through Ferry
/// (libbson for files, the wire client for MongoDB, psql for PostgreSQL).
struct TypeFidelityStores {
    let work: String
    let plugins: String
    let mongo: MongoTestClient
    let database: String
    let psql: String
    let dsn: String
    let suffix: String

    init() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let dsn = environment["FERRY_TEST_PG_DSN"], !dsn.isEmpty else {
            throw TestFailure("FERRY_TEST_PG_DSN is not set: source the test servers' env file (scripts/test-servers.sh)")
        }
        self.dsn = dsn
        psql = (environment["FERRY_TEST_PG_BIN"] ?? "/usr/lib/postgresql/15/bin") + "/psql"
        (mongo, _) = try MongoTestClient.fromEnvironment()
        suffix = UUID().uuidString.prefix(8).lowercased()
        database = "ferry_types_\(suffix)"
        plugins = try TestSupport.pluginDirectory(["FerryFile", "FerryPostgres", "FerryMongo"])
        work = try TestSupport.temporaryDirectory("ferry-types")
    }

    // MARK: pipeline ends

    func fileEnd(_ name: String, sink: Bool = false) -> String {
        "{plugin: file, config: {path: \"\(work)/\(name).jsonl\"\(sink ? ", fsync: false" : "")}}"
    }

    func mongoEnd(_ collection: String, source: Bool = false) -> String {
        "{plugin: mongo, config: {uri: \"${FERRY_TEST_MONGO_URI}\", database: \(database), collection: \(collection)\(source ? ", estimate: false" : "")}}"
    }

    func table(_ name: String) -> String { "types_\(name)_\(suffix)" }

    /// A sink that creates the typed table: one column per BSON type, of the type
    /// the postgres README maps it to.
    func typedSink(_ name: String) -> String {
        let columns = ["\"_id int8\"", "\"t text\""] + TypeFidelityCorpus.rows.map { "\"\($0.field) \($0.columnType)\"" }
        return "{plugin: postgres, config: {dsn: \"${FERRY_TEST_PG_DSN}\", table: \(table(name)), key: [_id], unknown_fields: ignore, create_table: [\(columns.joined(separator: ", "))]}}"
    }

    /// A sink that creates `(_id, t, deep jsonb)`: every value, at any depth, inside one jsonb document.
    func jsonbSink(_ name: String) -> String {
        "{plugin: postgres, config: {dsn: \"${FERRY_TEST_PG_DSN}\", table: \(table(name)), key: [_id], unknown_fields: ignore, create_table: [\"_id int8\", \"t text\", \"deep jsonb\"]}}"
    }

    /// Reads a table back as BSON, dates as dates; `filter` narrows it to some rows.
    func postgresSource(_ name: String, filter: String? = nil) -> String {
        let what = filter.map { "query: 'SELECT * FROM \(table(name)) WHERE \($0)'" } ?? "table: \(table(name))"
        return "{plugin: postgres, config: {dsn: \"${FERRY_TEST_PG_DSN}\", \(what), timestamps: datetime}}"
    }

    // MARK: running ferry

    struct Run {
        let status: Int32
        let output: String
        /// Dead letters by record `_id`: the reason.
        let deadLetters: [Int64: String]
    }

    func ferry(_ name: String, source: String, sink: String) throws -> Run {
        let pipeline = "\(work)/\(name).yaml"
        let deadLetters = "\(work)/\(name).dead.jsonl"
        try """
            name: \(name)
            source: \(source)
            sink: \(sink)
            mode: full
            batch_size: 50
            dead_letters: {path: "\(deadLetters)"}
            """.write(toFile: pipeline, atomically: true, encoding: .utf8)
        let result = try TestSupport.run(
            TestSupport.ferryExecutable, ["run", pipeline, "--plugins", plugins, "--no-progress", "--state-dir", "\(work)/state"])
        var letters: [Int64: String] = [:]
        let text = (try? String(contentsOfFile: deadLetters, encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") {
            let entry = try ExtendedJSON.parse(String(line)).withUnsafeBytes { DocumentView($0).decode() }
            guard case .document(let record)? = entry["record"], let id = record["_id"].flatMap(Self.integer),
                case .string(let reason)? = entry["reason"]
            else { throw TestFailure("\(deadLetters): a dead letter without record _id or reason: \(line)") }
            letters[id] = reason
        }
        return Run(status: result.status, output: result.stdout + result.stderr, deadLetters: letters)
    }

    static func integer(_ value: BSONValue) -> Int64? {
        switch value {
        case .int32(let v): Int64(v)
        case .int64(let v): v
        case .double(let v): Int64(exactly: v)
        default: nil
        }
    }

    // MARK: independent readers

    static func byID(_ documents: [BSONDocument]) -> [Int64: BSONDocument] {
        var result: [Int64: BSONDocument] = [:]
        for document in documents { if let id = document["_id"].flatMap(integer) { result[id] = document } }
        return result
    }

    /// JSON Lines as libbson parses them.
    func readFile(_ name: String) throws -> [Int64: BSONDocument] {
        let text = (try? String(contentsOfFile: "\(work)/\(name).jsonl", encoding: .utf8)) ?? ""
        return Self.byID(try text.split(separator: "\n").map { line in
            try ExtendedJSON.parse(String(line)).withUnsafeBytes { DocumentView($0).decode() }
        })
    }

    func readMongo(_ collection: String) throws -> [Int64: BSONDocument] {
        Self.byID(try mongo.find(database, collection))
    }

    /// Rows of `SELECT …` as text (NULL as nil), through psql.
    func sql(_ text: String) throws -> [[String?]] {
        let result = try TestSupport.run(
            psql, ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-F", "\u{1F}", "-R", "\u{1E}", "-P", "null=\u{1A}", "-d", dsn, "-c", text],
            environment: ["PGCLIENTENCODING": "UTF8", "PGOPTIONS": "-c TimeZone=UTC -c extra_float_digits=3"])
        guard result.status == 0 else { throw TestFailure("psql failed (\(result.status)): \(result.stderr)\nSQL: \(text)") }
        var output = result.stdout
        if output.hasSuffix("\n") { output.removeLast() }
        if output.isEmpty { return [] }
        return output.split(separator: "\u{1E}", omittingEmptySubsequences: false).map { row in
            row.split(separator: "\u{1F}", omittingEmptySubsequences: false).map { $0 == "\u{1A}" ? nil : String($0) }
        }
    }

    /// The typed table: per `_id`, its type's column as canonical text.
    func readTyped(_ name: String) throws -> [Int64: String?] {
        let cases = TypeFidelityCorpus.rows.map { row -> String in
            let column = "\"\(row.field)\""
            let expression: String
            switch row.columnType {
            case "bytea": expression = "encode(\(column), 'hex')"
            case "timestamptz": expression = "(extract(epoch FROM \(column)) * 1000)::int8::text"
            default: expression = "\(column)::text"
            }
            return "WHEN '\(row.name)' THEN \(expression)"
        }
        var result: [Int64: String?] = [:]
        for row in try sql("SELECT \"_id\", CASE t \(cases.joined(separator: " ")) END FROM \(table(name))") {
            result[Int64(row[0]!)!] = row[1]
        }
        return result
    }

    /// The jsonb table: per `_id`, the document as PostgreSQL prints it.
    func readJSONB(_ name: String) throws -> [Int64: String?] {
        var result: [Int64: String?] = [:]
        for row in try sql("SELECT \"_id\", deep::text FROM \(table(name))") { result[Int64(row[0]!)!] = row[1] }
        return result
    }

    func cleanUp() {
        _ = try? mongo.command(database, [("dropDatabase", .int32(1))])
        let tables = ["typed1", "typed2", "typed3", "jsonb1", "jsonb2", "jsonb3"].map(table)
        _ = try? sql("DROP TABLE IF EXISTS \(tables.joined(separator: ", "))")
        try? FileManager.default.removeItem(atPath: work)
        try? FileManager.default.removeItem(atPath: plugins)
    }
}
