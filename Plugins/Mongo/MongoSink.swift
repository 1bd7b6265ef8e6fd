import CLibMongoc
import FerryPluginKit

/// Writes each batch as one unordered bulk write: a document the server
/// refuses (duplicate key, validation) is rejected with the server's message
/// while the rest lands, and so is one over the server's document size limit. Upserts make a replayed batch harmless.
final class MongoSink: SinkPlugin {
    enum WriteMode: String {
        case upsert, insert, missingOnly = "missing-only", replace
    }

    let connection: MongoConnection
    let context: PluginContext
    let mode: WriteMode
    /// Upserts: replace the stored document, or `$set` the batch's fields.
    let replaceDocuments: Bool
    let keyField: String
    let bulkOptions: [UInt8]
    /// The configured write concern, for deletes as for bulk writes.
    let writeConcern: [UInt8]?
    /// Read-back sorts by the key, which may need the server's disk.
    let allowDiskUse: Bool
    /// The server's largest document: a bigger record is rejected on its own
    /// before the bulk write, which libmongoc would otherwise fail whole.
    let maxDocumentBytes: Int
    /// Replace mode empties the collection once, before the first write of the run.
    var cleared = false
    let scratch = ByteBuffer(capacity: 4096)
    /// Read-back (`ferry diff`): the open find, and whether it has ended.
    var readBackCursor: OpaquePointer?
    var readBackDone = false

    init(config: PluginConfig, context: PluginContext) throws {
        self.context = context
        let requested = try config.string("write_mode") ?? "auto"
        if requested == "auto" {
            mode = context.mode == .missingOnly ? .missingOnly : .upsert
        } else if let mode = WriteMode(rawValue: requested) {
            self.mode = mode
        } else {
            throw PluginError.config("mongo: field 'write_mode': unknown mode '\(requested)'")
        }
        if context.isRepair && mode == .replace {
            throw PluginError.unsupported(
                "mongo: write_mode replace empties the collection on the first write, which a repair must never do; repair with write_mode upsert")
        }
        replaceDocuments = (try config.string("update") ?? "replace") == "replace"
        keyField = try MongoConfig.topLevelField(config, "key")
        var options: [(String, BSONValue)] = [("ordered", .bool(false))]
        writeConcern = try MongoConfig.writeConcern(config)
        if let writeConcern { options.append(("writeConcern", .raw(type: 0x03, bytes: writeConcern))) }
        bulkOptions = BSONDocument(options).encoded()
        allowDiskUse = try config.bool("allow_disk_use") ?? false
        connection = try MongoConnection(config: config)
        try connection.ping()
        maxDocumentBytes = try connection.maxDocumentBytes()
    }

    // The cursor belongs to the connection's client: it goes first.
    deinit { if let readBackCursor { mongoc_cursor_destroy(readBackCursor) } }

    func check() throws {
        try connection.ping()
        try connection.checkCollection()
    }

    func commit() throws {
        // Each bulk write is acknowledged with the configured write concern
        // before `write` returns: nothing is pending here.
    }

    func write(_ batch: BatchView, result: inout SinkResult) throws {
        if mode == .replace && !cleared {
            var error = ferry_mongo_error()
            guard ferry_mongo_delete_all(connection.collection, &error) else {
                throw connection.error(error, doing: "empty \(connection.namespace) (write_mode replace)")
            }
            cleared = true
            context.log(.info, "mongo: write_mode replace: emptied \(connection.namespace)")
        }
        guard let bulk = bulkOptions.withUnsafeBufferPointer({ ferry_mongo_bulk_new(connection.collection, $0.baseAddress, UInt32($0.count)) }) else {
            throw PluginError.internal("mongo: could not start a bulk write")
        }
        defer { mongoc_bulk_operation_destroy(bulk) }
        // Bulk operation i is batch document operations[i] (refused documents are skipped).
        var operations: [Int] = []
        operations.reserveCapacity(batch.count)
        var error = ferry_mongo_error()
        for (index, document) in batch.enumerated() {
            if document.byteCount > maxDocumentBytes {
                result.rejects.reject(
                    index, "mongo: document is \(document.byteCount) bytes, over the server's maximum document size of \(maxDocumentBytes) bytes")
                continue
            }
            let added: Bool
            switch mode {
            case .insert, .replace:
                added = ferry_mongo_bulk_insert(bulk, document.bytes.bytePointer, UInt32(document.byteCount), &error)
            case .upsert, .missingOnly:
                guard let key = document.element(forKey: keyField) else {
                    result.rejects.reject(index, "mongo: record has no key field '\(keyField)'")
                    continue
                }
                added = addUpsert(bulk, document, key: key, error: &error)
            }
            if added {
                operations.append(index)
            } else {
                result.rejects.reject(index, "mongo: \(connection.uri.withoutSecret(error.text))")
            }
        }
        guard !operations.isEmpty else { return }
        var reply: UnsafeMutablePointer<UInt8>?
        var replyLength: UInt32 = 0
        let ok = ferry_mongo_bulk_execute(bulk, &reply, &replyLength, &error)
        defer { free(reply) }
        let replyView = DocumentView(UnsafeRawBufferPointer(start: reply, count: reply == nil ? 0 : Int(replyLength)))
        let writeErrors = replyView.element(forKey: "writeErrors")?.documentValue
        let hasWriteErrors = writeErrors.map { Array($0).count > 0 } ?? false
        if !ok && (!hasWriteErrors || MongoConnection.isTransient(error)) {
            // Nothing per document to blame, or a network failure part-way
            // through a bulk libmongoc split into several commands: fail the
            // whole batch, the host re-sends it (upserts make that harmless).
            throw connection.error(error, doing: "bulk write to \(connection.namespace)")
        }
        if let concernErrors = replyView.element(forKey: "writeConcernErrors")?.documentValue, Array(concernErrors).count > 0 {
            throw connection.error(error, doing: "bulk write to \(connection.namespace) (write concern)")
        }
        if let writeErrors {
            for item in writeErrors {
                guard let entry = item.documentValue else { continue }
                let operation = Self.integer(entry.element(forKey: "index")) ?? -1
                let code = Self.integer(entry.element(forKey: "code")).map { " (code \($0))" } ?? ""
                let message = entry.element(forKey: "errmsg")?.stringValue ?? "write error"
                let index = operation >= 0 && operation < operations.count ? operations[operation] : -1
                result.rejects.reject(index, "mongo: \(connection.uri.withoutSecret(message))\(code)")
            }
        }
        let inserted = Self.integer(replyView.element(forKey: "nInserted")) ?? 0
        let upserted = Self.integer(replyView.element(forKey: "nUpserted")) ?? 0
        let matched = Self.integer(replyView.element(forKey: "nMatched")) ?? 0
        let modified = Self.integer(replyView.element(forKey: "nModified")) ?? 0
        let failed = writeErrors.map { Array($0).count } ?? 0
        // Every operation is inserted, upserted, matched or a write error; a
        // reply that accounts for fewer would leave records neither written
        // nor dead-lettered, so the batch fails instead.
        guard inserted + upserted + matched + failed == operations.count else {
            throw PluginError.data(
                "mongo: the bulk write reply accounts for \(inserted + upserted + matched + failed) of \(operations.count) operations (nInserted \(inserted), nUpserted \(upserted), nMatched \(matched), writeErrors \(failed)): \(connection.uri.withoutSecret(error.text))")
        }
        result.inserted += UInt64(inserted + upserted)
        result.updated += UInt64(modified)
        result.unchanged += UInt64(max(0, matched - modified))
    }

    /// `replaceOne` / `updateOne` with upsert, matched on the key field.
    private func addUpsert(_ bulk: OpaquePointer, _ document: DocumentView, key: BSONElement, error: inout ferry_mongo_error) -> Bool {
        scratch.removeAll()
        var selector = DocumentWriter(buffer: scratch)
        selector.append(key)
        selector.finish()
        let selectorLength = scratch.count
        if mode == .upsert && replaceDocuments {
            return ferry_mongo_bulk_upsert(
                bulk, true, scratch.bytes.bytePointer, UInt32(selectorLength), document.bytes.bytePointer, UInt32(document.byteCount), &error)
        }
        // $set (or, missing-only, $setOnInsert) every field but the key, which
        // the selector already supplies; _id, immutable once stored, only on insert.
        var update = DocumentWriter(buffer: scratch)
        let keepsId = keyField != "_id" && mode == .upsert
        var hasFields = false
        update.appendDocument(mode == .missingOnly ? "$setOnInsert" : "$set") { fields in
            for element in document where element.key != keyField && !(keepsId && element.key == "_id") {
                fields.append(element)
                hasFields = true
            }
            if !hasFields { fields.append(key) }
        }
        if keepsId, let id = document.element(forKey: "_id") {
            update.appendDocument("$setOnInsert") { fields in fields.append(id) }
        }
        update.finish()
        let bytes = scratch.bytes
        return ferry_mongo_bulk_upsert(
            bulk, false, bytes.bytePointer, UInt32(selectorLength), bytes.bytePointer! + selectorLength,
            UInt32(bytes.count - selectorLength), &error)
    }

    static func integer(_ element: BSONElement?) -> Int? {
        guard let element else { return nil }
        if let value = element.int32Value { return Int(value) }
        if let value = element.int64Value { return Int(value) }
        if let value = element.doubleValue { return Int(value) }
        return nil
    }
}

extension UnsafeRawBufferPointer {
    var bytePointer: UnsafePointer<UInt8>? { baseAddress?.assumingMemoryBound(to: UInt8.self) }
}
