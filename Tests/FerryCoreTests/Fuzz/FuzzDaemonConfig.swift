import FerryCore
import FerryServer

/// The daemon file parser (`DaemonConfig.parse(yaml:file:environment:)`). The
/// numbers of an accepted file are usable: a port, a positive run history,
/// positive timeouts, and pipeline paths are absolute. `${file:…}` and `dir:`
/// would read the fuzzer's choice of file or folder, so such inputs stop after
/// the YAML is parsed.
func fuzzDaemonConfig(_ data: [UInt8]) throws {
    guard let text = String(validating: data, as: UTF8.self) else { return }
    guard let node = try? ConfigNode.parse(yaml: text, file: "/fuzz/ferry.yaml") else { return }
    if readsFiles(node) { return }
    guard let config = try? DaemonConfig.parse(yaml: text, file: "/fuzz/ferry.yaml", environment: ["FERRY_STATE_DSN": "host=db dbname=ferry"])
    else { return }
    try fuzzRequire((0...65535).contains(config.port), "daemon-config", "accepted port \(config.port)")
    try fuzzRequire(config.runHistory >= 1, "daemon-config", "accepted run_history \(config.runHistory)")
    try fuzzRequire(
        config.gracePeriodSeconds >= 1 && config.readinessTimeoutSeconds > 0, "daemon-config",
        "accepted grace_period_seconds \(config.gracePeriodSeconds), readiness_timeout_seconds \(config.readinessTimeoutSeconds)")
    for pipeline in config.pipelines {
        try fuzzRequire(pipeline.file.hasPrefix("/"), "daemon-config", "pipeline file '\(pipeline.file)' is not absolute")
    }
}

private func readsFiles(_ node: ConfigNode) -> Bool {
    switch node {
    case .scalar(let text, _, _): return text.contains("file:")
    case .mapping(let entries, _): return entries.contains { $0.key == "dir" || readsFiles($0.value) }
    case .sequence(let items, _): return items.contains(where: readsFiles)
    }
}
