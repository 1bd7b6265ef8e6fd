import FerryPostgresStore

/// The state store's DSN parser (`PostgresDSN(parsing:)`), URI and key=value
/// forms. A DSN it accepts has a usable port and a known sslmode, and its
/// `description` (what goes into log lines) does not depend on the password.
func fuzzPostgresDSN(_ data: [UInt8]) throws {
    guard data.count <= 4096 else { return }
    let text = String(decoding: data, as: UTF8.self)
    _ = PostgresDSN.looksLikeDSN(text)
    guard let dsn = try? PostgresDSN(parsing: text) else { return }
    try fuzzRequire((1...65535).contains(dsn.port), "postgres-dsn", "'\(text)' is accepted with port \(dsn.port)")
    try fuzzRequire(
        ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"].contains(dsn.sslmode), "postgres-dsn",
        "'\(text)' is accepted with sslmode '\(dsn.sslmode)'")
    if dsn.password != nil {
        var other = dsn
        other.password = "\u{1}another password"
        try fuzzRequire(other.description == dsn.description, "postgres-dsn", "the description of '\(text)' shows its password")
    }
}
