/// Turns batch completions that arrive in any order into a checkpoint that
/// only ever covers a contiguous prefix: batch n is applied once batches
/// 0…n-1 are, and nothing past a failed batch is ever applied.
struct OrderedCommitter<Completion> {
    private(set) var nextSequence = 0
    private var pending: [Int: Completion] = [:]
    private(set) var failedSequence: Int?

    /// Records a completion and returns those now in order, oldest first.
    mutating func complete(_ sequence: Int, _ completion: Completion) -> [(sequence: Int, completion: Completion)] {
        precondition(sequence >= nextSequence && pending[sequence] == nil, "batch \(sequence) completed twice")
        pending[sequence] = completion
        var ready: [(Int, Completion)] = []
        while let next = pending.removeValue(forKey: nextSequence) {
            ready.append((nextSequence, next))
            nextSequence += 1
        }
        return ready
    }

    /// Marks a batch as failed: the prefix can never move past it.
    mutating func fail(_ sequence: Int) {
        if failedSequence.map({ sequence < $0 }) ?? true { failedSequence = sequence }
    }

    /// Completions waiting for an earlier batch.
    var waiting: Int { pending.count }
}
