/// Checks an `Authorization: Bearer …` header against the configured token
/// in time that does not depend on where they differ. The scheme's name is
/// case-insensitive (RFC 7235), so `bearer` and `BEARER` work too.
struct BearerToken: Sendable {
    let expected: [UInt8]?

    init(_ token: String?) { expected = token.map { Array($0.utf8) } }

    var isConfigured: Bool { expected != nil }

    func accepts(_ header: String?) -> Bool {
        guard let expected, let header else { return false }
        let bytes = Array(header.utf8)
        let scheme = Array("bearer".utf8)
        guard bytes.count > scheme.count, bytes[scheme.count] == UInt8(ascii: " "),
            zip(bytes, scheme).allSatisfy({ $0 | 0x20 == $1 })
        else { return false }
        // One or more spaces between the scheme and the token.
        let given = Array(bytes.dropFirst(scheme.count).drop { $0 == UInt8(ascii: " ") })
        var difference = UInt8(given.count == expected.count ? 0 : 1)
        for index in 0..<max(given.count, expected.count) {
            let a = index < given.count ? given[index] : 0
            let b = index < expected.count ? expected[index] : 0
            difference |= a ^ b
        }
        return difference == 0
    }
}
