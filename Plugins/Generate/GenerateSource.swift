import FerryPluginKit

/// Emits `count` synthetic product records: the zero-dependency source for
/// demos, tests and the runtime benchmark.
final class GenerateSource: SourcePlugin {
    static let categories: [String] = ["books", "games", "music", "garden", "kitchen", "toys", "tools", "sports"]

    let count: Int
    let shardIndex: Int
    let shardCount: Int
    let batchSize: Int
    /// Next record number (across all shards) this instance would emit.
    @exclusivity(unchecked) var next: Int

    init(config: PluginConfig, context: PluginContext) throws {
        count = try config.int("count") ?? 1000
        shardIndex = context.shardIndex
        shardCount = context.shardCount
        batchSize = context.batchSize
        next = shardIndex
        if let state = context.resumeState {
            guard state.count == 8 else { throw PluginError.state("generate: resume state has \(state.count) bytes, expected 8") }
            let saved = state.withUnsafeBytes { Int(Int64(littleEndian: $0.loadUnaligned(as: Int64.self))) }
            guard saved >= 0, saved % shardCount == shardIndex || saved >= count else {
                throw PluginError.state("generate: resume position \(saved) does not belong to shard \(shardIndex)/\(shardCount)")
            }
            next = saved
        }
    }

    func read(into batch: BatchBuilder) throws -> Bool {
        var emitted = 0
        // The SKU text is built in a reused stack buffer: no per-record String.
        var sku: (UInt64, UInt64) = (0, 0)
        while emitted < batchSize && next < count {
            let id = next
            withUnsafeMutableBytes(of: &sku) { skuBytes in
                var value = id
                skuBytes[0] = UInt8(ascii: "S"); skuBytes[1] = UInt8(ascii: "K"); skuBytes[2] = UInt8(ascii: "U"); skuBytes[3] = UInt8(ascii: "-")
                for position in stride(from: 11, through: 4, by: -1) {
                    skuBytes[position] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
                batch.appendDocument { doc in
                    doc.append("id", Int64(id))
                    doc.appendString("sku", utf8: UnsafeRawBufferPointer(rebasing: skuBytes[0..<12]))
                    doc.append("category", Self.categories[id & 7])
                    doc.append("price", Double(id % 10_000) / 100)
                    doc.append("stock", Int32(truncatingIfNeeded: id % 500))
                }
            }
            emitted += 1
            next += shardCount
        }
        var position = Int64(next).littleEndian
        batch.state = withUnsafeBytes(of: &position) { Array($0) }
        return next < count
    }

    func estimate() throws -> UInt64? {
        let remaining = max(0, count - shardIndex)
        return UInt64((remaining + shardCount - 1) / shardCount)
    }
}

enum GeneratePlugin {
    static var manifest: PluginManifest {
        PluginManifest(
            name: "generate", version: "1.0.0",
            description: "Generates synthetic product records (id, sku, category, price, stock)",
            options: [.integer("count", default: 1000, minimum: 0, "How many records to emit in all (split across shards)")],
            capabilities: [.shardedRead, .estimate],
            source: GenerateSource.self)
    }
}

@_cdecl("ferry_plugin_entry")
public func ferryPluginEntry() -> UnsafeRawPointer { PluginExport.entry(GeneratePlugin.manifest) }
