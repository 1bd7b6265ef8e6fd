import FerryPluginKit
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// A `ferry serve` process on a free loopback port, and a small HTTP client
/// that talks to it over a real socket.
final class ServeProcess: @unchecked Sendable {
    let process = Process()
    let port: Int
    let directory: String
    let token = "s3cret-token-\(UUID().uuidString.prefix(8))"
    private let errData = LockedData()

    /// Writes `daemonYAML` (with `{{port}}` filled in) to a daemon file and starts the daemon,
    /// with its soft file-descriptor limit set to `fileLimit` when given and `arguments` after its own.
    init(
        daemonYAML: String, files: [String: String] = [:], environment: [String: String] = [:], withToken: Bool = true,
        extraPlugins: String? = nil, fileLimit: Int? = nil, arguments: [String] = []
    ) throws {
        directory = try TestSupport.temporaryDirectory("serve")
        port = try Self.freePort()
        for (name, text) in files {
            let path = "\(directory)/\(name)"
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.replacingOccurrences(of: "{{dir}}", with: directory).write(toFile: path, atomically: true, encoding: .utf8)
        }
        let config = "\(directory)/daemon.yaml"
        try daemonYAML.replacingOccurrences(of: "{{port}}", with: "\(port)").replacingOccurrences(of: "{{dir}}", with: directory)
            .write(toFile: config, atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: TestSupport.ferryExecutable)
        process.arguments = ["serve", "--config", config, "--plugins", ([TestSupport.buildDirectory] + [extraPlugins].compactMap { $0 }).joined(separator: ":")] + arguments
        if let fileLimit {
            process.arguments = ["-c", "ulimit -Sn \(fileLimit) && exec \"$0\" \"$@\"", TestSupport.ferryExecutable] + process.arguments!
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
        }
        var env = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        env["FERRY_API_TOKEN"] = withToken ? token : nil
        process.environment = env
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        let sink = errData
        err.fileHandleForReading.readabilityHandler = { handle in sink.append(handle.availableData) }
        try process.run()
    }

    var stderr: String { errData.text }

    /// Waits until /healthz answers (or the process dies).
    func waitUntilUp(timeout: Double = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard process.isRunning else { throw TestFailure("ferry serve exited (\(process.terminationStatus)): \(stderr)") }
            if let (status, _) = try? get("/healthz"), status == 200 { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw TestFailure("ferry serve did not answer within \(timeout)s: \(stderr)")
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit { stop() }

    // MARK: - HTTP

    func get(_ path: String) throws -> (Int, String) { try request("GET", path) }

    func post(_ path: String, body: String? = nil, token: String? = "default") throws -> (Int, String) {
        var headers: [String: String] = ["Content-Type": "application/json"]
        if let token { headers["Authorization"] = "Bearer \(token == "default" ? self.token : token)" }
        return try request("POST", path, headers: headers, body: body)
    }

    func getJSON(_ path: String) throws -> JSONValue {
        let (status, text) = try get(path)
        guard status == 200 else { throw TestFailure("GET \(path): \(status) \(text)") }
        return try JSONValue.parse(text)
    }

    func request(_ method: String, _ path: String, headers: [String: String] = [:], body: String? = nil) throws -> (Int, String) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        request.timeoutInterval = 30
        for (key, value) in headers { request.setValue(value, forHTTPHeaderField: key) }
        request.httpBody = body.map { Data($0.utf8) }
        let result = LockedResult()
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: request) { data, response, error in
            result.set((response as? HTTPURLResponse)?.statusCode, data.map { String(decoding: $0, as: UTF8.self) } ?? "", error)
            done.signal()
        }.resume()
        done.wait()
        let (status, text, error) = result.get()
        if let error { throw error }
        return (status ?? 0, text)
    }

    /// Polls a run until it is no longer running.
    func waitForRun(_ id: String, timeout: Double = 60) throws -> JSONValue {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let run = try getJSON("/runs/\(id)")
            if run["status"]?.stringValue != "running" { return run }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw TestFailure("run \(id) still running after \(timeout)s")
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw TestFailure("cannot find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func append(_ more: Data) { lock.withLock { data.append(more) } }
    var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
}

final class LockedResult: @unchecked Sendable {
    private let lock = NSLock()
    private var value: (Int?, String, (any Error)?) = (nil, "", nil)
    func set(_ status: Int?, _ text: String, _ error: (any Error)?) { lock.withLock { value = (status, text, error) } }
    func get() -> (Int?, String, (any Error)?) { lock.withLock { value } }
}
