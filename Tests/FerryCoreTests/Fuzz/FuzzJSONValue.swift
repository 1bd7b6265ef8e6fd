import FerryPluginKit

/// `JSONValue.parse`, which reads plugin configs and the config schema a
/// plugin hands the host. A value it accepts renders (`jsonText`) to text that
/// parses back to the same value; numbers compare by value, since an integral
/// double may come back as an integer.
func fuzzJSONValue(_ data: [UInt8]) throws {
    guard let text = String(validating: data, as: UTF8.self), let value = try? JSONValue.parse(text) else { return }
    let rendered = value.jsonText
    let again: JSONValue
    do {
        again = try JSONValue.parse(rendered)
    } catch {
        throw FuzzInvariantFailure(target: "json-value", message: "\(fuzzEscaped(data)) renders as \(rendered), which does not parse: \(error)")
    }
    try fuzzRequire(sameJSON(value, again), "json-value", "\(fuzzEscaped(data)) renders as \(rendered), which parses to \(again.jsonText)")
}

private func sameJSON(_ a: JSONValue, _ b: JSONValue) -> Bool {
    switch (a, b) {
    case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy(sameJSON)
    case (.object(let x), .object(let y)):
        return x.count == y.count && x.allSatisfy { key, value in y[key].map { sameJSON(value, $0) } ?? false }
    case (.integer, _), (.number, _):
        guard let left = a.doubleValue, let right = b.doubleValue else { return false }
        if case .integer(let x) = a, case .integer(let y) = b { return x == y }
        return left == right
    default: return a == b
    }
}
