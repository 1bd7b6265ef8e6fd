import FerryPluginKit

/// The PostgreSQL column types the connector maps to and from BSON, by type OID.
indirect enum PGType: Equatable {
    case int2, int4, int8
    case numeric
    case float4, float8
    case text
    case bool
    case date
    case timestamp, timestamptz
    case uuid
    case json, jsonb
    case bytea
    case array(PGType)

    /// The type of an OID from pg_type, or nil for one the connector cannot map.
    init?(oid: UInt32) {
        switch oid {
        case 21: self = .int2
        case 23: self = .int4
        case 20: self = .int8
        case 1700: self = .numeric
        case 700: self = .float4
        case 701: self = .float8
        case 25, 1043, 1042, 19: self = .text  // text, varchar, bpchar, name
        case 16: self = .bool
        case 1082: self = .date
        case 1114: self = .timestamp
        case 1184: self = .timestamptz
        case 2950: self = .uuid
        case 114: self = .json
        case 3802: self = .jsonb
        case 17: self = .bytea
        case 1005: self = .array(.int2)
        case 1007: self = .array(.int4)
        case 1016: self = .array(.int8)
        case 1231: self = .array(.numeric)
        case 1021: self = .array(.float4)
        case 1022: self = .array(.float8)
        case 1009, 1015, 1014: self = .array(.text)
        case 1000: self = .array(.bool)
        case 1182: self = .array(.date)
        case 1115: self = .array(.timestamp)
        case 1185: self = .array(.timestamptz)
        case 2951: self = .array(.uuid)
        case 199: self = .array(.json)
        case 3807: self = .array(.jsonb)
        default: return nil
        }
    }
}

/// A column as the connector sees it: its name, mapped type and SQL type name
/// (for casts and messages).
struct PGColumn {
    let name: String
    let type: PGType
    let sqlType: String
    let notNull: Bool
    /// The column's type OID (binary COPY names array element types by OID).
    var oid: UInt32 = 0
    /// numeric(p,s) (or an array of it): what a value must fit unchanged.
    var limit: NumericLimit? = nil
}

extension PGType {
    /// The element type OID of an array type OID (binary arrays carry it and the server checks it).
    static func elementOID(ofArray oid: UInt32) -> UInt32? {
        switch oid {
        case 1005: 21
        case 1007: 23
        case 1016: 20
        case 1231: 1700
        case 1021: 700
        case 1022: 701
        case 1009: 25
        case 1015: 1043
        case 1014: 1042
        case 1000: 16
        case 1182: 1082
        case 1115: 1114
        case 1185: 1184
        case 2951: 2950
        case 199: 114
        case 3807: 3802
        default: nil
        }
    }
}

/// Identifier quoting: every identifier is quoted, so names with capitals,
/// spaces or quotes work and nothing in a name can change the SQL.
enum SQL {
    static func ident(_ name: String) -> String {
        "\"" + name.replacing("\"", with: "\"\"") + "\""
    }

    static func table(schema: String, name: String) -> String { ident(schema) + "." + ident(name) }

    /// A string literal, for the few places (COPY) that cannot take parameters.
    static func literal(_ value: String) -> String {
        "'" + value.replacing("'", with: "''") + "'"
    }
}
