import Foundation

/// Where a pipeline keeps its checkpoints and dead letters by default.
public struct PipelineLocations: Sendable {
    public var stateDirectory: String
    public var deadLetterPath: String

    /// `--state-dir`, else `FERRY_STATE_DIR`, else `.ferry/` beside the pipeline file.
    public init(pipeline: PipelineConfig, stateDirectory: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) {
        let directory =
            stateDirectory ?? environment["FERRY_STATE_DIR"]
            ?? URL(fileURLWithPath: pipeline.file).deletingLastPathComponent().appendingPathComponent(".ferry").path
        self.stateDirectory = directory
        deadLetterPath = pipeline.deadLetters.path ?? URL(fileURLWithPath: directory).appendingPathComponent("\(pipeline.name).dead-letters.jsonl").path
    }
}
