import FerryPluginKit

enum FilePlugin {
    static var manifest: PluginManifest {
        PluginManifest(
            name: "file", version: "1.0.0",
            description: "Reads JSON Lines or CSV files; writes JSON Lines (the no-server default)",
            options: [
                .string("path", required: true, "File to read (source: a regular file) or append to (sink)"),
                .oneOf("format", ["jsonl", "csv"], "Source format; default from the extension (.csv, else jsonl)"),
                .string("csv_delimiter", default: ",", "CSV field separator (one byte)"),
                .boolean("csv_infer_types", default: true, "CSV: turn numbers and true/false into typed values, empty into null"),
                .integer("max_line_bytes", default: Int64(FileSource.defaultMaxLineBytes), minimum: 1, maximum: Int64(FileSource.maxLineBytesLimit),
                    "Source: the longest line (one record) accepted, newline excluded; a longer one fails the run naming file and line"),
                .boolean("fsync", default: true, "Sink: fsync on every commit, before the checkpoint moves"),
                .boolean("create_dirs", default: true, "Sink: create missing parent directories"),
                ConfigOption("key", .any,
                    "Sink, for ferry diff and repair only: the field name (or list of names) identifying a record; writing ignores it"),
            ],
            capabilities: [.shardedRead, .estimate, .preview, .orderedSink, .readBack, .delete],
            source: FileSource.self, sink: FileSink.self, hasCheck: true)
    }
}

@_cdecl("ferry_plugin_entry")
public func ferryPluginEntry() -> UnsafeRawPointer { PluginExport.entry(FilePlugin.manifest) }
