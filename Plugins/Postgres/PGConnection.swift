#if canImport(Glibc)
import Glibc
#endif
import CLibPQ
import FerryPluginKit

/// One libpq connection. Errors name the server by the DSN's parsed parts
/// (user, host, port, database), never the DSN, and have the password cut out
/// of anything libpq or the server says; a lost connection is `transient` so
/// the host retries, anything the server refuses is reported as it is.
final class PGConnection {
    let conn: OpaquePointer
    /// "user@host:port/db", for error messages.
    let label: String
    let target: ConnectionTarget
    /// SQLSTATE of the last failed command ("" when unknown or the connection failed).
    var lastState = ""

    /// Connects with a connect timeout and session settings that make the text
    /// formats the codecs parse predictable (ISO dates, UTC, dot decimals).
    init(dsn: String, target: ConnectionTarget, connectTimeout: Int, statementTimeoutMs: Int, applicationName: String = "ferry") throws {
        let keys = ["dbname", "connect_timeout", "fallback_application_name", "options"]
        // `options` sets GUCs at connection start, so no extra round trip is needed.
        var options = "-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=iso_8601 -c extra_float_digits=3 -c bytea_output=hex"
        options += " -c statement_timeout=\(statementTimeoutMs)"
        let values = [dsn, String(connectTimeout), applicationName, options]
        // expand_dbname=1: the DSN (URI or key=value) is expanded first; the keys after it
        // override it, so the configured timeout and session settings always apply.
        var cKeys = keys.map { strdup($0) }
        var cValues = values.map { strdup($0) }
        defer { cKeys.forEach { free($0) }; cValues.forEach { free($0) } }
        cKeys.append(nil)
        cValues.append(nil)
        let connection: OpaquePointer? = cKeys.withUnsafeBufferPointer { k in
            cValues.withUnsafeBufferPointer { v in
                k.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: k.count) { kp in
                    v.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: v.count) { vp in
                        PQconnectdbParams(kp, vp, 1)
                    }
                }
            }
        }
        guard let connection else { throw PluginError.transient("postgres: out of memory creating a connection") }
        let where_ = target.label
        if PQstatus(connection) != CONNECTION_OK {
            let message = target.scrub(PGConnection.text(PQerrorMessage(connection)))
            PQfinish(connection)
            throw PGConnection.classifyConnectError(message, where_)
        }
        // libpq prints NOTICEs to stderr by default ("… already exists, skipping"); a plugin must not.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        conn = connection
        label = where_
        self.target = target
    }

    deinit { PQfinish(conn) }

    var isBroken: Bool { PQstatus(conn) != CONNECTION_OK }

    /// The server's version number (150004 for 15.4).
    var serverVersion: Int { Int(PQserverVersion(conn)) }

    static func text(_ pointer: UnsafePointer<CChar>?) -> String {
        guard let pointer else { return "" }
        return String(cString: pointer).trimmingTrailingWhitespace()
    }

    /// Wrong password and unknown database will not fix themselves; an unreachable
    /// server might (restart, failover), so it is transient and retried.
    static func classifyConnectError(_ message: String, _ where_: String) -> PluginError {
        let short = conciseConnectError(message)
        if message.contains("password authentication failed") || message.contains("no password supplied")
            || message.contains("authentication failed")
        {
            return .config("postgres: cannot connect to \(where_): authentication failed (check the user and password in 'dsn')")
        }
        // libpq checks option values (sslmode, port, …) before it connects: the DSN is wrong.
        if message.hasPrefix("invalid ") {
            return .config("postgres: field 'dsn' for \(where_): \(ConnectionTarget.unquoted(short))")
        }
        if message.contains("does not exist") {
            return .config("postgres: cannot connect to \(where_): \(short)")
        }
        if message.contains("timeout expired") {
            return .transient("postgres: cannot connect to \(where_): connect timeout expired (is the host reachable?)")
        }
        if message.contains("could not translate host name") {
            return .config("postgres: cannot connect to \(where_): unknown host (\(short))")
        }
        return .transient("postgres: cannot connect to \(where_): \(short)")
    }

    /// libpq's multi-line message without the "connection to server at …
    /// failed:" prefix the caller already says (host and port), on one line.
    static func conciseConnectError(_ message: String) -> String {
        var parts: [String] = []
        for line in message.split(separator: "\n") {
            var text = line.trimmingCharacters()
            if text.hasPrefix("connection to server"), let failed = text.firstRange(of: "failed: ") {
                text = String(text[failed.upperBound...])
            }
            text = text.replacing("FATAL:  ", with: "")
            if !text.isEmpty && !parts.contains(text) { parts.append(text) }
        }
        return parts.joined(separator: "; ")
    }

    /// The error of a failed command: transient when the connection is gone,
    /// otherwise the server's message with its SQLSTATE.
    func error(_ result: OpaquePointer?, _ what: String) -> PluginError {
        let message: String
        var state = ""
        if let result {
            message = PGConnection.text(PQresultErrorMessage(result))
            state = PGConnection.text(PQresultErrorField(result, Int32(UInt8(ascii: "C"))))
        } else {
            message = PGConnection.text(PQerrorMessage(conn))
        }
        let short = target.scrub(message.replacingNewlines())
        lastState = state
        // Class 08 (connection exception), 57P01-57P03 (admin shutdown, crash, cannot connect now)
        // and a dead socket are worth a retry; so are serialization failures and deadlocks.
        if isBroken || state.hasPrefix("08") || state.hasPrefix("57P") || state == "40001" || state == "40P01" {
            return .transient("postgres \(label): \(what): \(short.isEmpty ? "connection lost" : short)")
        }
        if state == "57014" {
            return .transient("postgres \(label): \(what): statement timeout (\(short))")
        }
        return .data("postgres \(label): \(what): \(short)")
    }

    /// Runs SQL with no parameters; throws unless it succeeds.
    @discardableResult
    func exec(_ sql: String, _ what: String) throws -> PGResult {
        let result = PQexec(conn, sql)
        return try check(result, what)
    }

    /// Runs SQL with text parameters (values never spliced into SQL text).
    @discardableResult
    func exec(_ sql: String, _ parameters: [String?], _ what: String) throws -> PGResult {
        var cValues: [UnsafeMutablePointer<CChar>?] = parameters.map { $0.map { strdup($0) } ?? nil }
        defer { cValues.forEach { free($0) } }
        let result = cValues.withUnsafeMutableBufferPointer { values in
            values.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: max(values.count, 1)) { pointer in
                PQexecParams(conn, sql, Int32(parameters.count), nil, parameters.isEmpty ? nil : pointer, nil, nil, 0)
            }
        }
        return try check(result, what)
    }

    func check(_ result: OpaquePointer?, _ what: String) throws -> PGResult {
        let status = result.map { PQresultStatus($0) } ?? PGRES_FATAL_ERROR
        switch status {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_COPY_IN, PGRES_COPY_OUT:
            return PGResult(result!)
        default:
            let error = error(result, what)
            PQclear(result)
            throw error
        }
    }

    /// Drains results after COPY or a failed command so the connection is usable.
    func finishCommand(_ what: String) throws {
        var firstError: PluginError?
        while let result = PQgetResult(conn) {
            let status = PQresultStatus(result)
            if status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && firstError == nil {
                firstError = error(result, what)
            }
            PQclear(result)
        }
        if let firstError { throw firstError }
    }

    /// Sends COPY data; `bytes` may hold many rows.
    func putCopyData(_ bytes: UnsafeRawBufferPointer, _ what: String) throws {
        guard bytes.count > 0 else { return }
        let sent = PQputCopyData(conn, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
        if sent != 1 { throw error(nil, what) }
    }

    /// Ends COPY FROM STDIN and reports its outcome.
    func endCopy(_ what: String) throws {
        if PQputCopyEnd(conn, nil) != 1 { throw error(nil, what) }
        try finishCommand(what)
    }
}

/// An owned PGresult, cleared when dropped.
final class PGResult {
    let result: OpaquePointer
    init(_ result: OpaquePointer) { self.result = result }
    deinit { PQclear(result) }

    var rows: Int { Int(PQntuples(result)) }
    var columns: Int { Int(PQnfields(result)) }
    func isNull(_ row: Int, _ column: Int) -> Bool { PQgetisnull(result, Int32(row), Int32(column)) != 0 }
    func value(_ row: Int, _ column: Int) -> String? {
        isNull(row, column) ? nil : String(cString: PQgetvalue(result, Int32(row), Int32(column)))
    }
    func name(_ column: Int) -> String { String(cString: PQfname(result, Int32(column))) }
    func type(_ column: Int) -> UInt32 { UInt32(PQftype(result, Int32(column))) }
    var affected: Int { Int(String(cString: PQcmdTuples(result))) ?? 0 }
}

extension String {
    func trimmingTrailingWhitespace() -> String {
        var result = self
        while let last = result.last, last == "\n" || last == " " || last == "\r" { result.removeLast() }
        return result
    }

    func replacingNewlines() -> String {
        split(whereSeparator: { $0 == "\n" }).map { $0.trimmingCharacters() }.joined(separator: "; ")
    }
}

extension Substring {
    func trimmingCharacters() -> String {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s.removeLast() }
        return String(s)
    }
}

extension PluginError {
    var isTransient: Bool { status == PluginError.transient("").status }
}
