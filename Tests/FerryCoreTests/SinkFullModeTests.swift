import FerryCore
import Foundation
import Testing

/// plugin-abi.md §8.1: in `mode: full` a sink without a key replaces the
/// target's contents, so running the same full copy twice leaves one copy.
@Suite("Sinks in mode full", .serialized)
struct SinkFullModeTests {
    let pg: PostgresFixture

    init() throws { pg = try PostgresFixture() }

    func pipeline(_ input: String, _ target: String, sinkExtra: String = "", mode: String = "full") -> String {
        """
        name: \(target)
        source: {plugin: file, config: {path: \(input)}}
        sink: {plugin: postgres, config: {dsn: "\(pg.dsn)", table: \(target)\(sinkExtra)}}
        mode: \(mode)
        """
    }

    @Test("postgres without a key: a second full run replaces the rows; mode: insert and incremental runs append")
    func postgresWithoutKey() throws {
        let target = PostgresFixture.name("full_nokey")
        try pg.sql("CREATE TABLE \(target) (id int, name text)")
        let input = "\(pg.work)/\(target).jsonl"
        try ((1...3).map { #"{"id": \#($0), "name": "n\#($0)"}"# }.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
        for run in 1...2 {
            let report = try pg.run(pipeline(input, target))
            #expect(report.outcome == .completed, "run \(run): \(report.failureMessage ?? "")")
            #expect(try pg.int("SELECT count(*) FROM \(target)") == 3, "after full run \(run)")
        }
        let appended = try pg.run(pipeline(input, target, sinkExtra: ", mode: insert"))
        #expect(appended.outcome == .completed, "\(appended.failureMessage ?? "")")
        #expect(try pg.int("SELECT count(*) FROM \(target)") == 6, "mode: insert appends in a full run")
    }

    @Test("postgres without a key in a sharded full run is refused with what to set instead")
    func postgresWithoutKeyInShards() throws {
        let target = PostgresFixture.name("full_shard")
        try pg.sql("CREATE TABLE \(target) (id int)")
        let input = "\(pg.work)/\(target).jsonl"
        try #"{"id": 1}"#.appending("\n").write(toFile: input, atomically: true, encoding: .utf8)
        var options = RunOptions()
        options.shard = ShardSpec(index: 0, count: 2)
        let report = try pg.run(pipeline(input, target), options: options)
        let message = try #require(report.failureMessage)
        #expect(message.contains("a full run without 'key' replaces the table"), "\(message)")
        #expect(message.contains("mode: insert"), "\(message)")
    }
}
