#if canImport(Glibc)
import Glibc
#endif
import FerryPluginKit

/// Hands its input on unchanged, without a copy. `jitter_ms` adds a random
/// delay per batch so tests can make parallel workers finish out of order.
final class PassthroughTransform: TransformPlugin {
    let jitterMicroseconds: UInt32

    init(config: PluginConfig, context: PluginContext) throws {
        jitterMicroseconds = UInt32(try config.int("jitter_ms") ?? 0) * 1000
    }

    func transform(_ input: BatchView, into output: BatchBuilder, rejects: inout Rejects) throws -> TransformOutcome {
        if jitterMicroseconds > 0 { usleep(UInt32.random(in: 0...jitterMicroseconds)) }
        return .passthrough
    }
}

enum PassthroughPlugin {
    static var manifest: PluginManifest {
        PluginManifest(
            name: "passthrough", version: "1.0.0", description: "Passes records through unchanged (zero copy)",
            options: [.integer("jitter_ms", default: 0, minimum: 0, "Random delay of up to this many ms per batch (tests)")],
            transform: PassthroughTransform.self)
    }
}

@_cdecl("ferry_plugin_entry")
public func ferryPluginEntry() -> UnsafeRawPointer { PluginExport.entry(PassthroughPlugin.manifest) }
