import Synchronization

/// How many dead letters a run may still write: `dead_letters.max` counted
/// record by record, across every worker and lane, so a run stops at the
/// budget instead of a batch (or a lane's worth) past it.
public final class DeadLetterBudget: Sendable {
    public let maxRecords: Int
    private let used = Mutex(0)

    public init(maxRecords: Int) {
        self.maxRecords = maxRecords
    }

    /// Takes one dead letter out of the budget; false once it is spent.
    func admit() -> Bool {
        used.withLock { count in
            guard count < maxRecords else { return false }
            count += 1
            return true
        }
    }
}

/// The record that would have gone past `dead_letters.max`: the run stops.
struct DeadLetterBudgetExceeded: Error, CustomStringConvertible {
    var maxRecords: Int
    var location: String
    var description: String {
        "dead-letter budget exceeded: more than \(maxRecords) records rejected, dead_letters.max is \(maxRecords) (see \(location))"
    }
}
