import CLibMongoc
import FerryPluginKit

/// One libmongoc client and collection handle for one plugin instance (the
/// host calls an instance from one thread at a time, so a single-threaded
/// client fits). Every error it produces is classified for the host's retry
/// logic and names the server by `uri.label`, never by the URI's text.
final class MongoConnection {
    let client: OpaquePointer
    let collection: OpaquePointer
    let database: String
    let collectionName: String
    let uri: MongoURI

    init(config: PluginConfig) throws(PluginError) {
        let text = try config.requiredString("uri")
        database = try config.requiredString("database")
        collectionName = try config.requiredString("collection")
        uri = try MongoURI(text, database: database)
        let serverSelection = try config.int("server_selection_timeout_ms") ?? 5000
        let connect = try config.int("connect_timeout_ms") ?? 5000
        var error = ferry_mongo_error()
        guard let client = ferry_mongo_client_new(text, Int32(clamping: serverSelection), Int32(clamping: connect), &error) else {
            // The URI parsed (above), so this is the client failing to start,
            // e.g. an SRV lookup: transient when libmongoc says it is.
            let message = "mongo: cannot start a client for \(uri.label): \(uri.withoutSecret(error.text))"
            throw Self.isTransient(error) || error.domain == MONGOC_ERROR_STREAM.rawValue ? .transient(message) : .config(message)
        }
        self.client = client
        collection = mongoc_client_get_collection(client, database, collectionName)
    }

    deinit {
        mongoc_collection_destroy(collection)
        mongoc_client_destroy(client)
    }

    var namespace: String { "\(database).\(collectionName)" }

    /// Runs a command on the plugin's database; returns the server's reply.
    @discardableResult
    func command(_ document: [UInt8], database db: String? = nil, doing what: String) throws(PluginError) -> [UInt8] {
        var error = ferry_mongo_error()
        var reply: UnsafeMutablePointer<UInt8>?
        var replyLength: UInt32 = 0
        let ok = document.withUnsafeBufferPointer {
            ferry_mongo_command(client, db ?? database, $0.baseAddress, UInt32($0.count), &reply, &replyLength, &error)
        }
        let bytes = reply.map { Array(UnsafeBufferPointer(start: $0, count: Int(replyLength))) } ?? []
        free(reply)
        guard ok else { throw self.error(error, doing: what) }
        return bytes
    }

    /// Fails fast (within the server-selection timeout) when the server
    /// cannot be reached or refuses us.
    func ping() throws(PluginError) {
        try command(BSONDocument([("ping", .int32(1))]).encoded(), database: "admin", doing: "ping")
    }

    /// The largest document the server stores (`maxBsonObjectSize` in its
    /// `hello` reply; MongoDB's 16 MiB when the reply does not say).
    func maxDocumentBytes() throws(PluginError) -> Int {
        let reply = try command(BSONDocument([("hello", .int32(1))]).encoded(), database: "admin", doing: "hello")
        let size = reply.withUnsafeBytes { raw in DocumentView(raw).element(forKey: "maxBsonObjectSize").flatMap { $0.int64Value } }
        return size.map { Int($0) }.flatMap { $0 > 0 ? $0 : nil } ?? 16 << 20
    }

    /// The collection answers a query (it may still be empty or absent: a
    /// sink creates it on first write).
    func checkCollection() throws(PluginError) {
        try command(
            BSONDocument([("find", .string(collectionName)), ("filter", .document([:])), ("limit", .int32(1)), ("singleBatch", .bool(true))]).encoded(),
            doing: "query \(namespace)")
    }

    /// A libmongoc error as a plugin error: network and server-selection
    /// problems, and server errors that mean "try again", are transient.
    func error(_ error: ferry_mongo_error, doing what: String) -> PluginError {
        let message = "mongo: \(what) on \(uri.label) failed: \(uri.withoutSecret(error.text))"
        return Self.isTransient(error) ? .transient(message) : (Self.isAuthentication(error) ? .config(message) : .data(message))
    }

    static func isTransient(_ error: ferry_mongo_error) -> Bool {
        switch error.domain {
        case MONGOC_ERROR_STREAM.rawValue, MONGOC_ERROR_SERVER_SELECTION.rawValue, MONGOC_ERROR_PROTOCOL.rawValue,
            MONGOC_ERROR_WRITE_CONCERN.rawValue:
            return true
        case MONGOC_ERROR_SERVER.rawValue:
            return transientServerCodes.contains(error.code)
        default:
            return false
        }
    }

    static func isAuthentication(_ error: ferry_mongo_error) -> Bool {
        error.domain == MONGOC_ERROR_CLIENT.rawValue && error.code == MONGOC_ERROR_CLIENT_AUTHENTICATE.rawValue
            || error.domain == MONGOC_ERROR_SERVER.rawValue && (error.code == 18 || error.code == 13)
    }

    /// Server codes the drivers' retryable-reads/writes specs treat as retryable.
    static let transientServerCodes: Set<UInt32> = [6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 63, 150, 134]
}

extension ferry_mongo_error {
    var text: String {
        withUnsafeBytes(of: message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
