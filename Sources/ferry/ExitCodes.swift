import ArgumentParser

/// Ferry's documented exit codes (see `ferry --help` and docs/08-quick-reference.md).
enum FerryExit {
    static let runFailed = ExitCode(1)
    static let invalid = ExitCode(2)
    static let deadLettered = ExitCode(3)
    /// Stopped by SIGINT/SIGTERM after committing what was in flight.
    static let cancelled = ExitCode(130)
}
