import FerryCore
import Foundation
import Testing

/// `deletes: propagate`: after an incremental run, the rows the source no
/// longer has leave the target, but never more than `max_deletes` at once.
@Suite("deletes: propagate after a run, through the ferry binary and real PostgreSQL")
struct DeletePropagationTests {
    @Test("an incremental run then deletes what the source deleted; above max_deletes it deletes nothing and exits 1")
    func propagateWithLimit() throws {
        let pg = try PostgresFixture()
        let source = PostgresFixture.name("prop_src"), target = PostgresFixture.name("prop_dst")
        defer { _ = try? pg.sql("DROP TABLE IF EXISTS \(source), \(target)") }
        try pg.sql(
            """
            CREATE TABLE \(source) (id int PRIMARY KEY, name text, updated_at timestamptz NOT NULL DEFAULT now());
            INSERT INTO \(source) (id, name) SELECT g, 'n' || g FROM generate_series(1, 200) g;
            CREATE TABLE \(target) (id int PRIMARY KEY, name text, updated_at timestamptz);
            """)
        let file = "\(pg.work)/propagate.yaml"
        try """
            name: propagate
            source: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(source), key: [id], cursor: updated_at}}
            sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(target), key: [id]}}
            mode: incremental
            deletes: propagate
            max_deletes: 5
            """.write(toFile: file, atomically: true, encoding: .utf8)
        func run() throws -> (status: Int32, report: [String: Any]) {
            let result = try TestSupport.run(
                TestSupport.ferryExecutable,
                ["run", file, "--plugins", pg.plugins, "--state-dir", "\(pg.work)/state", "--output", "json", "--no-progress"])
            let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
            return (result.status, report)
        }
        let first = try run()
        #expect(first.status == 0 && (first.report["propagation"] as? [String: Any])?["deleted"] as? Int == 0)
        #expect(try pg.int("SELECT count(*) FROM \(target)") == 200)

        try pg.sql("DELETE FROM \(source) WHERE id IN (3, 4, 5)")
        let second = try run()
        let propagation = second.report["propagation"] as? [String: Any]
        #expect(second.status == 0 && propagation?["deleted"] as? Int == 3, "\(second.report)")
        #expect(try pg.int("SELECT count(*) FROM \(target) WHERE id IN (3, 4, 5)") == 0)

        try pg.sql("DELETE FROM \(source) WHERE id <= 20")
        let third = try run()
        #expect(third.status == 1, "a refused propagation must not look like success")
        #expect((third.report["propagation"] as? [String: Any])?["deletesRefused"] != nil)
        #expect(try pg.int("SELECT count(*) FROM \(target)") == 197, "deletes above max_deletes ran")
    }

    @Test("deletes: propagate with a sink that cannot read back or delete is refused when the file loads, at its line")
    func refusedAtLoad() throws {
        let plugins = try TestSupport.pluginDirectory(TestSupport.standardPlugins)
        let folder = try TestSupport.temporaryDirectory("propagate-refused")
        let file = "\(folder)/p.yaml"
        try "name: p\nsource: {plugin: generate, config: {count: 3}}\nsink: {plugin: blackhole}\ndeletes: propagate\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let result = try TestSupport.run(TestSupport.ferryExecutable, ["validate", file, "--plugins", plugins])
        #expect(result.status == 2)
        #expect(result.stderr.contains("p.yaml:4") && result.stderr.contains("deletes") && result.stderr.contains("blackhole"), "\(result.stderr)")
    }
}
