import ArgumentParser
import FerryCore
import FerryPostgresStore
import Foundation

struct StateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state", abstract: "Show or reset a pipeline's checkpoint.",
        subcommands: [Show.self, Reset.self])

    struct Location: ParsableArguments {
        @Argument(help: "The pipeline file.")
        var pipeline: String

        @OptionGroup var state: StateOptions

        @Option(help: ArgumentHelp("The shard, as i/N.", valueName: "i/N"))
        var shard: String?

        func resolve() throws -> (PipelineConfig, any StateStore, ShardSpec?) {
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
            let locations = PipelineLocations(pipeline: config, stateDirectory: state.stateDir)
            do {
                let store = try StateStores.make(setting: state.storeSetting, directory: locations.stateDirectory)
                return (config, store, spec)
            } catch {
                printError("error: \(error)")
                throw FerryExit.invalid
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the saved checkpoint as JSON.")
        @OptionGroup var location: Location

        func run() throws {
            let (config, store, shard) = try location.resolve()
            let place = store.location(pipeline: config.name, shard: shard ?? .whole)
            guard let text = try store.rawCheckpoint(pipeline: config.name, shard: shard ?? .whole) else {
                print("no checkpoint for '\(config.name)' (\(place)): the next run starts from the beginning")
                let others = try store.savedShards(pipeline: config.name).filter { $0 != (shard ?? .whole) }
                if !others.isEmpty { print("saved shards: \(others.map(\.description).joined(separator: ", ")) (show one with --shard i/N)") }
                return
            }
            print(text)
        }
    }

    struct Reset: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete the checkpoint so the next run starts from the beginning.")
        @OptionGroup var location: Location

        func run() throws {
            let (config, store, shard) = try location.resolve()
            // A run in progress would save its checkpoint again right after the
            // reset, so the reset must wait for it (or be refused).
            var locks: [any RunLock] = []
            defer { locks.forEach { $0.release() } }
            let shards = try shard.map { [$0] } ?? Array(Set(store.savedShards(pipeline: config.name) + [.whole]))
            for each in shards {
                do {
                    if let lock = try store.lockRun(pipeline: config.name, shard: each) { locks.append(lock) }
                } catch {
                    printError("error: cannot reset '\(config.name)': \(error)")
                    throw FerryExit.runFailed
                }
            }
            try store.reset(pipeline: config.name, shard: shard)
            let place = shard.map { store.location(pipeline: config.name, shard: $0) } ?? store.summary
            print("reset '\(config.name)'\(shard.map { " shard \($0)" } ?? " (all shards)") in \(place)")
        }
    }
}
