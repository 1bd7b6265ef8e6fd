import FerryPluginKit

/// One stage of a pipeline: which plugin, with which config.
public struct StageConfig: Sendable {
    /// A plugin name from the plugins directory, or a path to a `.so`.
    public var plugin: String
    public var config: ConfigNode?
    /// Where the stage is declared, for messages.
    public var line: Int
    /// "source", "transforms[0]", "sink".
    public var role: String

    public init(plugin: String, config: ConfigNode?, line: Int, role: String) {
        self.plugin = plugin
        self.config = config
        self.line = line
        self.role = role
    }

    /// The config as the JSON text handed to the plugin's `open`.
    public var configJSON: String { (config?.json ?? .object([:])).jsonText }
}

/// Where rejected records go, and how many a run may have before it fails.
public struct DeadLetterConfig: Sendable {
    /// A JSON Lines file; nil means `<state dir>/<pipeline>.dead-letters.jsonl`.
    public var path: String?
    /// Or a sink plugin (a PostgreSQL table, a MongoDB collection, …) instead of the file.
    public var sink: StageConfig?
    /// The error budget: the run fails once more records than this are rejected.
    public var maxRecords: Int
    /// The budget as a share of the records read (0…1), checked once 100 have been
    /// read (fewer make a ratio noise) and at the end of the run.
    public var maxRatio: Double?

    public init(path: String? = nil, maxRecords: Int = 1000, maxRatio: Double? = nil) {
        self.path = path
        self.maxRecords = maxRecords
        self.maxRatio = maxRatio
    }

    /// Why the budget is exceeded after `rejected` of `read` records, or nil.
    public func exceeded(rejected: Int, read: Int, final: Bool) -> String? {
        if rejected > maxRecords {
            return "\(rejected) records rejected, dead_letters.max is \(maxRecords)"
        }
        if let maxRatio, read > 0, read >= 100 || final, Double(rejected) > maxRatio * Double(read) {
            let share = (Double(rejected) / Double(read) * 1000).rounded() / 10
            return "\(rejected) of \(read) records rejected (\(share)%), dead_letters.max_ratio is \(maxRatio)"
        }
        return nil
    }
}

/// How transient failures (a dropped connection) are retried.
public struct RetryPolicy: Sendable {
    public var attempts: Int
    public var initialDelayMilliseconds: Int
    public var maxDelayMilliseconds: Int

    public init(attempts: Int = 5, initialDelayMilliseconds: Int = 200, maxDelayMilliseconds: Int = 10_000) {
        self.attempts = attempts
        self.initialDelayMilliseconds = initialDelayMilliseconds
        self.maxDelayMilliseconds = maxDelayMilliseconds
    }

    /// Exponential backoff with "equal jitter" for the given (1-based) retry: a
    /// uniform wait between half and all of the capped delay, so retries from
    /// several workers spread out but never come back at once.
    public func delay(forRetry retry: Int) -> Double {
        let exponential = Double(initialDelayMilliseconds) * Double(1 << min(retry - 1, 20))
        let capped = min(exponential, Double(maxDelayMilliseconds))
        return Double.random(in: capped / 2...capped) / 1000
    }
}

/// A pipeline file, parsed and checked: source → transforms → sink.
/// What a run does about records its source no longer has.
public enum DeletePolicy: String, Sendable, CaseIterable {
    /// Nothing: an incremental run only sees what its cursor shows.
    case ignore
    /// After each completed run, `ferry repair` with the pipeline's `max_deletes`.
    case propagate

    public static let defaultMaxDeletes = 100
}

public struct PipelineConfig: Sendable {
    public var name: String
    public var file: String
    public var source: StageConfig
    public var transforms: [StageConfig]
    public var sink: StageConfig
    public var batchSize: Int
    public var workers: Int
    public var mode: SyncMode
    public var schedule: String?
    public var deadLetters: DeadLetterConfig
    public var retry: RetryPolicy
    /// Most batches between read and commit at once (the backpressure bound).
    public var maxInFlight: Int?
    /// How often the checkpoint is written while a run goes on (it is always written at the end).
    public var checkpointIntervalMilliseconds: Int
    /// Sources that can read shards may be read by this many lanes at once,
    /// each a shard with its own checkpoint (see `LanedRun`).
    public var readLanes: Int
    /// Where `read_lanes` is set, for messages about it.
    public var readLanesLine: Int?
    /// The `tests:` block, kept for `ferry test`.
    public var tests: ConfigNode?
    /// `deletes: propagate`: after a completed run, repair the target (write
    /// what differs, delete extras up to `maxDeletes`).
    public var deletes: DeletePolicy = .ignore
    public var maxDeletes = DeletePolicy.defaultMaxDeletes
    /// Where `deletes` is set, for messages about it.
    public var deletesLine: Int?

    public static let defaultBatchSize = 100

    /// The largest value each numeric setting takes. Checked where the file
    /// (or the command line) is parsed, so a value that cannot be honoured
    /// never reaches a run: the ABI carries a batch size as 32 bits, and a
    /// thousand workers on one host is a typo, not a plan.
    public enum Bounds {
        public static let batchSize = 1_000_000
        public static let workers = 256
        public static let readLanes = 256
        public static let maxInFlight = 10_000
        public static let checkpointIntervalMilliseconds = 86_400_000
        public static let retryAttempts = 100
        public static let retryDelayMilliseconds = 3_600_000
        public static let deadLetters = Int(Int32.max)
        public static let maxDeletes = Int(Int32.max)
    }

    public init(
        name: String, file: String, source: StageConfig, transforms: [StageConfig] = [], sink: StageConfig,
        batchSize: Int = PipelineConfig.defaultBatchSize, workers: Int = 1, mode: SyncMode = .incremental,
        schedule: String? = nil, deadLetters: DeadLetterConfig = .init(), retry: RetryPolicy = .init(),
        maxInFlight: Int? = nil, checkpointIntervalMilliseconds: Int = 1000, readLanes: Int = 1, readLanesLine: Int? = nil,
        tests: ConfigNode? = nil
    ) {
        self.name = name
        self.file = file
        self.source = source
        self.transforms = transforms
        self.sink = sink
        self.batchSize = batchSize
        self.workers = workers
        self.mode = mode
        self.schedule = schedule
        self.deadLetters = deadLetters
        self.retry = retry
        self.maxInFlight = maxInFlight
        self.checkpointIntervalMilliseconds = checkpointIntervalMilliseconds
        self.readLanes = readLanes
        self.readLanesLine = readLanesLine
        self.tests = tests
    }

    public var stages: [StageConfig] { [source] + transforms + [sink] }
}

extension SyncMode {
    public init?(name: String) {
        switch name {
        case "full": self = .full
        case "incremental": self = .incremental
        case "missing-only", "missing_only": self = .missingOnly
        default: return nil
        }
    }

    public var name: String {
        switch self {
        case .full: "full"
        case .incremental: "incremental"
        case .missingOnly: "missing-only"
        }
    }
}
