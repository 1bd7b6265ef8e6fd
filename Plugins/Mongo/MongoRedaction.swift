/// Keeps a connection string's password out of every message the plugin
/// emits: libmongoc errors can echo the URI, and so could our own messages.
struct MongoRedaction: Sendable {
    /// The password as written in the URI and percent-decoded; either may leak.
    let secrets: [String]

    init(uri: String) {
        var secrets: [String] = []
        if let scheme = uri.range(of: "://") {
            let rest = uri[scheme.upperBound...]
            let authority = rest[..<(rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex)]
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                let password = String(authority[authority.index(after: colon)..<at])
                if !password.isEmpty {
                    secrets.append(password)
                    let decoded = password.removingPercentEncodingIfPossible
                    if decoded != password { secrets.append(decoded) }
                }
            }
        }
        self.secrets = secrets
    }

    /// The text with every occurrence of the password replaced by `***`.
    func callAsFunction(_ text: String) -> String {
        var text = text
        for secret in secrets where text.contains(secret) {
            text = text.replacing(secret, with: "***")
        }
        return text
    }
}

extension String {
    /// `%XX` escapes decoded (Foundation-free); the original when malformed.
    var removingPercentEncodingIfPossible: String {
        guard contains("%") else { return self }
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                    let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
                else { return self }
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
