import FerryCore

/// The pipeline loader (`PipelineLoader.parse(yaml:file:)`), YAML to a
/// checked `PipelineConfig`. Beyond not crashing:
/// - what it builds is linear in the input: every node and every byte of
///   scalar text it holds is counted, and the total may not exceed a few
///   times the input's size, so an alias bomb ("billion laughs") must be
///   refused rather than expanded;
/// - an accepted pipeline has its stages, and positive sizes.
/// `${file:…}` would read a file of the fuzzer's choosing (/dev/zero never
/// ends), so such inputs stop after the YAML is parsed.
func fuzzPipelineYAML(_ data: [UInt8]) throws {
    guard let text = String(validating: data, as: UTF8.self) else { return }
    let bound = 4 * data.count + 64
    let node: ConfigNode?
    do {
        node = try ConfigNode.parse(yaml: text, file: "/fuzz/pipeline.yaml")
    } catch {
        return
    }
    guard let node else { return }
    let parsedSize = size(of: node, limit: bound)
    try fuzzRequire(parsedSize <= bound, "pipeline-yaml", "\(data.count) bytes of YAML parse to more than \(bound) nodes and bytes")
    if mentionsFile(node) { return }

    let interpolation = Interpolation(environment: ["FUZZ": "x"], builtins: [:])
    guard let config = try? PipelineLoader(interpolation: interpolation).parse(yaml: text, file: "/fuzz/pipeline.yaml") else { return }
    var total = size(of: config.tests, limit: bound)
    for stage in config.stages + [config.deadLetters.sink].compactMap({ $0 }) {
        try fuzzRequire(!stage.plugin.isEmpty, "pipeline-yaml", "an accepted pipeline has a stage with no plugin")
        total += size(of: stage.config, limit: bound) + stage.plugin.utf8.count
        _ = stage.configJSON
    }
    try fuzzRequire(total <= 2 * bound, "pipeline-yaml", "\(data.count) bytes of YAML load to more than \(2 * bound) nodes and bytes")
    try fuzzRequire(
        config.batchSize >= 1 && config.workers >= 1 && config.readLanes >= 1, "pipeline-yaml",
        "accepted batch_size \(config.batchSize), workers \(config.workers), read_lanes \(config.readLanes)")
}

/// Nodes plus scalar bytes, counting stops once past `limit`.
private func size(of node: ConfigNode?, limit: Int) -> Int {
    guard let node else { return 0 }
    var total = 0
    var stack = [node]
    while let next = stack.popLast(), total <= limit {
        total += 1
        switch next {
        case .scalar(let text, _, _): total += text.utf8.count
        case .mapping(let entries, _):
            for entry in entries {
                total += entry.key.utf8.count
                stack.append(entry.value)
            }
        case .sequence(let items, _): stack.append(contentsOf: items)
        }
    }
    return total
}

private func mentionsFile(_ node: ConfigNode) -> Bool {
    switch node {
    case .scalar(let text, _, _): return text.contains("file:")
    case .mapping(let entries, _): return entries.contains { mentionsFile($0.value) }
    case .sequence(let items, _): return items.contains(where: mentionsFile)
    }
}
