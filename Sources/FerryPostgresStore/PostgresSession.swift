import FerryCore
import Foundation
import Logging
import NIOCore
import NIOSSL
import PostgresNIO

/// One PostgreSQL connection used from plain threads: every call blocks until
/// the server answers or `timeout` passes. Connects lazily and reconnects once
/// when the connection was lost, so a database restart costs one retry, not
/// the daemon. Calls are serialised by a lock.
///
/// Futures (not async/await) on purpose: the callers are run threads and
/// scheduler ticks, and blocking a cooperative-pool thread on a Task would
/// starve the pool on a 2-core machine; a future completes on NIO's own thread.
public final class PostgresSession: @unchecked Sendable {
    public let dsn: PostgresDSN
    let timeout: TimeAmount
    let logger: Logger
    private let lock = NSLock()
    private var connection: PostgresConnection?
    private static let ids = Locked(0)
    /// Tables `ensureTable` has seen exist on this session's server.
    private let ensured = Locked(Set<String>())

    public init(dsn: PostgresDSN, timeoutSeconds: Int = 10, logger: Logger = Logger(label: "ferry.state")) {
        self.dsn = dsn
        timeout = .seconds(Int64(timeoutSeconds))
        self.logger = logger
    }

    // PostgresConnection asserts it was closed before it goes away.
    deinit { connection.map(Self.closeAndWait) }

    /// Runs a query with binds and returns all its rows.
    @discardableResult
    public func query(_ query: PostgresQuery, _ what: String) throws -> [PostgresRow] {
        try lock.withLock {
            try withReconnect(what) { connection in
                try self.wait(connection.query(query, logger: self.logger).map(\.rows), connection, what)
            }
        }
    }

    /// Runs statements in one transaction on one connection (PostgresNIO's
    /// extended protocol takes one statement per query); rolls back on error.
    public func transaction(_ statements: [PostgresQuery], _ what: String) throws {
        try lock.withLock {
            try withReconnect(what) { connection in
                _ = try self.wait(connection.query("BEGIN", logger: self.logger), connection, what)
                do {
                    for statement in statements {
                        _ = try self.wait(connection.query(statement, logger: self.logger), connection, what)
                    }
                    _ = try self.wait(connection.query("COMMIT", logger: self.logger), connection, what)
                } catch {
                    if !connection.isClosed { _ = try? self.wait(connection.query("ROLLBACK", logger: self.logger), connection, what) }
                    throw error
                }
            }
        }
    }

    /// Makes sure `table` exists, creating it with `columns` if not; asks the
    /// server once per session. A user with only SELECT/INSERT/UPDATE/DELETE on
    /// an existing table is fine; replicas starting together create it under an
    /// advisory lock, so their CREATEs do not collide in the catalog.
    func ensureTable(_ table: String, columns: String) throws {
        if ensured.withLock({ $0.contains(table) }) { return }
        let exists = try query(PostgresQuery(unsafeSQL: "SELECT to_regclass('\(table)') IS NOT NULL"), "look for table \(table)")
        if try !exists[0].decode(Bool.self) {
            try transaction(
                [
                    "SELECT pg_advisory_xact_lock(\(PostgresRunLocks.lockSpace), hashtext(\(table)))",
                    PostgresQuery(unsafeSQL: "CREATE TABLE IF NOT EXISTS \(table) (\(columns))"),
                ], "create table \(table)")
        }
        ensured.withLock { _ = $0.insert(table) }
    }

    public func close() {
        lock.withLock {
            connection.map(Self.closeAndWait)
            connection = nil
        }
    }

    // MARK: - Caller holds the lock

    private func withReconnect<T>(_ what: String, _ body: (PostgresConnection) throws -> T) throws -> T {
        let reused = connection != nil
        let current = try connected(what)
        do {
            return try body(current)
        } catch let error as PostgresStoreError where error.connectionLost && reused {
            // A connection from before a server restart: one fresh try.
            connection = nil
            Self.closeAndWait(current)
            return try body(try connected(what))
        }
    }

    private func connected(_ what: String) throws -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        connection = nil
        var configuration: PostgresConnection.Configuration
        if dsn.host.hasPrefix("/") {
            configuration = .init(
                unixSocketPath: "\(dsn.host)/.s.PGSQL.\(dsn.port)", username: dsn.user, password: dsn.password, database: dsn.database)
        } else {
            let tls: PostgresConnection.Configuration.TLS
            do {
                tls = try Self.tls(for: dsn)
            } catch {
                throw PostgresStoreError(what: "\(what): TLS settings of \(dsn)", error: error, connectionLost: false)
            }
            configuration = .init(
                host: dsn.host, port: dsn.port, username: dsn.user, password: dsn.password, database: dsn.database, tls: tls)
        }
        configuration.options.connectTimeout = timeout
        configuration.options.additionalStartupParameters = [("application_name", dsn.applicationName)]
        let id = Self.ids.withLock { value -> Int in
            value += 1
            return value
        }
        let eventLoop = PostgresConnection.defaultEventLoopGroup.next()
        do {
            let fresh = try PostgresConnection.connect(on: eventLoop, configuration: configuration, id: id, logger: logger).wait()
            connection = fresh
            return fresh
        } catch {
            throw PostgresStoreError(what: "\(what): cannot connect to \(dsn)", error: error, connectionLost: true)
        }
    }

    /// libpq's sslmode, in NIOSSL terms.
    static func tls(for dsn: PostgresDSN) throws -> PostgresConnection.Configuration.TLS {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let root = dsn.sslRootCert { configuration.trustRoots = .file(root) }
        switch dsn.sslmode {
        case "disable":
            return .disable
        case "allow", "prefer":
            configuration.certificateVerification = .none
            return .prefer(try NIOSSLContext(configuration: configuration))
        case "require":
            // As libpq: with a root certificate given, require also checks the chain.
            configuration.certificateVerification = dsn.sslRootCert == nil ? .none : .noHostnameVerification
            return .require(try NIOSSLContext(configuration: configuration))
        case "verify-ca":
            configuration.certificateVerification = .noHostnameVerification
            return .require(try NIOSSLContext(configuration: configuration))
        default:  // verify-full
            configuration.certificateVerification = .fullVerification
            return .require(try NIOSSLContext(configuration: configuration))
        }
    }

    /// Closes without waiting (the future-returning overload, not the async one).
    static func startClosing(_ connection: PostgresConnection) {
        let _: EventLoopFuture<Void> = connection.close()
    }

    /// Closes and waits until the channel is gone. Never called on an event loop.
    static func closeAndWait(_ connection: PostgresConnection) {
        guard !connection.isClosed else { return }
        let closed: EventLoopFuture<Void> = connection.close()
        _ = try? closed.wait()
    }

    /// The server ended the session (FATAL 57P01 after pg_terminate_backend or a
    /// shutdown, class 08 connection exceptions) or the channel closed. Checked
    /// on the error itself because the FATAL reaches the query before NIO has
    /// processed the close, so `isClosed` can still be false.
    static func meansConnectionLost(_ error: any Error) -> Bool {
        guard let psql = error as? PSQLError else { return false }
        switch psql.code {
        case .serverClosedConnection, .clientClosedConnection, .connectionError, .uncleanShutdown:
            return true
        default:
            guard let state = psql.serverInfo?[.sqlState] else { return false }
            return state.hasPrefix("08") || state.hasPrefix("57P")
        }
    }

    /// Waits for `future`; past the timeout the connection is closed (which
    /// fails the query) so no caller hangs on a server that stopped answering.
    private func wait<T: Sendable>(_ future: EventLoopFuture<T>, _ connection: PostgresConnection, _ what: String) throws -> T {
        let timer = future.eventLoop.scheduleTask(in: timeout) { Self.startClosing(connection) }
        defer { timer.cancel() }
        do {
            return try future.wait()
        } catch {
            let lost = connection.isClosed || Self.meansConnectionLost(error)
            if lost {
                // Closed before anyone lets go of it: PostgresConnection asserts that in deinit.
                self.connection = nil
                Self.closeAndWait(connection)
            }
            throw PostgresStoreError(what: "\(what) on \(dsn)", error: error, connectionLost: lost)
        }
    }
}

/// A failed state-store call: what was being done, where, and the server's own message.
public struct PostgresStoreError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// The connection is gone (refused, reset, timed out): worth a retry on a new one.
    public var connectionLost: Bool

    init(what: String, error: any Error, connectionLost: Bool) {
        var reason: String
        if let psql = error as? PSQLError {
            if let server = psql.serverInfo?[.message] {
                reason = server
                if let state = psql.serverInfo?[.sqlState] { reason += " (SQLSTATE \(state))" }
            } else if let underlying = psql.underlying {
                reason = "\(psql.code): \(underlying)"
            } else {
                reason = "\(psql.code)"
            }
        } else {
            reason = "\(error)"
        }
        message = "\(what): \(reason)"
        self.connectionLost = connectionLost
    }

    public var description: String { message }
}
