import CLibMongoc
import FerryPluginKit

/// `ferry diff` reads the collection back; `ferry repair` deletes by key.
/// Neither writes anything at open: `write_mode: replace` empties the
/// collection on the first `write` only, never on a read-back or a delete.
extension MongoSink: ReadBackSink, DeletingSink {
    /// Keys go to one `deleteMany` each this many at a time, far below the
    /// server's 16 MiB command size for any key a record can carry.
    static let keysPerDelete = 10_000

    /// The upsert match field; documents vary, so no field list.
    func diffInfo() throws -> DiffInfo { DiffInfo(key: [keyField]) }

    /// Every document, as stored, in key order (the order the source reads in).
    func readBack(into batch: BatchBuilder) throws -> Bool {
        if context.isCancelled { throw PluginError.cancelled() }
        if readBackDone { return false }
        if readBackCursor == nil {
            var options: [(String, BSONValue)] = [("sort", .document(BSONDocument([(keyField, .int32(1))])))]
            if allowDiskUse { options.append(("allowDiskUse", .bool(true))) }
            let filter = BSONDocument().encoded()
            let encoded = BSONDocument(options).encoded()
            readBackCursor = filter.withUnsafeBufferPointer { f in
                encoded.withUnsafeBufferPointer { o in
                    ferry_mongo_find(connection.collection, f.baseAddress, UInt32(f.count), o.baseAddress, UInt32(o.count))
                }
            }
            guard readBackCursor != nil else { throw PluginError.internal("mongo: could not build the read-back find") }
        }
        var error = ferry_mongo_error()
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        while batch.count < context.batchSize {
            let status = ferry_mongo_cursor_next(readBackCursor, &data, &length, &error)
            if status == 1 {
                batch.append(encoded: UnsafeRawBufferPointer(start: data, count: Int(length)))
                continue
            }
            mongoc_cursor_destroy(readBackCursor)
            readBackCursor = nil
            // A read-back has no resume position: a failure starts it over.
            guard status == 0 else { throw connection.error(error, doing: "read back \(connection.namespace)") }
            readBackDone = true
            return false
        }
        return true
    }

    /// One `deleteMany` per chunk of keys: `{key: {$in: [...]}}` when every
    /// key document holds the same single field, else an `$or` of `$eq`
    /// matches. Acknowledged with the sink's write concern before it returns,
    /// so `commit` has nothing to add.
    func delete(keys: BatchView) throws -> UInt64 {
        do {
            try keys.validateFraming()
        } catch {
            throw PluginError.data("mongo: delete: the key batch is not valid BSON: \(error)")
        }
        var clauses: [BSONDocument] = []
        var singleField: String?
        var single = true
        for (index, key) in keys.enumerated() {
            var clause = BSONDocument()
            for field in key {
                clause.fields.append((field.key, .document(BSONDocument([("$eq", .raw(type: field.typeByte, bytes: Array(field.value)))]))))
            }
            guard let first = clause.fields.first else { throw PluginError.data("mongo: delete: key document \(index) has no fields") }
            if clause.fields.count != 1 || (singleField != nil && singleField != first.key) { single = false }
            singleField = singleField ?? first.key
            clauses.append(clause)
        }
        var options: [(String, BSONValue)] = []
        if let writeConcern { options.append(("writeConcern", .raw(type: 0x03, bytes: writeConcern))) }
        let encodedOptions = BSONDocument(options).encoded()
        var deleted: UInt64 = 0
        var start = 0
        while start < clauses.count {
            if context.isCancelled { throw PluginError.cancelled() }
            let chunk = clauses[start..<min(start + Self.keysPerDelete, clauses.count)]
            start += chunk.count
            let filter: BSONDocument
            if single, let field = singleField {
                let values = chunk.compactMap { clause -> BSONValue? in
                    guard case .document(let eq) = clause.fields[0].value else { return nil }
                    return eq.fields[0].value
                }
                filter = BSONDocument([(field, .document(BSONDocument([("$in", .array(values))])))])
            } else {
                filter = BSONDocument([("$or", .array(chunk.map(BSONValue.document)))])
            }
            let encodedFilter = filter.encoded()
            var count: Int64 = 0
            var error = ferry_mongo_error()
            let ok = encodedFilter.withUnsafeBufferPointer { f in
                encodedOptions.withUnsafeBufferPointer { o in
                    ferry_mongo_delete_many(
                        connection.collection, f.baseAddress, UInt32(f.count), o.baseAddress, UInt32(o.count), &count, &error)
                }
            }
            // Keys already deleted are absent on a retry: the host may re-send.
            guard ok else { throw connection.error(error, doing: "delete \(chunk.count) keys from \(connection.namespace)") }
            deleted += UInt64(max(0, count))
        }
        return deleted
    }
}
