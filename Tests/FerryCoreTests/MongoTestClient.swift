import FerryPluginKit
import Foundation
import Glibc

/// A minimal MongoDB wire-protocol client (OP_MSG over a TCP socket) for
/// tests: seeds collections, creates indexes and reads back exactly what the
/// server stores, independently of the plugin under test.
final class MongoTestClient {
    let socket: Int32
    private var requestID: Int32 = 0

    /// The test server from `scripts/test-servers.sh`; fails clearly when it is not running.
    static func fromEnvironment() throws -> (client: MongoTestClient, uri: String) {
        let environment = ProcessInfo.processInfo.environment
        guard let uri = environment["FERRY_TEST_MONGO_URI"], let host = environment["FERRY_TEST_MONGO_HOST"],
            let port = environment["FERRY_TEST_MONGO_PORT"].flatMap(UInt16.init)
        else {
            throw TestFailure("FERRY_TEST_MONGO_URI/HOST/PORT are not set: run `make test` / scripts/test.sh, which starts the test servers (or scripts/test-servers.sh start and source its env file)")
        }
        return (try MongoTestClient(host: host, port: port), uri)
    }

    init(host: String, port: UInt16) throws {
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        inet_pton(AF_INET, host, &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            Glibc.close(socket)
            throw TestFailure("cannot connect to the test MongoDB server at \(host):\(port): \(String(cString: strerror(errno)))")
        }
    }

    deinit { Glibc.close(socket) }

    /// Runs one command; throws when the reply is not `ok: 1`.
    @discardableResult
    func command(_ database: String, _ fields: [(String, BSONValue)]) throws -> BSONDocument {
        let body = BSONDocument(fields + [("$db", .string(database))]).encoded()
        requestID += 1
        var message: [UInt8] = []
        func int32(_ value: Int32) { withUnsafeBytes(of: value.littleEndian) { message.append(contentsOf: $0) } }
        int32(Int32(16 + 4 + 1 + body.count))
        int32(requestID)
        int32(0)
        int32(2013)
        int32(0)
        message.append(0)
        message.append(contentsOf: body)
        try message.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let n = send(socket, raw.baseAddress! + sent, raw.count - sent, 0)
                guard n > 0 else { throw TestFailure("send to MongoDB failed") }
                sent += n
            }
        }
        let header = try receive(16)
        let length = Int(header.withUnsafeBytes { Int32(littleEndian: $0.loadUnaligned(as: Int32.self)) })
        let rest = try receive(length - 16)
        let document = Array(rest[5...])
        let reply = document.withUnsafeBytes { DocumentView($0).decode() }
        let ok: Bool
        switch reply["ok"] {
        case .double(let v)?: ok = v == 1
        case .int32(let v)?: ok = v == 1
        default: ok = false
        }
        guard ok else { throw TestFailure("MongoDB command \(fields.first?.0 ?? "?") failed: \(reply)") }
        return reply
    }

    private func receive(_ count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = bytes.withUnsafeMutableBytes { recv(socket, $0.baseAddress! + got, count - got, 0) }
            guard n > 0 else { throw TestFailure("MongoDB closed the connection") }
            got += n
        }
        return bytes
    }

    func drop(_ database: String, _ collection: String) {
        _ = try? command(database, [("drop", .string(collection))])
    }

    func insert(_ database: String, _ collection: String, _ documents: [BSONDocument]) throws {
        try command(database, [("insert", .string(collection)), ("documents", .array(documents.map(BSONValue.document)))])
    }

    func createUniqueIndex(_ database: String, _ collection: String, field: String) throws {
        try command(database, [
            ("createIndexes", .string(collection)),
            ("indexes", .array([.document([("key", .document([(field, .int32(1))])), ("name", .string("\(field)_unique")), ("unique", .bool(true))])])),
        ])
    }

    /// Every document, sorted by `_id`, as stored (decoded from the server's bytes).
    func find(_ database: String, _ collection: String, filter: BSONDocument = [:]) throws -> [BSONDocument] {
        var reply = try command(database, [
            ("find", .string(collection)), ("filter", .document(filter)), ("sort", .document([("_id", .int32(1))])),
            ("batchSize", .int32(100_000)),
        ])
        var documents: [BSONDocument] = []
        while true {
            guard case .document(let cursor)? = reply["cursor"] else { throw TestFailure("find reply without cursor: \(reply)") }
            let batch = cursor["firstBatch"] ?? cursor["nextBatch"]
            if case .array(let items)? = batch {
                for case .document(let document) in items { documents.append(document) }
            }
            guard let id = cursor["id"], id != .int64(0), id != .int32(0) else { return documents }
            reply = try command(database, [("getMore", id), ("collection", .string(collection)), ("batchSize", .int32(100_000))])
        }
    }
}

/// `[("key", value), …]` literals for ordered test documents.
extension BSONDocument: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: (String, BSONValue)...) { self.init(elements) }
}

extension BSONDocument: CustomStringConvertible {
    public var description: String {
        let bytes = encoded()
        return bytes.withUnsafeBytes { ExtendedJSON.render(DocumentView($0)) } ?? "(invalid)"
    }
}
