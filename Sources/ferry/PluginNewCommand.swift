import ArgumentParser
import FerryCore
import Foundation

/// `ferry plugin new`: a standalone plugin project that builds and passes
/// `ferry plugin test` as generated, for authors to edit from there. It needs
/// what `make install` puts beside the binary (the ABI header, the Swift SDK),
/// never the Ferry source tree.
struct PluginNewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new",
        abstract: "Create a plugin project outside the Ferry repository: a Swift package on the SDK, or a C file on libbson and a Makefile.",
        discussion: """
            The project builds as generated and passes `ferry plugin test` with its sample config; its README says \
            how. A C project needs ferry_plugin.h: --include DIR, else `pkg-config --cflags ferry-plugin`, else \
            include/ferry beside the bin/ holding this ferry (as `make install` lays it out). A Swift project \
            depends on FerryPluginKit: the repository at a tag with --sdk-url and --sdk-version, else the package \
            folder --sdk, else share/ferry/swift/FerryPluginKit beside the bin/ holding this ferry. --ferry-path \
            (or $FERRY_SOURCE_DIR, or the tree whose .build this ferry runs from) takes both from a Ferry source \
            tree instead. Exits 2 if the name is invalid, the \
            directory exists or the header or SDK cannot be found.
            """)

    enum Kind: String, ExpressibleByArgument, CaseIterable { case source, sink, transform }
    enum Language: String, ExpressibleByArgument, CaseIterable { case swift, c }

    @Argument(help: "Plugin name: lowercase letters, digits, '-' or '_', starting with a letter.")
    var name: String

    @Option(help: "source, sink or transform.")
    var kind: Kind

    @Option(help: "swift or c.")
    var lang: Language = .swift

    @Option(help: ArgumentHelp("Parent directory of the new project (default: the current one).", valueName: "D"))
    var dir: String = "."

    @Option(help: ArgumentHelp("C: the folder holding ferry_plugin.h.", valueName: "DIR"))
    var include: String?

    @Option(help: ArgumentHelp("Swift: the FerryPluginKit package folder to depend on by path.", valueName: "PATH"))
    var sdk: String?

    @Option(help: ArgumentHelp("Swift: the Ferry repository URL to depend on (with --sdk-version).", valueName: "URL"))
    var sdkUrl: String?

    @Option(help: ArgumentHelp("Swift: the tag of --sdk-url to depend on.", valueName: "V"))
    var sdkVersion: String?

    @Option(help: ArgumentHelp("A Ferry source tree to take the header and SDK from.", valueName: "PATH"))
    var ferryPath: String?

    func validate() throws {
        guard name.wholeMatch(of: /[a-z][a-z0-9_-]{0,62}/) != nil else {
            throw ValidationError("'\(name)' is not a plugin name: use lowercase letters, digits, '-' or '_', starting with a letter")
        }
        guard (sdkUrl == nil) == (sdkVersion == nil) else {
            throw ValidationError("--sdk-url and --sdk-version go together")
        }
    }

    func run() throws {
        let project = URL(fileURLWithPath: dir).appendingPathComponent(name).standardizedFileURL.path
        guard !FileManager.default.fileExists(atPath: project) else {
            printError("error: \(project) already exists")
            throw FerryExit.invalid
        }
        let template = PluginTemplate(name: name, kind: kind.rawValue)
        let files: [String: String]
        var build: String
        switch lang {
        case .swift:
            files = template.swiftFiles(sdk: try swiftSDK())
            build = "swift build"
        case .c:
            let header = try headerFolder()
            files = template.cFiles
            // The Makefile finds the header itself unless it came from somewhere only this command was told of.
            build = header.discoverable ? "make" : "make FERRY_CFLAGS=-I\(header.path)"
        }
        do {
            for (relative, contents) in files.sorted(by: { $0.key < $1.key }) {
                let path = "\(project)/\(relative)"
                try FileManager.default.createDirectory(
                    atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try contents.write(toFile: path, atomically: true, encoding: .utf8)
            }
        } catch {
            printError("error: cannot write \(project): \(error.localizedDescription)")
            throw FerryExit.runFailed
        }
        print("created \(project) (\(lang.rawValue) \(kind.rawValue) plugin '\(name)')")
        print("next:")
        print("  cd \(project)")
        print("  \(build)")
        print("  ferry plugin test \(template.libraryPath(lang == .swift)) --config sample-config.yaml")
    }

    /// The installed tree this binary belongs to: P for P/bin/ferry.
    var installPrefix: URL {
        URL(fileURLWithPath: PluginCatalog.runningExecutable).resolvingSymlinksInPath()
            .deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Where ferry_plugin.h is, and whether the generated Makefile finds it on its own.
    func headerFolder() throws -> (path: String, discoverable: Bool) {
        func holdsHeader(_ folder: String) -> Bool { FileManager.default.fileExists(atPath: "\(folder)/ferry_plugin.h") }
        if let include {
            let path = URL(fileURLWithPath: include).standardizedFileURL.path
            guard holdsHeader(path) else {
                printError("error: --include \(path): no ferry_plugin.h there")
                throw FerryExit.invalid
            }
            return (path, false)
        }
        if let tree = try sourceTree() {
            return ("\(tree)/Sources/CFerryPlugin/include", false)
        }
        if let folder = Self.pkgConfigIncludeFolders().first(where: holdsHeader) { return (folder, true) }
        let beside = installPrefix.appendingPathComponent("include/ferry").path
        if holdsHeader(beside) { return (beside, true) }
        printError(
            "error: cannot find ferry_plugin.h: not in `pkg-config --cflags ferry-plugin` nor in \(beside); "
                + "install Ferry with `make install PREFIX=…` (and add PREFIX/lib/pkgconfig to PKG_CONFIG_PATH), or pass --include DIR")
        throw FerryExit.invalid
    }

    /// Where FerryPluginKit comes from.
    func swiftSDK() throws -> PluginTemplate.SDK {
        if let sdkUrl, let sdkVersion { return .url(sdkUrl, version: sdkVersion) }
        func isPackage(_ folder: String) -> Bool {
            FileManager.default.fileExists(atPath: "\(folder)/Package.swift")
                && FileManager.default.fileExists(atPath: "\(folder)/Sources/FerryPluginKit")
        }
        if let sdk {
            let path = URL(fileURLWithPath: sdk).standardizedFileURL.path
            guard isPackage(path) else {
                printError("error: --sdk \(path): not a FerryPluginKit package (no Package.swift and Sources/FerryPluginKit)")
                throw FerryExit.invalid
            }
            return .path(path)
        }
        if let tree = try sourceTree() { return .path(tree) }
        let installed = installPrefix.appendingPathComponent("share/ferry/swift/FerryPluginKit").path
        if isPackage(installed) { return .path(installed) }
        printError(
            "error: cannot find the Swift SDK: not in \(installed); install Ferry with `make install PREFIX=…`, "
                + "or pass --sdk PATH, or --sdk-url URL --sdk-version V")
        throw FerryExit.invalid
    }

    /// A Ferry source tree: --ferry-path, $FERRY_SOURCE_DIR, or the one whose
    /// `.build` this ferry runs from. An installed ferry never needs one.
    func sourceTree() throws -> String? {
        func isTree(_ path: String) -> Bool {
            FileManager.default.fileExists(atPath: "\(path)/Sources/FerryPluginKit")
                && FileManager.default.fileExists(atPath: "\(path)/Sources/CFerryPlugin/include/ferry_plugin.h")
        }
        if let ferryPath {
            let path = URL(fileURLWithPath: ferryPath).standardizedFileURL.path
            guard isTree(path) else {
                printError("error: --ferry-path \(path) is not a Ferry source tree (no Sources/FerryPluginKit)")
                throw FerryExit.invalid
            }
            return path
        }
        if let path = ProcessInfo.processInfo.environment["FERRY_SOURCE_DIR"], !path.isEmpty, isTree(path) { return path }
        // A ferry run from its own build folder (<tree>/.build/<triple>/<config>/ferry) has no installed files beside it.
        var folder = URL(fileURLWithPath: PluginCatalog.runningExecutable).resolvingSymlinksInPath().deletingLastPathComponent()
        while folder.path != "/" {
            if folder.lastPathComponent == ".build" {
                let tree = folder.deletingLastPathComponent().path
                return isTree(tree) ? tree : nil
            }
            folder = folder.deletingLastPathComponent()
        }
        return nil
    }

    /// The -I folders of `pkg-config --cflags ferry-plugin`, if pkg-config knows it.
    static func pkgConfigIncludeFolders() -> [String] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["pkg-config", "--cflags", "ferry-plugin"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return [] }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return [] }
        return String(decoding: data, as: UTF8.self).split(whereSeparator: \.isWhitespace)
            .filter { $0.hasPrefix("-I") }.map { String($0.dropFirst(2)) }
    }
}
