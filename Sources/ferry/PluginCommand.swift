import ArgumentParser

/// `ferry plugin …`: the plugin author's tools.
struct PluginCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugin",
        abstract: "Tools for plugin authors: check a built plugin against the ABI contract, or start a new one.",
        subcommands: [PluginTestCommand.self, PluginNewCommand.self])
}
