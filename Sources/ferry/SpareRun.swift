#if canImport(Glibc)
import Glibc
#endif
import FerryCore
import FerryPluginKit
import Foundation

/// A run process the daemon starts before it has a run for it: it pays the
/// start-up (loading the libraries, the runtime's first type lookups, the
/// argument parser's and the YAML parser's first use) while nobody waits,
/// then blocks until the daemon writes its `ferry run` arguments to stdin.
enum SpareRun {
    /// The arguments to run with; nil when this is not a spare. A spare whose
    /// daemon closes stdin without a run exits 0.
    static func waitForArguments() -> [String]? {
        let environment = ProcessInfo.processInfo.environment
        guard environment[ChildRunProcess.spareVariable] == "1" else { return nil }
        unsetenv(ChildRunProcess.spareVariable)
        let parent = environment[ChildRunProcess.parentVariable].flatMap { Int32($0) } ?? getppid()
        // An idle spare must not outlive the daemon either.
        guard (try? ChildRunProcess.dieWithParent(expectedParent: parent)) != nil else { exit(1) }
        warmUp()
        var line = Data()
        var byte: UInt8 = 0
        while true {
            let count = read(0, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { exit(0) }
            if byte == 0x0A { break }
            line.append(byte)
            if line.count > 1 << 20 { exit(2) }
        }
        guard case .array(let items)? = try? JSONValue.parse(String(decoding: line, as: UTF8.self)) else { exit(2) }
        let arguments = items.compactMap(\.stringValue)
        guard arguments.count == items.count else { exit(2) }
        ChildRunProcess.setProcessName(ChildRunProcess.runningName)
        return arguments
    }

    /// First uses that cost milliseconds each in a fresh process.
    private static func warmUp() {
        _ = try? Ferry.parseAsRoot(["run", "/dev/null", "--dry-run", "--limit", "1", "--output", "json"])
        _ = try? ConfigNode.parse(yaml: "name: warm\nsource: {plugin: x, config: {count: 1}}\nsink: {plugin: y}\n", file: "")
        var message = RunMessage(type: .progress)
        message.statistics = RunStatistics()
        _ = RunMessage.parse(message.line().dropLast())
    }
}
