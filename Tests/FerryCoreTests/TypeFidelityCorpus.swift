import FerryPluginKit
import Foundation

/// The values the type-fidelity matrix sends through the connectors: every
/// BSON type with its edge cases, each also buried at a random depth of
/// documents and arrays. The generator is seeded, so the corpus (and with it
/// the generated docs/type-fidelity.md) is the same on every run.
enum TypeFidelityCorpus {
    /// A matrix row: a BSON type, the PostgreSQL column a typed sink stores it
    /// in, and the values that stand for it.
    struct Row {
        let name: String
        /// Column name in the typed table (`v_<name>`) and field name in every record.
        let field: String
        let columnType: String
        let values: [BSONValue]
    }

    /// One record of the corpus: `{_id, t, v_<type>: value, deep: value buried in documents/arrays}`.
    struct Entry {
        let id: Int32
        let row: Row
        let value: BSONValue
        /// Keys and array indexes from `deep` down to the value.
        let path: [String]
        let deep: BSONValue

        var document: BSONDocument {
            BSONDocument([("_id", .int32(id)), ("t", .string(row.name)), (row.field, value), ("deep", deep)])
        }
    }

    static func decimal(_ text: String) -> BSONValue {
        let bytes = try! ExtendedJSON.parse(#"{"v": {"$numberDecimal": "\#(text)"}}"#)
        return bytes.withUnsafeBytes { DocumentView($0).decode()["v"]! }
    }

    static func oid(_ hex: String) -> BSONValue {
        .objectId(stride(from: 0, to: 24, by: 2).map { UInt8(hex.dropFirst($0).prefix(2), radix: 16)! })
    }

    static let rows: [Row] = [
        Row(name: "double", field: "v_double", columnType: "float8", values: [
            .double(0.1), .double(-0.0), .double(.nan), .double(.infinity), .double(-.infinity), .double(1e16),
            .double(1.0), .double(.leastNonzeroMagnitude), .double(.greatestFiniteMagnitude), .double(1e-7), .double(-123456.789),
        ]),
        Row(name: "string", field: "v_string", columnType: "text", values: [
            .string(""), .string("plain"), .string("Café ☕ 日本 𝄞 ключ"), .string("quote \" backslash \\ tab\t newline\n end"),
        ]),
        Row(name: "document", field: "v_document", columnType: "jsonb", values: [
            .document([:]),
            .document([("b", .string("x")), ("a", .int32(1)), ("ü", .document([("z", .bool(true)), ("n", .null)]))]),
            .document([("list", .array([.int32(1), .string("two"), .document([("3", .int64(9_007_199_254_740_993))])]))]),
        ]),
        Row(name: "array", field: "v_array", columnType: "jsonb", values: [
            .array([]), .array([.int32(1), .string("a"), .null, .bool(true)]),
            .array([.array([.int32(1), .array([.int32(2)])]), .document([("k", .string("v"))])]),
        ]),
        Row(name: "binary (subtype 0)", field: "v_binary", columnType: "bytea", values: [
            .binary(subtype: 0, data: []), .binary(subtype: 0, data: [0, 1, 2, 0x7F, 0x80, 0xFF]),
            .binary(subtype: 0, data: (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 37) }),
        ]),
        Row(name: "binary (subtype 4, uuid)", field: "v_uuid", columnType: "uuid", values: [
            .binary(subtype: 4, data: [0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0x00]),
            .binary(subtype: 4, data: Array(repeating: 0xFF, count: 16)),
        ]),
        Row(name: "ObjectId", field: "v_objectid", columnType: "text", values: [
            oid("650000000000000000000001"), oid("ffeeddccbbaa998877665544"),
        ]),
        Row(name: "bool", field: "v_bool", columnType: "bool", values: [.bool(true), .bool(false)]),
        Row(name: "datetime", field: "v_datetime", columnType: "timestamptz", values: [
            .datetime(1_795_603_200_123), .datetime(0), .datetime(-1), .datetime(-1_577_923_199_877),
            .datetime(-62_135_596_800_000), .datetime(253_402_300_799_999),
        ]),
        Row(name: "null", field: "v_null", columnType: "text", values: [.null]),
        Row(name: "regex", field: "v_regex", columnType: "text", values: [
            .regex(pattern: "^a.*b$", options: "i"), .regex(pattern: "日本", options: ""), .regex(pattern: "x\\d+", options: "imsx"),
        ]),
        Row(name: "int32", field: "v_int32", columnType: "int4", values: [.int32(0), .int32(-7), .int32(.max), .int32(.min)]),
        Row(name: "timestamp", field: "v_timestamp", columnType: "int8", values: [
            .timestamp(UInt64(1_700_000_000) << 32 | 1), .timestamp(UInt64(UInt32.max) << 32 | UInt64(UInt32.max)),
        ]),
        Row(name: "int64", field: "v_int64", columnType: "int8", values: [
            .int64(9_007_199_254_740_993), .int64(-9_007_199_254_740_993), .int64(.max), .int64(.min), .int64(42),
        ]),
        Row(name: "decimal128", field: "v_decimal128", columnType: "numeric", values: [
            decimal("19.90"), decimal("0.1"), decimal("1234567890123456789012345678901234"), decimal("-1.234567890123456789012345678901234E+6000"),
            decimal("1.23E+40"), decimal("1E-6176"), decimal("-0"), decimal("NaN"), decimal("Infinity"), decimal("-Infinity"),
        ]),
        Row(name: "minKey", field: "v_minkey", columnType: "text", values: [.minKey]),
        Row(name: "maxKey", field: "v_maxkey", columnType: "text", values: [.maxKey]),
    ]

    /// SplitMix64: a fixed seed gives the same nesting on every run.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let keys = ["a", "ключ", "b c", "日本"]

    /// Buries `value` one to three levels deep, each level a document or an
    /// array with a sibling or two, and returns the path down to it.
    static func bury(_ value: BSONValue, using generator: inout Generator) -> (BSONValue, [String]) {
        var current = value
        var path: [String] = []
        for _ in 0..<Int.random(in: 1...3, using: &generator) {
            let siblings = Int.random(in: 0...2, using: &generator)
            if Bool.random(using: &generator) {
                let key = keys.randomElement(using: &generator)!
                var fields: [(String, BSONValue)] = (0..<siblings).map { ("s\($0)", .string("sibling \($0)")) }
                let at = Int.random(in: 0...fields.count, using: &generator)
                fields.insert((key, current), at: at)
                current = .document(BSONDocument(fields))
                path.insert(key, at: 0)
            } else {
                var items: [BSONValue] = (0..<siblings).map { .int32(Int32($0)) }
                let at = Int.random(in: 0...items.count, using: &generator)
                items.insert(current, at: at)
                current = .array(items)
                path.insert(String(at), at: 0)
            }
        }
        return (current, path)
    }

    static let entries: [Entry] = {
        var generator = Generator(state: 0xF177_1DE1_17E5)
        var entries: [Entry] = []
        for row in rows {
            for value in row.values {
                let (deep, path) = bury(value, using: &generator)
                entries.append(Entry(id: Int32(entries.count + 1), row: row, value: value, path: path, deep: deep))
            }
        }
        return entries
    }()

    /// The value at `path` below `value`, if the shape is still there.
    static func dig(_ value: BSONValue?, _ path: [String]) -> BSONValue? {
        var current = value
        for step in path {
            switch current {
            case .document(let document)?: current = document[step]
            case .array(let items)?:
                guard let index = Int(step), index < items.count else { return nil }
                current = items[index]
            default: return nil
            }
        }
        return current
    }
}
