/// Checks an `Authorization: Bearer …` header against the configured token
/// in time that does not depend on where they differ.
struct BearerToken: Sendable {
    let expected: [UInt8]?

    init(_ token: String?) { expected = token.map { Array($0.utf8) } }

    var isConfigured: Bool { expected != nil }

    func accepts(_ header: String?) -> Bool {
        guard let expected, let header, header.hasPrefix("Bearer ") else { return false }
        let given = Array(header.utf8.dropFirst(7))
        var difference = UInt8(given.count == expected.count ? 0 : 1)
        for index in 0..<max(given.count, expected.count) {
            let a = index < given.count ? given[index] : 0
            let b = index < expected.count ? expected[index] : 0
            difference |= a ^ b
        }
        return difference == 0
    }
}
