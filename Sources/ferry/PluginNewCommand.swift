import ArgumentParser
import FerryCore
import Foundation

/// `ferry plugin new`: a standalone plugin project that builds and passes
/// `ferry plugin test` as generated, for authors to edit from there.
struct PluginNewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new",
        abstract: "Create a plugin project outside the Ferry repository: a Swift package on the SDK, or a C file and Makefile.",
        discussion: """
            The project builds as generated and passes `ferry plugin test` with its sample config; its README says \
            how. A Swift project depends on the Ferry source tree by path (--ferry-path, else $FERRY_SOURCE_DIR, \
            else the tree this `ferry` was built in). Exits 2 if the name is invalid or the directory exists.
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

    @Option(help: ArgumentHelp("The Ferry source tree (for the SDK and the ABI header).", valueName: "PATH"))
    var ferryPath: String?

    func validate() throws {
        guard name.wholeMatch(of: /[a-z][a-z0-9_-]{0,62}/) != nil else {
            throw ValidationError("'\(name)' is not a plugin name: use lowercase letters, digits, '-' or '_', starting with a letter")
        }
    }

    func run() throws {
        let ferry = try ferrySourceTree()
        let project = URL(fileURLWithPath: dir).appendingPathComponent(name).standardizedFileURL.path
        guard !FileManager.default.fileExists(atPath: project) else {
            printError("error: \(project) already exists")
            throw FerryExit.invalid
        }
        let template = PluginTemplate(name: name, kind: kind.rawValue, ferryPath: ferry)
        let files = lang == .swift ? template.swiftFiles : template.cFiles
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
        print("  \(template.buildCommand(lang == .swift))")
        print("  ferry plugin test \(template.libraryPath(lang == .swift)) --config sample-config.yaml")
    }

    /// The tree holding Sources/FerryPluginKit and the ABI header.
    func ferrySourceTree() throws -> String {
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
        if let path = ProcessInfo.processInfo.environment["FERRY_SOURCE_DIR"], isTree(path) { return path }
        // Built in place: <tree>/.build/<triple>/<config>/ferry.
        var directory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        while directory.path != "/" {
            if isTree(directory.path) { return directory.path }
            directory = directory.deletingLastPathComponent()
        }
        printError("error: cannot find the Ferry source tree (the SDK): pass --ferry-path or set FERRY_SOURCE_DIR")
        throw FerryExit.invalid
    }
}
