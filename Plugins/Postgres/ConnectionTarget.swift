import CLibPQ
import FerryPluginKit

/// What a DSN names, parsed once by libpq: the parts messages may show (host,
/// port, database, user) and the password, kept only to scrub it from text a
/// server or libpq sends back. A DSN libpq cannot parse is a config error that
/// quotes none of it: its own message would quote the offending part, which
/// may be the password (`invalid percent-encoded token: "…"`).
struct ConnectionTarget {
    let host: String
    let port: String
    let database: String
    let user: String
    let password: String

    init(dsn: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(dsn, &message) else {
            let reason = message.map { ConnectionTarget.unquoted(String(cString: $0)) } ?? "out of memory"
            if let message { PQfreemem(message) }
            throw PluginError.config("postgres: field 'dsn' is not a valid libpq connection string or URI (\(reason))")
        }
        defer { PQconninfoFree(options) }
        var values: [String: String] = [:]
        var option = options
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val { values[String(cString: keyword)] = String(cString: value) }
            option += 1
        }
        let hosts = values["host"] ?? values["hostaddr"] ?? ""
        host = hosts.isEmpty ? "localhost" : hosts
        port = values["port"].flatMap { $0.isEmpty ? nil : $0 } ?? "5432"
        user = values["user"] ?? ""
        database = values["dbname"].flatMap { $0.isEmpty ? nil : $0 } ?? user
        password = values["password"] ?? ""
        // A '/', '@' or '%' left raw in a URI's password splits the URI in the
        // wrong places, and pieces of the password land in the host, port or
        // database, which messages would then show. None of these is valid there.
        let uri = dsn.hasPrefix("postgresql://") || dsn.hasPrefix("postgres://")
        let hint = uri ? " (in a URI, percent-encode '/', '@', '%', ':' and '?' in the password: '/' is %2F, '@' is %40, '%' is %25)" : ""
        guard port.split(separator: ",", omittingEmptySubsequences: false).allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }) else {
            throw PluginError.config("postgres: field 'dsn': the port is not a number\(hint)")
        }
        guard !host.contains("@"), !(uri && host.contains("/") && !host.hasPrefix("/")) else {
            throw PluginError.config("postgres: field 'dsn': the host name is not valid\(hint)")
        }
        guard !(uri && (database.contains("@") || user.contains("/"))) else {
            throw PluginError.config("postgres: field 'dsn': the URI does not split into user, host and database\(hint)")
        }
    }

    /// "user@host:port/db", for messages.
    var label: String { (user.isEmpty ? "" : user + "@") + "\(host):\(port)/\(database)" }

    /// `text` without the password, wherever libpq or the server repeated it
    /// (a short password is left alone: cutting it would garble the message
    /// more than hiding it protects).
    func scrub(_ text: String) -> String {
        guard password.count >= 6 else { return text }
        return text.replacing(password, with: "***")
    }

    /// libpq's parse error with every quoted fragment of the DSN cut out.
    static func unquoted(_ message: String) -> String {
        var result = ""
        var quoted = false
        for character in message.trimmingTrailingWhitespace() {
            if character == "\"" {
                if !quoted { result += "\"…\"" }
                quoted.toggle()
            } else if !quoted {
                result.append(character)
            }
        }
        return result
    }
}
