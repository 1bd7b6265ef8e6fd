import CFerryPlugin
import FerryCore
import FerryPluginKit
import Foundation
import Testing

/// The postgres plugin's ABI 1.1 calls (diff_info, digest, select_buckets,
/// read back, delete_keys), called through the real .so as the host calls them.
@Suite("PostgreSQL connector: digests, read back and delete by key", .serialized)
struct PostgresDiffTests {
    let pg: PostgresFixture
    let plugin: LoadedPlugin
    /// Kept for the suite's lifetime: an instance holds only a pointer to the flag.
    let cancel = CancelFlag()

    init() throws {
        pg = try PostgresFixture()
        plugin = try PluginLoader.load(path: TestSupport.product("libFerryPostgres.so"), checkPermissions: false)
    }

    func open(_ kind: PluginKinds, _ config: [String: JSONValue], mode: SyncMode = .incremental, batch: Int = 500) throws -> HostedInstance {
        var settings = config
        settings["dsn"] = .string(pg.dsn)
        return try HostedInstance(
            plugin: plugin,
            options: InstanceOptions(
                kind: kind, stage: kind == .source ? "source" : "sink", configJSON: JSONValue.object(settings).jsonText, mode: mode, batchSize: batch),
            cancel: cancel, logger: TestSupport.logger)
    }

    func source(_ table: String) throws -> HostedInstance {
        try open(.source, ["table": .string(table), "key": .array([.string("id")])], mode: .full)
    }

    func sink(_ table: String, _ extra: [String: JSONValue] = [:]) throws -> HostedInstance {
        try open(.sink, ["table": .string(table), "key": .array([.string("id")])].merging(extra) { $1 })
    }

    /// Every record the instance's reads yield (a sink's read is its read back).
    func readAll(_ instance: HostedInstance) throws -> [BSONDocument] {
        var documents: [BSONDocument] = []
        var batch = ferry_batch()
        while try instance.read(&batch) {
            documents += BatchView(batch).map { $0.decode() }
            instance.release(&batch)
        }
        return documents
    }

    static func id(_ document: BSONDocument) -> Int64? {
        switch document["id"] {
        case .int32(let value): Int64(value)
        case .int64(let value): value
        default: nil
        }
    }

    /// The scheme's hash of a row, from PostgreSQL's own hash_record_extended.
    func hashRow(_ row: String) throws -> UInt64 {
        let text = try pg.scalar("SELECT hash_record_extended(ROW(\(row)), 0)")
        guard let text, let value = Int64(text) else { throw TestFailure("no hash for ROW(\(row))") }
        return UInt64(bitPattern: value)
    }

    /// The scheme's bucket of an integer key, computed here from its definition: the hash of the row `(key)`.
    func bucket(ofIntegerKey key: Int64, bits: Int) throws -> UInt64 {
        BucketSet.bucket(ofKeyHash: try hashRow("\(key)::int8"), bits: bits)
    }

    func makeEqualTables(rows: Int) throws -> (source: String, target: String) {
        let source = PostgresFixture.name("diff_src"), target = PostgresFixture.name("diff_dst")
        try pg.sql(
            """
            CREATE TABLE \(source) (id int4 PRIMARY KEY, name text, amount numeric(14,3), at timestamptz, day date, ratio float8, flag bool, doc jsonb);
            INSERT INTO \(source)
              SELECT g,
                CASE WHEN g % 11 = 0 THEN NULL WHEN g % 5 = 0 THEN 'żółw ' || g || ' 🐢 "q"' ELSE 'name ' || g END,
                CASE WHEN g % 13 = 0 THEN NULL ELSE (g * 7.125 - 3000)::numeric(14,3) END,
                CASE WHEN g % 17 = 0 THEN NULL ELSE '2024-02-29 23:59:59.123456+02'::timestamptz + g * interval '1 hour 1 second' END,
                DATE '2000-01-01' + g,
                CASE WHEN g % 19 = 0 THEN NULL ELSE g / 3.0::float8 END,
                g % 2 = 0,
                CASE WHEN g % 7 = 0 THEN jsonb_build_object('g', g, 'tags', jsonb_build_array('a', g)) END
              FROM generate_series(1, \(rows)) g;
            CREATE TABLE \(target) (doc jsonb, flag bool, ratio float8, day date, at timestamptz, amount numeric(14,3), name text, id int8 PRIMARY KEY);
            INSERT INTO \(target) (id, name, amount, at, day, ratio, flag, doc) SELECT * FROM \(source);
            """)
        return (source, target)
    }

    @Test("equal tables digest alike bucket by bucket (other column order, int4 vs int8 key); one changed row moves exactly its key's bucket, and selecting it reads that bucket only")
    func digestsAgree() throws {
        let (sourceTable, targetTable) = try makeEqualTables(rows: 3000)
        let source = try source(sourceTable)
        let sink = try sink(targetTable)
        let sourceInfo = try source.diffInfo(), sinkInfo = try sink.diffInfo()
        #expect(sourceInfo.digestScheme == "postgres-hashrecord-1")
        #expect(sinkInfo.digestScheme == sourceInfo.digestScheme)
        #expect(sourceInfo.key == ["id"] && sinkInfo.key == ["id"])
        #expect(sourceInfo.fields == ["id", "name", "amount", "at", "day", "ratio", "flag", "doc"])
        #expect(sinkInfo.fields == ["doc", "flag", "ratio", "day", "at", "amount", "name", "id"])

        let all = BucketSet(bits: 0, key: ["id"], fields: sinkInfo.fields)
        let before = try sink.digest(within: all, bits: 8)
        #expect(try source.digest(within: all, bits: 8) == before)
        #expect(before.reduce(0) { $0 + $1.count } == 3000)
        #expect(before.map(\.bucket) == before.map(\.bucket).sorted() && before.count > 200)
        // Every field when none are named: the same columns on both sides.
        #expect(try source.digest(within: BucketSet(bits: 0, key: ["id"]), bits: 4) == sink.digest(within: BucketSet(bits: 0, key: ["id"]), bits: 4))
        // One bucket at 0 bits holds everything: its hash is the sum of all the others'.
        let total = try sink.digest(within: all, bits: 0)
        #expect(total.count == 1 && total[0].count == 3000 && total[0].hash == before.reduce(UInt64(0)) { $0 &+ $1.hash })

        let changed: Int64 = 1234
        let bucket = try bucket(ofIntegerKey: changed, bits: 8)
        try pg.sql("UPDATE \(targetTable) SET name = 'changed' WHERE id = \(changed)")
        let after = try sink.digest(within: all, bits: 8)
        let differing = zip(before, after).filter { $0 != $1 }.map(\.1.bucket)
        #expect(after.count == before.count)
        #expect(differing == [bucket])

        // Within a coarser bucket: only its finer buckets come back.
        let coarse = bucket >> 4
        let within = try sink.digest(within: BucketSet(bits: 4, buckets: [coarse], key: ["id"], fields: sinkInfo.fields), bits: 8)
        #expect(within == after.filter { $0.bucket >> 4 == coarse })

        let selected = BucketSet(bits: 8, buckets: [bucket], key: ["id"])
        try source.selectBuckets(selected)
        try sink.selectBuckets(selected)
        let fromSource = try readAll(source), fromSink = try readAll(sink)
        let expected = Int(before.first { $0.bucket == bucket }!.count)
        #expect(fromSource.count == expected && fromSink.count == expected)
        for document in fromSource + fromSink {
            #expect(try self.bucket(ofIntegerKey: Self.id(document)!, bits: 8) == bucket)
        }
        let sinkByID = Dictionary(uniqueKeysWithValues: fromSink.map { (Self.id($0)!, $0) })
        #expect(sinkByID[changed]?["name"] == .string("changed"))
        // Read back decodes as the source reads: the same values, the key widened to int8.
        for document in fromSource where Self.id(document) != changed {
            let back = sinkByID[Self.id(document)!]!
            for (field, value) in document.fields where field != "id" { #expect(back[field] == value, "field \(field)") }
        }
        // Selecting every bucket reads everything again, from the start.
        try sink.selectBuckets(BucketSet(bits: 0, key: ["id"]))
        #expect(try readAll(sink).count == 3000)
    }

    @Test("the scheme computed here: the key's row hashed, top bits as the bucket (unsigned), the record's row hashed as its hash")
    func schemeFromItsDefinition() throws {
        let table = PostgresFixture.name("diff_scheme")
        let keys: [Int64] = [1, 42, 1234, -5, 2_147_483_647, 9_000_000_000]
        try pg.sql(
            """
            CREATE TABLE \(table) (id int8 PRIMARY KEY, name text);
            INSERT INTO \(table) VALUES \(keys.map { "(\($0), 'n\($0) é')" }.joined(separator: ", "));
            """)
        let sink = try sink(table)
        let digest = try sink.digest(within: BucketSet(bits: 0, key: ["id"], fields: ["id", "name"]), bits: 32)
        var expected: [BucketDigest] = []
        for key in keys {
            // The row the definition names, written out here rather than read from the table.
            let record = "\(key)::int8, 'n\(key) é'::text"
            expected.append(BucketDigest(bucket: try bucket(ofIntegerKey: key, bits: 32), count: 1, hash: try hashRow(record)))
        }
        #expect(digest == expected.sorted { $0.bucket < $1.bucket })
        // Buckets are unsigned: some of these keys have the top bit set.
        #expect(digest.contains { $0.bucket >= 1 << 31 })
    }

    @Test("a composite key hashes as its row; a source reading a query digests as the table it selects from")
    func compositeKeyAndQuery() throws {
        let sourceTable = PostgresFixture.name("diff_ck_src"), targetTable = PostgresFixture.name("diff_ck_dst")
        try pg.sql(
            """
            CREATE TABLE \(sourceTable) (region text, n int, v numeric, PRIMARY KEY (region, n));
            INSERT INTO \(sourceTable) SELECT r, g, g / 7.0 FROM unnest(ARRAY['eu', 'us', 'ap "x"']) r, generate_series(1, 300) g;
            CREATE TABLE \(targetTable) (v numeric, n int8, region varchar(20), PRIMARY KEY (n, region));
            INSERT INTO \(targetTable) (region, n, v) SELECT * FROM \(sourceTable);
            """)
        let key: [JSONValue] = [.string("region"), .string("n")]
        let source = try open(.source, ["query": .string("SELECT * FROM \(sourceTable) WHERE n > 0"), "key": .array(key)], mode: .full)
        let sink = try open(.sink, ["table": .string(targetTable), "key": .array(key)])
        let set = BucketSet(bits: 0, key: ["region", "n"], fields: ["region", "n", "v"])
        let digest = try sink.digest(within: set, bits: 6)
        #expect(try source.digest(within: set, bits: 6) == digest)
        #expect(digest.reduce(0) { $0 + $1.count } == 900)
        // int4 and int8, text and varchar of one value hash alike: the target's columns are the wider ones.
        let bucket = BucketSet.bucket(ofKeyHash: try hashRow(#"'ap "x"'::text, 7::int4"#), bits: 6)
        try sink.selectBuckets(BucketSet(bits: 6, buckets: [bucket], key: ["region", "n"]))
        let rows = try readAll(sink)
        #expect(rows.contains { $0["region"] == .string(#"ap "x""#) && $0["n"] == .int64(7) })
        #expect(rows.count == Int(digest.first { $0.bucket == bucket }!.count))
    }

    @Test("a sink opened for a diff changes nothing; read back yields every row once; delete by key counts the rows that existed and lands at commit")
    func readBackAndDelete() throws {
        let table = PostgresFixture.name("diff_back")
        try pg.sql(
            """
            CREATE TABLE \(table) (id int PRIMARY KEY, label text, qty int);
            INSERT INTO \(table) SELECT g, 'row ' || g, g % 100 FROM generate_series(1, 10000) g;
            """)
        let fingerprint = "SELECT md5(string_agg(t::text || ':' || xmin::text, ',' ORDER BY id)) FROM \(table) t"
        let untouched = try pg.scalar(fingerprint)

        // mode: replace and a full pipeline would empty the table at the first write; opening never does.
        for extra: [String: JSONValue] in [[:], ["mode": .string("replace")]] {
            let sink = try sink(table, extra)
            let rows = try readAll(sink)
            #expect(rows.count == 10000)
            #expect(Set(rows.compactMap(Self.id)).count == 10000)
            #expect(rows.first { Self.id($0) == 7 } == ["id": .int32(7), "label": .string("row 7"), "qty": .int32(7)])
            #expect(try sink.digest(within: BucketSet(bits: 0, key: ["id"]), bits: 2).reduce(0) { $0 + $1.count } == 10000)
            sink.close()
            #expect(try pg.scalar(fingerprint) == untouched)
        }

        let sink = try sink(table)
        let deleted = try keys([10, 20, 10_001]) { try sink.deleteKeys($0) }
        #expect(deleted == 2)
        // Staged in the sink's transaction: nobody else sees it before the commit.
        #expect(try pg.int("SELECT count(*) FROM \(table) WHERE id IN (10, 20)") == 2)
        try sink.commit()
        #expect(try pg.int("SELECT count(*) FROM \(table) WHERE id IN (10, 20)") == 0)
        #expect(try pg.int("SELECT count(*) FROM \(table)") == 9998)
    }

    @Test("deletes and a write staged together land together at commit; a write that fails after deletes keeps the deletes")
    func deleteThenWrite() throws {
        let table = PostgresFixture.name("diff_dw")
        try pg.sql(
            """
            CREATE TABLE \(table) (id int PRIMARY KEY, label text NOT NULL);
            INSERT INTO \(table) SELECT g, 'x' FROM generate_series(1, 5) g;
            CREATE FUNCTION \(table)_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
              BEGIN IF NEW.label = 'boom' THEN RAISE EXCEPTION 'boom refused'; END IF; RETURN NEW; END $$;
            CREATE TRIGGER refuse BEFORE INSERT ON \(table) FOR EACH ROW EXECUTE FUNCTION \(table)_refuse();
            """)
        let sink = try sink(table)
        var result = ferry_result()
        #expect(try keys([1]) { try sink.deleteKeys($0) } == 1)
        try batch([["id": .int32(6), "label": .string("six")]]) { try sink.write($0, &result) }
        #expect(try keys([2]) { try sink.deleteKeys($0) } == 1)
        // The server refuses the whole statement (not a row-level error): the write fails, the host sends it again.
        let failed = Result { try batch([["id": .int32(7), "label": .string("boom")]]) { try sink.write($0, &result) } }
        #expect((try? failed.get()) == nil)
        try batch([["id": .int32(7), "label": .string("seven")]]) { try sink.write($0, &result) }
        try sink.commit()
        #expect(try pg.sql("SELECT id::text, label FROM \(table) ORDER BY id").map { "\($0[0]!) \($0[1]!)" } == ["3 x", "4 x", "5 x", "6 six", "7 seven"])
    }

    @Test("a key of the wrong type is a data error naming the field; a field the table lacks makes digest unsupported")
    func refusals() throws {
        let table = PostgresFixture.name("diff_bad")
        try pg.sql("CREATE TABLE \(table) (id int PRIMARY KEY, label text); INSERT INTO \(table) VALUES (1, 'a')")
        let sink = try sink(table)
        let badKey = try #require(Self.failure { _ = try batch([["id": .string("abc")]]) { try sink.deleteKeys($0) } })
        #expect(badKey.status == FERRY_ERR_DATA)
        #expect(badKey.message.contains("'id'") && badKey.message.contains("abc"), "\(badKey.message)")
        let missingField = try #require(Self.failure {
            _ = try sink.digest(within: BucketSet(bits: 0, key: ["id"], fields: ["id", "colour"]), bits: 4)
        })
        #expect(missingField.status == FERRY_ERR_UNSUPPORTED)
        #expect(missingField.message.contains("'colour'"), "\(missingField.message)")
        // The failed delete left the table and the transaction usable.
        #expect(try keys([1]) { try sink.deleteKeys($0) } == 1)
        try sink.commit()
        #expect(try pg.int("SELECT count(*) FROM \(table)") == 0)
    }

    /// The error a plugin call threw, or nil.
    static func failure(_ body: () throws -> Void) -> PluginCallError? {
        do {
            try body()
            return nil
        } catch {
            return error as? PluginCallError
        }
    }

    func batch<T>(_ documents: [BSONDocument], _ body: (UnsafePointer<ferry_batch>) throws -> T) throws -> T {
        let builder = BatchBuilder()
        for document in documents { builder.appendDocument { writer in for (key, value) in document.fields { writer.append(key, value) } } }
        var batch = ferry_batch()
        builder.finish(into: &batch)
        defer { BatchBuilder.release(&batch) }
        return try withUnsafePointer(to: &batch) { try body($0) }
    }

    func keys<T>(_ ids: [Int32], _ body: (UnsafePointer<ferry_batch>) throws -> T) throws -> T {
        try batch(ids.map { ["id": .int32($0)] }, body)
    }
}
