import ArgumentParser
import FerryCore
import Foundation

struct StateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state", abstract: "Show or reset a pipeline's checkpoint.",
        subcommands: [Show.self, Reset.self])

    struct Location: ParsableArguments {
        @Argument(help: "The pipeline file.")
        var pipeline: String

        @Option(help: ArgumentHelp("Checkpoint directory (default: $FERRY_STATE_DIR, else .ferry/ beside the pipeline).", valueName: "DIR"))
        var stateDir: String?

        @Option(help: ArgumentHelp("The shard, as i/N.", valueName: "i/N"))
        var shard: String?

        func resolve() throws -> (PipelineConfig, FileStateStore, ShardSpec?) {
            let config: PipelineConfig
            do {
                config = try PipelineLoader().load(path: pipeline)
            } catch {
                for problem in error.errors { printError("error: \(problem)") }
                throw FerryExit.invalid
            }
            var spec: ShardSpec?
            if let shard {
                guard let parsed = ShardSpec(parsing: shard) else { throw ValidationError("--shard must be i/N with 0 ≤ i < N") }
                spec = parsed
            }
            let locations = PipelineLocations(pipeline: config, stateDirectory: stateDir)
            return (config, FileStateStore(directory: locations.stateDirectory), spec)
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the saved checkpoint as JSON.")
        @OptionGroup var location: Location

        func run() throws {
            let (config, store, shard) = try location.resolve()
            let file = store.location(pipeline: config.name, shard: shard ?? .whole)
            guard let data = FileManager.default.contents(atPath: file) else {
                print("no checkpoint for '\(config.name)' (\(file)): the next run starts from the beginning")
                return
            }
            print(String(decoding: data, as: UTF8.self))
        }
    }

    struct Reset: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete the checkpoint so the next run starts from the beginning.")
        @OptionGroup var location: Location

        func run() throws {
            let (config, store, shard) = try location.resolve()
            try store.reset(pipeline: config.name, shard: shard)
            print("reset '\(config.name)'\(shard.map { " shard \($0)" } ?? " (all shards)") in \(store.directory)")
        }
    }
}
