import CFerryPlugin
import FerryCore
import FerryPluginKit
import Testing

/// The regex filter called over the C ABI directly, for what a pipeline of
/// JSON Lines cannot show: bytes that are not UTF-8, and whether a batch was
/// passed through without a copy.
@Suite("Regex filter over the ABI")
struct RegexFilterABITests {
    /// One transform call's output: the records and whether it was the input itself.
    struct Output {
        var documents: [BSONDocument]
        var passedThrough: Bool
        var rejects: [(index: Int, reason: String)]
    }

    func transform(config: String, _ build: (BatchBuilder) -> Void) throws -> Output {
        let plugin = try PluginLoader.load(path: TestSupport.product("libFerryRegexFilter.so"), checkPermissions: false)
        let instance = try HostedInstance(
            plugin: plugin, options: InstanceOptions(kind: .transform, stage: "transforms[0]", configJSON: config),
            cancel: CancelFlag(), logger: TestSupport.logger)
        defer { instance.close() }
        let builder = BatchBuilder()
        build(builder)
        var input = ferry_batch()
        builder.finish(into: &input)
        defer { BatchBuilder.release(&input) }
        var output = ferry_batch()
        var result = ferry_result()
        try withUnsafePointer(to: &input) { try instance.transform($0, &output, &result) }
        defer { instance.release(&output) }
        let view = BatchView(output)
        var rejects: [(Int, String)] = []
        for index in 0..<Int(result.reject_count) {
            let reject = result.rejects[index]
            rejects.append((Int(reject.index), String(cString: reject.reason)))
        }
        return Output(
            documents: view.map { $0.decode() },
            passedThrough: output.flags & UInt32(FERRY_BATCH_PASSTHROUGH) != 0 && output.data == input.data,
            rejects: rejects)
    }

    @Test("invalid UTF-8 in a record is no error: the valid parts still match, the bad bytes never do")
    func invalidUTF8() throws {
        // "ab", a lone continuation byte, a truncated 3-byte sequence, "cd".
        let bad: [UInt8] = [0x61, 0x62, 0x80, 0xE2, 0x82, 0x63, 0x64]
        let output = try transform(config: #"{"rules": [{"field": "s", "include": "cd$|^zz"}]}"#) { batch in
            batch.appendDocument { doc in
                doc.append("id", Int32(1))
                bad.withUnsafeBytes { doc.appendString("s", utf8: $0) }
            }
            batch.appendDocument { doc in
                doc.append("id", Int32(2))
                doc.append("s", "zz")
            }
            batch.appendDocument { doc in
                doc.append("id", Int32(3))
                doc.append("s", "nope")
            }
        }
        #expect(output.rejects.isEmpty)
        #expect(output.documents.map { $0["id"] } == [.int32(1), .int32(2)])

        let dot = try transform(config: #"{"rules": [{"field": "s", "include": "^ab.cd$"}]}"#) { batch in
            batch.appendDocument { doc in bad.withUnsafeBytes { doc.appendString("s", utf8: $0) } }
        }
        #expect(dot.documents.isEmpty)
    }

    @Test("a batch whose records are all kept is passed through without a copy; one drop makes a copy of the rest")
    func passthrough() throws {
        func records(_ batch: BatchBuilder, _ categories: [String]) {
            for (index, category) in categories.enumerated() {
                batch.appendDocument { doc in
                    doc.append("id", Int32(index))
                    doc.append("category", category)
                }
            }
        }
        let config = #"{"rules": [{"field": "category", "include": "^(books|games)$"}]}"#
        let kept = try transform(config: config) { records($0, ["books", "games", "books"]) }
        #expect(kept.passedThrough)
        #expect(kept.documents.count == 3)

        let filtered = try transform(config: config) { records($0, ["books", "games", "toys", "books"]) }
        #expect(!filtered.passedThrough)
        #expect(filtered.documents.map { $0["id"] } == [.int32(0), .int32(1), .int32(3)])

        // A field-name rule rewrites every record, so nothing passes through.
        let rewritten = try transform(config: #"{"fields": {"drop": "^id$"}}"#) { records($0, ["books"]) }
        #expect(!rewritten.passedThrough)
        #expect(rewritten.documents == [["category": .string("books")]])
    }

    @Test("field-name verdicts stay right past the name cache's size and across records")
    func manyFieldNames() throws {
        let names = (0..<700).map { "field_\($0)" } + [String(repeating: "n", count: 80), String(repeating: "n", count: 81)]
        let output = try transform(config: #"{"fields": {"keep": "^(field_\\d*[05]|n{80})$"}}"#) { batch in
            for _ in 0..<3 {
                batch.appendDocument { doc in
                    for (index, name) in names.enumerated() { doc.append(name, Int32(index)) }
                }
            }
        }
        let expected = (0..<700).filter { $0 % 5 == 0 }.map { "field_\($0)" } + [String(repeating: "n", count: 80)]
        #expect(output.documents.count == 3)
        for document in output.documents { #expect(document.keys == expected) }
    }

    @Test("field-name rules refuse a record nested deeper than 200 levels instead of recursing without bound")
    func deepRecord() throws {
        func nest(_ doc: inout DocumentWriter, _ levels: Int) {
            if levels == 0 { doc.append("leaf", Int32(1)); return }
            doc.appendDocument("d") { nest(&$0, levels - 1) }
        }
        let output = try transform(config: #"{"fields": {"drop": "^leaf$"}}"#) { batch in
            batch.appendDocument { nest(&$0, 150) }
            batch.appendDocument { nest(&$0, 5_000) }
        }
        #expect(output.documents.count == 1)
        #expect(output.rejects.map(\.index) == [1])
        #expect(output.rejects.first?.reason == "regex_filter: fields.drop: the record nests documents deeper than 200 levels; record rejected")
    }
}
