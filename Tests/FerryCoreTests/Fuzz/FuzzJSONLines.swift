import FerryPluginKit

/// The JSON Lines reader of the file source: the input split into lines as
/// `FileSource` splits them (on \n, blank lines skipped), each line parsed by
/// `ExtendedJSON.parse(utf8:)`. For every line it accepts:
/// - the result is one framed document that libbson's `bson_validate` accepts
///   (what the host and every sink may assume of a source's records);
/// - rendered as canonical extended JSON and parsed again, it is the same BSON;
/// - Ferry's own decode and re-encode gives the same bytes.
func fuzzJSONLines(_ data: [UInt8]) throws {
    for line in data.split(separator: 0x0A, omittingEmptySubsequences: true) {
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
        let bytes: [UInt8]
        do {
            bytes = try line.withUnsafeBytes { try ExtendedJSON.parse(utf8: $0) }
        } catch {
            continue
        }
        try checkParsedLine(bytes, line: line)
    }
}

private func checkParsedLine(_ bytes: [UInt8], line: ArraySlice<UInt8>) throws {
    let shown = fuzzEscaped(line)
    try bytes.withUnsafeBytes { raw in
        do {
            try BatchView(bytes: raw, count: 1).validateFraming()
        } catch {
            throw FuzzInvariantFailure(target: "jsonl", message: "line \(shown) parses to a malformed document: \(error)")
        }
        let document = DocumentView(raw)
        if let offset = ExtendedJSON.firstInvalidOffset(document) {
            throw FuzzInvariantFailure(
                target: "jsonl", message: "line \(shown) parses to a document bson_validate refuses at byte \(offset): \(fuzzEscaped(bytes))")
        }
        guard let canonical = ExtendedJSON.render(document, canonical: true) else {
            throw FuzzInvariantFailure(target: "jsonl", message: "line \(shown): its document cannot be rendered as JSON")
        }
        let reparsed: [UInt8]
        do {
            reparsed = try ExtendedJSON.parse(canonical)
        } catch {
            throw FuzzInvariantFailure(target: "jsonl", message: "line \(shown) renders as \(canonical), which does not parse: \(error)")
        }
        try fuzzRequire(
            reparsed == bytes, "jsonl",
            "line \(shown) renders as \(canonical), which parses to different BSON: \(fuzzEscaped(bytes)) vs \(fuzzEscaped(reparsed))")
        let reencoded = document.decode().encoded()
        try fuzzRequire(reencoded == bytes, "jsonl", "line \(shown): decode().encoded() changes its document")
    }
}
