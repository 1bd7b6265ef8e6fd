extension MemoryStateStore {
    /// A scratch store holding copies of `saved`'s checkpoints for `pipeline`:
    /// a dry run starts where a real run would, and saves nowhere that lasts.
    public static func dryRun(copying saved: any StateStore, pipeline: String, sourcePlugin: String) -> MemoryStateStore {
        let scratch = MemoryStateStore()
        for shard in (try? saved.savedShards(pipeline: pipeline)) ?? [] {
            if let checkpoint = try? saved.load(pipeline: pipeline, shard: shard, sourcePlugin: sourcePlugin) {
                try? scratch.save(checkpoint)
            }
        }
        return scratch
    }
}
