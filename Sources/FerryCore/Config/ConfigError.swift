/// A problem in a configuration file, with where it is: file, line and the
/// dotted path of the field.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var line: Int?
    public var field: String?
    public var message: String

    public init(file: String, line: Int? = nil, field: String? = nil, _ message: String) {
        self.file = file
        self.line = line
        self.field = field
        self.message = message
    }

    public var description: String {
        var location = file
        if let line { location += ":\(line)" }
        if let field, !field.isEmpty { return SecretMasking.mask("\(location): \(field): \(message)") }
        return SecretMasking.mask("\(location): \(message)")
    }
}

/// Several config problems, reported together so a user fixes them in one go.
public struct ConfigErrors: Error, CustomStringConvertible, Sendable {
    public var errors: [ConfigError]

    public init(errors: [ConfigError]) { self.errors = errors }
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
