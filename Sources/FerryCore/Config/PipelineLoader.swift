import Foundation
import FerryPluginKit

/// Reads a pipeline YAML file into a `PipelineConfig`, reporting every
/// problem with its file, line and field.
public struct PipelineLoader: Sendable {
    public var interpolation: Interpolation

    public init(interpolation: Interpolation = Interpolation()) {
        self.interpolation = interpolation
    }

    /// No pipeline is this long; a bigger file is a mistake (or /dev/zero).
    public static let maxFileBytes = 4 << 20

    public func load(path: String) throws(ConfigErrors) -> PipelineConfig {
        var info = stat()
        if stat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFREG else {
                throw ConfigErrors(errors: [ConfigError(file: path, "not a regular file (a pipeline is a YAML file)")])
            }
            guard info.st_size <= Self.maxFileBytes else {
                throw ConfigErrors(errors: [ConfigError(file: path, "the pipeline file is \(info.st_size) bytes; at most \(Self.maxFileBytes) are read")])
            }
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigErrors(errors: [ConfigError(file: path, "cannot read the pipeline file")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigErrors(errors: [ConfigError(file: path, "the pipeline file is not UTF-8")])
        }
        return try parse(yaml: text, file: path)
    }

    public func parse(yaml: String, file: String) throws(ConfigErrors) -> PipelineConfig {
        let root: ConfigNode
        do {
            guard let parsed = try ConfigNode.parse(yaml: yaml, file: file) else {
                throw ConfigErrors(errors: [ConfigError(file: file, "the pipeline file is empty")])
            }
            root = parsed
        } catch let error as ConfigError {
            throw ConfigErrors(errors: [error])
        } catch let error as ConfigErrors {
            throw error
        } catch {
            throw ConfigErrors(errors: [ConfigError(file: file, "\(error)")])
        }
        guard case .mapping = root else {
            throw ConfigErrors(errors: [ConfigError(file: file, line: root.line, "a pipeline is a mapping with source, transforms and sink")])
        }
        let parse = PipelineParse(root: root, file: file, interpolation: interpolation)
        parse.rejectUnknown(root, PipelineKeys.topLevel)
        var draft = PipelineDraft()
        for row in PipelineKeys.rows { row.read(&draft, parse) }
        guard parse.errors.isEmpty, let config = draft.config(file: file) else { throw ConfigErrors(errors: parse.errors) }
        return config
    }

    /// The pipeline file's key tables: the top level, then `dead_letters`,
    /// `retry` and a stage's keys.
    public static var keyTables: [ConfigKeyTable] {
        [PipelineKeys.topLevel, PipelineKeys.deadLetters, PipelineKeys.retry, PipelineKeys.stage]
    }
}
