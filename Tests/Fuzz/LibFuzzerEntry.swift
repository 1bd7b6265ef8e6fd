#if canImport(Glibc)
import Glibc
#endif
import Foundation

// libFuzzer's entry points, for the fuzz build only (scripts/fuzz.sh compiles
// this file with the bodies in Tests/FerryCoreTests/Fuzz/). One binary serves
// every target: FERRY_FUZZ_TARGET names the one to run.

private let selectedBody: @Sendable ([UInt8]) throws -> Void = {
    let name = ProcessInfo.processInfo.environment["FERRY_FUZZ_TARGET"] ?? ""
    guard let body = FuzzTargets.body(named: name) else {
        let names = FuzzTargets.all.map(\.name).joined(separator: ", ")
        FileHandle.standardError.write(Data("FERRY_FUZZ_TARGET is '\(name)'; set it to one of: \(names)\n".utf8))
        exit(2)
    }
    return body
}()

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    _ = selectedBody
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    do {
        try selectedBody(bytes)
    } catch {
        // An invariant failure is a finding like a crash: libFuzzer saves the input on abort.
        FileHandle.standardError.write(Data("fuzz invariant failed: \(error)\n".utf8))
        abort()
    }
    return 0
}
