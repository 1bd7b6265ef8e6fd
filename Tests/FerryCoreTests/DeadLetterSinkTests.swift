import FerryCore
import Foundation
import Testing

/// `dead_letters.sink`: rejected records go to a table through a sink plugin
/// (the real libFerryPostgres.so) instead of the JSON Lines file, and a dead
/// letter that cannot be stored fails the run before the checkpoint passes it.
@Suite("Dead letters into a table")
struct DeadLetterSinkTests {
    let pg: PostgresFixture
    init() throws { pg = try PostgresFixture() }

    /// 20 records; the target's CHECK refuses ids 5 and 12.
    func input(_ target: String) throws -> String {
        let lines = (1...20).map { id in
            #"{"id": \#(id), "qty": \#(id == 5 || id == 12 ? -id : id), "label": "café \#(id)", "tags": ["a", "b"]}"#
        }
        let path = "\(pg.work)/\(target).jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        try pg.sql("CREATE TABLE \(target) (id int PRIMARY KEY, qty int CHECK (qty >= 0), label text, tags text[])")
        return path
    }

    static let columns = #"["time timestamptz", "pipeline text", "stage text", "plugin text", "reason text", "record jsonb"]"#

    @Test("rejected records land as rows: pipeline, stage, plugin, reason, time and the record as jsonb; nothing in a file")
    func intoTable() throws {
        let target = PostgresFixture.name("dls_dst"), dead = PostgresFixture.name("dls_dead")
        let path = try input(target)
        let file = "\(pg.work)/\(target).should-not-exist.jsonl"
        let report = try pg.run(
            """
            name: dl_table
            source: {plugin: file, config: {path: \(path)}}
            sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(target), key: [id]}}
            dead_letters:
              sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(dead), create_table: \(Self.columns)}}
            batch_size: 8
            workers: 2
            """, deadLetters: file)
        #expect(report.outcome == .completed, "\(report.failureMessage ?? "")")
        #expect(report.statistics.deadLettered == 2)
        #expect(report.deadLetterPath?.contains("dead_letters.sink") == true, "\(report.deadLetterPath ?? "nil")")
        #expect(!FileManager.default.fileExists(atPath: file))
        let rows = try pg.sql("SELECT pipeline, stage, plugin, reason, record->>'id', record->>'label', record->'tags'->>1, time > now() - interval '5 minutes' FROM \(dead) ORDER BY (record->>'id')::int")
        #expect(rows.count == 2)
        #expect(rows.map { $0[4] } == ["5", "12"])
        for row in rows {
            #expect(row[0] == "dl_table" && row[1] == "sink" && row[2] == "postgres", "\(row)")
            #expect(row[3]?.contains("violates check constraint") == true, "\(row)")
            #expect(row[6] == "b" && row[7] == "t", "\(row)")
        }
        #expect(rows[0][5] == "café 5")
        // A second run appends (even in mode full): the dead letters of earlier runs stay.
        try pg.sql("TRUNCATE \(target)")
        let again = try pg.run(
            """
            name: dl_table
            source: {plugin: file, config: {path: \(path)}}
            sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(target), key: [id]}}
            dead_letters: {sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(dead)}}}
            mode: full
            """)
        #expect(again.statistics.deadLettered == 2)
        #expect(try pg.int("SELECT count(*) FROM \(dead)") == 4)
    }

    @Test("a dead-letter sink that refuses them fails the run, and the checkpoint does not pass the records")
    func refusedDeadLetters() throws {
        let target = PostgresFixture.name("dlr_dst"), dead = PostgresFixture.name("dlr_dead")
        let path = try input(target)
        // The dead-letter table cannot take a reason this long.
        try pg.sql("CREATE TABLE \(dead) (time timestamptz, pipeline text, stage text, plugin text, reason varchar(5), record jsonb)")
        let store = MemoryStateStore()
        let report = try pg.run(
            """
            name: dl_refused
            source: {plugin: file, config: {path: \(path)}}
            sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(target), key: [id]}}
            dead_letters: {sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(dead)}}}
            batch_size: 4
            checkpoint_interval_ms: 0
            """, store: store)
        let message = try #require(report.failureMessage)
        #expect(message.contains("refused") && message.contains("dead letters") && message.contains("postgres"), "\(message)")
        // Records 1-4 committed before the first rejected one; no checkpoint covers record 5.
        let saved = store.history.map(\.records)
        #expect(saved.allSatisfy { $0 < 5 }, "checkpoints at \(saved)")
        #expect(try pg.int("SELECT count(*) FROM \(dead)") == 0)
    }

    @Test("configuration errors name the field: path and sink together, a plugin that is not a sink")
    func configErrors() throws {
        let both = #expect(throws: ConfigErrors.self) {
            try TestSupport.plan(
                """
                source: {plugin: generate, config: {count: 1}}
                sink: {plugin: blackhole}
                dead_letters: {path: /tmp/x.jsonl, sink: {plugin: blackhole}}
                """, plugins: pg.plugins, file: "\(pg.work)/both.yaml")
        }
        #expect(both.map { "\($0)" }?.contains("dead_letters.sink") == true && both.map { "\($0)" }?.contains("not both") == true)
        let notSink = #expect(throws: ConfigErrors.self) {
            try TestSupport.plan(
                """
                source: {plugin: generate, config: {count: 1}}
                sink: {plugin: blackhole}
                dead_letters: {sink: {plugin: generate}}
                """, plugins: pg.plugins, file: "\(pg.work)/notsink.yaml")
        }
        let text = notSink.map { "\($0)" } ?? ""
        #expect(text.contains("dead_letters.sink.plugin") && text.contains("not a sink"), "\(text)")
    }
}
