import FerryCore
import Foundation
import Logging
import PostgresNIO

/// What several `ferry serve` replicas agree on through one PostgreSQL server:
///
/// - **One run of a pipeline at a time, cluster-wide.** A run holds a session
///   advisory lock on the pipeline's name for as long as it goes, on its own
///   connection. If the replica dies, its connection drops and the lock goes
///   with it, so nothing has to be cleaned up by hand.
/// - **One run per schedule tick, cluster-wide.** The lock alone is not enough:
///   a short run can finish before a slower replica's scheduler reaches the
///   same tick, which would then run it again. So the replica that fires a tick
///   first claims it with an insert into `ferry_schedule_fires` keyed on
///   (pipeline, tick time); the others find the row and skip. Tick times are
///   computed from the schedule, not the clock, so every replica names a tick
///   the same way.
public final class PostgresRunLocks: RunLocks, @unchecked Sendable {
    /// First key of every two-key advisory lock Ferry takes, so ours do not
    /// collide with an application's single-key locks on the same database.
    public static let lockSpace: Int32 = 0x4645  // "FE"
    public static let firesTable = "ferry_schedule_fires"

    let dsn: PostgresDSN
    let replica: String
    /// The replica's name plus a token of this process, as written in a claim.
    /// A claim retried after a lost reply finds its own row and still counts as
    /// claimed (the insert may have committed before the connection dropped);
    /// the token keeps two replicas with one misconfigured name apart.
    let claimant: String
    let session: PostgresSession
    private let claims = Locked(0)

    public init(dsn: PostgresDSN, replica: String) {
        self.dsn = dsn
        self.replica = replica
        claimant = "\(replica) \(UUID().uuidString.prefix(8).lowercased())"
        session = PostgresSession(dsn: dsn)
    }

    /// A held run lock; `release` unlocks it (closing the connection would too).
    public final class Lease: RunLock, @unchecked Sendable {
        let session: PostgresSession
        let pipeline: String
        private let released = Locked(false)

        init(session: PostgresSession, pipeline: String) {
            self.session = session
            self.pipeline = pipeline
        }

        public func release() {
            guard released.withLock({ done in defer { done = true }; return !done }) else { return }
            _ = try? session.query("SELECT pg_advisory_unlock(\(PostgresRunLocks.lockSpace), hashtext(\(pipeline)))", "release run lock")
            session.close()
        }

        deinit { release() }
    }

    /// Takes the pipeline's run lock, or returns nil when another process holds it.
    public func acquire(pipeline: String) throws -> (any RunLock)? {
        // Its own connection: a session lock lives as long as the connection.
        let lockSession = PostgresSession(dsn: dsn)
        let rows = try lockSession.query(
            "SELECT pg_try_advisory_lock(\(Self.lockSpace), hashtext(\(pipeline)))", "take the run lock of '\(pipeline)'")
        guard try rows[0].decode(Bool.self) else {
            lockSession.close()
            return nil
        }
        return Lease(session: lockSession, pipeline: pipeline)
    }

    /// Claims a schedule tick for this replica. False: another replica fired it.
    public func claim(pipeline: String, tick: Date) throws -> Bool {
        try prepare()
        let rows = try session.query(
            """
            INSERT INTO ferry_schedule_fires (pipeline, tick, replica) VALUES (\(pipeline), to_timestamp(\(tick.timeIntervalSince1970)), \(claimant))
            ON CONFLICT (pipeline, tick) DO UPDATE SET replica = EXCLUDED.replica WHERE ferry_schedule_fires.replica = EXCLUDED.replica
            RETURNING 1
            """, "claim schedule tick of '\(pipeline)'")
        // Old claims only matter until their tick has passed on every replica.
        let count = claims.withLock { value -> Int in
            value += 1
            return value
        }
        if count % 100 == 1 {
            // Housekeeping only: a user without DELETE must not turn a claimed tick into a misfire.
            _ = try? session.query("DELETE FROM ferry_schedule_fires WHERE tick < now() - interval '7 days'", "prune old schedule ticks")
        }
        return !rows.isEmpty
    }

    /// Reachable and the claims table there: for readiness.
    public func check() throws {
        try prepare()
        try session.query("SELECT 1", "check run locks")
    }

    private func prepare() throws {
        try session.ensureTable(
            Self.firesTable,
            columns: """
                pipeline text NOT NULL, tick timestamptz NOT NULL, replica text NOT NULL,
                claimed_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (pipeline, tick)
                """)
    }
}
