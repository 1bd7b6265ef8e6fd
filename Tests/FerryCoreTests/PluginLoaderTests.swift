import FerryCore
import Foundation
import Testing

@Suite("Plugin loader")
struct PluginLoaderTests {
    @Test("a good plugin loads with its descriptor facts")
    func loadsGoodPlugin() throws {
        let plugin = try PluginLoader.load(path: TestSupport.product("libFerryGenerate.so"))
        #expect(plugin.name == "generate")
        #expect(plugin.kindNames == ["source"])
        #expect(plugin.abiMajor == 1)
        #expect(plugin.configSchema["properties"]?["count"] != nil)
    }

    @Test("what a library constructor prints while the file loads is kept for the host, not left on stderr")
    func loadNoise() throws {
        let directory = try TestSupport.temporaryDirectory()
        let path = try TestSupport.compileFixture(["LOAD_NOISE", "NAME=\"noisy\""], into: directory, name: "libnoisy.so")
        #expect(try PluginLoader.load(path: path).loadOutput == "fixture: WARNING: hello from a library constructor")
        // Through the CLI: one warning naming the plugin, the raw line nowhere.
        let listed = try TestSupport.run(TestSupport.ferryExecutable, ["plugins", "--plugins", directory])
        #expect(listed.status == 0, "\(listed.stderr)")
        #expect(listed.stdout.contains("noisy"))
        let lines = listed.stderr.split(separator: "\n").map(String.init)
        #expect(lines == ["warning: plugin 'noisy' (\(path)) printed while loading: fixture: WARNING: hello from a library constructor"], "\(listed.stderr)")
    }

    @Test("a text file named .so is reported, not loaded")
    func textFile() throws {
        let directory = try TestSupport.temporaryDirectory()
        let path = "\(directory)/libnotes.so"
        try "just some notes\n".write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: PluginLoadError.self) { try PluginLoader.load(path: path) }
        #expect(error?.description.contains(path) == true)
        #expect(error?.description.contains("not a loadable shared object") == true)
    }

    @Test("a shared object without the entry symbol is reported")
    func noEntry() throws {
        let directory = try TestSupport.temporaryDirectory()
        let path = try TestSupport.compileFixture(["NO_ENTRY"], into: directory, name: "libnoentry.so")
        let error = #expect(throws: PluginLoadError.self) { try PluginLoader.load(path: path) }
        #expect(error?.reason == .noEntrySymbol)
        #expect(error?.description.contains("ferry_plugin_entry") == true)
    }

    @Test("an ABI major mismatch names both versions")
    func wrongABI() throws {
        let directory = try TestSupport.temporaryDirectory()
        let path = try TestSupport.compileFixture(["WRONG_ABI"], into: directory, name: "libwrongabi.so")
        let error = #expect(throws: PluginLoadError.self) { try PluginLoader.load(path: path) }
        #expect(error?.reason == .abiMismatch(pluginMajor: 2, pluginMinor: 3, hostMajor: 1, hostMinor: 1))
        #expect(error?.description.contains("ABI 2.3") == true)
        #expect(error?.description.contains("ABI 1.1") == true)
    }

    @Test("a descriptor smaller than ABI 1 needs is refused before any field is read")
    func smallDescriptor() throws {
        let directory = try TestSupport.temporaryDirectory()
        let path = try TestSupport.compileFixture(["SMALL_DESCRIPTOR"], into: directory, name: "libsmall.so")
        let error = #expect(throws: PluginLoadError.self) { try PluginLoader.load(path: path) }
        #expect(error?.reason == .descriptorTooSmall(size: 16, minimum: 128))
    }

    @Test("a name two files answer to is refused, naming both")
    func duplicateNames() throws {
        let first = try TestSupport.temporaryDirectory()
        let second = try TestSupport.temporaryDirectory()
        _ = try TestSupport.compileFixture(["NAME=\"twin\""], into: first, name: "libtwin.so")
        _ = try TestSupport.compileFixture(["NAME=\"twin\""], into: second, name: "libFerryTwin.so")
        let catalog = PluginCatalog(directories: [first, second])
        let error = #expect(throws: PluginLoadError.self) { try catalog.resolve("twin") }
        #expect(error?.description.contains("\(first)/libtwin.so") == true)
        #expect(error?.description.contains("\(second)/libFerryTwin.so") == true)
        // Listing opens both, and refuses the name the same way.
        let listed = PluginCatalog.scanning(directories: [first, second])
        #expect(listed.plugins["twin"] == nil)
        #expect(listed.failures.count == 1)
    }

    @Test("a plugin is found by its file name; a file whose plugin has another name is refused")
    func fileNames() throws {
        #expect(PluginCatalog.fileNames(for: "regex_filter") == ["libregex_filter.so", "libRegexFilter.so", "libFerryRegexFilter.so"])
        #expect(PluginCatalog.fileNames(for: "my-source") == ["libmy-source.so", "libMySource.so", "libFerryMySource.so"])
        let directory = try TestSupport.temporaryDirectory()
        _ = try TestSupport.compileFixture(["NAME=\"alias\""], into: directory, name: "libother.so")
        let catalog = PluginCatalog(directories: [directory])
        let misnamed = #expect(throws: PluginLoadError.self) { try catalog.resolve("other") }
        #expect(misnamed?.reason == .misnamed(declared: "alias"))
        #expect(misnamed?.description.contains("declares plugin 'alias', but a pipeline naming 'alias' opens only libalias.so, libAlias.so or libFerryAlias.so") == true)
        let unknown = #expect(throws: PluginLoadError.self) { try catalog.resolve("alias") }
        #expect(unknown?.description.contains("looked for libalias.so, libAlias.so, libFerryAlias.so (there: libother.so)") == true)
        #expect(PluginCatalog.scanning(directories: [directory]).failures.first?.reason == .misnamed(declared: "alias"))
    }

    @Test("a plugin file writable by others is refused")
    func worldWritableFile() throws {
        let directory = try TestSupport.temporaryDirectory()
        let path = "\(directory)/libgen.so"
        try FileManager.default.copyItem(atPath: TestSupport.product("libFerryGenerate.so"), toPath: path)
        chmod(path, 0o666)
        let error = #expect(throws: PluginLoadError.self) { try PluginLoader.load(path: path, trust: .strict) }
        #expect(error?.description.contains("writable by others") == true)
    }

    @Test("a plugin directory writable by others is refused")
    func worldWritableDirectory() throws {
        let directory = try TestSupport.temporaryDirectory()
        let path = "\(directory)/libgen.so"
        try FileManager.default.copyItem(atPath: TestSupport.product("libFerryGenerate.so"), toPath: path)
        chmod(directory, 0o777)
        let error = #expect(throws: PluginLoadError.self) { try PluginLoader.load(path: path, trust: .strict) }
        #expect(error?.description.contains("folder \(directory) is writable by others") == true)
    }

    @Test("open() failing reports the plugin's own message, with the password masked")
    func failingOpen() throws {
        let directory = try TestSupport.temporaryDirectory()
        _ = try TestSupport.compileFixture(["FAILING_OPEN", "NAME=\"failing\""], into: directory, name: "libfailing.so")
        let plugins = try TestSupport.pluginDirectory(["FerryGenerate", "FerryBlackhole"])
        try FileManager.default.copyItem(atPath: "\(directory)/libfailing.so", toPath: "\(plugins)/libfailing.so")
        let plan = try TestSupport.plan(
            """
            source: {plugin: generate, config: {count: 10}}
            transforms: [{plugin: failing}]
            sink: {plugin: blackhole}
            """, plugins: plugins)
        let runner = PipelineRunner(plan: plan, store: MemoryStateStore(), deadLetterPath: "\(plugins)/dl.jsonl", logger: TestSupport.logger)
        let report = runner.run()
        let message = try #require(report.failureMessage)
        #expect(message.contains("plugin 'failing'"))
        #expect(message.contains("open failed"))
        #expect(message.contains("password rejected"))
        #expect(!message.contains("hunter2"))
        #expect(report.statistics.read == 0)
    }

    @Test("a missing plugin name lists what was found")
    func unknownName() throws {
        let plugins = try TestSupport.pluginDirectory(["FerryGenerate"])
        let catalog = PluginCatalog(directories: [plugins])
        let error = #expect(throws: PluginLoadError.self) { try catalog.resolve("postgres") }
        #expect(error?.description.contains("no plugin named 'postgres'") == true)
        #expect(error?.description.contains("looked for libpostgres.so, libPostgres.so, libFerryPostgres.so (there: libFerryGenerate.so)") == true)
    }
}
