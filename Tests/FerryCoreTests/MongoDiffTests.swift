import CFerryPlugin
import FerryCore
import FerryPluginKit
import Foundation
import Testing

/// The MongoDB plugin's ABI 1.1 calls (`ferry diff` read-back, `ferry repair`
/// delete) against the real SecantusDB server, through the built .so.
@Suite("MongoDB read-back and delete", .serialized)
struct MongoDiffTests {
    let mongo: MongoTestClient
    let uri: String
    let database: String
    let plugin: LoadedPlugin
    /// Outlives every instance: the host table points at its flag.
    let cancel = CancelFlag()

    init() throws {
        (mongo, uri) = try MongoTestClient.fromEnvironment()
        database = "ferrydiff_\(UUID().uuidString.prefix(8).lowercased())"
        plugin = try PluginLoader.load(path: TestSupport.product("libFerryMongo.so"), checkPermissions: false)
    }

    func open(_ collection: String, kind: PluginKinds = .sink, mode: SyncMode = .incremental, batchSize: Int = 100, _ extra: [String: JSONValue] = [:])
        throws -> HostedInstance
    {
        var config: [String: JSONValue] = ["uri": .string(uri), "database": .string(database), "collection": .string(collection)]
        config.merge(extra) { $1 }
        return try HostedInstance(
            plugin: plugin,
            options: InstanceOptions(kind: kind, stage: kind == .sink ? "sink" : "source", configJSON: JSONValue.object(config).jsonText, mode: mode, batchSize: batchSize),
            cancel: cancel, logger: TestSupport.logger)
    }

    /// Every batch's documents as bytes, and each batch's size.
    func readBack(_ instance: HostedInstance) throws -> (documents: [[UInt8]], batches: [Int]) {
        var documents: [[UInt8]] = []
        var batches: [Int] = []
        var batch = ferry_batch()
        while try instance.read(&batch) {
            let view = BatchView(batch)
            batches.append(view.count)
            for document in view { documents.append(Array(document.bytes)) }
            instance.release(&batch)
        }
        return (documents, batches)
    }

    func ids(_ values: [Int32]) -> [BSONValue?] { values.map { .int32($0) } }

    func delete(_ instance: HostedInstance, _ keys: [BSONDocument]) throws -> UInt64 {
        let builder = BatchBuilder()
        for key in keys { builder.append(key) }
        var batch = ferry_batch()
        builder.finish(into: &batch)
        defer { BatchBuilder.release(&batch) }
        return try withUnsafePointer(to: &batch) { try instance.deleteKeys($0) }
    }

    @Test("the plugin says it reads back and deletes, and does not digest (SecantusDB cannot hash server-side)")
    func capabilities() throws {
        #expect(plugin.canReadBack)
        #expect(plugin.canDelete)
        #expect(!plugin.canDigest)
        let sink = try open("caps", ["key": .string("sku")])
        defer { sink.close() }
        #expect(try sink.diffInfo() == DiffInfo(key: ["sku"]))
        let source = try open("caps", kind: .source, ["key": .string("code")])
        defer { source.close() }
        #expect(try source.diffInfo() == DiffInfo(key: ["code"]))
        let plain = try open("caps", kind: .source)
        defer { plain.close() }
        #expect(try plain.diffInfo() == DiffInfo(key: ["_id"]))
    }

    @Test("read-back yields every document of a 3,000-document collection once, byte for byte as inserted, in batches of batch_size")
    func readBackAll() throws {
        let collection = "rb"
        defer { mongo.drop(database, collection) }
        let documents: [BSONDocument] = (0..<3000).map { index in
            switch index % 3 {
            case 0: MongoConnectorTests.richDocument(.int32(Int32(index)))
            case 1: [("_id", .int32(Int32(index))), ("name", .string("n\(index)")), ("at", .datetime(1_700_000_000_000 + Int64(index)))]
            default: [("_id", .int32(Int32(index))), ("v", .double(Double(index) / 7)), ("big", .int64(Int64(index) << 40)), ("tags", .array([.int32(1), .null]))]
            }
        }
        for start in stride(from: 0, to: documents.count, by: 500) {
            try mongo.insert(database, collection, Array(documents[start..<start + 500]))
        }
        let sink = try open(collection, batchSize: 700)
        defer { sink.close() }
        let (read, batches) = try readBack(sink)
        #expect(read.count == 3000)
        #expect(batches == [700, 700, 700, 700, 200])
        #expect(read == documents.map { $0.encoded() }, "key order, bytes as inserted")
        #expect(Set(read).count == 3000)
        // A read-back at its end stays there.
        var batch = ferry_batch()
        #expect(try !sink.read(&batch))
    }

    @Test("delete by _id: three keys, one absent, deletes the two present and reports 2; numbers match across widths")
    func deleteById() throws {
        let collection = "del"
        defer { mongo.drop(database, collection) }
        try mongo.insert(database, collection, (1...10).map { [("_id", .int32(Int32($0))), ("v", .string("v\($0)"))] })
        let sink = try open(collection)
        defer { sink.close() }
        #expect(try delete(sink, [[("_id", .int32(2))], [("_id", .int32(5))], [("_id", .int32(99))]]) == 2)
        #expect(try mongo.find(database, collection).map { $0["_id"] } == ids([1, 3, 4, 6, 7, 8, 9, 10]))
        #expect(try delete(sink, [[("_id", .int64(7))], [("_id", .double(8))]]) == 2, "the server compares numbers by value")
        #expect(try delete(sink, [[("_id", .int32(2))]]) == 0, "a key deleted before is absent: a re-sent delete is harmless")
        #expect(try delete(sink, []) == 0)
        #expect(try mongo.find(database, collection).map { $0["_id"] } == ids([1, 3, 4, 6, 9, 10]))
    }

    @Test("delete by the sink's key field, and by a composite key (an $or of exact matches, no cross product)")
    func deleteByKeyAndComposite() throws {
        let collection = "delc"
        defer { mongo.drop(database, collection) }
        var documents: [BSONDocument] = []
        for region in ["eu", "us"] {
            for n in 1...3 { documents.append([("_id", .string("\(region)\(n)")), ("region", .string(region)), ("n", .int32(Int32(n))), ("sku", .string("S-\(region)\(n)"))]) }
        }
        try mongo.insert(database, collection, documents)
        let bySku = try open(collection, ["key": .string("sku")])
        defer { bySku.close() }
        #expect(try bySku.diffInfo().key == ["sku"])
        #expect(try delete(bySku, [[("sku", .string("S-eu3"))], [("sku", .string("S-nope"))]]) == 1)
        let sink = try open(collection)
        defer { sink.close() }
        let deleted = try delete(sink, [
            [("region", .string("eu")), ("n", .int32(1))],
            [("region", .string("us")), ("n", .int32(2))],
            [("region", .string("eu")), ("n", .int32(9))],
        ])
        #expect(deleted == 2)
        #expect(try mongo.find(database, collection).map { $0["_id"] } == ["eu2", "us1", "us3"].map { BSONValue.string($0) })
    }

    @Test("delete honours the sink's write concern: one the server cannot satisfy fails the call")
    func deleteWriteConcern() throws {
        let collection = "delwc"
        defer { mongo.drop(database, collection) }
        try mongo.insert(database, collection, [[("_id", .int32(1))]])
        let sink = try open(collection, ["write_concern": .object(["w": .integer(5)])])
        defer { sink.close() }
        #expect {
            _ = try delete(sink, [[("_id", .int32(1))]])
        } throws: { error in
            let message = "\(error)"
            return message.contains("delete 1 keys from \(database).\(collection)") && message.contains("data-bearing")
        }
    }

    @Test("opening a sink for a diff (incremental, even with write_mode replace) and reading it back changes nothing")
    func openChangesNothing() throws {
        let collection = "keep"
        defer { mongo.drop(database, collection) }
        let documents: [BSONDocument] = (1...50).map { [("_id", .int32(Int32($0))), ("v", .int32(Int32($0 * 2)))] }
        try mongo.insert(database, collection, documents)
        for mode in [SyncMode.incremental, .full] {
            let sink = try open(collection, mode: mode, ["write_mode": .string("replace")])
            _ = try sink.diffInfo()
            let (read, _) = try readBack(sink)
            #expect(read.count == 50, "mode \(mode)")
            try sink.commit()
            sink.close()
            #expect(try mongo.find(database, collection) == documents, "mode \(mode)")
        }
    }
}
