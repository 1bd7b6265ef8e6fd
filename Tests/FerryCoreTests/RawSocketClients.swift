import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// HTTP clients on plain sockets, for what URLSession will not do: a fresh
/// connection per request (as a kubelet probe makes), a hard deadline on
/// every step, and clients that never finish their request.
enum RawSocket {
    /// A non-blocking TCP socket connecting to 127.0.0.1:`port` (connection in progress).
    static func startConnect(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if result != 0 && errno != EINPROGRESS {
            let message = String(cString: strerror(errno))
            close(fd)
            throw TestFailure("connect: \(message)")
        }
        return fd
    }

    static func socketError(_ fd: Int32) -> Int32 {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
        return error
    }

    /// Waits for `events` on `fd`, at most until `deadline`. False on timeout.
    static func wait(_ fd: Int32, _ events: Int32, until deadline: Date) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(events), revents: 0)
        let milliseconds = Int32(max(0, deadline.timeIntervalSinceNow) * 1000)
        return poll(&entry, 1, milliseconds) > 0
    }

    /// Raises this process's own soft descriptor limit to at least `count` (the clients need one each).
    static func allowDescriptors(_ count: Int) throws {
        var limits = rlimit()
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        guard getrlimit(resource, &limits) == 0 else { throw TestFailure("getrlimit failed") }
        guard limits.rlim_cur < rlim_t(count) else { return }
        guard limits.rlim_max == rlim_t.max || limits.rlim_max >= rlim_t(count) else {
            throw TestFailure("this test needs \(count) file descriptors; the hard limit is \(limits.rlim_max) (raise it with ulimit -Hn)")
        }
        limits.rlim_cur = rlim_t(count)
        guard setrlimit(resource, &limits) == 0 else { throw TestFailure("setrlimit(\(count)) failed") }
    }
}

/// One request on a new connection, `Connection: close`, within `timeout`
/// seconds for everything; throws when the deadline passes.
struct RawHTTP {
    struct Answer {
        var status: Int
        var head: String
        var body: String
    }

    static func request(
        port: Int, _ method: String, _ path: String, headers: [String: String] = [:], body: [UInt8] = [], chunked: Bool = false,
        timeout: Double
    ) throws -> Answer {
        let deadline = Date().addingTimeInterval(timeout)
        let fd = try RawSocket.startConnect(port: port)
        defer { close(fd) }
        guard RawSocket.wait(fd, POLLOUT, until: deadline), RawSocket.socketError(fd) == 0 else {
            throw TestFailure("\(method) \(path): no connection within \(timeout)s")
        }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        var bytes: [UInt8]
        if chunked {
            head += "Transfer-Encoding: chunked\r\n\r\n"
            bytes = Array(head.utf8)
            var offset = 0
            while offset < body.count {
                let piece = body[offset..<min(body.count, offset + 64 * 1024)]
                bytes += Array("\(String(piece.count, radix: 16))\r\n".utf8) + piece + Array("\r\n".utf8)
                offset += piece.count
            }
            bytes += Array("0\r\n\r\n".utf8)
        } else {
            if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
            bytes = Array((head + "\r\n").utf8) + body
        }
        var received: [UInt8] = []
        var sent = 0
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        // Send and read together: the server may answer (413, say) before it has read the whole body.
        while true {
            var events = POLLIN
            if sent < bytes.count { events |= POLLOUT }
            guard RawSocket.wait(fd, events, until: deadline) else {
                throw TestFailure("\(method) \(path): no complete answer within \(timeout)s (got \(received.count) bytes)")
            }
            if sent < bytes.count {
                let count = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if count > 0 { sent += count } else if count < 0 && errno != EAGAIN { sent = bytes.count }
            }
            let count = read(fd, &buffer, buffer.count)
            if count > 0 {
                received += buffer[..<count]
            } else if count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) {
                break
            }
        }
        let text = String(decoding: received, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { throw TestFailure("\(method) \(path): no HTTP answer: \(text.prefix(200))") }
        let answerHead = String(text[..<split.lowerBound])
        let status = answerHead.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return Answer(status: status, head: answerHead, body: String(text[split.upperBound...]))
    }
}

/// Clients that connect, send part of a request's head, and never finish it.
final class SlowClients {
    private(set) var descriptors: [Int32] = []
    /// When the last of them had connected and sent its fragment.
    private(set) var settled = Date()

    /// Opens `count` connections (at most `within` seconds for all) and sends each the start of a request.
    init(count: Int, port: Int, within: Double) throws {
        let deadline = Date().addingTimeInterval(within)
        var pending: [Int32] = []
        for _ in 0..<count { pending.append(try RawSocket.startConnect(port: port)) }
        let fragment = Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".utf8)
        while !pending.isEmpty && Date() < deadline {
            var entries = pending.map { pollfd(fd: $0, events: Int16(POLLOUT), revents: 0) }
            _ = poll(&entries, nfds_t(entries.count), 100)
            var still: [Int32] = []
            for entry in entries {
                if entry.revents == 0 {
                    still.append(entry.fd)
                } else if RawSocket.socketError(entry.fd) == 0 {
                    _ = fragment.withUnsafeBytes { send(entry.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    descriptors.append(entry.fd)
                } else {
                    close(entry.fd)
                }
            }
            pending = still
        }
        pending.forEach { close($0) }
        settled = Date()
    }

    /// How many the server has not closed yet.
    var openCount: Int {
        // POLLIN: the server's close reads as end of file.
        var entries = descriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        _ = poll(&entries, nfds_t(entries.count), 0)
        return entries.filter { $0.revents == 0 }.count
    }

    deinit { descriptors.forEach { close($0) } }
}
