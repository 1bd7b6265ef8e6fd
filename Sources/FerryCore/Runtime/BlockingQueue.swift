import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A FIFO that blocks `pop` until an item arrives or the queue is closed.
/// Unbounded by itself: the runner bounds what is in flight with permits.
///
/// A popper that finds the queue empty first yields the CPU a few times
/// before it parks. A worker is usually faster than its reader, so without
/// this every batch cost a futex sleep and a wake-up (one system call on
/// each side plus a context switch, about 10 µs: at 100 records a batch that
/// was a third of the engine's cost). `sched_yield` rather than a busy spin,
/// so a runnable reader on the same core gets it at once. 64 yields (tens of
/// µs, about what parking costs) beat 16 and 256 in scripts/bench-runtime.sh.
final class BlockingQueue<Element>: @unchecked Sendable {
    private var items: [Element] = []
    private var head = 0
    private var closed = false
    private let condition = NSCondition()
    /// Items pushed and not yet popped, plus one once closed: read without the lock while yielding.
    private let available = Atomic<Int>(0)
    private let yieldsBeforeParking: Int

    init(yieldsBeforeParking: Int = 64) {
        self.yieldsBeforeParking = yieldsBeforeParking
    }

    func push(_ item: Element) {
        condition.lock()
        items.append(item)
        available.add(1, ordering: .releasing)
        condition.signal()
        condition.unlock()
    }

    /// The next item, or nil once the queue is closed and empty.
    func pop() -> Element? {
        var yields = 0
        while yields < yieldsBeforeParking && available.load(ordering: .acquiring) == 0 {
            sched_yield()
            yields += 1
        }
        condition.lock()
        defer { condition.unlock() }
        while head == items.count && !closed { condition.wait() }
        guard head < items.count else { return nil }
        let item = items[head]
        head += 1
        available.subtract(1, ordering: .relaxed)
        if head > 1024 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        return item
    }

    func close() {
        condition.lock()
        closed = true
        available.add(1, ordering: .releasing)
        condition.broadcast()
        condition.unlock()
    }
}
