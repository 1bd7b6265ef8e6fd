import FerryPluginKit

/// The source's resume position: the (cursor, key) of the last row handed
/// out, as PostgreSQL's own text for those values (exact: microseconds,
/// numeric digits), plus what they belong to so a state from another table
/// or another key is refused instead of misread.
struct SourceState: Equatable {
    static let version: Int64 = 1

    var relation: String
    var cursorColumn: String?
    var keyColumns: [String]
    var cursor: String?
    var key: [String]

    var encoded: [UInt8] {
        var object: [String: JSONValue] = [
            "v": .integer(Self.version),
            "plugin": "postgres",
            "relation": .string(relation),
            "key_columns": .array(keyColumns.map(JSONValue.string)),
            "key": .array(key.map(JSONValue.string)),
        ]
        if let cursorColumn { object["cursor_column"] = .string(cursorColumn) }
        if let cursor { object["cursor"] = .string(cursor) }
        return Array(JSONValue.object(object).jsonText.utf8)
    }

    /// Reads a saved state and checks it belongs to this source configuration.
    static func decode(_ bytes: [UInt8], expecting expected: SourceState) throws -> SourceState {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let json = try? JSONValue.parse(text), let object = json.objectValue else {
            throw PluginError.state("postgres: the saved state is not this plugin's (not JSON); reset the pipeline's state to start over")
        }
        guard object["plugin"]?.stringValue == "postgres" else {
            throw PluginError.state("postgres: the saved state was written by another plugin; reset the pipeline's state to start over")
        }
        guard object["v"]?.intValue == version else {
            throw PluginError.state("postgres: the saved state has version \(object["v"].map { $0.jsonText } ?? "none"), this plugin reads version \(version); reset the pipeline's state")
        }
        let keyColumns = object["key_columns"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let key = object["key"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let state = SourceState(
            relation: object["relation"]?.stringValue ?? "", cursorColumn: object["cursor_column"]?.stringValue,
            keyColumns: keyColumns, cursor: object["cursor"]?.stringValue, key: key)
        guard state.relation == expected.relation, state.cursorColumn == expected.cursorColumn, state.keyColumns == expected.keyColumns else {
            throw PluginError.state(
                "postgres: the saved state is for \(state.relation) ordered by \(([state.cursorColumn].compactMap { $0 } + keyColumns).joined(separator: ", ")), not \(expected.relation) ordered by \(([expected.cursorColumn].compactMap { $0 } + expected.keyColumns).joined(separator: ", ")); reset the pipeline's state")
        }
        guard key.count == keyColumns.count, (state.cursorColumn == nil) == (state.cursor == nil) || key.isEmpty else {
            throw PluginError.state("postgres: the saved state is incomplete; reset the pipeline's state")
        }
        return state
    }
}
