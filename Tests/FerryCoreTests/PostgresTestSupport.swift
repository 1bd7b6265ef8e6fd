import FerryCore
import FerryPluginKit
import Foundation
import Testing

/// The test PostgreSQL server (started by scripts/test-servers.sh), SQL via
/// psql, and pipelines run in-process with the real libFerryPostgres.so.
struct PostgresFixture {
    let dsn: String
    let psqlPath: String
    let plugins: String
    let work: String

    init() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let dsn = environment["FERRY_TEST_PG_DSN"], !dsn.isEmpty else {
            throw TestFailure("FERRY_TEST_PG_DSN is not set: run `make test` / scripts/test.sh, which starts the test servers (or `scripts/test-servers.sh start` and source its env file)")
        }
        self.dsn = dsn
        psqlPath = (environment["FERRY_TEST_PG_BIN"] ?? "/usr/lib/postgresql/15/bin") + "/psql"
        plugins = try TestSupport.pluginDirectory(TestSupport.standardPlugins + ["FerryPostgres"])
        work = try TestSupport.temporaryDirectory("ferry-pg")
    }

    /// A fresh table name for one test.
    static func name(_ prefix: String) -> String { "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())" }

    /// Runs SQL; returns rows of fields (NULL as nil). Fails the test on an SQL error.
    @discardableResult
    func sql(_ text: String) throws -> [[String?]] {
        let result = try TestSupport.run(
            psqlPath, ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-F", "\u{1F}", "-R", "\u{1E}", "-P", "null=\u{1A}", "-d", dsn, "-c", text])
        guard result.status == 0 else { throw TestFailure("psql failed (\(result.status)): \(result.stderr)\nSQL: \(text)") }
        var output = result.stdout
        if output.hasSuffix("\n") { output.removeLast() }
        if output.isEmpty { return [] }
        return output.split(separator: "\u{1E}", omittingEmptySubsequences: false).map { row in
            row.split(separator: "\u{1F}", omittingEmptySubsequences: false).map { $0 == "\u{1A}" ? nil : String($0) }
        }
    }

    func scalar(_ text: String) throws -> String? {
        try sql(text).first?.first ?? nil
    }

    func int(_ text: String) throws -> Int {
        guard let value = try scalar(text), let number = Int(value.trimmingCharacters(in: .whitespaces)) else {
            throw TestFailure("no integer from: \(text)")
        }
        return number
    }

    func run(_ yaml: String, store: any StateStore = MemoryStateStore(), options: RunOptions = RunOptions(), deadLetters: String? = nil) throws -> RunReport {
        let plan = try TestSupport.plan(yaml, plugins: plugins, file: "\(work)/pipeline.yaml")
        return PipelineRunner(
            plan: plan, options: options, store: store, deadLetterPath: deadLetters ?? "\(work)/\(UUID().uuidString).dead.jsonl",
            logger: TestSupport.logger
        ).run()
    }

    /// A Postgres → Postgres pipeline.
    func copyPipeline(from source: String, to target: String, mode: String = "full", sourceExtra: String = "", sinkExtra: String = "", batch: Int = 100, extra: String = "") -> String {
        """
        name: \(source)_to_\(target)
        source: {plugin: postgres, config: {dsn: "\(dsn)", table: \(source), key: [id]\(sourceExtra)}}
        sink: {plugin: postgres, config: {dsn: "\(dsn)", table: \(target), key: [id]\(sinkExtra)}}
        mode: \(mode)
        batch_size: \(batch)
        \(extra)
        """
    }

    /// Rows of `a` not in `b` plus rows of `b` not in `a`, over the given column list.
    func difference(_ a: String, _ b: String, columns: String = "*") throws -> Int {
        try int("SELECT (SELECT count(*) FROM (SELECT \(columns) FROM \(a) EXCEPT ALL SELECT \(columns) FROM \(b)) x) + (SELECT count(*) FROM (SELECT \(columns) FROM \(b) EXCEPT ALL SELECT \(columns) FROM \(a)) y)")
    }
}
