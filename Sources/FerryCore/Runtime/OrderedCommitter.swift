/// Turns batch completions that arrive in any order into a checkpoint that
/// only ever covers a contiguous prefix: batch n is applied once batches
/// 0…n-1 are. (Nothing past a failed batch moves the checkpoint because the
/// commit loop stops saving at the first failure it applies in order.)
struct OrderedCommitter<Completion> {
    private(set) var nextSequence = 0
    private var pending: [Int: Completion] = [:]

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

    /// Completions waiting for an earlier batch.
    var waiting: Int { pending.count }
}
