import Foundation

/// A value behind a lock, as a reference: for state shared with escaping
/// closures (threads, NIO callbacks, Dispatch blocks), where the standard
/// library's `Mutex`, being non-copyable, cannot be captured.
public final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value

    public init(_ value: Value) { stored = value }

    public func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&stored)
    }

    /// For plain reads and writes; read-modify-write belongs in `withLock`.
    public var value: Value {
        get { withLock { $0 } }
        set { withLock { $0 = newValue } }
    }
}
