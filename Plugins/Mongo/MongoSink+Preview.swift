import CLibMongoc
import FerryPluginKit

extension MongoSink {
    /// Looks the batch's keys up (one `$in` query) and compares: absent →
    /// would insert; present → unchanged when the stored document already has
    /// the batch's bytes (whole document for replace, each field for `$set`),
    /// else would update. Writes nothing.
    func preview(_ batch: BatchView, result: inout SinkResult) throws {
        switch mode {
        case .insert, .replace:
            result.inserted += UInt64(batch.count)
            return
        case .upsert, .missingOnly:
            break
        }
        var keys: [BSONValue] = []
        for (index, document) in batch.enumerated() {
            guard let key = document.element(forKey: keyField) else {
                result.rejects.reject(index, "mongo: record has no key field '\(keyField)'")
                continue
            }
            keys.append(.raw(type: key.typeByte, bytes: Array(key.value)))
        }
        let stored = try storedDocuments(keys)
        for document in batch {
            guard let key = document.element(forKey: keyField) else { continue }
            guard let existing = stored[Self.identity(key)] else {
                result.inserted += 1
                continue
            }
            let same = existing.withUnsafeBytes { raw in
                mode == .missingOnly || Self.wouldNotChange(DocumentView(raw), document, replace: replaceDocuments)
            }
            if same { result.unchanged += 1 } else { result.updated += 1 }
        }
    }

    /// Stored documents by key identity (BSON type + value bytes).
    private func storedDocuments(_ keys: [BSONValue]) throws(PluginError) -> [[UInt8]: [UInt8]] {
        guard !keys.isEmpty else { return [:] }
        let filter = BSONDocument([(keyField, .document(BSONDocument([("$in", .array(keys))])))]).encoded()
        let options = BSONDocument().encoded()
        guard let cursor = filter.withUnsafeBufferPointer({ f in
            options.withUnsafeBufferPointer { o in
                ferry_mongo_find(connection.collection, f.baseAddress, UInt32(f.count), o.baseAddress, UInt32(o.count))
            }
        }) else { throw .internal("mongo: could not build the preview query") }
        defer { mongoc_cursor_destroy(cursor) }
        var found: [[UInt8]: [UInt8]] = [:]
        var error = ferry_mongo_error()
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        while true {
            let status = ferry_mongo_cursor_next(cursor, &data, &length, &error)
            if status == 0 { break }
            guard status == 1 else { throw connection.error(error, doing: "preview lookup in \(connection.namespace)") }
            let document = DocumentView(UnsafeRawBufferPointer(start: data, count: Int(length)))
            if let key = document.element(forKey: keyField) { found[Self.identity(key)] = Array(document.bytes) }
        }
        return found
    }

    static func identity(_ element: BSONElement) -> [UInt8] { [element.typeByte] + Array(element.value) }

    /// What the server would report as "not modified": a replacement equal
    /// byte for byte (ignoring a stored `_id` the incoming document lacks),
    /// or, for `$set`, every incoming field already stored with the same bytes.
    static func wouldNotChange(_ stored: DocumentView, _ incoming: DocumentView, replace: Bool) -> Bool {
        if replace {
            let incomingHasId = incoming.element(forKey: "_id") != nil
            var storedFields = stored.makeIterator()
            var incomingFields = incoming.makeIterator()
            while true {
                var left = storedFields.next()
                if !incomingHasId, let field = left, field.key == "_id" { left = storedFields.next() }
                let right = incomingFields.next()
                switch (left, right) {
                case (nil, nil): return true
                case (let l?, let r?) where l.element.elementsEqual(r.element): continue
                default: return false
                }
            }
        }
        for field in incoming {
            guard let existing = stored.element(forKey: field.key), existing.element.elementsEqual(field.element) else { return false }
        }
        return true
    }
}
