import ArgumentParser
import FerryCore
import FerryPluginKit
import FerryPluginTesting
import Foundation

/// `ferry plugin test`: the conformance suite, each check in a child process
/// so a plugin that crashes or hangs is reported instead of taking the
/// harness down.
struct PluginTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Check a built plugin (.so) against the ABI contract: descriptor, config errors, batches, state, threads, leaks.",
        discussion: """
            Each check runs in its own child process: a crash is reported with its signal and the last ABI call, \
            a hang is killed after --timeout. --config gives the config to open the plugin with: a YAML or JSON \
            mapping used for every role, or one with `source:`, `transform:` and/or `sink:` keys (a role without \
            one gets `{}`, as the host passes). A plugin that does not open with that config fails the checks \
            that need an instance; with --expect-config-error a config error there is expected and those checks \
            are skipped. The plugin file must pass the same ownership and permission checks as in `ferry run`. \
            Exits 0 when no check failed, 1 when one did, 2 when the arguments or files are invalid.
            """)

    @Argument(help: "The plugin file to check.")
    var path: String

    @Option(help: ArgumentHelp("Config to open the plugin with (YAML or JSON).", valueName: "FILE"))
    var config: String?

    @Option(help: ArgumentHelp("Records (JSON Lines, extended JSON) to feed transforms and sinks.", valueName: "FILE"))
    var input: String?

    @Option(help: "Batches to read from a source.")
    var sample: Int = 3

    @Option(help: "Sync mode sources are opened in: full, incremental or missing-only.")
    var mode: String = "incremental"

    @Option(help: "Seconds a check may take before it counts as hung.")
    var timeout: Int = 120

    @Flag(help: "The plugin cannot open with this config here (e.g. no server to reach): skip, not fail, the checks that need an instance.")
    var expectConfigError = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Option(help: .hidden)
    var runCheck: String?

    @Option(help: .hidden)
    var traceFile: String?

    mutating func validate() throws {
        // A file name, not a library name: `ferry plugin test libx.so` means the
        // file here, as a shell user expects, never dlopen's library search path.
        path = URL(fileURLWithPath: path).path
        guard sample > 0 else { throw ValidationError("--sample must be at least 1") }
        guard timeout > 0 else { throw ValidationError("--timeout must be at least 1") }
        guard SyncMode(name: mode) != nil else { throw ValidationError("--mode must be full, incremental or missing-only") }
    }

    func run() throws {
        let options = try conformanceOptions()
        let suite = ConformanceSuite(path: path, options: options)
        if let runCheck, let traceFile {
            try checkTrust(quiet: true)
            try runChild(suite, check: runCheck, traceFile: traceFile)
            return
        }
        guard FileManager.default.fileExists(atPath: path) else {
            printError("error: \(path): no such file")
            throw FerryExit.invalid
        }
        try checkTrust(quiet: false)
        var results: [CheckResult] = []
        for check in suite.checks {
            if let loadFailure = results.first(where: { $0.id == "load" && $0.status == .fail }) {
                results.append(CheckResult(id: check.id, title: check.title, status: .skip, detail: "the plugin did not load (\(loadFailure.detail))"))
                continue
            }
            results.append(runIsolated(check))
        }
        report(results, plugin: try? PluginLoader.load(path: path))
        if results.contains(where: { $0.status == .fail }) { throw FerryExit.runFailed }
    }

    /// The checks `ferry run` makes before it opens a plugin file: the harness
    /// runs the plugin's code just the same. Refused: exit 2.
    func checkTrust(quiet: Bool) throws {
        let mode = PluginFileTrust.mode()
        do {
            let resolved = try PluginFileTrust.check(path, mode: mode)
            guard !quiet, mode == .insecureDev else { return }
            printError("warning: \(PluginFileTrust.insecureDevNotice)")
            if let violation = resolved.violation { printError("warning: \(path): loading although \(violation)") }
        } catch {
            if !quiet { printError("error: \(error)") }
            throw FerryExit.invalid
        }
    }

    // MARK: - Options

    func conformanceOptions() throws -> ConformanceOptions {
        var options = ConformanceOptions()
        options.sampleBatches = sample
        options.mode = SyncMode(name: mode) ?? .incremental
        options.expectConfigError = expectConfigError
        if let config {
            let text: String
            do {
                text = try String(contentsOfFile: config, encoding: .utf8)
            } catch {
                printError("error: \(config): cannot read: \(error.localizedDescription)")
                throw FerryExit.invalid
            }
            let node: ConfigNode?
            do {
                node = try ConfigNode.parse(yaml: text, file: config)
            } catch {
                printError("error: \(error)")
                throw FerryExit.invalid
            }
            let value = node?.json ?? .object([:])
            guard case .object(let fields) = value else {
                printError("error: \(config): the config must be a mapping (got \(value.typeName))")
                throw FerryExit.invalid
            }
            let roles: Set<String> = ["source", "transform", "sink"]
            if !fields.isEmpty && Set(fields.keys).isSubset(of: roles) {
                options.sourceConfig = fields["source"]?.jsonText
                options.transformConfig = fields["transform"]?.jsonText
                options.sinkConfig = fields["sink"]?.jsonText
            } else {
                options.sourceConfig = value.jsonText
                options.transformConfig = value.jsonText
                options.sinkConfig = value.jsonText
            }
        }
        if let input {
            let text: String
            do {
                text = try String(contentsOfFile: input, encoding: .utf8)
            } catch {
                printError("error: \(input): cannot read: \(error.localizedDescription)")
                throw FerryExit.invalid
            }
            var records: [Record] = []
            for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                do {
                    records.append(try Record(json: String(line)))
                } catch {
                    printError("error: \(input):\(index + 1): not a JSON object: \(error)")
                    throw FerryExit.invalid
                }
            }
            guard !records.isEmpty else {
                printError("error: \(input): no records")
                throw FerryExit.invalid
            }
            options.input = records
        }
        return options
    }

    // MARK: - Child side

    /// Runs one check and writes the trace: `call NAME` before each ABI call,
    /// then `result JSON`. Written with write(2), so it survives a crash.
    func runChild(_ suite: ConformanceSuite, check id: String, traceFile: String) throws {
        guard let check = suite.checks.first(where: { $0.id == id }) else {
            printError("error: no check '\(id)'")
            throw FerryExit.invalid
        }
        let fd = open(traceFile, O_WRONLY | O_APPEND | O_CREAT, 0o600)
        guard fd >= 0 else {
            printError("error: \(traceFile): cannot open")
            throw FerryExit.invalid
        }
        defer { close(fd) }
        let trace = TraceWriter(fd: fd)
        let result = suite.run(check) { trace.line("call \($0)") }
        let encoded = (try? JSONEncoder().encode(result)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        trace.line("result \(encoded)")
    }

    // MARK: - Parent side

    func runIsolated(_ check: ConformanceSuite.Check) -> CheckResult {
        func failed(_ detail: String) -> CheckResult {
            CheckResult(id: check.id, title: check.title, status: .fail, detail: detail)
        }
        let traceFile = NSTemporaryDirectory() + "ferry-plugin-test-\(getpid())-\(check.id).trace"
        defer { unlink(traceFile) }
        var arguments = ["plugin", "test", path, "--run-check", check.id, "--trace-file", traceFile, "--sample", "\(sample)", "--mode", mode]
        if let config { arguments += ["--config", config] }
        if let input { arguments += ["--input", input] }
        if expectConfigError { arguments.append("--expect-config-error") }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        do {
            try process.run()
        } catch {
            return failed("cannot start the child process: \(error)")
        }
        // Drain both pipes while waiting, so a chatty plugin cannot block on a full pipe.
        let outData = Locked(Data()), errData = Locked(Data())
        let group = DispatchGroup()
        for (pipe, sink) in [(out, outData), (err, errData)] {
            DispatchQueue.global().async(group: group) { sink.value = pipe.fileHandleForReading.readDataToEndOfFile() }
        }
        let finished = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            process.waitUntilExit()
            finished.signal()
        }
        var hung = false
        if finished.wait(timeout: .now() + .seconds(timeout)) == .timedOut {
            hung = true
            kill(process.processIdentifier, SIGKILL)
            finished.wait()
        }
        group.wait()

        let trace = (try? String(contentsOfFile: traceFile, encoding: .utf8)) ?? ""
        let lines = trace.split(separator: "\n")
        let lastCall = lines.last(where: { $0.hasPrefix("call ") }).map { String($0.dropFirst(5)) }
        let during = lastCall.map { " during \($0)()" } ?? " before any ABI call"
        if hung { return failed("hung: killed after \(timeout) s\(during)") }
        if process.terminationReason == .uncaughtSignal {
            let signal = process.terminationStatus
            return failed("crashed with \(signalName(signal)) (signal \(signal))\(during)")
        }
        let stdout = String(decoding: outData.value, as: UTF8.self)
        guard let line = lines.last(where: { $0.hasPrefix("result ") }),
            var result = try? JSONDecoder().decode(CheckResult.self, from: Data(line.dropFirst(7).utf8))
        else {
            let stderr = String(decoding: errData.value, as: UTF8.self).split(separator: "\n").suffix(3).joined(separator: " | ")
            return failed("exited with status \(process.terminationStatus)\(during) without a result\(stderr.isEmpty ? "" : ": \(stderr)")")
        }
        if !stdout.isEmpty {
            // stdout belongs to the host (it may carry JSON output); a plugin must log through the host API.
            result.status = .fail
            result.detail = "the plugin wrote to stdout: \(stdout.prefix(80).debugDescription)" + (result.detail.isEmpty ? "" : "; \(result.detail)")
        }
        return result
    }

    func report(_ results: [CheckResult], plugin: LoadedPlugin?) {
        let passed = results.filter { $0.status == .pass }.count
        let failed = results.filter { $0.status == .fail }.count
        let skipped = results.filter { $0.status == .skip }.count
        if json {
            var fields: [String: JSONValue] = [
                "path": .string(path),
                "checks": .array(results.map { result in
                    .object(["id": .string(result.id), "title": .string(result.title), "status": .string(result.status.rawValue), "detail": .string(result.detail)])
                }),
                "passed": .integer(Int64(passed)), "failed": .integer(Int64(failed)), "skipped": .integer(Int64(skipped)),
            ]
            if let plugin {
                fields["plugin"] = .object(["name": .string(plugin.name), "version": .string(plugin.version), "kinds": .array(plugin.kindNames.map(JSONValue.string))])
            }
            print(JSONValue.object(fields).jsonText)
            return
        }
        let heading = plugin.map { "\($0.name) \($0.version) (\($0.kindNames.joined(separator: "+")))" } ?? "(did not load)"
        print("ferry plugin test \(path): \(heading)")
        let width = results.map(\.id.count).max() ?? 0
        for result in results {
            let mark = result.status == .pass ? "PASS" : result.status == .fail ? "FAIL" : "SKIP"
            print("  \(mark)  \(result.id.padding(toLength: width, withPad: " ", startingAt: 0))  \(result.detail)")
        }
        print("\(results.count) checks: \(passed) passed, \(failed) failed, \(skipped) skipped")
    }

    func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGSEGV: "SIGSEGV"
        case SIGABRT: "SIGABRT"
        case SIGBUS: "SIGBUS"
        case SIGILL: "SIGILL"
        case SIGFPE: "SIGFPE"
        case SIGKILL: "SIGKILL"
        case SIGTRAP: "SIGTRAP"
        default: "signal \(signal)"
        }
    }
}

/// Appends lines to the trace file with one write(2) each: nothing buffered to lose in a crash.
struct TraceWriter: Sendable {
    let fd: Int32

    func line(_ text: String) {
        var bytes = Array((text + "\n").utf8)
        _ = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress, $0.count) }
    }
}
