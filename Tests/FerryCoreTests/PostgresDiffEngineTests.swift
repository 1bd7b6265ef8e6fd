import FerryCore
import FerryPluginKit
import Foundation
import Testing

/// `ferry diff` over real PostgreSQL tables: the digest method (hashes per key
/// bucket on the server) must find exactly what reading both tables finds,
/// which must be exactly the differences the test made with SQL; a repair
/// must leave tables that PostgreSQL itself says are equal.
@Suite("Diff and repair on PostgreSQL: digests against reading, against SQL")
struct PostgresDiffEngineTests {
    func diff(_ fixture: PostgresFixture, _ yaml: String, method: DiffOptions.Method, repair: RepairOptions? = nil) throws -> DiffReport {
        let plan = try TestSupport.plan(yaml, plugins: fixture.plugins, file: "\(fixture.work)/pipeline.yaml")
        return DiffRunner(
            plan: plan, options: DiffOptions(method: method, sampleSize: 10_000, repair: repair), logger: TestSupport.logger,
            deadLetterPath: "\(fixture.work)/dead.jsonl"
        ).run()
    }

    static func ids(_ keys: [String]) -> Set<Int> { Set(keys.compactMap { Int($0.filter(\.isNumber)) }) }

    @Test("digest and read report the same keys, exactly the ones SQL changed; repair makes the tables equal by PostgreSQL's own EXCEPT")
    func digestAgreesWithReadAndSQL() throws {
        let fixture = try PostgresFixture()
        let source = PostgresFixture.name("diffsrc")
        let target = PostgresFixture.name("diffdst")
        defer { _ = try? fixture.sql("DROP TABLE IF EXISTS \(source), \(target)") }
        try fixture.sql(
            """
            CREATE TABLE \(source) (id int PRIMARY KEY, name text, price numeric(10,2), qty int, at timestamptz, note text);
            INSERT INTO \(source) SELECT g, 'item ' || g, (g % 997) / 7.0, g % 13, timestamptz '2026-01-01' + g * interval '1 minute',
              CASE WHEN g % 5 = 0 THEN NULL ELSE 'ü' || g END FROM generate_series(1, 20000) g;
            CREATE TABLE \(target) (id bigint PRIMARY KEY, name text, price numeric(10,2), qty int, at timestamptz, note text);
            INSERT INTO \(target) SELECT * FROM \(source);
            """)
        let yaml = fixture.copyPipeline(from: source, to: target, mode: "incremental", batch: 500)
        let equal = try diff(fixture, yaml, method: .digest)
        #expect(equal.failure == nil, "\(equal.failure?.description ?? "")")
        #expect(equal.isEqual && equal.method == .digest && equal.recordsRead == 0, "equal tables: \(equal.jsonValue(withValues: false).jsonText)")
        #expect(equal.sourceRecords == 20000 && equal.targetRecords == 20000)

        // The drift a cursor cannot see, made behind Ferry's back.
        try fixture.sql(
            """
            DELETE FROM \(target) WHERE id IN (11, 12, 13, 5000);
            INSERT INTO \(target) (id, name) VALUES (30001, 'only in target'), (30002, NULL);
            UPDATE \(target) SET name = 'edited' WHERE id IN (21, 22);
            UPDATE \(target) SET note = NULL WHERE id = 23;
            UPDATE \(target) SET at = at + interval '1 millisecond' WHERE id = 24;
            UPDATE \(source) SET price = price + 0.01 WHERE id IN (31, 19999);
            DELETE FROM \(source) WHERE id IN (41, 42);
            INSERT INTO \(source) (id, name, price) VALUES (40001, 'new', 1.5);
            """)
        let missing: Set<Int> = [11, 12, 13, 5000, 40001]
        let extra: Set<Int> = [30001, 30002, 41, 42]
        let changed: Set<Int> = [21, 22, 23, 24, 31, 19999]
        for method in [DiffOptions.Method.digest, .read] {
            let report = try diff(fixture, yaml, method: method)
            #expect(report.failure == nil, "\(method): \(report.failure?.description ?? "")")
            #expect(report.method.rawValue == method.rawValue)
            #expect(Self.ids(report.sampleMissing) == missing, "\(method): missing")
            #expect(Self.ids(report.sampleExtra) == extra, "\(method): extra")
            #expect(Self.ids(report.sampleChanged.map(\.key)) == changed, "\(method): changed")
            #expect(report.equal == 20000 - 2 + 1 - missing.count - changed.count, "\(method): matching \(report.equal)")
            if method == .digest { #expect(report.recordsRead < 2000, "digest read \(report.recordsRead) records to settle 15 keys") }
        }

        let dryRun = try diff(fixture, yaml, method: .digest, repair: RepairOptions(dryRun: true, maxDeletes: 100))
        #expect(dryRun.repair?.written == missing.count + changed.count && dryRun.repair?.deleted == extra.count)
        // EXCEPT ALL both ways: each missing and extra row once, each changed row twice.
        #expect(try fixture.difference(source, target) == missing.count + extra.count + 2 * changed.count, "a dry run changed the target")

        let limited = try diff(fixture, yaml, method: .digest, repair: RepairOptions(maxDeletes: 3))
        #expect(limited.repair?.deletesRefused != nil && limited.repair?.deleted == 0)
        #expect(try fixture.int("SELECT count(*) FROM \(target) WHERE id IN (30001, 30002, 41, 42)") == 4, "deletes above the limit ran")

        let repaired = try diff(fixture, yaml, method: .digest, repair: RepairOptions(maxDeletes: 4))
        #expect(repaired.repair?.deleted == 4 && repaired.repair?.rejected == 0, "\(repaired.jsonValue(withValues: false).jsonText)")
        #expect(try fixture.difference(source, target) == 0, "PostgreSQL still sees differences after repair")
        #expect(try diff(fixture, yaml, method: .digest).isEqual)
    }

    @Test("a pipeline with a transform is compared by reading, and --method digest says why it cannot")
    func transformsForceReading() throws {
        let fixture = try PostgresFixture()
        let source = PostgresFixture.name("diffsrc")
        let target = PostgresFixture.name("diffdst")
        defer { _ = try? fixture.sql("DROP TABLE IF EXISTS \(source), \(target)") }
        try fixture.sql(
            """
            CREATE TABLE \(source) (id int PRIMARY KEY, name text);
            INSERT INTO \(source) SELECT g, 'n' || g FROM generate_series(1, 300) g;
            CREATE TABLE \(target) (id int PRIMARY KEY, name text);
            INSERT INTO \(target) SELECT * FROM \(source);
            """)
        let yaml = fixture.copyPipeline(from: source, to: target, extra: "transforms: [{plugin: passthrough}]")
        let auto = try diff(fixture, yaml, method: .auto)
        #expect(auto.method == .read && auto.isEqual && auto.methodNote?.contains("transforms") == true)
        let forced = try diff(fixture, yaml, method: .digest)
        #expect(forced.failure?.kind == .config && forced.failure?.message.contains("transforms") == true)
    }

    @Test("repair refuses a sink configured to replace its table, and the table keeps every row")
    func repairNeverReplaces() throws {
        let fixture = try PostgresFixture()
        let source = PostgresFixture.name("diffsrc")
        let target = PostgresFixture.name("diffdst")
        defer { _ = try? fixture.sql("DROP TABLE IF EXISTS \(source), \(target)") }
        try fixture.sql(
            """
            CREATE TABLE \(source) (id int PRIMARY KEY, name text);
            INSERT INTO \(source) SELECT g, 'n' || g FROM generate_series(1, 500) g;
            CREATE TABLE \(target) (id int PRIMARY KEY, name text);
            INSERT INTO \(target) SELECT * FROM \(source) WHERE id > 1;
            """)
        let yaml = fixture.copyPipeline(from: source, to: target, sinkExtra: ", mode: replace")
        let report = try diff(fixture, yaml, method: .auto, repair: RepairOptions(maxDeletes: 10))
        #expect(report.failure?.message.contains("replace") == true, "\(report.failure?.description ?? "no failure")")
        #expect(try fixture.int("SELECT count(*) FROM \(target)") == 499, "the repair emptied the table")
    }

    @Test("a column type without a hash function makes the digest refuse, and auto compares by reading with the same answer")
    func unhashableColumnFallsBack() throws {
        let fixture = try PostgresFixture()
        let source = PostgresFixture.name("diffsrc")
        let target = PostgresFixture.name("diffdst")
        defer { _ = try? fixture.sql("DROP TABLE IF EXISTS \(source), \(target)") }
        try fixture.sql(
            """
            CREATE TABLE \(source) (id int PRIMARY KEY, doc json);
            INSERT INTO \(source) SELECT g, json_build_object('n', g) FROM generate_series(1, 300) g;
            CREATE TABLE \(target) (id int PRIMARY KEY, doc json);
            INSERT INTO \(target) SELECT * FROM \(source) WHERE id <> 7;
            """)
        let yaml = fixture.copyPipeline(from: source, to: target)
        let auto = try diff(fixture, yaml, method: .auto)
        #expect(auto.failure == nil && auto.method == .read && auto.methodNote?.contains("hash") == true, "\(auto.jsonValue(withValues: false).jsonText)")
        #expect(Self.ids(auto.sampleMissing) == [7] && auto.equal == 299)
        let forced = try diff(fixture, yaml, method: .digest)
        #expect(forced.failure?.status == 15, "--method digest must fail, not fall back: \(forced.failure?.description ?? "none")")
    }
}
