import Foundation

/// What the replicas of one daemon agree on: one run of a pipeline at a time
/// across all of them, and one run per schedule tick. PostgreSQL implements
/// it for a cluster (`PostgresRunLocks`); `InMemoryRunLocks` for one process
/// and for tests of the scheduler and the registry.
public protocol RunLocks: Sendable {
    /// Takes the pipeline's run lock, or nil when another run holds it.
    func acquire(pipeline: String) throws -> (any RunLock)?
    /// Claims a schedule tick; false when another replica fired it already.
    func claim(pipeline: String, tick: Date) throws -> Bool
    /// Throws unless the locks can be taken now (readiness).
    func check() throws
}

/// Run locks within one process.
public final class InMemoryRunLocks: RunLocks, @unchecked Sendable {
    private let lock = NSLock()
    private var held: Set<String> = []
    private var claimed: Set<String> = []

    public init() {}

    final class Held: RunLock, @unchecked Sendable {
        let owner: InMemoryRunLocks
        let pipeline: String
        private var released = false
        private let lock = NSLock()

        init(owner: InMemoryRunLocks, pipeline: String) {
            self.owner = owner
            self.pipeline = pipeline
        }

        func release() {
            let first = lock.withLock { () -> Bool in
                defer { released = true }
                return !released
            }
            if first { owner.lock.withLock { _ = owner.held.remove(pipeline) } }
        }
    }

    public func acquire(pipeline: String) throws -> (any RunLock)? {
        lock.withLock { held.insert(pipeline).inserted } ? Held(owner: self, pipeline: pipeline) : nil
    }

    public func claim(pipeline: String, tick: Date) throws -> Bool {
        lock.withLock { claimed.insert("\(pipeline)\u{0}\(tick.timeIntervalSince1970)").inserted }
    }

    public func check() throws {}

    /// Pipelines whose lock is held now.
    public var heldPipelines: Set<String> { lock.withLock { held } }
}
