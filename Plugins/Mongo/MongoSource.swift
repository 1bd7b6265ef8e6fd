import CLibMongoc
import FerryPluginKit

/// Reads a collection in key order (or (cursor, key) order when
/// incremental), handing the server's BSON bytes straight into the batch.
/// Each batch's state is the position after its last document; a lost
/// connection re-opens the find from the last position handed out.
final class MongoSource: SourcePlugin {
    let connection: MongoConnection
    let query: MongoQuery
    let context: PluginContext
    let keyField: String
    let cursorField: String?
    let batchSize: Int
    let wantsEstimate: Bool
    /// After the last batch handed out; nil before the first.
    var position: MongoPosition?
    var cursor: OpaquePointer?
    /// Finds still to run after the open cursor; nil: plan them from `position`.
    var pendingPhases: [[UInt8]]?
    var exhausted = false

    init(config: PluginConfig, context: PluginContext) throws {
        self.context = context
        keyField = try Self.fieldPath(config, "key") ?? "_id"
        let cursorField = try Self.fieldPath(config, "cursor")
        // Without a cursor an incremental run still resumes after the last key
        // (new documents with higher keys, e.g. ObjectIds, are picked up).
        self.cursorField = context.mode == .incremental ? cursorField : nil
        if context.mode == .incremental && cursorField == nil {
            context.log(.info, "mongo: incremental without a 'cursor' field: only documents with a key above the saved one are read")
        }
        batchSize = context.batchSize
        wantsEstimate = try config.bool("estimate") ?? true
        let projection = try MongoConfig.document(config, "projection")
        if let projection { try MongoQuery.validate(projection: projection, keeps: [keyField] + (cursorField.map { [$0] } ?? [])) }
        query = MongoQuery(
            userFilter: try MongoConfig.document(config, "filter"), projection: projection,
            keyField: keyField, cursorField: self.cursorField, shardIndex: context.shardIndex, shardCount: context.shardCount,
            batchSize: try config.int("batch_size"), allowDiskUse: try config.bool("allow_disk_use") ?? false)
        if let state = context.resumeState, context.mode != .full {
            position = try MongoPosition.decode(
                state, keyField: keyField, cursorField: self.cursorField, shardIndex: context.shardIndex, shardCount: context.shardCount)
        }
        connection = try MongoConnection(config: config)
        try connection.ping()
    }

    deinit { closeCursor() }

    static func fieldPath(_ config: PluginConfig, _ field: String) throws(PluginError) -> String? {
        guard let name = try config.string(field) else { return nil }
        guard !name.isEmpty, !name.hasPrefix("$"), !name.hasPrefix("."), !name.hasSuffix("."), !name.contains("..") else {
            throw .config("mongo: field '\(field)': '\(name)' is not a field path")
        }
        return name
    }

    func check() throws {
        try connection.ping()
        try connection.checkCollection()
    }

    /// Opens the next find; false when every phase has been read.
    private func openNextCursor() throws(PluginError) -> Bool {
        if pendingPhases == nil { pendingPhases = query.phases(after: position) }
        guard let filter = pendingPhases?.first else { return false }
        pendingPhases?.removeFirst()
        let options = query.options()
        let opened = filter.withUnsafeBufferPointer { f in
            options.withUnsafeBufferPointer { o in
                ferry_mongo_find(connection.collection, f.baseAddress, UInt32(f.count), o.baseAddress, UInt32(o.count))
            }
        }
        guard let opened else { throw .internal("mongo: could not build the find command") }
        cursor = opened
        return true
    }

    private func closeCursor() {
        if let cursor { mongoc_cursor_destroy(cursor) }
        cursor = nil
    }

    func read(into batch: BatchBuilder) throws -> Bool {
        if context.isCancelled { throw PluginError.cancelled() }
        if exhausted { return false }
        var error = ferry_mongo_error()
        var lastOffset = -1
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        while batch.count < batchSize {
            if cursor == nil {
                guard try openNextCursor() else {
                    exhausted = true
                    break
                }
            }
            let status = ferry_mongo_cursor_next(cursor, &data, &length, &error)
            if status == 1 {
                lastOffset = batch.byteCount
                batch.append(encoded: UnsafeRawBufferPointer(start: data, count: Int(length)))
            } else if status == 0 {
                closeCursor()
            } else {
                // The host drops this batch and retries; the next read plans
                // the finds again from the last position handed out.
                closeCursor()
                pendingPhases = nil
                throw connection.error(error, doing: "read \(connection.namespace)")
            }
        }
        if lastOffset >= 0 {
            let bytes = batch.view.bytes
            let last = DocumentView(UnsafeRawBufferPointer(rebasing: bytes[lastOffset...]))
            position = MongoPosition(after: last, keyField: keyField, cursorField: cursorField)
        }
        if let position {
            batch.state = position.encoded(
                keyField: keyField, cursorField: cursorField, shardIndex: context.shardIndex, shardCount: context.shardCount)
        }
        return !exhausted
    }

    func estimate() throws -> UInt64? {
        guard wantsEstimate else { return nil }
        var error = ferry_mongo_error()
        var count: Int64 = 0
        if query.userFilter == nil && context.shardCount == 1 && position == nil {
            count = ferry_mongo_count(connection.collection, nil, 0, &error)
        } else {
            for filter in query.phases(after: position) where count >= 0 {
                let part = filter.withUnsafeBufferPointer { ferry_mongo_count(connection.collection, $0.baseAddress, UInt32($0.count), &error) }
                count = part < 0 ? -1 : count + part
            }
        }
        guard count >= 0 else {
            context.log(.warn, "mongo: no estimate: \(connection.uri.withoutSecret(error.text))")
            return nil
        }
        return UInt64(count)
    }
}

/// `ferry diff` matches records by the field the source reads in order of;
/// documents vary, so there is no field list. No digest: SecantusDB has no
/// aggregation operator that hashes a document (see README.md).
extension MongoSource: DiffDescribing {
    func diffInfo() throws -> DiffInfo { DiffInfo(key: [keyField]) }
}
