import CPCRE2
import FerryPluginKit

/// What one match attempt gave.
enum MatchResult {
    case matched
    case notMatched
    /// A PCRE2 error: a limit hit (`PCRE2_ERROR_MATCHLIMIT`, …) or other failure.
    case failed(Int32)
}

/// The mutable side of matching: match data, a match context with the
/// limits, and a JIT stack. One per transform instance (one per worker), so
/// no mutable PCRE2 state is ever shared between threads.
final class Matcher {
    let limits: MatchLimits
    /// The raw handles, as a trivial value the hot path can hold without ARC.
    let handles: MatchHandles
    private let jitStack: OpaquePointer?

    init(limits: MatchLimits) throws(PluginError) {
        self.limits = limits
        // One ovector pair is enough: only "did it match" matters.
        guard let matchData = pcre2_match_data_create_8(1, nil), let context = pcre2_match_context_create_8(nil) else {
            throw PluginError.internal("regex_filter: out of memory creating PCRE2 match data")
        }
        pcre2_set_match_limit_8(context, limits.matchLimit)
        pcre2_set_depth_limit_8(context, limits.depthLimit)
        // JIT code ignores the depth limit and runs on its own stack; a
        // bounded stack turns deep recursion into PCRE2_ERROR_JIT_STACKLIMIT.
        jitStack = pcre2_jit_stack_create_8(32 * 1024, limits.jitStackBytes, nil)
        if let jitStack { pcre2_jit_stack_assign_8(context, nil, UnsafeMutableRawPointer(jitStack)) }
        let empty = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        empty.initialize(to: 0)
        handles = MatchHandles(matchData: matchData, context: context, emptySubject: UnsafePointer(empty))
    }

    deinit {
        if let jitStack { pcre2_jit_stack_free_8(jitStack) }
        pcre2_match_context_free_8(handles.context)
        pcre2_match_data_free_8(handles.matchData)
        UnsafeMutablePointer(mutating: handles.emptySubject).deallocate()
    }

    /// A failure as a dead-letter reason names it: which limit, and its value.
    func describe(_ code: Int32) -> String {
        switch code {
        case PCRE2_ERROR_MATCHLIMIT: "PCRE2 match limit exceeded (match_limit \(limits.matchLimit))"
        case PCRE2_ERROR_DEPTHLIMIT: "PCRE2 depth limit exceeded (depth_limit \(limits.depthLimit))"
        case PCRE2_ERROR_JIT_STACKLIMIT: "PCRE2 JIT stack limit exceeded (jit_stack_kb \(limits.jitStackBytes / 1024))"
        case PCRE2_ERROR_HEAPLIMIT: "PCRE2 heap limit exceeded"
        default: "PCRE2 error \(code): \(PCRE2Message.text(code))"
        }
    }
}

/// A matcher's PCRE2 handles, owned by the `Matcher`.
struct MatchHandles {
    let matchData: OpaquePointer
    let context: OpaquePointer
    /// A zero-length subject still needs a non-null pointer.
    let emptySubject: UnsafePointer<UInt8>

    /// Matches a compiled pattern against `subject` (UTF-8 or raw bytes).
    @inline(__always)
    func match(_ code: OpaquePointer, jit: Bool, _ subject: UnsafeRawBufferPointer) -> MatchResult {
        let start = subject.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? emptySubject
        let rc = jit
            ? pcre2_jit_match_8(code, start, subject.count, 0, 0, matchData, context)
            : pcre2_match_8(code, start, subject.count, 0, 0, matchData, context)
        if rc >= 0 { return .matched }
        if rc == PCRE2_ERROR_NOMATCH { return .notMatched }
        return .failed(rc)
    }

    @inline(__always)
    func match(_ pattern: CompiledPattern, _ subject: UnsafeRawBufferPointer) -> MatchResult {
        match(pattern.code, jit: pattern.isJIT, subject)
    }
}

/// Bounds on one match, so a catastrophic pattern ends in an error, not a hang.
struct MatchLimits {
    /// pcre2_set_match_limit: calls of the internal match function (backtracks).
    var matchLimit: UInt32 = 1_000_000
    /// pcre2_set_depth_limit: backtracking depth (interpreter only).
    var depthLimit: UInt32 = 100_000
    /// Maximum JIT stack size.
    var jitStackBytes: Int = 1024 * 1024
}
