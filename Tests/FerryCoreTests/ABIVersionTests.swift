import CFerryPlugin
import FerryCore
import FerryPluginKit
import FerryPluginTesting
import Foundation
import Testing

/// Plugins built against another minor of ABI 1 than the host's: a 1.0 sink
/// keeps loading, lacks the 1.1 calls and says why, and the host reads none of
/// its bytes past its struct_size; a newer minor loads too.
@Suite("Plugin ABI versions")
struct ABIVersionTests {
    static let fixture = TestSupport.repoRoot.appendingPathComponent("Tests/Fixtures/abi_sink.c").path

    /// Builds Tests/Fixtures/abi_sink.c with `defines` into a fresh plugins directory.
    func build(_ defines: [String], name: String = "abisink") throws -> (directory: String, path: String) {
        let directory = try TestSupport.temporaryDirectory("abi-sink")
        let path = "\(directory)/lib\(name).so"
        try TestSupport.compilePlugin(source: Self.fixture, output: path, defines: defines + ["NAME=\"\(name)\""])
        return (directory, path)
    }

    func openSink(_ plugin: LoadedPlugin) throws -> HostedInstance {
        try HostedInstance(
            plugin: plugin, options: InstanceOptions(kind: .sink, stage: "sink", configJSON: "{}"), cancel: CancelFlag(),
            logger: TestSupport.logger)
    }

    /// One key document, {"_id": 1}, as delete_keys takes them.
    func withKeys<T>(_ body: (UnsafePointer<ferry_batch>) throws -> T) throws -> T {
        let builder = BatchBuilder()
        let key = try Record(json: #"{"_id": 1}"#)
        key.bytes.withUnsafeBytes { builder.append(encoded: $0) }
        var batch = ferry_batch()
        builder.finish(into: &batch)
        defer { BatchBuilder.release(&batch) }
        return try withUnsafePointer(to: &batch) { try body($0) }
    }

    @Test("a sink built against ABI 1.0 loads, writes, and lacks the 1.1 calls, saying it was built against 1.0")
    func abi10SinkLoads() throws {
        let (_, path) = try build([])
        let plugin = try PluginLoader.load(path: path)
        #expect(plugin.abiMajor == 1 && plugin.abiMinor == 0)
        #expect(!plugin.canReadBack && !plugin.canDigest && !plugin.canDelete)

        let sink = try openSink(plugin)
        defer { sink.close() }
        // Still a working sink: the 1.0 calls are untouched.
        try withKeys { batch in
            var result = ferry_result()
            try sink.write(batch, &result)
            #expect(result.inserted == 1)
        }
        try sink.commit()

        let describe = #expect(throws: PluginCallError.self) { try sink.diffInfo() }
        #expect(describe?.status == Int32(FERRY_ERR_UNSUPPORTED))
        #expect(describe?.call == "diff_info")
        #expect(describe?.plugin == "abisink")
        #expect(describe?.message == "'abisink' cannot describe its records for a diff (it was built against ABI 1.0)", "\(describe.map { "\($0)" } ?? "")")
        let delete = #expect(throws: PluginCallError.self) { try withKeys { try sink.deleteKeys($0) } }
        #expect(delete?.status == Int32(FERRY_ERR_UNSUPPORTED))
        #expect(delete?.call == "delete_keys")
        #expect(delete?.message.contains("'abisink'") == true)
        #expect(delete?.message.contains("built against ABI 1.0") == true, "\(delete.map { "\($0)" } ?? "")")
        let bucketSet = BucketSet(bits: 0, key: ["_id"])
        #expect(throws: PluginCallError.self) { try sink.digest(within: bucketSet, bits: 0) }
        #expect(throws: PluginCallError.self) { try sink.selectBuckets(bucketSet) }
    }

    @Test("the 1.1 functions lying after a 1.0 descriptor's 192 bytes are never seen, even with the 1.1 capability bits set")
    func bytesPastStructSizeIgnored() throws {
        let (_, path) = try build(["GARBAGE_TAIL"])
        let plugin = try PluginLoader.load(path: path)
        #expect(plugin.abiMinor == 0)
        #expect(plugin.capabilities.contains([.readBack, .digest, .delete]), "the bits are there; the functions must not be")
        #expect(!plugin.canReadBack, "diff_info and read were taken from past struct_size")
        #expect(!plugin.canDigest, "digest and select_buckets were taken from past struct_size")
        #expect(!plugin.canDelete, "delete_keys was taken from past struct_size")

        let sink = try openSink(plugin)
        defer { sink.close() }
        let describe = #expect(throws: PluginCallError.self) { try sink.diffInfo() }
        #expect(describe?.status == Int32(FERRY_ERR_UNSUPPORTED))
        let delete = #expect(throws: PluginCallError.self) { try withKeys { try sink.deleteKeys($0) } }
        #expect(delete?.status == Int32(FERRY_ERR_UNSUPPORTED))
    }

    @Test("a 1.0 descriptor ending at an unreadable page loads: the host reads its 192 bytes and not one more")
    func descriptorBeforeGuardPage() throws {
        let (directory, path) = try build(["GUARD_PAGE"])
        // In a child process: reading past the descriptor is a SIGSEGV there, not here.
        let listed = try TestSupport.run(TestSupport.ferryExecutable, ["plugins", "--plugins", directory, "--json"])
        #expect(listed.status == 0, "ferry plugins ended with \(listed.status): \(listed.stderr)")
        let json = try JSONValue.parse(listed.stdout)
        let entry = json["plugins"]?.arrayValue?.first
        #expect(entry?["name"]?.stringValue == "abisink")
        #expect(entry?["abi"]?.stringValue == "1.0")
        #expect(entry?["path"]?.stringValue == path)
    }

    @Test("a plugin built against a newer minor than the host's loads, and its 1.1 calls work")
    func newerMinorLoads() throws {
        let (_, path) = try build(["FUTURE_MINOR"])
        let plugin = try PluginLoader.load(path: path)
        #expect(plugin.abiMajor == Int(FERRY_ABI_MAJOR))
        #expect(plugin.abiMinor == Int(FERRY_ABI_MINOR) + 1)
        #expect(plugin.canDelete)
        #expect(!plugin.canDigest, "it sets no digest function")
        #expect(!plugin.canReadBack, "it sets no read function")

        let sink = try openSink(plugin)
        defer { sink.close() }
        #expect(try sink.diffInfo().key == ["id"])
        #expect(try withKeys { try sink.deleteKeys($0) } == 1)
    }
}
