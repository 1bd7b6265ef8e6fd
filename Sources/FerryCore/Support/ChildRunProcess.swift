#if canImport(Glibc)
import Glibc
#endif
import CFerryHost

/// What a run in a child process sets up about its own process before it
/// opens a plugin: it dies with the daemon, it reports crashes on the
/// protocol fd, and it keeps to the pipeline's memory limit.
public enum ChildRunProcess {
    /// The environment variable the daemon names itself in, so a child whose
    /// parent went before it could arm its death signal stops at once.
    public static let parentVariable = "FERRY_RUN_PARENT_PID"
    /// The fd the protocol is written to in the child.
    public static let protocolFD: Int32 = 3
    /// Set in a pre-started run process: it warms up, then waits on stdin for
    /// its `ferry run` arguments (one JSON array on one line).
    public static let spareVariable = "FERRY_RUN_SPARE"
    /// What a pre-started process calls itself once it has its run.
    public static let runningName = "ferry-run"

    public static func setProcessName(_ name: String) {
        _ = ferry_host_set_process_name(name)
    }

    public enum SetupError: Error, CustomStringConvertible {
        case orphaned
        case memoryLimit(Int32)

        public var description: String {
            switch self {
            case .orphaned: "the daemon that started this run is gone"
            case .memoryLimit(let code): "cannot set the memory limit: \(String(cString: strerror(code)))"
            }
        }
    }

    /// SIGKILL when the parent dies, not SIGTERM: a child stuck in a plugin
    /// call would not stop on SIGTERM, and an orphan holding the run lock
    /// would keep the next start from running the pipeline at all. Checkpoints
    /// are saved atomically, so a kill loses no committed work.
    public static func dieWithParent(expectedParent: Int32) throws {
        guard ferry_host_die_with_parent(SIGKILL, expectedParent) == 0 else { throw SetupError.orphaned }
    }

    /// A pipe whose ends are close-on-exec from the start (read end, write end).
    public static func pipe() -> (read: Int32, write: Int32)? {
        var fds: [Int32] = [-1, -1]
        guard ferry_host_pipe_cloexec(&fds) == 0 else { return nil }
        return (fds[0], fds[1])
    }

    /// Adds "close every fd from `lowest` up" to spawn file actions.
    public static func closeFrom(_ lowest: Int32, in actions: UnsafeMutableRawPointer) {
        _ = ferry_host_spawn_close_from(actions, lowest)
    }

    public static func reportCrashes(to fd: Int32) {
        ferry_host_set_crash_fd(fd)
    }

    /// Caps the process's data segment (heap and private mappings, which is
    /// where a plugin's allocations go) at `megabytes`; an allocation past it
    /// fails, which most plugins turn into a crash the daemon then reports.
    /// RLIMIT_AS would also count the address space threads and the runtime
    /// reserve without using, and stop a healthy run.
    public static func limitMemory(megabytes: Int) throws {
        let bytes = rlim_t(megabytes) * 1024 * 1024
        var limit = rlimit(rlim_cur: bytes, rlim_max: bytes)
        guard setrlimit(__rlimit_resource_t(RLIMIT_DATA.rawValue), &limit) == 0 else { throw SetupError.memoryLimit(errno) }
    }
}
