import FerryPluginKit

/// Turns the config's document-valued fields (filter, projection, write
/// concern) into BSON, with errors that name the field.
enum MongoConfig {
    /// A document given as extended JSON text or as an object; nil when absent.
    static func document(_ config: PluginConfig, _ field: String) throws(PluginError) -> [UInt8]? {
        guard let value = config.values[field], value != .null else { return nil }
        let text: String
        switch value {
        case .string(let string): text = string
        case .object: text = value.jsonText
        default: throw .config("mongo: field '\(field)': expected a document (extended JSON text or an object), got \(value.typeName)")
        }
        do {
            return try ExtendedJSON.parse(text)
        } catch {
            throw .config("mongo: field '\(field)': invalid extended JSON: \(error)")
        }
    }

    /// `{w: …, j: …, wtimeout: …}` from "majority", a number or an object.
    static func writeConcern(_ config: PluginConfig) throws(PluginError) -> [UInt8]? {
        guard let value = config.values["write_concern"], value != .null else { return nil }
        switch value {
        case .string(let tag): return BSONDocument([("w", .string(tag))]).encoded()
        case .integer(let w): return BSONDocument([("w", .int32(Int32(clamping: w)))]).encoded()
        case .object(let fields):
            for name in fields.keys where !["w", "j", "wtimeout"].contains(name) {
                throw .config("mongo: field 'write_concern.\(name)': unknown (expected w, j, wtimeout)")
            }
            return try document(config, "write_concern")
        default:
            throw .config("mongo: field 'write_concern': expected \"majority\", a number or an object, got \(value.typeName)")
        }
    }

    /// A top-level field name for the sink's key (a dot would mean a nested
    /// path, which an upsert cannot match and insert safely).
    static func topLevelField(_ config: PluginConfig, _ field: String) throws(PluginError) -> String {
        let name = try config.string(field) ?? "_id"
        guard !name.isEmpty, !name.contains("."), !name.hasPrefix("$") else {
            throw .config("mongo: field '\(field)': '\(name)' must be a top-level field name (no dots, no leading $)")
        }
        return name
    }
}
