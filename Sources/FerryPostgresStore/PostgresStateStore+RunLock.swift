import FerryCore
import Foundation
import PostgresNIO

/// One run per pipeline shard across every machine that shares the store: a
/// session advisory lock on its own connection, so it goes when the process
/// (or its connection) dies. Its key space is not the daemon's per-pipeline
/// run lock's, so a daemon's run takes both without waiting on itself.
extension PostgresStateStore {
    static let shardLockSpace: Int32 = 0x4653  // "FS"

    public func lockRun(pipeline: String, shard: ShardSpec) throws -> (any RunLock)? {
        let name = "\(pipeline)#\(shard.index)/\(shard.count)"
        let lockSession = PostgresSession(dsn: session.dsn)
        do {
            let rows = try lockSession.query(
                "SELECT pg_try_advisory_lock(\(Self.shardLockSpace), hashtext(\(name)))", "take the run lock of '\(pipeline)'")
            guard try rows[0].decode(Bool.self) else {
                lockSession.close()
                let shardText = shard.count > 1 ? " shard \(shard)" : ""
                throw StateError(
                    "pipeline '\(pipeline)'\(shardText) is already running (another process holds its run lock in \(session.dsn)); a second run would write the same records")
            }
        } catch let error as StateError {
            throw error
        } catch {
            lockSession.close()
            throw StateError("cannot take the run lock of '\(pipeline)' in \(session.dsn): \(error)")
        }
        return PostgresShardLock(session: lockSession, name: name)
    }
}

final class PostgresShardLock: RunLock, @unchecked Sendable {
    let session: PostgresSession
    let name: String
    private let released = Locked(false)

    init(session: PostgresSession, name: String) {
        self.session = session
        self.name = name
    }

    func release() {
        guard released.withLock({ done in defer { done = true }; return !done }) else { return }
        _ = try? session.query("SELECT pg_advisory_unlock(\(PostgresStateStore.shardLockSpace), hashtext(\(name)))", "release run lock")
        session.close()
    }

    deinit { release() }
}
