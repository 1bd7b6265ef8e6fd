import FerryCore
import Foundation
import Testing

/// Who may have written a plugin file before the host runs it, and which
/// files a run opens at all.
@Suite("Plugin trust")
struct PluginTrustTests {
    /// A fresh trusted folder holding a copy of the generate plugin, mode 0755.
    func folderWithGenerate() throws -> (folder: String, plugin: String) {
        let folder = try TestSupport.temporaryDirectory("trust")
        let plugin = "\(folder)/libFerryGenerate.so"
        try FileManager.default.copyItem(atPath: TestSupport.product("libFerryGenerate.so"), toPath: plugin)
        chmod(plugin, 0o755)
        return (real(folder), real(plugin))
    }

    func real(_ path: String) -> String { URL(fileURLWithPath: path).resolvingSymlinksInPath().path }

    func refusal(_ path: String, _ catalog: PluginCatalog? = nil) -> String {
        do {
            if let catalog { _ = try catalog.resolve("generate") } else { _ = try PluginLoader.load(path: path, trust: .strict) }
            return "(loaded)"
        } catch {
            #expect(error.path == path)
            if case .insecurePermissions = error.reason {} else { Issue.record("not a trust refusal: \(error)") }
            return error.description
        }
    }

    @Test("a run and a validate open only the plugins the pipeline names; a library's constructor never runs otherwise")
    func opensOnlyNamedPlugins() throws {
        let work = try TestSupport.temporaryDirectory()
        let plugins = try TestSupport.pluginDirectory(["FerryGenerate", "FerryBlackhole"])
        let marker = "\(work)/constructor-ran"
        try TestSupport.compilePlugin(
            source: TestSupport.repoRoot.appendingPathComponent("Tests/Fixtures/marker_library.c").path,
            output: "\(plugins)/libhostile.so", defines: ["MARKER=\"\(marker)\""])
        let pipeline = "\(work)/p.yaml"
        try "name: trust\nsource: {plugin: generate, config: {count: 5}}\nsink: {plugin: blackhole}\n"
            .write(toFile: pipeline, atomically: true, encoding: .utf8)

        let validate = try TestSupport.run(TestSupport.ferryExecutable, ["validate", pipeline, "--plugins", plugins])
        #expect(validate.status == 0, "\(validate.stderr)")
        #expect(!FileManager.default.fileExists(atPath: marker), "ferry validate opened libhostile.so")
        let run = try TestSupport.run(
            TestSupport.ferryExecutable, ["run", pipeline, "--plugins", plugins, "--no-progress", "--state-dir", "\(work)/state"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: marker), "ferry run opened libhostile.so")

        let catalog = PluginCatalog(directories: [plugins])
        _ = try catalog.resolve("generate")
        #expect(catalog.plugins.keys.sorted() == ["generate"])
        #expect(!FileManager.default.fileExists(atPath: marker))

        // Listing the folder opens every file in it, and says which is no plugin.
        let listed = try TestSupport.run(TestSupport.ferryExecutable, ["plugins", "--plugins", plugins])
        #expect(listed.status == 2)
        #expect(listed.stderr.contains("\(plugins)/libhostile.so: no 'ferry_plugin_entry' symbol"), "\(listed.stderr)")
        #expect(FileManager.default.fileExists(atPath: marker))
    }

    @Test("a group-writable plugin file is refused, naming the file and the rule")
    func groupWritableFile() throws {
        let (folder, plugin) = try folderWithGenerate()
        chmod(plugin, 0o775)
        let message = refusal(plugin)
        #expect(message.contains("refused: file \(plugin) is writable by its group (mode 0775)"), "\(message)")
        #expect(refusal(plugin, PluginCatalog(directories: [folder], trust: .strict)).contains("writable by its group"))
    }

    @Test("a plugin folder writable by others is refused, sticky bit or not")
    func worldWritableStickyFolder() throws {
        let (folder, plugin) = try folderWithGenerate()
        chmod(folder, 0o1777)
        let message = refusal(plugin, PluginCatalog(directories: [folder], trust: .strict))
        #expect(message.contains("refused: folder \(folder) is writable by others (mode 1777)"), "\(message)")
        // Further up counts too: the folder is trusted, the one holding it is
        // not. Without a sticky bit anyone could swap the trusted folder out.
        let (inner, nested) = try folderWithGenerate()
        let outer = (inner as NSString).deletingLastPathComponent + "/open-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: outer, withIntermediateDirectories: false)
        chmod(outer, 0o777)
        try FileManager.default.moveItem(atPath: inner, toPath: "\(outer)/plugins")
        _ = nested
        let deep = refusal("\(outer)/plugins/libFerryGenerate.so")
        #expect(deep.contains("folder \(outer) is writable by others (mode 0777)"), "\(deep)")
        // With one, no one else may rename or replace the trusted folder in it
        // (as with a checkout under /tmp): that loads.
        chmod(outer, 0o1777)
        #expect(try PluginLoader.load(path: "\(outer)/plugins/libFerryGenerate.so", trust: .strict).name == "generate")
        // But not when the folder in it belongs to someone else.
        if getuid() == 0 {
            #expect(chown("\(outer)/plugins", 65534, 65534) == 0)
            #expect(refusal("\(outer)/plugins/libFerryGenerate.so").contains("folder \(outer) is writable by others (mode 1777)"))
        }
    }

    @Test("a symlink is checked where it points, and where it lies")
    func symlinks() throws {
        let (trusted, _) = try folderWithGenerate()
        let (open, target) = try folderWithGenerate()
        chmod(open, 0o1777)
        // A link in a trusted folder into an open one.
        let link = "\(trusted)/libFerryMap.so"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        let message = refusal(link)
        #expect(message.contains("folder \(open) is writable by others (mode 1777) (reached through the symbolic link \(link))"), "\(message)")
        // A link in an open folder to a trusted file: anyone could have put it there.
        let planted = "\(open)/libFerryPassthrough.so"
        try FileManager.default.createSymbolicLink(atPath: planted, withDestinationPath: "\(trusted)/libFerryGenerate.so")
        #expect(refusal(planted).contains("folder \(open) is writable by others"))
        // A link within trusted folders loads.
        let fine = "\(trusted)/libgenerate.so"
        try FileManager.default.createSymbolicLink(atPath: fine, withDestinationPath: "libFerryGenerate.so")
        #expect(try PluginLoader.load(path: fine, trust: .strict).name == "generate")
    }

    @Test("a file or folder owned by another user than root or the one running ferry is refused")
    func otherOwner() throws {
        guard getuid() == 0 else {
            print("skipped: handing a file to uid 65534 (nobody) needs root; this runs as uid \(getuid())")
            return
        }
        let (folder, plugin) = try folderWithGenerate()
        #expect(chown(plugin, 65534, 65534) == 0)
        let message = refusal(plugin)
        #expect(message.contains("file \(plugin) is owned by uid 65534, not by root or the user running ferry (uid 0)"), "\(message)")
        #expect(chown(plugin, 0, 0) == 0)
        #expect(chown(folder, 65534, 65534) == 0)
        #expect(refusal(plugin).contains("folder \(folder) is owned by uid 65534"))
    }

    @Test("a plugin directly in /tmp is refused; one in a trusted folder below /tmp loads")
    func underTmp() throws {
        var info = stat()
        guard stat("/tmp", &info) == 0, info.st_mode & S_IWOTH != 0, info.st_uid == 0 else {
            print("skipped: /tmp is not writable by others here")
            return
        }
        var template = Array("/tmp/ferry-trust-XXXXXX".utf8CString)
        let folder = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.copyItem(atPath: TestSupport.product("libFerryGenerate.so"), toPath: "\(folder)/libFerryGenerate.so")
        chmod("\(folder)/libFerryGenerate.so", 0o755)
        #expect(try PluginLoader.load(path: "\(folder)/libFerryGenerate.so", trust: .strict).name == "generate")
        let loose = "/tmp/libFerryGenerate-\(UUID().uuidString.prefix(8)).so"
        try FileManager.default.copyItem(atPath: TestSupport.product("libFerryGenerate.so"), toPath: loose)
        defer { try? FileManager.default.removeItem(atPath: loose) }
        chmod(loose, 0o755)
        #expect(refusal(loose).contains("folder /tmp is writable by others"))
    }

    @Test("ferry plugin test refuses what ferry run refuses, before running any check")
    func pluginTestChecks() throws {
        let (_, plugin) = try folderWithGenerate()
        chmod(plugin, 0o666)
        let result = try TestSupport.run(TestSupport.ferryExecutable, ["plugin", "test", plugin])
        #expect(result.status == 2, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains("error: \(plugin): refused: file \(plugin) is writable by others (mode 0666)"), "\(result.stderr)")
        #expect(!result.stdout.contains("PASS"))
    }

    @Test("FERRY_PLUGIN_TRUST=insecure-dev loads a refused file, and says so on every load")
    func insecureDev() throws {
        let (folder, plugin) = try folderWithGenerate()
        chmod(folder, 0o777)
        let strict = try TestSupport.run(TestSupport.ferryExecutable, ["plugins", "--plugins", folder], environment: ["FERRY_PLUGIN_TRUST": "strict"])
        #expect(strict.status == 2)
        #expect(strict.stderr.contains("writable by others"))
        let dev = try TestSupport.run(TestSupport.ferryExecutable, ["plugins", "--plugins", folder], environment: ["FERRY_PLUGIN_TRUST": "insecure-dev"])
        #expect(dev.status == 0, "\(dev.stderr)")
        #expect(dev.stdout.contains("generate"))
        let warnings = dev.stderr.split(separator: "\n").map(String.init)
        #expect(warnings == [
            "warning: FERRY_PLUGIN_TRUST=insecure-dev: plugin files are loaded even where other users can write them; never set this in production",
            "warning: plugin 'generate' (\(plugin)) loaded although folder \(folder) is writable by others (mode 0777) (FERRY_PLUGIN_TRUST=insecure-dev)",
        ], "\(dev.stderr)")
    }
}
