import ArgumentParser

/// Ferry's documented exit codes (see `ferry --help` and docs/08-quick-reference.md).
enum FerryExit {
    static let runFailed = ExitCode(1)
    static let invalid = ExitCode(2)
    static let deadLettered = ExitCode(3)
    /// `ferry diff`: the target differs; `ferry repair`: something was left unrepaired.
    static let different = ExitCode(1)
    /// `ferry diff` and `ferry repair`: a plugin or system failed during the comparison.
    static let diffFailed = ExitCode(4)
    /// Stopped by SIGINT/SIGTERM after committing what was in flight.
    static let cancelled = ExitCode(130)
}
