#if canImport(Glibc)
import Glibc
#endif
import CFerryPlugin
import FerryCore
import FerryPluginKit

/// The function pointers a plugin's descriptor sets, read from the plugin's
/// own descriptor and only within its struct_size, so a missing one can be
/// named by its field (the host's `LoadedPlugin` only says what it can call).
struct DescriptorFields {
    let structSize: Int
    /// Field names of the set function pointers, e.g. "read", "diff_info".
    let present: Set<String>

    /// Each function pointer's field name and offset in the descriptor.
    static let functionFields: [(name: String, offset: Int)] = {
        func at(_ path: PartialKeyPath<ferry_plugin_descriptor>) -> Int { MemoryLayout<ferry_plugin_descriptor>.offset(of: path)! }
        return [
            ("open", at(\.open)), ("close", at(\.close)), ("read", at(\.read)), ("release", at(\.release)),
            ("transform", at(\.transform)), ("write", at(\.write)), ("commit", at(\.commit)), ("check", at(\.check)),
            ("preview", at(\.preview)), ("estimate", at(\.estimate)), ("diff_info", at(\.diff_info)), ("digest", at(\.digest)),
            ("select_buckets", at(\.select_buckets)), ("delete_keys", at(\.delete_keys)),
        ]
    }()

    /// The descriptor of the already loaded `plugin` (dlopen with RTLD_NOLOAD
    /// finds the same library; the entry point may be called more than once).
    init(of plugin: LoadedPlugin) throws {
        var file = plugin.path
        if let resolved = realpath(plugin.path, nil) {
            file = String(cString: resolved)
            free(resolved)
        }
        guard let handle = dlopen(file, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD) else {
            throw ConformanceSuite.Failure("\(plugin.path): loaded, but not found again to read its descriptor")
        }
        defer { dlclose(handle) }
        guard let symbol = dlsym(handle, FERRY_PLUGIN_ENTRY_SYMBOL),
            let descriptor = unsafeBitCast(symbol, to: ferry_plugin_entry_fn.self)()
        else { throw ConformanceSuite.Failure("\(plugin.path): ferry_plugin_entry gave no descriptor the second time") }
        let base = UnsafeRawPointer(descriptor)
        let size = Int(base.load(as: UInt32.self))
        var present: Set<String> = []
        for (name, offset) in Self.functionFields {
            let width = MemoryLayout<UnsafeRawPointer?>.size
            guard offset + width <= size else { continue }
            if base.loadUnaligned(fromByteOffset: offset, as: UnsafeRawPointer?.self) != nil { present.insert(name) }
        }
        structSize = size
        self.present = present
    }

    /// What each ABI 1.1 capability needs, per the header.
    static let needs: [(capability: PluginCapabilities, flag: String, fields: [String])] = [
        (.readBack, "FERRY_CAP_READ_BACK", ["read", "release", "diff_info"]),
        (.digest, "FERRY_CAP_DIGEST", ["digest", "select_buckets", "diff_info"]),
        (.delete, "FERRY_CAP_DELETE", ["delete_keys"]),
    ]

    /// "FERRY_CAP_X is declared but field is NULL" for every declared 1.1
    /// capability whose function is missing, or lies past struct_size.
    func missingForCapabilities(_ capabilities: PluginCapabilities) -> [String] {
        var problems: [String] = []
        for need in Self.needs where capabilities.contains(need.capability) {
            for field in need.fields where !present.contains(field) {
                let offset = Self.functionFields.first { $0.name == field }!.offset
                let why = offset >= structSize ? "lies past its struct_size (\(structSize) bytes; built against an older ABI)" : "is NULL"
                problems.append("declares \(need.flag) but \(field) \(why)")
            }
        }
        return problems
    }
}
