import Foundation

/// The lines a run in a child process sends its daemon (docs/run-protocol.md):
/// one JSON object per line, each with the protocol version `v` and a `type`.
/// Unknown types and fields are ignored by the reader, so the child may grow.
public struct RunMessage: Codable, Sendable, Equatable {
    public static let version = 1

    public enum Kind: String, Codable, Sendable {
        /// First line: the child is up and names itself.
        case hello
        /// The counters so far; sent a few times a second while the run goes.
        case progress
        /// A log record of the run, for the daemon's log.
        case log
        /// Written by the fatal-signal handler: which plugin, which call.
        case crash
        /// The last line: the run's report.
        case report
    }

    public var v = RunMessage.version
    public var type: Kind
    public var pid: Int32?
    public var run: String?
    public var statistics: RunStatistics?
    public var level: String?
    public var message: String?
    public var metadata: [String: String]?
    public var signal: Int32?
    public var signalName: String?
    public var plugin: String?
    public var path: String?
    public var stage: String?
    public var call: String?
    public var report: Report?

    public init(type: Kind) { self.type = type }

    /// A run report as the protocol carries it.
    public struct Report: Codable, Sendable, Equatable {
        public var pipeline: String
        public var outcome: String
        public var failure: RunFailure?
        public var statistics: RunStatistics
        public var dryRun: Bool
        public var checkpoint: Checkpoint?
        public var checkpointLocation: String?
        public var deadLetterPath: String?
        public var sample: [String]
        public var sinkPreviewed: Bool
        public var propagation: DeletePropagation?

        public init(_ report: RunReport) {
            pipeline = report.pipeline
            outcome = report.outcome.name
            failure = report.failure
            statistics = report.statistics
            dryRun = report.dryRun
            checkpoint = report.checkpoint
            checkpointLocation = report.checkpointLocation
            deadLetterPath = report.deadLetterPath
            sample = report.sample
            sinkPreviewed = report.sinkPreviewed
            propagation = report.propagation
        }

        public var runReport: RunReport {
            let outcome: RunOutcome =
                switch self.outcome {
                case "completed": .completed
                case "cancelled": .cancelled
                default: .failed(failure ?? RunFailure(.internal, "the run ended '\(self.outcome)' without saying why"))
                }
            var report = RunReport(
                pipeline: pipeline, outcome: outcome, statistics: statistics, dryRun: dryRun, checkpoint: checkpoint,
                checkpointLocation: checkpointLocation, deadLetterPath: deadLetterPath, sample: sample, sinkPreviewed: sinkPreviewed)
            report.propagation = propagation
            return report
        }
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    /// One line, newline included.
    public func line() -> Data {
        var data = (try? Self.encoder.encode(self)) ?? Data(#"{"v":1,"type":"log","level":"error","message":"unencodable message"}"#.utf8)
        data.append(0x0A)
        return data
    }

    /// Nil for a line that is not a message of a version this reader knows.
    public static func parse(_ line: Data) -> RunMessage? {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        guard let message = try? decoder.decode(RunMessage.self, from: line), message.v == version else { return nil }
        return message
    }
}
