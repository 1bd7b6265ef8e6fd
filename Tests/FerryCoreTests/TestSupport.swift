import FerryCore
import FerryPluginKit
import Foundation
import Logging
import Testing

/// Where the built products are (the folder of the test runner, or $FERRY_BUILD_DIR),
/// the repository, and helpers to compile C fixtures and run processes.
enum TestSupport {
    static let repoRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let buildDirectory: String = {
        if let override = ProcessInfo.processInfo.environment["FERRY_BUILD_DIR"] { return override }
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        // The XCTest bundle on Linux is an executable inside the build folder.
        var directory = executable.deletingLastPathComponent()
        while directory.path != "/" {
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent("libFerryFile.so").path) { return directory.path }
            directory = directory.deletingLastPathComponent()
        }
        return executable.deletingLastPathComponent().path
    }()

    static func product(_ name: String) -> String { "\(buildDirectory)/\(name)" }
    static var ferryExecutable: String { product("ferry") }
    static var headerDirectory: String { repoRoot.appendingPathComponent("Sources/CFerryPlugin/include").path }

    /// Where temporary directories go: inside the build folder, not /tmp, because
    /// plugins are loaded from them and the loader refuses any file below a folder
    /// others can write (/tmp is one, sticky bit or not).
    static let temporaryRoot: String = {
        let path = repoRoot.appendingPathComponent(".build/test-tmp").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        chmod(path, 0o755)
        return path
    }()

    /// A fresh temporary directory (mode 0755), removed by the caller if it wants.
    static func temporaryDirectory(_ label: String = "ferry-test") throws -> String {
        let path = "\(temporaryRoot)/\(label)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        return path
    }

    /// A plugins directory holding copies of the named built plugins.
    static func pluginDirectory(_ products: [String]) throws -> String {
        let directory = try temporaryDirectory("ferry-plugins")
        for product in products {
            try FileManager.default.copyItem(atPath: self.product("lib\(product).so"), toPath: "\(directory)/lib\(product).so")
        }
        return directory
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, currentDirectory: String? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }

    /// Compiles a C plugin against nothing but ferry_plugin.h.
    static func compilePlugin(source: String, output: String, defines: [String] = []) throws {
        let result = try run("/usr/bin/env", ["cc", "-O1", "-shared", "-fPIC", "-fvisibility=hidden", "-I", headerDirectory]
            + defines.map { "-D\($0)" } + [source, "-o", output])
        guard result.status == 0 else { throw TestFailure("cc failed: \(result.stderr)") }
    }

    static func compileFixture(_ defines: [String], into directory: String, name: String) throws -> String {
        let output = "\(directory)/\(name)"
        try compilePlugin(source: repoRoot.appendingPathComponent("Tests/Fixtures/fixture_plugin.c").path, output: output, defines: defines)
        return output
    }

    static var logger: Logger {
        var logger = Logger(label: "ferry-test") { label in StreamLogHandler.standardError(label: label) }
        logger.logLevel = .error
        return logger
    }

    /// Parses a pipeline and resolves it against the plugins directory.
    static func plan(_ yaml: String, plugins: String, file: String = "/tmp/test-pipeline.yaml") throws -> PipelinePlan {
        let pipeline = try PipelineLoader().parse(yaml: yaml, file: file)
        return try PipelinePlan.resolve(pipeline, catalog: PluginCatalog(directories: [plugins]))
    }

    /// The standard test plugins, built by SwiftPM next to the test runner.
    static let standardPlugins = ["FerryGenerate", "FerryPassthrough", "FerryBlackhole", "FerryFile"]
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension Checkpoint {
    /// The generate source's state: the next record number, little-endian.
    var generatePosition: Int {
        state.withUnsafeBytes { Int(Int64(littleEndian: $0.loadUnaligned(as: Int64.self))) }
    }
}
