import Foundation
import Glibc
import Synchronization

/// A TCP forwarder on 127.0.0.1 that a test can cut: every open connection is
/// shut down at once (as a network drop or a server restart would), while new
/// connections keep being accepted and forwarded.
final class CuttableTCPProxy: @unchecked Sendable {
    let port: UInt16
    private let listener: Int32
    private let target: UInt16
    private let connections = Mutex<[Int32]>([])
    /// Bytes forwarded from the server so far.
    let bytesFromServer = Atomic<Int>(0)
    let cuts = Atomic<Int>(0)
    /// Connections accepted (and forwarded) so far.
    let accepted = Atomic<Int>(0)
    /// While true, new connections are closed at once, as a stopped server's would be.
    let refusing = Atomic<Bool>(false)

    init(forwardingTo target: UInt16) throws {
        self.target = target
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 64) == 0 else { throw TestFailure("proxy: cannot listen: \(String(cString: strerror(errno)))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.listener = listener
        port = UInt16(bigEndian: address.sin_port)
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 { return }
            if refusing.load(ordering: .relaxed) {
                close(client)
                continue
            }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: target)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else {
                close(client)
                close(server)
                continue
            }
            connections.withLock { $0 += [client, server] }
            accepted.add(1, ordering: .relaxed)
            Thread.detachNewThread { [self] in pump(from: client, to: server, counting: false) }
            Thread.detachNewThread { [self] in pump(from: server, to: client, counting: true) }
        }
    }

    private func pump(from source: Int32, to destination: Int32, counting: Bool) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let got = buffer.withUnsafeMutableBytes { recv(source, $0.baseAddress, $0.count, 0) }
            if got <= 0 { break }
            var sent = 0
            while sent < got {
                let n = buffer.withUnsafeBytes { send(destination, $0.baseAddress! + sent, got - sent, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { break }
                sent += n
            }
            if sent < got { break }
            if counting { bytesFromServer.add(got, ordering: .relaxed) }
        }
        shutdown(source, Int32(SHUT_RDWR))
        shutdown(destination, Int32(SHUT_RDWR))
    }

    /// Drops every open connection, both ways.
    func cut() {
        let open = connections.withLock { sockets -> [Int32] in
            defer { sockets.removeAll() }
            return sockets
        }
        for socket in open { shutdown(socket, Int32(SHUT_RDWR)) }
        cuts.add(1, ordering: .relaxed)
    }

    /// Cuts once, as soon as `bytes` more have come from the server.
    func cut(afterServerBytes bytes: Int) {
        let start = bytesFromServer.load(ordering: .relaxed)
        Thread.detachNewThread { [self] in
            while bytesFromServer.load(ordering: .relaxed) - start < bytes { usleep(1000) }
            cut()
        }
    }

    /// As if the server stopped: open connections drop and new ones are refused until `restart`.
    func takeDown() {
        refusing.store(true, ordering: .relaxed)
        cut()
    }

    func restart() { refusing.store(false, ordering: .relaxed) }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        cut()
    }
}
