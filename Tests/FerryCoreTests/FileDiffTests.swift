import CFerryPlugin
import FerryCore
import FerryPluginKit
import Foundation
import Testing

/// The file plugin's ABI 1.1 calls: the sink reads its file back as the file
/// source reads it (`ferry diff`) and deletes by key with an atomic rewrite
/// (`ferry repair`), through the built .so on real files.
@Suite("File sink read-back and delete")
struct FileDiffTests {
    let work: String
    let plugin: LoadedPlugin
    /// Outlives every instance: the host table points at its flag.
    let cancel = CancelFlag()

    init() throws {
        work = try TestSupport.temporaryDirectory("ferry-file-diff")
        plugin = try PluginLoader.load(path: TestSupport.product("libFerryFile.so"), checkPermissions: false)
    }

    func open(_ kind: PluginKinds, _ config: [String: JSONValue], mode: SyncMode = .incremental, batchSize: Int = 100) throws -> HostedInstance {
        try HostedInstance(
            plugin: plugin,
            options: InstanceOptions(kind: kind, stage: kind == .sink ? "sink" : "source", configJSON: JSONValue.object(config).jsonText, mode: mode, batchSize: batchSize),
            cancel: cancel, logger: TestSupport.logger)
    }

    /// Every record `read` yields (source read or sink read-back), and each batch's size.
    func readAll(_ instance: HostedInstance) throws -> (documents: [[UInt8]], batches: [Int]) {
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

    func write(_ sink: HostedInstance, _ documents: [[UInt8]]) throws {
        let builder = BatchBuilder()
        for document in documents { document.withUnsafeBytes { builder.append(encoded: $0) } }
        var batch = ferry_batch()
        builder.finish(into: &batch)
        defer { BatchBuilder.release(&batch) }
        var result = ferry_result()
        try withUnsafePointer(to: &batch) { try sink.write($0, &result) }
        #expect(result.reject_count == 0)
    }

    func delete(_ sink: HostedInstance, _ keys: [BSONDocument]) throws -> UInt64 {
        let builder = BatchBuilder()
        for key in keys { builder.append(key) }
        var batch = ferry_batch()
        builder.finish(into: &batch)
        defer { BatchBuilder.release(&batch) }
        return try withUnsafePointer(to: &batch) { try sink.deleteKeys($0) }
    }

    func file(_ name: String, _ lines: [String]) throws -> String {
        let path = "\(work)/\(name)"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func bytes(_ path: String) -> [UInt8]? { FileManager.default.contents(atPath: path).map(Array.init) }

    func lines(_ path: String) -> [String] {
        String(decoding: bytes(path) ?? [], as: UTF8.self).split(separator: "\n").map(String.init)
    }

    func inode(_ path: String) throws -> UInt64 {
        try #require(FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? UInt64)
    }

    /// Relaxed extended JSON: equal for equal values whatever the integer width.
    func text(_ document: [UInt8]) -> String { document.withUnsafeBytes { ExtendedJSON.render(DocumentView($0)) } ?? "(invalid)" }

    /// Copies a source file through the sink, then reads the sink back with a fresh instance.
    func copyAndReadBack(_ input: String, _ output: String, batchSize: Int) throws -> (source: [[UInt8]], back: [[UInt8]], batches: [Int]) {
        let source = try open(.source, ["path": .string(input)], batchSize: batchSize)
        let (records, _) = try readAll(source)
        source.close()
        let sink = try open(.sink, ["path": .string(output), "key": .string("id")], mode: .full)
        for start in stride(from: 0, to: records.count, by: batchSize) {
            try write(sink, Array(records[start..<min(start + batchSize, records.count)]))
        }
        try sink.commit()
        sink.close()
        let reader = try open(.sink, ["path": .string(output), "key": .string("id")], batchSize: batchSize)
        defer { reader.close() }
        let (back, batches) = try readAll(reader)
        return (records, back, batches)
    }

    @Test("the plugin reads back and deletes; diffInfo's key is the sink's `key` (one name or a list), nil without it")
    func diffInfo() throws {
        #expect(plugin.canReadBack)
        #expect(plugin.canDelete)
        #expect(!plugin.canDigest)
        let path = "\(work)/info.jsonl"
        for (key, expected) in [(JSONValue?.none, [String]?.none), (.string("id"), ["id"]), (.array([.string("a"), .string("b")]), ["a", "b"])] {
            var config: [String: JSONValue] = ["path": .string(path)]
            if let key { config["key"] = key }
            let sink = try open(.sink, config)
            #expect(try sink.diffInfo() == DiffInfo(key: expected, fields: nil, digestScheme: nil))
            sink.close()
        }
        #expect(throws: PluginCallError.self) { try open(.sink, ["path": .string(path), "key": .array([])]) }
        #expect(throws: PluginCallError.self) { try open(.sink, ["path": .string(path), "key": .array([.string("a"), .string("a")])]) }
        #expect(!FileManager.default.fileExists(atPath: path), "opening and describing a sink creates no file")
    }

    @Test("JSON Lines: read-back yields exactly what the file source read, byte for byte, in batches of batch_size")
    func readBackJSONLines() throws {
        let input = try file("in.jsonl", (0..<250).map { index in
            switch index % 4 {
            case 0: #"{"id": \#(index), "name": "n\#(index) \"q\" é", "price": \#(Double(index) / 3), "at": {"$date": "2026-11-25T10:00:00.123Z"}}"#
            case 1: #"{"id": \#(index), "big": 9007199254740993, "oid": {"$oid": "650000000000000000000001"}, "dec": {"$numberDecimal": "1.50"}}"#
            case 2: #"{"id": \#(index), "nested": {"a": [1, {"b": null}, true]}, "empty": {}, "list": []}"#
            default: #"{"id": \#(index), "neg": -0.0, "tiny": 5e-324, "s": "tab\there"}"#
            }
        })
        let (source, back, batches) = try copyAndReadBack(input, "\(work)/out.jsonl", batchSize: 100)
        #expect(source.count == 250)
        #expect(batches == [100, 100, 50])
        #expect(back == source)
    }

    @Test("CSV: records read from CSV, written by the sink, read back to the same values (small int64s as int32, as documented)")
    func readBackCSV() throws {
        let input = try file("in.csv", ["id,name,price,flag,none"] + (1...120).map { "\($0),\"a, \"\"b\"\"\",\($0).5,\($0 % 2 == 0 ? "true" : "false")," })
        let (source, back, batches) = try copyAndReadBack(input, "\(work)/csv-out.jsonl", batchSize: 50)
        #expect(source.count == 120)
        #expect(batches == [50, 50, 20])
        #expect(back.map(text) == source.map(text))
        #expect(text(back[0]) == #"{ "id" : 1, "name" : "a, \"b\"", "price" : 1.5, "flag" : false, "none" : null }"#)
    }

    @Test("a sink opened for a diff, incremental or full, truncates nothing; a file not written yet reads back empty")
    func openChangesNothing() throws {
        let path = try file("keep.jsonl", (1...30).map { #"{"id": \#($0)}"# })
        let before = bytes(path)
        for mode in [SyncMode.incremental, .full] {
            let sink = try open(.sink, ["path": .string(path), "key": .string("id")], mode: mode)
            _ = try sink.diffInfo()
            #expect(try readAll(sink).documents.count == 30, "mode \(mode)")
            try sink.commit()
            sink.close()
            #expect(bytes(path) == before, "mode \(mode)")
        }
        let missing = "\(work)/never/written.jsonl"
        let sink = try open(.sink, ["path": .string(missing), "key": .string("id")])
        defer { sink.close() }
        #expect(try readAll(sink).documents.isEmpty)
        #expect(try delete(sink, [[("id", .int32(1))]]) == 0)
        #expect(!FileManager.default.fileExists(atPath: missing))
    }

    @Test("delete: three keys, one absent, removes the two records; kept lines stay byte for byte, in a new file with the old mode")
    func deleteKeys() throws {
        let original = (1...10).map { #"{"id": \#($0), "v": "v\#($0)"}"# } + ["", #"{ "id" : 11,   "v" : "spaced" }"#]
        let path = try file("del.jsonl", original)
        chmod(path, 0o640)
        let oldInode = try inode(path)
        let sink = try open(.sink, ["path": .string(path), "key": .string("id")])
        defer { sink.close() }
        #expect(try delete(sink, [[("id", .int32(2))], [("id", .int32(5))], [("id", .int32(99))]]) == 2)
        #expect(lines(path) == original.filter { !$0.isEmpty && !$0.contains(#""id": 2,"#) && !$0.contains(#""id": 5,"#) })
        #expect(String(decoding: bytes(path) ?? [], as: UTF8.self).contains("\n\n"), "a blank line is kept as it was")
        #expect(try inode(path) != oldInode, "replaced by rename, not rewritten in place")
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) == 0o640)
        #expect(try delete(sink, [[("id", .int64(7))], [("id", .double(8))], [("id", .string("9"))]]) == 2, "numbers match by value; a string is not a number")
        #expect(try delete(sink, [[("id", .int32(2))]]) == 0, "a re-sent delete is harmless")
        #expect(try readAll(sink).documents.map { $0.withUnsafeBytes { DocumentView($0).element(forKey: "id")?.int32Value } } == [1, 3, 4, 6, 9, 10, 11])
        #expect(try FileManager.default.contentsOfDirectory(atPath: work).filter { $0.contains("ferry-delete") }.isEmpty, "no temporary file left")
    }

    @Test("delete by a composite key matches both fields, and removes every record of a key written more than once")
    func deleteCompositeAndRepeated() throws {
        let path = try file("comp.jsonl", [
            #"{"region": "eu", "n": 1, "v": 1}"#, #"{"region": "eu", "n": 2, "v": 1}"#, #"{"region": "us", "n": 1, "v": 1}"#,
            #"{"region": "us", "n": 2, "v": 1}"#, #"{"region": "eu", "n": 1, "v": 2}"#,
        ])
        let sink = try open(.sink, ["path": .string(path), "key": .array([.string("region"), .string("n")])])
        defer { sink.close() }
        let deleted = try delete(sink, [
            [("region", .string("eu")), ("n", .int32(1))], [("region", .string("us")), ("n", .int32(2))], [("region", .string("eu")), ("n", .int32(9))],
        ])
        #expect(deleted == 3)
        #expect(lines(path) == [#"{"region": "eu", "n": 2, "v": 1}"#, #"{"region": "us", "n": 1, "v": 1}"#])
    }

    @Test("writes after a delete on the same instance land in the rewritten file, and a full run does not truncate it again")
    func writeAfterDelete() throws {
        let path = "\(work)/wad.jsonl"
        let sink = try open(.sink, ["path": .string(path), "key": .string("id")], mode: .full)
        defer { sink.close() }
        func record(_ id: Int32) -> [UInt8] { BSONDocument([("id", .int32(id))]).encoded() }
        try write(sink, [record(1), record(2), record(3)])
        #expect(try delete(sink, [[("id", .int32(2))]]) == 1)
        try write(sink, [record(4)])
        try sink.commit()
        #expect(lines(path) == [#"{ "id" : 1 }"#, #"{ "id" : 3 }"#, #"{ "id" : 4 }"#])
    }

    @Test("a line that is not JSON fails the delete naming file and line, and leaves the file as it was")
    func deleteBadLine() throws {
        let path = try file("bad.jsonl", [#"{"id": 1}"#, "{nope", #"{"id": 2}"#])
        let before = bytes(path)
        let sink = try open(.sink, ["path": .string(path), "key": .string("id")])
        defer { sink.close() }
        #expect {
            _ = try delete(sink, [[("id", .int32(1))]])
        } throws: { error in
            "\(error)".contains("\(path):2: invalid JSON")
        }
        #expect(bytes(path) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: work).filter { $0.contains("ferry-delete") }.isEmpty)
    }
}
