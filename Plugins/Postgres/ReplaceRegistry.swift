import Synchronization

/// `replace` must empty the table once per run, though every worker has its
/// own sink instance (and connection). Instances of one run register under
/// one key; the first write of any of them truncates (committed, under the
/// lock, so the others wait), later writers skip it. When the last instance of
/// the run closes, the entry goes, so the next run truncates again.
final class ReplaceRegistry: Sendable {
    static let shared = ReplaceRegistry()

    private struct Entry {
        var instances = 0
        var truncated = false
    }

    private let entries = Mutex<[String: Entry]>([:])

    func register(_ key: String) {
        entries.withLock { $0[key, default: Entry()].instances += 1 }
    }

    func unregister(_ key: String) {
        entries.withLock { entries in
            guard var entry = entries[key] else { return }
            entry.instances -= 1
            entries[key] = entry.instances > 0 ? entry : nil
        }
    }

    /// Runs `truncate` unless this run already did; a failed truncate is tried again next time.
    func truncateOnce(_ key: String, _ truncate: () throws -> Void) throws {
        try entries.withLock { entries in
            if entries[key]?.truncated == true { return }
            try truncate()
            entries[key, default: Entry()].truncated = true
        }
    }
}
