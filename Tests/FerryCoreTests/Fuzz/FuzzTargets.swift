/// Every parser of outside input that is fuzzed: the name of its corpus folder
/// (Tests/Fuzz/corpus/<name>/) and the body that checks one input.
///
/// A body returns normally for any input its parser accepts or refuses
/// correctly, and throws `FuzzInvariantFailure` when an invariant breaks; a
/// crash is a crash. The same bodies run under libFuzzer (scripts/fuzz.sh) and
/// over the committed corpus in the test suite (FuzzCorpusTests), so they use
/// only public API and never touch the network or the environment.
enum FuzzTargets {
    static let all: [(name: String, body: @Sendable ([UInt8]) throws -> Void)] = [
        ("bson-batch", fuzzBSONBatch),
        ("jsonl", fuzzJSONLines),
        ("json-value", fuzzJSONValue),
        ("pipeline-yaml", fuzzPipelineYAML),
        ("cron", fuzzCron),
        ("postgres-dsn", fuzzPostgresDSN),
        ("daemon-config", fuzzDaemonConfig),
    ]

    static func body(named name: String) -> (@Sendable ([UInt8]) throws -> Void)? {
        all.first { $0.name == name }?.body
    }
}

/// An invariant of a parser that one input broke.
struct FuzzInvariantFailure: Error, CustomStringConvertible {
    let target: String
    let message: String
    var description: String { "\(target): \(message)" }
}

func fuzzRequire(_ condition: Bool, _ target: String, _ message: @autoclosure () -> String) throws {
    if !condition { throw FuzzInvariantFailure(target: target, message: message()) }
}

/// Bytes shown in a failure message: printable ASCII as is, the rest as \xNN.
func fuzzEscaped<Bytes: Sequence>(_ bytes: Bytes, limit: Int = 200) -> String where Bytes.Element == UInt8 {
    var out = ""
    for (index, byte) in bytes.enumerated() {
        if index == limit { out += "…"; break }
        if byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "\\") {
            out.unicodeScalars.append(Unicode.Scalar(byte))
        } else {
            out += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
        }
    }
    return out
}
