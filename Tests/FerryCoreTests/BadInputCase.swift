import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One file of Tests/BadInput: a header of `key: value` lines, a line `---`,
/// the input (a pipeline, or a raw HTTP request for `serve-request`), then
/// optional `--- file: NAME` sections written beside it.
///
/// Bodies may use `@HEX{ff 00}` (raw bytes), `@REPEAT{N}{text}` (text N times)
/// and `@NUMBERED{N}{text}` (N lines, `#` replaced by 0…N-1); in their text
/// `\n`, `\r`, `\}` and `\\` are escapes. Placeholders such as `@TMP@` are
/// replaced first, by the caller.
struct BadInputCase {
    let name: String
    var header: [String: [String]] = [:]
    /// The main body first (name ""), then the extra files.
    var sections: [(name: String, text: String)] = []

    init(name: String, text: String) throws {
        self.name = name
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        var index = 0
        while index < lines.count, lines[index] != "---" {
            let line = lines[index]
            index += 1
            if line.trimmingCharacters(in: .whitespaces).isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else { throw TestFailure("\(name):\(index): expected `key: value`, got '\(line)'") }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            header[key, default: []].append(value)
        }
        guard index < lines.count else { throw TestFailure("\(name): no `---` line before the input") }
        guard header["command"]?.count == 1 else { throw TestFailure("\(name): needs exactly one `command:`") }
        var current: (name: String, lines: [String]) = ("", [])
        for line in lines[(index + 1)...] {
            if line.hasPrefix("--- file: ") {
                sections.append((current.name, current.lines.joined(separator: "\n")))
                current = (String(line.dropFirst("--- file: ".count)), [])
            } else {
                current.lines.append(line)
            }
        }
        sections.append((current.name, current.lines.joined(separator: "\n")))
    }

    var command: String { header["command"]![0] }
    func values(_ key: String) -> [String] { header[key] ?? [] }
    func value(_ key: String) -> String? { header[key]?.first }
    var knownGap: String? { value("known_gap") }
    var timeout: Double { value("timeout_seconds").flatMap(Double.init) ?? 60 }

    /// Expands the body macros into bytes.
    static func expand(_ text: String) -> [UInt8] {
        var output: [UInt8] = []
        var rest = Substring(text)
        while let at = rest.firstIndex(of: "@") {
            output += Array(rest[..<at].utf8)
            rest = rest[at...]
            if let match = rest.prefixMatch(of: /@HEX\{([0-9a-fA-F ]*)\}/) {
                let digits = match.1.filter { $0 != " " }
                var index = digits.startIndex
                while index < digits.endIndex {
                    let next = digits.index(index, offsetBy: 2)
                    output.append(UInt8(digits[index..<next], radix: 16)!)
                    index = next
                }
                rest = rest[match.range.upperBound...]
            } else if let match = rest.prefixMatch(of: /@REPEAT\{([0-9]+)\}\{((?:[^}\\]|\\.)*)\}/) {
                let piece = Array(unescape(match.2).utf8)
                for _ in 0..<Int(match.1)! { output += piece }
                rest = rest[match.range.upperBound...]
            } else if let match = rest.prefixMatch(of: /@NUMBERED\{([0-9]+)\}\{((?:[^}\\]|\\.)*)\}/) {
                let piece = unescape(match.2)
                for number in 0..<Int(match.1)! { output += Array((piece.replacingOccurrences(of: "#", with: "\(number)") + "\n").utf8) }
                rest = rest[match.range.upperBound...]
            } else {
                output.append(UInt8(ascii: "@"))
                rest = rest.dropFirst()
            }
        }
        return output + Array(rest.utf8)
    }

    static func unescape(_ text: Substring) -> String {
        var result = ""
        var escaped = false
        for character in text {
            if escaped {
                switch character {
                case "n": result.append("\n")
                case "r": result.append("\r")
                default: result.append(character)
                }
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else {
                result.append(character)
            }
        }
        return result
    }
}

/// Runs a process to its end or to a deadline (then kills it), and sends raw
/// bytes to an HTTP port: the two ways the corpus talks to Ferry.
enum BadInputRunner {
    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
        var timedOut: Bool
    }

    static func run(_ executable: String, _ arguments: [String], environment: [String: String], directory: String, timeout: Double) throws -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardInput = FileHandle.nullDevice
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let outData = LockedData(), errData = LockedData()
        let readers = DispatchGroup()
        for (pipe, sink) in [(out, outData), (err, errData)] {
            readers.enter()
            DispatchQueue.global().async {
                sink.append(pipe.fileHandleForReading.readDataToEndOfFile())
                readers.leave()
            }
        }
        try process.run()
        var timedOut = false
        if readers.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            kill(process.processIdentifier, SIGKILL)
            readers.wait()
        }
        process.waitUntilExit()
        return Outcome(status: process.terminationStatus, stdout: outData.text, stderr: errData.text, timedOut: timedOut)
    }

    /// Sends `bytes` on a new connection and reads until the server closes it
    /// or `timeout` passes. A server that answers early and closes while the
    /// body is still going (413) is normal: what it said is still read.
    static func send(port: Int, _ bytes: [UInt8], timeout: Double) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        let fd = try RawSocket.startConnect(port: port)
        defer { close(fd) }
        guard RawSocket.wait(fd, POLLOUT, until: deadline), RawSocket.socketError(fd) == 0 else {
            throw TestFailure("no connection to 127.0.0.1:\(port) within \(timeout)s")
        }
        var sent = 0
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        sending: while sent < bytes.count, Date() < deadline {
            let written = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written > 0 { sent += written; continue }
            if written < 0 && errno != EAGAIN && errno != EWOULDBLOCK { break sending }
            // Full send buffer: the server may already have answered.
            let got = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if got > 0 { response += buffer[0..<got] }
            if got == 0 { break sending }
            _ = RawSocket.wait(fd, POLLOUT | POLLIN, until: min(deadline, Date().addingTimeInterval(0.2)))
        }
        while Date() < deadline {
            guard RawSocket.wait(fd, POLLIN, until: deadline) else { break }
            let got = recv(fd, &buffer, buffer.count, 0)
            if got <= 0 { break }
            response += buffer[0..<got]
        }
        return String(decoding: response, as: UTF8.self)
    }
}
