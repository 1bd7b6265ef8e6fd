import ArgumentParser

@main
struct Ferry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ferry",
        abstract: "A plugin-host ETL engine: batched, parallel pipelines from sources through transforms into sinks.",
        discussion: """
            Plugins are shared objects found in --plugins DIR, else $FERRY_PLUGIN_PATH, else beside the executable.

            Exit codes: 0 success; 1 the run failed; 2 invalid pipeline or plugin; \
            3 the run completed but dead-lettered records; 64 bad command line; 130 cancelled by SIGINT/SIGTERM (state saved); \
            128+N a plugin crashed with signal N (139 SIGSEGV, 134 SIGABRT), named on the line before the backtrace. \
            ferry diff and ferry repair: 1 the target differs (or was not fully repaired), 4 a plugin or system failed.
            """,
        version: "0.1.0",
        subcommands: [RunCommand.self, DiffCommand.self, RepairCommand.self, ValidateCommand.self, TestCommand.self, PluginsCommand.self, PluginCommand.self, StateCommand.self, ServeCommand.self])

    /// A run process the daemon started ahead of time gets its arguments from
    /// stdin instead of its command line (see `SpareRun`).
    static func main() async {
        await main(SpareRun.waitForArguments())
    }
}
