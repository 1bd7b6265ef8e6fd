import CFerryPlugin
import FerryCore
import FerryPluginKit
import FerryPluginTesting
import Foundation
import Glibc
import Testing

/// The file source on what is not an ordinary JSON Lines file: devices,
/// FIFOs, directories, very long lines, and a run cancelled under it.
@Suite("File source limits", .serialized)
struct FileSourceLimitsTests {
    let work: String
    let harness: PluginHarness

    init() throws {
        work = try TestSupport.temporaryDirectory("ferry-file-limits")
        harness = try PluginHarness(path: TestSupport.product("libFerryFile.so"))
    }

    func openError(_ config: String) -> PluginCallError? {
        do {
            try harness.open(.source, config: config).close()
            return nil
        } catch {
            return error
        }
    }

    @Test("a device, a directory or a FIFO is refused at open with a config error naming what it is")
    func regularFilesOnly() throws {
        // First /dev/zero: before the check it opened, then read zeros forever.
        let zero = try #require(openError(#"{"path": "/dev/zero"}"#), "/dev/zero was accepted")
        #expect(zero.status == Int32(FERRY_ERR_CONFIG))
        #expect(zero.message.contains("'/dev/zero' is a character device, not a regular file"), "\(zero.message)")
        let directory = try #require(openError(#"{"path": "\#(work)"}"#))
        #expect(directory.status == Int32(FERRY_ERR_CONFIG))
        #expect(directory.message.contains("'\(work)' is a directory, not a regular file"), "\(directory.message)")
        let fifo = "\(work)/pipe.jsonl"
        #expect(mkfifo(fifo, 0o600) == 0)
        // Opening a FIFO for reading with no writer would block: it must not.
        let pipe = try #require(openError(#"{"path": "\#(fifo)"}"#))
        #expect(pipe.status == Int32(FERRY_ERR_CONFIG))
        #expect(pipe.message.contains("'\(fifo)' is a FIFO (named pipe), not a regular file"), "\(pipe.message)")
    }

    @Test("once the run is cancelled, read and estimate stop instead of going on through the file")
    func cancelPolled() throws {
        let path = "\(work)/many.jsonl"
        try String(repeating: "{\"a\": 1}\n", count: 100_000).write(toFile: path, atomically: true, encoding: .utf8)
        let source = try harness.open(.source, config: #"{"path": "\#(path)"}"#, batchSize: 100_000)
        defer { source.close() }
        #expect(source.estimate() == 100_000)
        harness.cancel.cancel()
        #expect(source.estimate() == nil)
        let error = try #require(throws: PluginCallError.self) { _ = try source.read() }
        #expect(error.status == Int32(FERRY_ERR_CANCELLED))
    }

    /// Seconds to read every record of `path`, and the records.
    func timedRead(_ path: String, config extra: String = "") throws -> (seconds: Double, records: [Record]) {
        let started = Date()
        let source = try harness.open(.source, config: #"{"path": "\#(path)"\#(extra)}"#, batchSize: 1000)
        defer { source.close() }
        let records = try source.readAll().batches.flatMap(\.records)
        return (Date().timeIntervalSince(started), records)
    }

    @Test("a 17 MB line costs about what 17 MB of short lines cost; past max_line_bytes it fails naming file and line")
    func longLines() throws {
        let payload = String(repeating: "x", count: 17_000_000)
        let long = "\(work)/long.jsonl"
        try "{\"_id\": 1, \"s\": \"\(payload)\"}\n{\"_id\": 2}\n".write(toFile: long, atomically: true, encoding: .utf8)
        // The same bytes as 170,000 lines of 100.
        let short = "\(work)/short.jsonl"
        let line = "{\"s\": \"" + String(repeating: "x", count: 91) + "\"}\n"
        try String(repeating: line, count: 170_000).write(toFile: short, atomically: true, encoding: .utf8)

        let reference = try timedRead(short)
        #expect(reference.records.count == 170_000)
        let measured = try timedRead(long, config: #", "max_line_bytes": 33554432"#)
        #expect(measured.records.count == 2)
        let first = try #require(measured.records.first)
        let text = first.bytes.withUnsafeBytes { DocumentView($0).element(forKey: "s")?.stringBytes?.count }
        #expect(text == 17_000_000)
        print("file source: one 17 MB line read in \(measured.seconds) s; 17 MB of 100-byte lines in \(reference.seconds) s")
        // Scanning the line again for every 256 KiB read made this quadratic
        // (42 s); linear, it stays within a small multiple of the short lines.
        #expect(measured.seconds < reference.seconds * 3 + 2, "17 MB line: \(measured.seconds) s; short lines: \(reference.seconds) s")

        // The default limit is 16 MiB: the same file fails at its first line.
        let refused = try #require(throws: PluginCallError.self) { _ = try timedRead(long) }
        #expect(refused.status == Int32(FERRY_ERR_DATA))
        #expect(refused.message.contains("\(long):1: line longer than max_line_bytes (16777216 bytes)"), "\(refused.message)")

        // A small limit, a long line in the middle: its line number, found
        // whether the line ends inside one read or spans several.
        let mixed = "\(work)/mixed.jsonl"
        try "{\"a\": 1}\n{\"a\": 2}\n{\"a\": \"\(String(repeating: "y", count: 600_000))\"}\n{\"a\": 4}\n"
            .write(toFile: mixed, atomically: true, encoding: .utf8)
        for limit in [1000, 300_000] {
            let error = try #require(throws: PluginCallError.self) { _ = try timedRead(mixed, config: #", "max_line_bytes": \#(limit)"#) }
            #expect(error.message.contains("\(mixed):3: line longer than max_line_bytes (\(limit) bytes)"), "\(error.message)")
        }
        #expect(try timedRead(mixed, config: #", "max_line_bytes": 600020"#).records.count == 4)
    }
}
