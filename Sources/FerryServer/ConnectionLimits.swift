import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What the HTTP server grants one client: time to send a request's head,
/// time a keep-alive connection may sit without a request, how many
/// connections it holds at once, and how large a body it reads.
public struct ConnectionLimits: Sendable, Equatable {
    public var headerTimeoutSeconds = 10.0
    public var idleTimeoutSeconds = 60.0
    public var maxConnections = 512
    public var maxBodyBytes = 1 << 20

    public init() {}
}

/// The process's file descriptors, split between HTTP connections and
/// everything else (runs: plugin files, database connections, checkpoint
/// saves). Connections get at most half, so a flood of clients can never take
/// the descriptors a run needs.
struct FileDescriptorBudget: Sendable, Equatable {
    /// The soft limit when the process started.
    var before: UInt64
    /// The soft limit now.
    var limit: UInt64
    var hard: UInt64
    /// How many connections the server holds at once.
    var connectionCap: Int

    /// Descriptors the connections can never take.
    var reserved: UInt64 { limit - UInt64(connectionCap) }

    /// Raises the soft RLIMIT_NOFILE as far as allowed (the hard limit, or the
    /// kernel's nr_open when the hard limit is unlimited) and caps connections
    /// at half of it.
    static func claim(requestedConnections: Int) -> FileDescriptorBudget {
        var limits = rlimit()
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        guard getrlimit(resource, &limits) == 0 else {
            // Unknown: assume the common default and keep the same split.
            return FileDescriptorBudget(before: 1024, limit: 1024, hard: 1024, connectionCap: min(requestedConnections, 512))
        }
        let before = UInt64(limits.rlim_cur)
        let hard = UInt64(limits.rlim_max)
        var target = hard
        if limits.rlim_max == rlim_t.max {
            let text = (try? String(contentsOfFile: "/proc/sys/fs/nr_open", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            target = text.flatMap(UInt64.init) ?? 1 << 20
        }
        var limit = before
        if target > before {
            limits.rlim_cur = rlim_t(target)
            if setrlimit(resource, &limits) == 0 { limit = target }
        }
        let cap = max(1, min(requestedConnections, Int(min(limit / 2, UInt64(Int.max)))))
        return FileDescriptorBudget(before: before, limit: limit, hard: hard, connectionCap: cap)
    }
}
