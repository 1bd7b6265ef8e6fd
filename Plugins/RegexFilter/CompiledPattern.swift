import CPCRE2

/// One compiled PCRE2 pattern, JIT-compiled when the library supports it.
///
/// Read-only after `init`; owned by one transform instance and freed with it.
final class CompiledPattern {
    let source: String
    let flags: PatternFlags
    let code: OpaquePointer
    /// True when `pcre2_jit_compile` succeeded, so `pcre2_jit_match` may be used.
    let isJIT: Bool

    /// - Throws: `PatternError` with PCRE2's message and the offset it reports.
    init(_ source: String, flags: PatternFlags, jit: Bool) throws(PatternError) {
        var errorCode: Int32 = 0
        var errorOffset: Int = 0
        let compiled = source.utf8.withContiguousStorageIfAvailable { bytes in
            pcre2_compile_8(bytes.baseAddress, bytes.count, flags.compileOptions, &errorCode, &errorOffset, nil)
        } ?? Array(source.utf8).withUnsafeBufferPointer { bytes in
            pcre2_compile_8(bytes.baseAddress, bytes.count, flags.compileOptions, &errorCode, &errorOffset, nil)
        }
        guard let compiled else {
            throw PatternError(pattern: source, offset: errorOffset, message: PCRE2Message.text(errorCode))
        }
        self.source = source
        self.flags = flags
        code = compiled
        // A JIT failure (no JIT in this build, no executable memory) is not an
        // error: the interpreter gives the same answers, only slower.
        isJIT = jit && pcre2_jit_compile_8(compiled, PCRE2_JIT_COMPLETE) == 0
    }

    deinit { pcre2_code_free_8(code) }

    /// `/pattern/flags` as messages show it.
    var display: String { "/\(source)/\(flags.suffix)" }
}

/// A pattern PCRE2 refused to compile.
struct PatternError: Error, CustomStringConvertible {
    let pattern: String
    let offset: Int
    let message: String

    var description: String { "pattern '\(pattern)' does not compile: \(message) at offset \(offset)" }
}

enum PCRE2Message {
    /// PCRE2's own text for an error code.
    static func text(_ code: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let length = buffer.withUnsafeMutableBufferPointer { pcre2_get_error_message_8(code, $0.baseAddress, $0.count) }
        guard length > 0 else { return "PCRE2 error \(code)" }
        return String(decoding: buffer[0..<Int(length)], as: UTF8.self)
    }
}
