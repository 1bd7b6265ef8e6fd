import Foundation

/// A PostgreSQL connection string, as libpq reads them: a URI
/// (`postgresql://user:password@host:port/db?sslmode=disable`) or key=value
/// pairs (`host=… port=… user=… password=… dbname=…`). The password is kept
/// out of `description`, so a DSN can go into any log line.
public struct PostgresDSN: Sendable, CustomStringConvertible {
    public var host = "localhost"
    public var port = 5432
    public var user = ProcessInfo.processInfo.environment["USER"] ?? "postgres"
    public var password: String?
    public var database: String?
    /// As libpq: `disable`; `allow`/`prefer` (TLS if the server offers it, no
    /// certificate check; the default); `require` (TLS, no check, or a CA check
    /// when `sslrootcert` is given); `verify-ca` (the chain, against
    /// `sslrootcert` or the system roots); `verify-full` (the chain and the host name).
    public var sslmode = "prefer"
    /// A PEM file of the CA(s) to trust.
    public var sslRootCert: String?
    /// Shown in pg_stat_activity, so an operator can tell Ferry's sessions apart.
    public var applicationName = "ferry"

    /// The setting as written: what a run in a child process is handed (in its
    /// environment, never on its command line, where `ps` would show a password).
    public private(set) var setting = ""

    public init(parsing text: String) throws {
        setting = text
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("postgresql://") || trimmed.hasPrefix("postgres://") {
            try parseURI(trimmed)
        } else {
            try parseKeywords(trimmed)
        }
        guard ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"].contains(sslmode) else {
            throw StateStoreConfigError(
                "state store DSN \(description): sslmode=\(sslmode) is not one of disable, allow, prefer, require, verify-ca, verify-full")
        }
        if let sslRootCert, !FileManager.default.isReadableFile(atPath: sslRootCert) {
            throw StateStoreConfigError("state store DSN \(description): sslrootcert \(sslRootCert) cannot be read")
        }
    }

    /// Whether `text` looks like a PostgreSQL DSN at all (vs a directory path).
    public static func looksLikeDSN(_ text: String) -> Bool {
        text.hasPrefix("postgresql://") || text.hasPrefix("postgres://") || text.contains("host=") || text.contains("dbname=")
    }

    public var description: String {
        "postgresql://\(user)\(password == nil ? "" : ":***")@\(host.hasPrefix("/") ? "[\(host)]" : host):\(port)/\(database ?? user)"
    }

    private mutating func parseURI(_ text: String) throws {
        guard let components = URLComponents(string: text) else {
            throw StateStoreConfigError("state store DSN is not a valid URI (postgresql://user:password@host:port/db)")
        }
        if let user = components.percentEncodedUser { self.user = user.removingPercentEncoding ?? user }
        if let password = components.percentEncodedPassword { self.password = password.removingPercentEncoding ?? password }
        if let host = components.host, !host.isEmpty { self.host = host }
        // Through the same range check as port=, so postgresql://host:0/ is refused here, not at connect.
        if let port = components.port { try apply("port", String(port)) }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        if !path.isEmpty { database = path }
        for item in components.queryItems ?? [] {
            try apply(item.name, item.value ?? "")
        }
    }

    private mutating func parseKeywords(_ text: String) throws {
        var rest = Substring(text)
        while true {
            rest = rest.drop { $0 == " " || $0 == "\t" || $0 == "\n" }
            guard !rest.isEmpty else { break }
            guard let equals = rest.firstIndex(of: "=") else {
                throw StateStoreConfigError("state store DSN: expected key=value, found '\(rest.prefix(20))'")
            }
            let key = rest[..<equals].trimmingCharacters(in: .whitespaces)
            rest = rest[rest.index(after: equals)...].drop { $0 == " " }
            var value = ""
            if rest.first == "'" {
                rest = rest.dropFirst()
                var closed = false
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if character == "\\", let next = rest.first {
                        value.append(next)
                        rest = rest.dropFirst()
                    } else if character == "'" {
                        closed = true
                        break
                    } else {
                        value.append(character)
                    }
                }
                guard closed else { throw StateStoreConfigError("state store DSN: unterminated quote in the value of '\(key)'") }
            } else {
                let end = rest.firstIndex { $0 == " " || $0 == "\t" || $0 == "\n" } ?? rest.endIndex
                value = String(rest[..<end])
                rest = rest[end...]
            }
            try apply(key, value)
        }
    }

    private mutating func apply(_ key: String, _ value: String) throws {
        switch key {
        case "host", "hostaddr": host = value
        case "port":
            guard let number = Int(value), (1...65535).contains(number) else {
                throw StateStoreConfigError("state store DSN: port '\(value)' is not a port number")
            }
            port = number
        case "user": user = value
        case "password": password = value
        case "dbname": database = value
        case "sslmode": sslmode = value
        case "sslrootcert": sslRootCert = value
        case "application_name": applicationName = value
        case "connect_timeout", "options": break  // harmless for the state store
        default:
            throw StateStoreConfigError("state store DSN: parameter '\(key)' is not supported (known: host, port, user, password, dbname, sslmode, sslrootcert, application_name)")
        }
    }
}

public struct StateStoreConfigError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
