import Foundation

/// Expands `${VAR}`, `${VAR:-default}` and `${file:PATH}` in config scalars,
/// so secrets come from the environment or mounted files, never the YAML.
public struct Interpolation: Sendable {
    public var environment: [String: String]
    /// Extra variables (e.g. PIPELINE_DIR) that win over the environment.
    public var builtins: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, builtins: [String: String] = [:]) {
        self.environment = environment
        self.builtins = builtins
    }

    /// Expands one string; `$$` stands for a literal `$`.
    public func expand(_ text: String) throws(InterpolationError) -> String {
        guard text.contains("$") else { return text }
        var result = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            let next = text.index(after: index)
            if character == "$", next < text.endIndex, text[next] == "$" {
                result.append("$")
                index = text.index(after: next)
            } else if character == "$", next < text.endIndex, text[next] == "{" {
                guard let close = text[next...].firstIndex(of: "}") else {
                    throw InterpolationError(message: "unterminated '${' in '\(text)'")
                }
                let expression = String(text[text.index(after: next)..<close])
                result += try resolve(expression)
                index = text.index(after: close)
            } else {
                result.append(character)
                index = next
            }
        }
        return result
    }

    private func resolve(_ expression: String) throws(InterpolationError) -> String {
        if expression.hasPrefix("file:") {
            let path = String(expression.dropFirst(5))
            let data = try Self.readSecret(path)
            guard let text = String(data: data, encoding: .utf8) else {
                throw InterpolationError(message: "secret file '\(path)' is not UTF-8 text")
            }
            let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
            SecretMasking.registerSubstituted(value)
            return value
        }
        var name = expression
        var fallback: String?
        if let range = expression.range(of: ":-") {
            name = String(expression[..<range.lowerBound])
            fallback = String(expression[range.upperBound...])
        }
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
            throw InterpolationError(message: "'${\(expression)}' is not a variable name")
        }
        if let value = builtins[name] { return value }
        if let value = environment[name] {
            // Only variables named as secrets: a pod name or a folder from the
            // environment is what logs and messages need to show.
            if SecretMasking.namesSecret(name) { SecretMasking.registerSubstituted(value) }
            return value
        }
        if let fallback { return fallback }
        throw InterpolationError(message: "environment variable \(name) is not set")
    }
}

extension Interpolation {
    /// No secret is this long; a longer read is a wrong path (a log, a device).
    public static let maxSecretBytes = 64 << 10

    /// A secret file's bytes: a regular file (a mounted Secret's symlink is
    /// followed), read up to the bound, so `/dev/zero` or a FIFO cannot hang a load.
    static func readSecret(_ path: String) throws(InterpolationError) -> Data {
        var info = stat()
        guard stat(path, &info) == 0, let handle = FileHandle(forReadingAtPath: path) else {
            throw InterpolationError(message: "cannot read secret file '\(path)'")
        }
        defer { try? handle.close() }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw InterpolationError(message: "secret file '\(path)' is not a regular file")
        }
        // /proc files report size 0, so the bound is on what is read, not on st_size.
        let data = (try? handle.read(upToCount: maxSecretBytes + 1)) ?? Data()
        guard data.count <= maxSecretBytes else {
            throw InterpolationError(message: "secret file '\(path)' is larger than \(maxSecretBytes) bytes")
        }
        return data
    }
}

public struct InterpolationError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

extension ConfigNode {
    /// The node with every scalar expanded; errors carry the scalar's line.
    public func interpolated(_ interpolation: Interpolation, file: String, path: String) throws(ConfigError) -> ConfigNode {
        switch self {
        case .scalar(let text, let quoted, let line):
            do {
                return .scalar(try interpolation.expand(text), quoted: quoted, line: line)
            } catch {
                throw ConfigError(file: file, line: line, field: path, error.message)
            }
        case .mapping(let entries, let line):
            var expanded: [(key: String, keyLine: Int, value: ConfigNode)] = []
            for entry in entries {
                let childPath = path.isEmpty ? entry.key : "\(path).\(entry.key)"
                expanded.append((entry.key, entry.keyLine, try entry.value.interpolated(interpolation, file: file, path: childPath)))
            }
            return .mapping(expanded, line: line)
        case .sequence(let items, let line):
            var expanded: [ConfigNode] = []
            for (index, item) in items.enumerated() {
                expanded.append(try item.interpolated(interpolation, file: file, path: "\(path)[\(index)]"))
            }
            return .sequence(expanded, line: line)
        }
    }
}
