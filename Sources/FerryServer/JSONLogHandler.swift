import FerryCore
import FerryPluginKit
import Foundation
import Logging

/// One JSON object per line on stderr: what log collectors in Kubernetes parse.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    private static let lock = NSLock()

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let level = event.level, message = event.message, explicit = event.metadata
        var fields: [String: JSONValue] = [
            "ts": .string(Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(Date())),
            "level": .string(level.rawValue), "logger": .string(label), "msg": .string(message.description),
        ]
        for (key, value) in metadata.merging(explicit ?? [:], uniquingKeysWith: { $1 }) where fields[key] == nil {
            fields[key] = .string(SecretMasking.mask("\(value)"))
        }
        let text = JSONValue.object(fields).jsonText + "\n"
        Self.lock.withLock { FileHandle.standardError.write(Data(text.utf8)) }
    }
}
