import ArgumentParser
import FerryCore
import FerryPluginKit
import Foundation
import Logging

struct PluginsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugins", abstract: "List the plugins found, and the files that failed to load.")

    @OptionGroup var plugins: PluginOptions

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Option(help: ArgumentHelp(
        "Write a reference page per plugin, DIR/<name>.md, from its descriptor and config schema (kinds, options with types, defaults, required, allowed values, an example).",
        valueName: "DIR"))
    var markdown: String?

    func run() throws {
        let catalog = plugins.scanningCatalog()
        let loaded = catalog.plugins.values.sorted { $0.name < $1.name }
        if let markdown {
            do {
                try FileManager.default.createDirectory(atPath: markdown, withIntermediateDirectories: true)
                for plugin in loaded {
                    var page = PluginReferencePage(plugin: plugin)
                    page.exampleProblem = exampleProblem(page.example, catalog: catalog)
                    let path = (markdown as NSString).appendingPathComponent(page.fileName)
                    try page.markdown.write(toFile: path, atomically: true, encoding: .utf8)
                    print(path)
                }
            } catch {
                printError("error: cannot write the plugin pages into \(markdown): \(error.localizedDescription)")
                throw FerryExit.runFailed
            }
        } else if json {
            let entries: [JSONValue] = loaded.map { plugin in
                .object([
                    "name": .string(plugin.name), "version": .string(plugin.version), "description": .string(plugin.summary),
                    "kinds": .array(plugin.kindNames.map(JSONValue.string)), "abi": .string("\(plugin.abiMajor).\(plugin.abiMinor)"),
                    "path": .string(plugin.path),
                ])
            }
            let failures = catalog.failures.map { JSONValue.string($0.description) }
            print(JSONValue.object(["plugins": .array(entries), "failures": .array(failures)]).jsonText)
        } else {
            let rows = [["NAME", "VERSION", "KINDS", "ABI", "PATH"]]
                + loaded.map { [$0.name, $0.version, $0.kindNames.joined(separator: ","), "\($0.abiMajor).\($0.abiMinor)", $0.path] }
            let widths = (0..<5).map { column in rows.map { $0[column].count }.max() ?? 0 }
            for row in rows {
                print(row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  "))
            }
            if loaded.isEmpty { print("(no plugins in \(catalog.directories.joined(separator: ":")))") }
            for failure in catalog.failures { printError("error: \(failure)") }
        }
        if !catalog.failures.isEmpty { throw FerryExit.invalid }
    }

    /// What `ferry validate` would say about a page's example pipeline, or nil if it passes.
    private func exampleProblem(_ yaml: String, catalog: PluginCatalog) -> String? {
        let path = NSTemporaryDirectory() + "ferry-plugin-example-\(getpid()).yaml"
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            try yaml.write(toFile: path, atomically: true, encoding: .utf8)
            let plan = try PipelinePlan.resolve(try PipelineLoader().load(path: path), catalog: catalog)
            var quiet = Logger(label: "ferry.plugins.example")
            quiet.logLevel = .critical
            let problems = plan.openTransforms(logger: quiet)
            return problems.isEmpty ? nil : problems.map(Self.brief).joined(separator: "; ")
        } catch let error as ConfigErrors {
            return error.errors.map(Self.brief).joined(separator: "; ")
        } catch {
            return "\(error)"
        }
    }

    /// An error without the temporary file's name, which would change on every run.
    private static func brief(_ error: ConfigError) -> String {
        error.field.map { "\($0): \(error.message)" } ?? error.message
    }
}
