import FerryPluginKit

enum MongoPlugin {
    static var manifest: PluginManifest {
        PluginManifest(
            name: "mongo", version: "1.0.0",
            description: "MongoDB collections: raw-BSON source (full, incremental, sharded), unordered bulk-write sink",
            options: [
                .string("uri", required: true, "MongoDB connection string; use ${ENV} or ${file:PATH} for secrets (messages name its hosts and user, never its password)"),
                .string("database", required: true, "Database name"),
                .string("collection", required: true, "Collection name"),
                ConfigOption("filter", .any, "Source: query filter, as extended JSON text or a YAML/JSON object"),
                ConfigOption("projection", .any, "Source: projection, as extended JSON text or an object (key and cursor fields are always kept)"),
                .string("key", default: "_id", "Unique key field: source read order and resume point; sink upsert match field (top level), and the key ferry diff and repair match and delete by"),
                .string("cursor", "Source, incremental: field that grows on every change (e.g. updatedAt); reads resume after the saved (cursor, key)"),
                .integer("batch_size", minimum: 1, maximum: 100_000, "Source: documents per server reply (cursor batchSize); default: the server's (replies up to 16 MiB)"),
                .boolean("estimate", default: true, "Source: count the documents to read, for progress and ETA (free on MongoDB; a scan on SecantusDB)"),
                .boolean("allow_disk_use", default: false, "Source, and sink read-back (ferry diff): let the server sort on disk (needed on MongoDB for a key or cursor field without an index)"),
                .integer("server_selection_timeout_ms", default: 5000, minimum: 1, "How long to look for a usable server before failing (unless the URI sets it)"),
                .integer("connect_timeout_ms", default: 5000, minimum: 1, "TCP connect timeout (unless the URI sets it)"),
                .oneOf("write_mode", ["auto", "upsert", "insert", "missing-only", "replace"], default: "auto",
                    "Sink: auto = missing-only in missing-only runs, else upsert; replace deletes every document once per run, then inserts"),
                .oneOf("update", ["replace", "set"], default: "replace", "Sink, upsert: replace the whole document, or $set its fields (other fields kept)"),
                ConfigOption("write_concern", .any, "Sink: write concern: \"majority\", a number, or an object {w, j, wtimeout}"),
            ],
            capabilities: [.shardedRead, .estimate, .preview, .upsert, .resumable, .orderedSink, .readBack, .delete],
            source: MongoSource.self, sink: MongoSink.self, hasCheck: true)
    }
}

@_cdecl("ferry_plugin_entry")
public func ferryPluginEntry() -> UnsafeRawPointer { PluginExport.entry(MongoPlugin.manifest) }
