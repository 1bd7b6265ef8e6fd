import FerryPluginKit

enum MapPlugin {
    static var manifest: PluginManifest {
        PluginManifest(
            name: "map", version: "1.0.0",
            description: "Renames, sets, defaults, drops, copies, casts and templates fields",
            options: [
                .init(
                    "steps", .any, required: true,
                    "List of one-key steps applied in order: rename, set, default, drop, copy, cast, template (see Plugins/Map/README.md)"),
            ],
            transform: MapTransform.self)
    }
}

@_cdecl("ferry_plugin_entry")
public func ferryPluginEntry() -> UnsafeRawPointer { PluginExport.entry(MapPlugin.manifest) }
