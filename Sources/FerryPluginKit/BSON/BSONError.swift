/// A BSON buffer that does not hold what its lengths promise.
public struct BSONError: Error, CustomStringConvertible, Sendable {
    /// Byte offset in the buffer where the problem was found.
    public var offset: Int
    public var reason: String

    public init(offset: Int, _ reason: String) {
        self.offset = offset
        self.reason = reason
    }

    public var description: String { "invalid BSON at byte \(offset): \(reason)" }
}
