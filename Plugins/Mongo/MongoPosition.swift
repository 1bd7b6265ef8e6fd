import FerryPluginKit

/// Where a read stopped: the (cursor, key) of the last document handed out.
///
/// Saved as the batch state, a BSON document
/// `{v: 1, plugin: "mongo", keyField, cursorField?, shard: "i/N", key, cursor?}`
/// whose `key` and `cursor` are the values exactly as the server sent them,
/// so the resumed comparison uses the same BSON types (an int64 stays an
/// int64, a date a date) and ties compare right.
struct MongoPosition {
    static let version: Int32 = 1

    /// Raw BSON values (`.raw` keeps type and bytes untouched).
    var key: BSONValue
    var cursor: BSONValue?

    /// The position after `document`; a missing field counts as null, which is
    /// also where the server sorts it.
    init(after document: DocumentView, keyField: String, cursorField: String?) {
        key = Self.value(document, keyField)
        cursor = cursorField.map { Self.value(document, $0) }
    }

    init(key: BSONValue, cursor: BSONValue?) {
        self.key = key
        self.cursor = cursor
    }

    static func value(_ document: DocumentView, _ path: String) -> BSONValue {
        guard let element = document.element(atPath: path) else { return .null }
        return .raw(type: element.typeByte, bytes: Array(element.value))
    }

    func encoded(keyField: String, cursorField: String?, shardIndex: Int, shardCount: Int) -> [UInt8] {
        var fields: [(String, BSONValue)] = [
            ("v", .int32(Self.version)), ("plugin", .string("mongo")), ("keyField", .string(keyField)),
        ]
        if let cursorField { fields.append(("cursorField", .string(cursorField))) }
        fields.append(("shard", .string("\(shardIndex)/\(shardCount)")))
        fields.append(("key", key))
        if let cursor { fields.append(("cursor", cursor)) }
        return BSONDocument(fields).encoded()
    }

    /// Reads a saved state, refusing one this configuration did not write.
    static func decode(
        _ state: [UInt8], keyField: String, cursorField: String?, shardIndex: Int, shardCount: Int
    ) throws -> MongoPosition {
        let reset = "reset the pipeline's state (ferry state reset) to read from the start"
        return try state.withUnsafeBytes { raw throws -> MongoPosition in
            let document = DocumentView(raw)
            guard raw.count >= 5,
                Int(Int32(littleEndian: raw.loadUnaligned(as: Int32.self))) == raw.count,
                ExtendedJSON.firstInvalidOffset(document) == nil,
                document.element(forKey: "plugin")?.stringValue == "mongo"
            else {
                throw PluginError.state("mongo: the saved state (\(raw.count) bytes) is not a MongoDB plugin state; \(reset)")
            }
            guard let version = document.element(forKey: "v")?.int32Value, version == Self.version else {
                throw PluginError.state("mongo: the saved state has format version \(document.element(forKey: "v")?.int32Value.map(String.init) ?? "?"), this plugin reads version \(Self.version); \(reset)")
            }
            let savedKey = document.element(forKey: "keyField")?.stringValue
            let savedCursor = document.element(forKey: "cursorField")?.stringValue
            guard savedKey == keyField, savedCursor == cursorField else {
                throw PluginError.state("mongo: the saved state was taken with key '\(savedKey ?? "?")' and cursor '\(savedCursor ?? "(none)")', the config now says key '\(keyField)' and cursor '\(cursorField ?? "(none)")'; \(reset)")
            }
            let shard = "\(shardIndex)/\(shardCount)"
            guard let savedShard = document.element(forKey: "shard")?.stringValue, savedShard == shard else {
                throw PluginError.state("mongo: the saved state belongs to shard \(document.element(forKey: "shard")?.stringValue ?? "?"), this run reads shard \(shard); \(reset)")
            }
            guard let key = document.element(forKey: "key") else {
                throw PluginError.state("mongo: the saved state has no key value; \(reset)")
            }
            let cursor = document.element(forKey: "cursor")
            if cursorField != nil && cursor == nil {
                throw PluginError.state("mongo: the saved state has no cursor value; \(reset)")
            }
            return MongoPosition(
                key: .raw(type: key.typeByte, bytes: Array(key.value)),
                cursor: cursor.map { .raw(type: $0.typeByte, bytes: Array($0.value)) })
        }
    }
}
