import FerryPluginKit

/// A record's key as bytes that are equal exactly when the key values are:
/// numbers by value across int32, int64 and double (a JSON Lines file reads
/// a small int64 back as int32), a missing field as null (as a MongoDB
/// equality match does), anything else by BSON type and value bytes.
enum RecordKey {
    static func identity(of document: DocumentView, fields: [String]) -> [UInt8] {
        var bytes: [UInt8] = []
        for field in fields {
            bytes.append(contentsOf: field.utf8)
            bytes.append(0)
            guard let element = document.element(forKey: field) else {
                bytes.append(BSONType.null.rawValue)
                continue
            }
            if let integer = integerValue(element) {
                bytes.append(BSONType.int64.rawValue)
                withUnsafeBytes(of: integer.littleEndian) { bytes.append(contentsOf: $0) }
                continue
            }
            // undefined is null's deprecated twin; both match a missing field.
            let type = element.typeByte == 0x06 ? BSONType.null.rawValue : element.typeByte
            bytes.append(type)
            withUnsafeBytes(of: UInt32(element.value.count).littleEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: element.value)
        }
        return bytes
    }

    /// An int32, int64 or a double with an exact Int64 value.
    static func integerValue(_ element: BSONElement) -> Int64? {
        if let value = element.int32Value { return Int64(value) }
        if element.typeByte == BSONType.int64.rawValue, let value = element.int64Value { return value }
        if let value = element.doubleValue, let exact = Int64(exactly: value) { return exact }
        return nil
    }
}
