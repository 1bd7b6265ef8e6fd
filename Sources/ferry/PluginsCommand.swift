import ArgumentParser
import FerryCore
import FerryPluginKit
import Foundation

struct PluginsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugins", abstract: "List the plugins found, and the files that failed to load.")

    @OptionGroup var plugins: PluginOptions

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        let catalog = plugins.scanningCatalog()
        let loaded = catalog.plugins.values.sorted { $0.name < $1.name }
        if json {
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
}
