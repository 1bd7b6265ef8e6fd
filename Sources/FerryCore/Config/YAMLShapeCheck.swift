import CYaml

/// Refuses YAML that would cost more to load than its size: anchors and
/// aliases (a "billion laughs" file of a few hundred bytes expands to
/// gigabytes once composed) and nesting deeper than any pipeline needs.
/// It walks libyaml's events, so nothing is expanded or built while it looks.
enum YAMLShapeCheck {
    static let maxDepth = 64

    /// Throws at the first anchor, alias or too-deep node, with its line.
    /// Syntax errors are left to the composer, which words them better.
    static func check(_ yaml: String, file: String) throws(ConfigError) {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return }
        defer { yaml_parser_delete(&parser) }
        let bytes = Array(yaml.utf8)
        let problem: (line: Int, message: String)? = bytes.withUnsafeBufferPointer { buffer in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var depth = 0
            var event = yaml_event_t()
            while yaml_parser_parse(&parser, &event) == 1 {
                defer { yaml_event_delete(&event) }
                let line = Int(event.start_mark.line) + 1
                switch event.type {
                case YAML_ALIAS_EVENT:
                    return (line, "YAML aliases (*name) are not supported: write the value out")
                case YAML_SCALAR_EVENT where event.data.scalar.anchor != nil,
                    YAML_SEQUENCE_START_EVENT where event.data.sequence_start.anchor != nil,
                    YAML_MAPPING_START_EVENT where event.data.mapping_start.anchor != nil:
                    return (line, "YAML anchors (&name) are not supported: write the value out")
                case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                    depth += 1
                    if depth > maxDepth { return (line, "nested deeper than \(maxDepth) levels") }
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    depth -= 1
                case YAML_STREAM_END_EVENT:
                    return nil
                default:
                    break
                }
            }
            return nil
        }
        if let problem { throw ConfigError(file: file, line: problem.line, problem.message) }
    }
}
