import CFerryPlugin
import FerryCore
import FerryPluginKit
import Foundation
import Glibc
import Testing

/// The MongoDB plugin against the real SecantusDB server the test script
/// starts; everything written is read back with an independent wire client.
@Suite("MongoDB connector", .serialized)
struct MongoConnectorTests {
    let plugins: String
    let work: String
    let mongo: MongoTestClient
    let uri: String
    /// One database per test, so tests never see each other's documents.
    let database: String

    init() throws {
        (mongo, uri) = try MongoTestClient.fromEnvironment()
        plugins = try TestSupport.pluginDirectory(TestSupport.standardPlugins + ["FerryMongo"])
        work = try TestSupport.temporaryDirectory("ferry-mongo")
        database = "ferrytest_\(UUID().uuidString.prefix(8).lowercased())"
    }

    func run(_ yaml: String, store: any StateStore = MemoryStateStore(), options: RunOptions = RunOptions()) throws -> RunReport {
        let plan = try TestSupport.plan(yaml, plugins: plugins, file: "\(work)/pipeline.yaml")
        return PipelineRunner(plan: plan, options: options, store: store, deadLetterPath: "\(work)/dead.jsonl", logger: TestSupport.logger).run()
    }

    func mongoConfig(_ collection: String, _ extra: String = "") -> String {
        "{plugin: mongo, config: {uri: \"\(uri)\", database: \(database), collection: \(collection)\(extra.isEmpty ? "" : ", " + extra)}}"
    }

    func writeLines(_ name: String, _ lines: [String]) throws -> String {
        let path = "\(work)/\(name)"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func readLines(_ path: String) throws -> [BSONDocument] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return try text.split(separator: "\n").map { line in
            try ExtendedJSON.parse(String(line)).withUnsafeBytes { DocumentView($0).decode() }
        }
    }

    static func oid(_ last: UInt8) -> BSONValue { .objectId([0x65, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last]) }

    /// A document with every type the issue names, nested and in arrays.
    static func richDocument(_ id: BSONValue) -> BSONDocument {
        BSONDocument([
            ("_id", id),
            ("name", .string("Café ☕ 日本")),
            ("ключ ü", .string("значение")),
            ("i32", .int32(-7)), ("i64", .int64(9_007_199_254_740_993)), ("dbl", .double(0.1)),
            ("dec", .decimal128([0x0B, 0x07, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x3C, 0x30])),
            ("at", .datetime(1_795_603_200_123)),
            ("bin", .binary(subtype: 0, data: [0, 1, 2, 255])), ("uuid", .binary(subtype: 4, data: Array(0..<16))),
            ("none", .null), ("flag", .bool(true)), ("ref", oid(0xAA)),
            ("tags", .array([.string("a"), .int32(1), .array([.null, .document([("deep", .string("x"))])])])),
            ("nested", .document([("a", .document([("b", .document([("c", .int64(-1))]))])), ("empty", .document([:])), ("list", .array([]))])),
        ])
    }

    @Test("nested documents, arrays and every scalar type survive mongo → mongo byte for byte, and file → mongo → file")
    func roundTrip() throws {
        let originals = [Self.richDocument(Self.oid(1)), Self.richDocument(.int32(2)), Self.richDocument(.string("három"))]
        try mongo.insert(database, "source", originals)
        let copy = try run("""
            name: copy
            source: \(mongoConfig("source"))
            sink: \(mongoConfig("target"))
            batch_size: 2
            mode: full
            """)
        #expect(copy.outcome == .completed)
        #expect(copy.statistics.inserted == 3)
        let stored = try mongo.find(database, "source")
        let copied = try mongo.find(database, "target")
        #expect(copied.count == 3)
        #expect(copied.map { $0.encoded() } == stored.map { $0.encoded() })
        #expect(Set(copied.map { $0.encoded() }) == Set(originals.map { $0.encoded() }))

        // Through extended JSON text and back: the types are kept.
        let out = "\(work)/out.jsonl"
        let toFile = try run("""
            name: tofile
            source: \(mongoConfig("target"))
            sink: {plugin: file, config: {path: \(out)}}
            mode: full
            """)
        #expect(toFile.outcome == .completed)
        let back = try run("""
            name: back
            source: {plugin: file, config: {path: \(out)}}
            sink: \(mongoConfig("again"))
            mode: full
            """)
        #expect(back.outcome == .completed)
        // Relaxed JSON (what the file sink writes) turns a small int64 into a
        // plain number that reads back as int32: compare with that applied.
        let throughText = try stored.map { document in
            try ExtendedJSON.parse(document.description).withUnsafeBytes { DocumentView($0).decode().encoded() }
        }
        let again = try mongo.find(database, "again")
        #expect(again.map { $0.encoded() } == throughText, "\(again) != \(stored)")
        #expect(again.first?["i64"] == .int64(9_007_199_254_740_993))
    }

    @Test("upserting the same input twice changes nothing the second time; a changed record counts as updated")
    func upsertIdempotence() throws {
        var lines = (1...20).map { #"{"_id": \#($0), "sku": "SKU-\#($0)", "price": {"$numberDecimal": "\#($0).50"}}"# }
        let input = try writeLines("products.jsonl", lines)
        let yaml = """
            name: upsert
            source: {plugin: file, config: {path: \(input)}}
            sink: \(mongoConfig("products"))
            batch_size: 3
            mode: full
            """
        let first = try run(yaml)
        #expect(first.outcome == .completed)
        #expect(first.statistics.inserted == 20)
        let second = try run(yaml)
        #expect(second.statistics.inserted == 0)
        #expect(second.statistics.updated == 0)
        #expect(second.statistics.unchanged == 20)
        lines[4] = #"{"_id": 5, "sku": "SKU-5", "price": {"$numberDecimal": "99.00"}}"#
        _ = try writeLines("products.jsonl", lines)
        let third = try run(yaml)
        #expect(third.statistics.updated == 1)
        #expect(third.statistics.unchanged == 19)
        let stored = try mongo.find(database, "products")
        #expect(stored.count == 20)
        #expect(stored[4]["price"] == .decimal128(Array(try ExtendedJSON.parse(#"{"p": {"$numberDecimal": "99.00"}}"#)[7..<23])))
    }

    @Test("update: set keeps fields the input does not carry; key other than _id matches on it")
    func setByKey() throws {
        try mongo.insert(database, "stock", [
            [("_id", .int32(100)), ("sku", .string("A")), ("qty", .int32(1)), ("note", .string("keep me"))],
        ])
        let input = try writeLines("stock.jsonl", [#"{"sku": "A", "qty": 5}"#, #"{"sku": "B", "qty": 7}"#])
        let report = try run("""
            name: set
            source: {plugin: file, config: {path: \(input)}}
            sink: \(mongoConfig("stock", "key: sku, update: set"))
            mode: full
            """)
        #expect(report.outcome == .completed)
        #expect(report.statistics.updated == 1)
        #expect(report.statistics.inserted == 1)
        let stored = try mongo.find(database, "stock", filter: [("sku", .string("A"))])
        #expect(stored.count == 1)
        #expect(stored.first?["qty"] == .int32(5))
        #expect(stored.first?["note"] == .string("keep me"))
        #expect(try mongo.find(database, "stock", filter: [("sku", .string("B"))]).first?["qty"] == .int32(7))
    }

    @Test("missing-only inserts the keys the target lacks and leaves existing documents untouched")
    func missingOnly() throws {
        try mongo.insert(database, "cart", [
            [("_id", .int32(1)), ("name", .string("already here"))],
            [("_id", .int32(3)), ("name", .string("also here"))],
        ])
        let input = try writeLines("in.jsonl", (1...4).map { #"{"_id": \#($0), "name": "new \#($0)"}"# })
        let report = try run("""
            name: missing
            source: {plugin: file, config: {path: \(input)}}
            sink: \(mongoConfig("cart"))
            mode: missing-only
            """)
        #expect(report.outcome == .completed)
        #expect(report.statistics.inserted == 2)
        #expect(report.statistics.unchanged == 2)
        #expect(report.statistics.updated == 0)
        let names = try mongo.find(database, "cart").map { $0["name"] }
        #expect(names == [.string("already here"), .string("new 2"), .string("also here"), .string("new 4")])
    }

    @Test("replace mode empties the collection once, then inserts the run's documents")
    func replaceMode() throws {
        try mongo.insert(database, "snap", (1...5).map { [("_id", .int32(Int32($0))), ("old", .bool(true))] })
        let input = try writeLines("snap.jsonl", (4...9).map { #"{"_id": \#($0), "fresh": true}"# })
        let report = try run("""
            name: replace
            source: {plugin: file, config: {path: \(input)}}
            sink: \(mongoConfig("snap", "write_mode: replace"))
            batch_size: 2
            mode: full
            """)
        #expect(report.outcome == .completed)
        #expect(report.statistics.inserted == 6)
        let stored = try mongo.find(database, "snap")
        #expect(stored.map { $0["_id"] } == (4...9).map { .int32(Int32($0)) })
        #expect(stored.allSatisfy { $0["fresh"] == .bool(true) && $0["old"] == nil })
    }

    @Test("a duplicate key on a unique index is dead-lettered with the server's message while the rest lands")
    func duplicateKeyDeadLettered() throws {
        try mongo.createUniqueIndex(database, "items", field: "sku")
        let input = try writeLines("items.jsonl", [
            #"{"_id": 1, "sku": "A"}"#, #"{"_id": 2, "sku": "B"}"#, #"{"_id": 3, "sku": "A"}"#, #"{"_id": 4, "sku": "C"}"#,
        ])
        let report = try run("""
            name: dup
            source: {plugin: file, config: {path: \(input)}}
            sink: \(mongoConfig("items"))
            batch_size: 10
            mode: full
            """)
        #expect(report.outcome == .completed)
        #expect(report.statistics.deadLettered == 1)
        #expect(report.statistics.inserted == 3)
        #expect(try mongo.find(database, "items").map { $0["_id"] } == [.int32(1), .int32(2), .int32(4)])
        let dead = try String(contentsOfFile: "\(work)/dead.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(dead.count == 1)
        let line = String(dead.first ?? "")
        #expect(line.contains("E11000") || line.contains("duplicate key"))
        #expect(line.contains(#""record":{ "_id" : { "$numberInt" : "3" }"#))
    }

    @Test("a document failing the collection's validator is dead-lettered with the server's reason; the others land")
    func validationDeadLettered() throws {
        try mongo.command(database, [
            ("create", .string("valid")),
            ("validator", .document([("$jsonSchema", .document([("required", .array([.string("sku")]))]))])),
        ])
        let input = try writeLines("valid.jsonl", [#"{"_id": 1, "sku": "A"}"#, #"{"_id": 2, "name": "no sku"}"#, #"{"_id": 3, "sku": "C"}"#])
        let report = try run("""
            name: valid
            source: {plugin: file, config: {path: \(input)}}
            sink: \(mongoConfig("valid", "write_concern: {w: 1, j: false}"))
            mode: full
            """)
        #expect(report.outcome == .completed)
        #expect(report.statistics.deadLettered == 1)
        #expect(report.statistics.inserted == 2)
        #expect(try mongo.find(database, "valid").map { $0["_id"] } == [.int32(1), .int32(3)])
        let dead = try String(contentsOfFile: "\(work)/dead.jsonl", encoding: .utf8)
        #expect(dead.contains("Document failed validation"))
        #expect(dead.contains("(code 121)"))
        #expect(dead.contains("no sku"))
    }

    @Test("incremental without a cursor resumes after the last key: only new, higher keys are read")
    func incrementalByKey() throws {
        try mongo.insert(database, "log", (1...5).map { [("_id", .int64(Int64($0)))] })
        let store = MemoryStateStore()
        let yaml = """
            name: log
            source: \(mongoConfig("log"))
            sink: {plugin: blackhole}
            batch_size: 2
            mode: incremental
            """
        #expect(try run(yaml, store: store).statistics.read == 5)
        try mongo.insert(database, "log", [[("_id", .int64(6))], [("_id", .int64(7))]])
        let second = try run(yaml, store: store)
        #expect(second.statistics.read == 2)
        #expect(second.statistics.estimatedTotal == 2)
        #expect(try run(yaml, store: store).statistics.read == 0)
    }

    @Test("config mistakes are refused at open, naming the field")
    func configErrors() throws {
        let fileSource = "{plugin: file, config: {path: \(try writeLines("empty.jsonl", []))}}"
        for (source, sink, expected) in [
            (fileSource, mongoConfig("x", "write_concern: {w: 1, fsync: true}"), "field 'write_concern.fsync': unknown"),
            (fileSource, mongoConfig("x", "key: a.b"), "field 'key': 'a.b' must be a top-level field name"),
            (mongoConfig("x", #"filter: '{"a": '"#), "{plugin: blackhole}", "field 'filter': invalid extended JSON"),
            (mongoConfig("x", "projection: {_id: 0}"), "{plugin: blackhole}", "field 'projection': it excludes '_id'"),
        ] {
            let report = try run("""
                name: bad
                source: \(source)
                sink: \(sink)
                """)
            let message = try #require(report.failureMessage)
            #expect(message.contains(expected), "\(message)")
        }
    }

    @Test("incremental reads by (cursor, key) with ties across batch boundaries: nothing lost, nothing repeated")
    func incrementalTies() throws {
        // Cursor values with long runs of ties, batches of 2 and 3 split them.
        let cursors: [Int32] = [1, 1, 1, 2, 2, 2, 2, 3, 5, 5]
        try mongo.insert(database, "events", cursors.enumerated().map { [("_id", .int32(Int32($0.offset))), ("t", .int32($0.element))] })
        let store = MemoryStateStore()
        var expected: [BSONValue] = (0..<10).map { .int32(Int32($0)) }
        for batchSize in [2, 3] {
            try? FileManager.default.removeItem(atPath: "\(work)/events.jsonl")
            try store.reset(pipeline: "events", shard: nil)
            let yaml = """
                name: events
                source: \(mongoConfig("events", "cursor: t"))
                sink: {plugin: file, config: {path: \(work)/events.jsonl}}
                batch_size: \(batchSize)
                mode: incremental
                """
            let first = try run(yaml, store: store)
            #expect(first.outcome == .completed)
            #expect(try readLines("\(work)/events.jsonl").map { $0["_id"] } == expected)
            // New documents tie with the saved cursor (5) above its key, and an update moves one forward.
            try mongo.insert(database, "events", [[("_id", .int32(10 + Int32(batchSize))), ("t", .int32(5))]])
            try mongo.command(database, [
                ("update", .string("events")),
                ("updates", .array([.document([("q", .document([("_id", .int32(0))])), ("u", .document([("$set", .document([("t", .int32(6))]))]))])])),
            ])
            let second = try run(yaml, store: store)
            #expect(second.statistics.read == 2)
            let all = try readLines("\(work)/events.jsonl").map { $0["_id"] }
            #expect(all.suffix(2) == [.int32(10 + Int32(batchSize)), .int32(0)])
            let third = try run(yaml, store: store)
            #expect(third.statistics.read == 0)
            expected.append(.int32(10 + Int32(batchSize)))
            // Put the updated one back for the next round.
            try mongo.command(database, [
                ("update", .string("events")),
                ("updates", .array([.document([("q", .document([("_id", .int32(0))])), ("u", .document([("$set", .document([("t", .int32(1))]))]))])])),
            ])
        }
    }

    @Test("a saved state from another cursor configuration is refused with a clear message")
    func foreignStateRefused() throws {
        try mongo.insert(database, "events", [[("_id", .int32(1)), ("t", .int32(1))]])
        let store = MemoryStateStore()
        func yaml(_ cursor: String) -> String {
            """
            name: state
            source: \(mongoConfig("events", "cursor: \(cursor)"))
            sink: {plugin: blackhole}
            mode: incremental
            """
        }
        #expect(try run(yaml("t"), store: store).outcome == .completed)
        let message = try #require(try run(yaml("updatedAt"), store: store).failureMessage)
        #expect(message.contains("saved state was taken with key '_id' and cursor 't'"))
    }

    @Test("shards i/N over mixed keys are disjoint and together the whole collection")
    func shardUnion() throws {
        var documents: [BSONDocument] = []
        for i in -20...40 { documents.append([("_id", .int32(Int32(i)))]) }
        for i in 0..<30 { documents.append([("_id", Self.oid(UInt8(i)))]) }
        for word in ["apple", "pear", "日本", "x", "product-0001", "product-0002", "product-0003"] { documents.append([("_id", .string(word))]) }
        documents.append([("_id", .int64(1 << 40))])
        documents.append([("_id", .double(2.5))])
        try mongo.insert(database, "mixed", documents)
        let count = 3
        var seen: [[UInt8]] = []
        for index in 0..<count {
            var options = RunOptions()
            options.shard = ShardSpec(index: index, count: count)
            let out = "\(work)/shard\(index).jsonl"
            let report = try run("""
                name: shards
                source: \(mongoConfig("mixed"))
                sink: {plugin: file, config: {path: \(out)}}
                batch_size: 7
                mode: full
                """, options: options)
            #expect(report.outcome == .completed)
            let read = try readLines(out)
            #expect(read.count > 0, "shard \(index) read nothing: a poor split")
            seen += read.map { $0.encoded() }
        }
        #expect(seen.count == documents.count)
        #expect(Set(seen).count == seen.count)
        #expect(Set(seen) == Set(documents.map { $0.encoded() }))
    }

    @Test("filter and projection are applied by the server; the estimate counts what will be read")
    func filterAndProjection() throws {
        try mongo.insert(database, "p", (1...10).map { [("_id", .int32(Int32($0))), ("cat", .string($0 % 2 == 0 ? "even" : "odd")), ("big", .string("…"))] })
        let out = "\(work)/p.jsonl"
        let report = try run("""
            name: fp
            source: \(mongoConfig("p", #"filter: '{"cat": "even"}', projection: {cat: 1}"#))
            sink: {plugin: file, config: {path: \(out)}}
            mode: full
            """)
        #expect(report.outcome == .completed)
        #expect(report.statistics.estimatedTotal == 5)
        let read = try readLines(out)
        #expect(read.map { $0.keys } == Array(repeating: ["_id", "cat"], count: 5))
        let unestimated = try run("""
            name: fp2
            source: \(mongoConfig("p", "estimate: false"))
            sink: {plugin: blackhole}
            mode: full
            """)
        #expect(unestimated.statistics.read == 10)
        #expect(unestimated.statistics.estimatedTotal == nil)
    }

    @Test("dry run previews would-insert / would-update / unchanged and writes nothing")
    func preview() throws {
        try mongo.insert(database, "pv", [
            [("_id", .int32(1)), ("v", .int32(1))],
            [("_id", .int32(2)), ("v", .int32(2))],
        ])
        let input = try writeLines("pv.jsonl", [#"{"_id": 1, "v": 1}"#, #"{"_id": 2, "v": 20}"#, #"{"_id": 3, "v": 3}"#])
        var options = RunOptions()
        options.dryRun = true
        let report = try run("""
            name: pv
            source: {plugin: file, config: {path: \(input)}}
            sink: \(mongoConfig("pv"))
            mode: full
            """, options: options)
        #expect(report.outcome == .completed)
        #expect(report.sinkPreviewed)
        #expect(report.statistics.inserted == 1)
        #expect(report.statistics.updated == 1)
        #expect(report.statistics.unchanged == 1)
        #expect(try mongo.find(database, "pv").map { $0["v"] } == [.int32(1), .int32(2)])
    }

    @Test("an unreachable server or a bad URI fails fast with a clear error and no password")
    func unreachable() throws {
        for (badURI, expected) in [
            ("mongodb://bob:hunter2secret@127.0.0.1:1/?serverSelectionTimeoutMS=2000", "No suitable servers"),
            ("mongodb://bob:hunter2secret@", "not a usable MongoDB URI"),
            ("http://bob:hunter2secret@127.0.0.1:1", "not a usable MongoDB URI"),
        ] {
            let started = Date()
            let report = try run("""
                name: down
                source: {plugin: mongo, config: {uri: "\(badURI)", database: d, collection: c}}
                sink: {plugin: blackhole}
                """)
            #expect(Date().timeIntervalSince(started) < 15)
            let message = try #require(report.failureMessage)
            #expect(message.contains(expected), "\(message)")
            #expect(message.contains("mongo"))
            #expect(!message.contains("hunter2secret"))
        }
    }
}

extension MongoConnectorTests {
    @Test("a record over the server's document size limit is dead-lettered on its own; the rest of its batch lands (upsert and insert)")
    func oversizedDocumentDeadLettered() throws {
        // 1.5 million zeros: a 3 MB JSON line, but about 19 MB of BSON, since
        // every array element carries its index as a key.
        let zeros = "[" + String(repeating: "0,", count: 1_499_999) + "0]"
        let input = try writeLines("big.jsonl", [
            #"{"_id": 1, "v": "a"}"#, #"{"_id": 2, "zeros": \#(zeros)}"#, #"{"_id": 3, "v": "c"}"#,
        ])
        for mode in ["upsert", "insert"] {
            let report = try run("""
                name: big-\(mode)
                source: {plugin: file, config: {path: \(input)}}
                sink: \(mongoConfig("big_\(mode)", "write_mode: \(mode)"))
                batch_size: 10
                mode: full
                """)
            #expect(report.outcome == .completed, "\(mode): \(report.failureMessage ?? "")")
            #expect(report.statistics.deadLettered == 1)
            #expect(report.statistics.inserted == 2)
            #expect(try mongo.find(database, "big_\(mode)").map { $0["_id"] } == [.int32(1), .int32(3)])
            let dead = try String(contentsOfFile: "\(work)/dead.jsonl", encoding: .utf8)
            #expect(dead.contains("over the server's maximum document size of 16777216 bytes"), "\(dead.prefix(300))")
            try FileManager.default.removeItem(atPath: "\(work)/dead.jsonl")
        }
    }

    /// Opens an instance through the bare C ABI, without the host (whose own
    /// masking would hide a leak): the plugin's status and its own message.
    static func openThroughABI(_ library: String, kind: UInt32, config: String) throws -> (status: Int32, message: String) {
        guard let handle = dlopen(library, RTLD_NOW | RTLD_LOCAL) else { throw TestFailure("dlopen \(library) failed") }
        guard let symbol = dlsym(handle, "ferry_plugin_entry") else { throw TestFailure("no ferry_plugin_entry in \(library)") }
        let descriptor = unsafeBitCast(symbol, to: ferry_plugin_entry_fn.self)()!.pointee
        let cancel = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        cancel.initialize(to: 0)
        defer { cancel.deallocate() }
        var host = ferry_host_api()
        host.struct_size = UInt32(MemoryLayout<ferry_host_api>.size)
        host.abi_major = UInt16(FERRY_ABI_MAJOR)
        host.abi_minor = UInt16(FERRY_ABI_MINOR)
        host.cancel_flag = UnsafePointer(cancel)
        host.shard_count = 1
        var message = [CChar](repeating: 0, count: Int(FERRY_ERROR_CAPACITY))
        var instance: UnsafeMutableRawPointer?
        let status = withUnsafePointer(to: &host) { hostPointer in
            config.withCString { json in
                message.withUnsafeMutableBufferPointer { buffer in
                    var args = ferry_open_args()
                    args.struct_size = UInt32(MemoryLayout<ferry_open_args>.size)
                    args.kind = kind
                    args.host = hostPointer
                    args.config_json = json
                    args.config_size = UInt64(strlen(json))
                    args.mode = UInt32(FERRY_MODE_FULL)
                    args.batch_size = 100
                    var error = ferry_error(message: buffer.baseAddress, capacity: FERRY_ERROR_CAPACITY, reserved: 0)
                    return descriptor.open(&args, &instance, &error)
                }
            }
        }
        descriptor.close(instance)
        return (status, status == FERRY_OK ? "" : String(cString: message))
    }

    @Test("passwords with @, / and % never appear in any error text; a malformed URI is a config error named by its hosts")
    func passwordsNeverInErrors() throws {
        let library = "\(plugins)/libFerryMongo.so"
        let serverPort = uri.split(separator: ":").last.map { String($0.prefix { $0.isNumber }) } ?? "1"
        // Every password holds the sentinels LeakZ and Tail7, which no message may show.
        let cases: [(uri: String, malformed: Bool)] = [
            ("mongodb://etl:LeakZ%40x%2FTail7%25@127.0.0.1:1/?serverSelectionTimeoutMS=300", false),
            ("mongodb://etl:LeakZ%40x%2FTail7%25@127.0.0.1:\(serverPort)/?serverSelectionTimeoutMS=2000", false),
            ("mongodb://etl:LeakZ/Tail7@127.0.0.1:1/db?serverSelectionTimeoutMS=300", true),
            ("mongodb://etl:LeakZ@Tail7@127.0.0.1:1/?serverSelectionTimeoutMS=300", true),
            ("mongodb://etl:LeakZ%Tail7@127.0.0.1:1/?serverSelectionTimeoutMS=300", true),
            ("mongodb://etl:LeakZ%zzTail7@127.0.0.1:1", true),
            ("mongodb://etl:LeakZ:Tail7@127.0.0.1:1", true),
            ("mongodb://etl:LeakZ/Tail7@", true),
            ("http://etl:LeakZ/Tail7@127.0.0.1:1", true),
            // libmongoc reads this one right (the password is "LeakZ?Tail7"): not malformed.
            ("mongodb://etl:LeakZ?Tail7@127.0.0.1:1/?serverSelectionTimeoutMS=300", false),
        ]
        for (badURI, malformed) in cases {
            var texts: [String] = []
            for kind in [UInt32(FERRY_KIND_SOURCE), UInt32(FERRY_KIND_SINK)] {
                let config = #"{"uri": "\#(badURI)", "database": "\#(database)", "collection": "c"}"#
                let (status, message) = try Self.openThroughABI(library, kind: kind, config: config)
                texts.append(message)
                if malformed {
                    #expect(status == Int32(FERRY_ERR_CONFIG), "\(badURI): status \(status): \(message)")
                    #expect(message.contains("field 'uri'"), "\(message)")
                }
            }
            let report = try run("""
                name: leak
                source: {plugin: mongo, config: {uri: "\(badURI)", database: \(database), collection: c}}
                sink: \(mongoConfig("leak"))
                """)
            texts.append(report.failureMessage ?? "")
            for text in texts {
                // libmongoc lowercases host names: look for the sentinels in any case.
                #expect(!text.lowercased().contains("leakz") && !text.lowercased().contains("tail7"), "\(badURI) leaked: \(text)")
            }
            if !malformed, badURI.contains(":1/") {
                #expect(texts[0].contains("127.0.0.1:1/\(database) (user etl)"), "\(texts[0])")
            }
        }
    }
}

@Suite("MongoDB connector: lost connections", .serialized)
struct MongoConnectionLossTests {
    @Test("a connection cut mid-run is retried with backoff and the copy completes exactly (source and sink through the cut)")
    func connectionLostMidRun() throws {
        let (mongo, _) = try MongoTestClient.fromEnvironment()
        guard let port = ProcessInfo.processInfo.environment["FERRY_TEST_MONGO_PORT"].flatMap(UInt16.init) else {
            throw TestFailure("FERRY_TEST_MONGO_PORT is not set: run `make test` / scripts/test.sh, which starts the test servers")
        }
        let plugins = try TestSupport.pluginDirectory(TestSupport.standardPlugins + ["FerryMongo"])
        let work = try TestSupport.temporaryDirectory("ferry-mongo-cut")
        let database = "ferrytest_\(UUID().uuidString.prefix(8).lowercased())"
        let total = 3000
        var documents: [BSONDocument] = []
        for i in 0..<total {
            documents.append([("_id", .int32(Int32(i))), ("payload", .string(String(repeating: "x", count: 200)))])
            if documents.count == 1000 {
                try mongo.insert(database, "source", documents)
                documents.removeAll()
            }
        }
        let proxy = try CuttableTCPProxy(forwardingTo: port)
        defer { proxy.stop() }
        let uri = "mongodb://127.0.0.1:\(proxy.port)/?serverSelectionTimeoutMS=2000"
        let yaml = """
            name: cut
            source: {plugin: mongo, config: {uri: "\(uri)", database: \(database), collection: source, batch_size: 50}}
            sink: {plugin: mongo, config: {uri: "\(uri)", database: \(database), collection: target}}
            batch_size: 100
            mode: full
            retry: {attempts: 5, initial_delay_ms: 50}
            """
        let plan = try TestSupport.plan(yaml, plugins: plugins, file: "\(work)/pipeline.yaml")
        // Mid-run: after about a third of the collection has come back from the server.
        proxy.cut(afterServerBytes: total * 230 / 3)
        let report = PipelineRunner(
            plan: plan, options: RunOptions(), store: MemoryStateStore(), deadLetterPath: "\(work)/dead.jsonl", logger: TestSupport.logger
        ).run()
        #expect(report.outcome == .completed, "\(report.failureMessage ?? "")")
        #expect(proxy.cuts.load(ordering: .relaxed) >= 1)
        // Source and sink each hold one connection; more means they reconnected after the cut.
        #expect(proxy.accepted.load(ordering: .relaxed) >= 3)
        #expect(report.statistics.read == total)
        let copied = try mongo.find(database, "target")
        #expect(copied.count == total)
        #expect(copied.map { $0["_id"] } == (0..<total).map { .int32(Int32($0)) })
    }
}
