import FerryPluginKit

extension JSONValue {
    /// The config value as a BSON constant, read as MongoDB extended JSON —
    /// exactly as the file source reads a JSON Lines record: integers become
    /// int32 when they fit and int64 otherwise, other numbers doubles, and
    /// `{$numberDecimal: "0.00"}`, `{$date: "…"}`, `{$oid: "…"}`,
    /// `{$numberLong: "1"}`, `{$numberDouble: "1.0"}` the types they name.
    ///
    /// - Throws: libbson's message when an extended JSON wrapper is malformed.
    func bsonConstant() throws(ValueError) -> BSONValue {
        // libbson parses documents only, so the value travels in a one-field wrapper.
        let bytes: [UInt8]
        do {
            bytes = try ExtendedJSON.parse("{\"value\":\(jsonText)}")
        } catch {
            throw ValueError("not a valid value (\(error))")
        }
        let document = bytes.withUnsafeBytes { DocumentView($0).decode() }
        guard let value = document["value"] else { throw ValueError("not a valid value") }
        return value
    }
}
