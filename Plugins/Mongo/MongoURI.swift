import CLibMongoc
import FerryPluginKit

/// A connection string taken apart by libmongoc, and the label messages use
/// for it: hosts, database and user, built from the parsed parts. The text
/// of the URI itself never reaches a message, so a password with `@`, `/`
/// or `%` in it cannot leak through a masking that guessed its bounds wrong.
struct MongoURI: Sendable {
    /// `host:port[,host:port…]/database (user name)`.
    let label: String
    /// The password as libmongoc decoded it; see `withoutSecret`.
    private let password: String?

    /// - Throws: `PluginError.config` for a string libmongoc does not accept,
    ///   naming it by its hosts, never by its text.
    init(_ text: String, database: String) throws(PluginError) {
        ferry_mongo_init()
        var error = bson_error_t()
        guard let uri = mongoc_uri_new_with_error(text, &error) else {
            // libmongoc's reason can quote what it could not parse, which may
            // be the password: only a string without credentials gets it.
            let reason = text.contains("@") ? Self.escapeHint : Self.text(of: error)
            throw .config("mongo: field 'uri': not a usable MongoDB URI (\(Self.roughLabel(text))): \(reason)")
        }
        defer { mongoc_uri_destroy(uri) }
        var hosts: [String] = []
        if let srv = mongoc_uri_get_srv_hostname(uri) {
            hosts.append("\(String(cString: srv)) (SRV)")
        } else {
            var host = mongoc_uri_get_hosts(uri)
            while let current = host {
                hosts.append(withUnsafeBytes(of: current.pointee.host_and_port) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                })
                host = UnsafePointer(current.pointee.next)
            }
        }
        // libmongoc splits user info at the first '@': a second, unescaped one
        // ends up in a host name, with the rest of the password before it.
        guard !hosts.contains(where: { $0.contains("@") }) else {
            throw .config("mongo: field 'uri': not a usable MongoDB URI (\(Self.roughLabel(text))): \(Self.escapeHint)")
        }
        var label = "\(hosts.joined(separator: ","))/\(database)"
        if let user = mongoc_uri_get_username(uri) { label += " (user \(String(cString: user)))" }
        self.label = label
        password = mongoc_uri_get_password(uri).map { String(cString: $0) }
    }

    /// A libmongoc message as it may be shown: withheld whole if it quotes the
    /// password (no libmongoc message is known to; this keeps it so). Very
    /// short passwords are not looked for: they would withhold every message.
    func withoutSecret(_ message: String) -> String {
        guard let password, password.utf8.count >= 4, message.contains(password) else { return message }
        return "(libmongoc's message withheld: it quoted the connection string's password)"
    }

    static let escapeHint = "check its syntax; in the user name and password write @ as %40, / as %2F, : as %3A and % as %25"

    /// What a string libmongoc refused can be called by: the hosts after the
    /// last `@` (a password always comes before it), never what precedes it.
    static func roughLabel(_ text: String) -> String {
        guard let scheme = text.range(of: "://") else { return "no scheme: expected mongodb:// or mongodb+srv://" }
        let written = text[..<scheme.lowerBound]
        let prefix = written.count <= 16 && written.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "+") }) ? String(written) : "(unknown scheme)"
        var rest = text[scheme.upperBound...]
        if let at = rest.lastIndex(of: "@") { rest = rest[rest.index(after: at)...] }
        let hosts = rest.prefix { $0 != "/" && $0 != "?" }
        return "\(prefix)://\(hosts.isEmpty ? "(no host)" : String(hosts))"
    }

    static func text(of error: bson_error_t) -> String {
        withUnsafeBytes(of: error.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
