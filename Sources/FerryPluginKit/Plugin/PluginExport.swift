#if canImport(Glibc)
import Glibc
#endif
import CFerryPlugin
import Synchronization

/// Builds the C descriptor for a plugin written with the SDK.
///
/// Each plugin image links its own copy of this module, so the one manifest
/// registered here is that plugin's. Export it in one line:
///
/// ```swift
/// @_cdecl("ferry_plugin_entry")
/// public func ferryPluginEntry() -> UnsafeRawPointer { PluginExport.entry(MyPlugin.manifest) }
/// ```
public enum PluginExport {
    /// Returns the descriptor, building it on the first call.
    public static func entry(_ manifest: @autoclosure () -> PluginManifest) -> UnsafeRawPointer {
        registry.withLock { state in
            if let descriptor = state.descriptor { return UnsafeRawPointer(descriptor) }
            let manifest = manifest()
            state.manifest = manifest
            let descriptor = UnsafeMutablePointer<ferry_plugin_descriptor>.allocate(capacity: 1)
            descriptor.initialize(to: makeDescriptor(manifest))
            state.descriptor = descriptor
            return UnsafeRawPointer(descriptor)
        }
    }

    static var manifest: PluginManifest? { registry.withLock { $0.manifest } }

    struct Registration: @unchecked Sendable {
        var manifest: PluginManifest?
        var descriptor: UnsafeMutablePointer<ferry_plugin_descriptor>?
    }

    static let registry = Mutex(Registration())

    static func makeDescriptor(_ manifest: PluginManifest) -> ferry_plugin_descriptor {
        var descriptor = ferry_plugin_descriptor()
        descriptor.struct_size = UInt32(MemoryLayout<ferry_plugin_descriptor>.size)
        descriptor.abi_major = UInt16(FERRY_ABI_MAJOR)
        descriptor.abi_minor = UInt16(FERRY_ABI_MINOR)
        // Descriptor strings live as long as the image: strdup'd once, never freed.
        descriptor.name = UnsafePointer(strdup(manifest.name))
        descriptor.version = UnsafePointer(strdup(manifest.version))
        descriptor.description = UnsafePointer(strdup(manifest.description))
        descriptor.config_schema = UnsafePointer(strdup(manifest.configSchema))
        descriptor.kinds = manifest.kinds.rawValue
        var capabilities = manifest.capabilities
        if manifest.source != nil { capabilities.insert(.resumable) }
        descriptor.capabilities = capabilities.rawValue
        descriptor.open = Thunks.open
        descriptor.close = Thunks.close
        if manifest.source != nil {
            descriptor.read = Thunks.read
            if manifest.capabilities.contains(.estimate) { descriptor.estimate = Thunks.estimate }
        }
        if manifest.source != nil || manifest.transform != nil { descriptor.release = Thunks.release }
        if manifest.transform != nil { descriptor.transform = Thunks.transform }
        if manifest.sink != nil {
            descriptor.write = Thunks.write
            descriptor.commit = Thunks.commit
            if manifest.capabilities.contains(.preview) { descriptor.preview = Thunks.preview }
        }
        if manifest.hasCheck { descriptor.check = Thunks.check }
        if manifest.capabilities.contains(.readBack) {
            descriptor.read = Thunks.read
            descriptor.release = Thunks.release
        }
        if !manifest.capabilities.isDisjoint(with: [.readBack, .digest]) { descriptor.diff_info = DiffThunks.diffInfo }
        if manifest.capabilities.contains(.digest) {
            descriptor.digest = DiffThunks.digest
            descriptor.select_buckets = DiffThunks.selectBuckets
        }
        if manifest.capabilities.contains(.delete) { descriptor.delete_keys = DiffThunks.deleteKeys }
        return descriptor
    }
}

/// The state of one open instance, behind the opaque `void *instance`.
final class InstanceBox {
    let context: PluginContext
    let instance: any PluginInstance
    let builder = BatchBuilder()
    let rejects = RejectStorage()
    /// What the last diff_info or digest call handed out, kept until the next.
    let diffAnswers = DiffAnswerStorage()

    init(context: PluginContext, instance: any PluginInstance) {
        self.context = context
        self.instance = instance
    }

    static func from(_ pointer: UnsafeMutableRawPointer?) -> InstanceBox? {
        pointer.map { Unmanaged<InstanceBox>.fromOpaque($0).takeUnretainedValue() }
    }
}

/// The reject list of the last call, kept alive (C array and strings) until
/// the next call on the instance, as the ABI promises.
final class RejectStorage {
    var items: UnsafeMutablePointer<ferry_reject>?
    var count = 0

    func store(_ rejects: Rejects, into result: UnsafeMutablePointer<ferry_result>?) {
        clear()
        guard !rejects.isEmpty else { return }
        let items = UnsafeMutablePointer<ferry_reject>.allocate(capacity: rejects.count)
        for (offset, item) in rejects.items.enumerated() {
            items[offset] = ferry_reject(index: UInt32(item.index), reserved: 0, reason: UnsafePointer(strdup(item.reason)))
        }
        self.items = items
        count = rejects.count
        result?.pointee.rejects = UnsafePointer(items)
        result?.pointee.reject_count = UInt32(rejects.count)
    }

    func clear() {
        guard let items else { return }
        for index in 0..<count { free(UnsafeMutableRawPointer(mutating: items[index].reason)) }
        items.deallocate()
        self.items = nil
        count = 0
    }

    deinit { clear() }
}

/// Non-capturing C entry points shared by every SDK plugin.
enum Thunks {
    static func fail(_ error: any Error, _ out: UnsafeMutablePointer<ferry_error>?) -> ferry_status {
        let status: ferry_status
        let message: String
        if let error = error as? PluginError {
            status = error.status
            message = error.message
        } else if let error = error as? BSONError {
            status = ferry_status(FERRY_ERR_DATA)
            message = error.description
        } else {
            status = ferry_status(FERRY_ERR_INTERNAL)
            message = String(describing: error)
        }
        ferry_set_error(out, message)
        return status
    }

    static let open: @convention(c) (
        UnsafePointer<ferry_open_args>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?, UnsafeMutablePointer<ferry_error>?
    ) -> ferry_status = { args, instance, errorOut in
        instance?.pointee = nil
        guard let args else { return fail(PluginError.internal("open called without arguments"), errorOut) }
        guard let manifest = PluginExport.manifest else {
            return fail(PluginError.internal("plugin entry was not called before open"), errorOut)
        }
        let context = PluginContext(args)
        do {
            let json: String =
                if let text = args.pointee.config_json {
                    String(decoding: UnsafeRawBufferPointer(start: text, count: Int(args.pointee.config_size)), as: UTF8.self)
                } else { "" }
            let config = try PluginConfig(json: json, options: manifest.options)
            let opened: any PluginInstance
            switch context.kind {
            case .source:
                guard let type = manifest.source else { throw PluginError.unsupported("\(manifest.name) is not a source") }
                opened = try type.init(config: config, context: context)
            case .transform:
                guard let type = manifest.transform else { throw PluginError.unsupported("\(manifest.name) is not a transform") }
                opened = try type.init(config: config, context: context)
            case .sink:
                guard let type = manifest.sink else { throw PluginError.unsupported("\(manifest.name) is not a sink") }
                opened = try type.init(config: config, context: context)
            default:
                throw PluginError.unsupported("unknown kind \(context.kind.rawValue)")
            }
            let box = InstanceBox(context: context, instance: opened)
            instance?.pointee = Unmanaged.passRetained(box).toOpaque()
            return ferry_status(FERRY_OK)
        } catch {
            return fail(error, errorOut)
        }
    }

    static let close: @convention(c) (UnsafeMutableRawPointer?) -> Void = { pointer in
        guard let pointer else { return }
        let box = Unmanaged<InstanceBox>.fromOpaque(pointer)
        box.takeUnretainedValue().instance.close()
        box.release()
    }

    static let read: @convention(c) (
        UnsafeMutableRawPointer?, UnsafeMutablePointer<ferry_batch>?, UnsafeMutablePointer<ferry_error>?
    ) -> ferry_status = { pointer, batch, errorOut in
        guard let box = InstanceBox.from(pointer), let batch else {
            return fail(PluginError.internal("read on an instance that is not open"), errorOut)
        }
        let read: (BatchBuilder) throws -> Bool
        if let source = box.instance as? any SourcePlugin {
            read = source.read(into:)
        } else if let sink = box.instance as? any ReadBackSink {
            read = sink.readBack(into:)
        } else {
            return fail(PluginError.internal("read on an instance that is neither a source nor a sink that reads back"), errorOut)
        }
        do {
            let builder = box.builder
            builder.reset()
            _ = try read(builder)
            if builder.isEmpty {
                batch.pointee = ferry_batch()
                return ferry_status(FERRY_END)
            }
            builder.finish(into: &batch.pointee)
            return ferry_status(FERRY_OK)
        } catch {
            box.builder.reset()
            return fail(error, errorOut)
        }
    }

    static let release: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<ferry_batch>?) -> Void = { _, batch in
        // Touches only the batch's own memory: safe on any thread.
        guard let batch else { return }
        BatchBuilder.release(&batch.pointee)
    }

    static let transform: @convention(c) (
        UnsafeMutableRawPointer?, UnsafePointer<ferry_batch>?, UnsafeMutablePointer<ferry_batch>?,
        UnsafeMutablePointer<ferry_result>?, UnsafeMutablePointer<ferry_error>?
    ) -> ferry_status = { pointer, input, output, result, errorOut in
        guard let box = InstanceBox.from(pointer), let transform = box.instance as? any TransformPlugin,
            let input, let output
        else {
            return fail(PluginError.internal("transform on an instance that is not an open transform"), errorOut)
        }
        box.rejects.clear()
        let builder = box.builder
        builder.reset()
        var rejects = Rejects()
        do {
            let outcome = try transform.transform(BatchView(input.pointee), into: builder, rejects: &rejects)
            switch outcome {
            case .passthrough:
                guard rejects.isEmpty else {
                    throw PluginError.internal("a passthrough output cannot also reject records")
                }
                builder.reset()
                output.pointee = ferry_batch()
                output.pointee.data = input.pointee.data
                output.pointee.size = input.pointee.size
                output.pointee.count = input.pointee.count
                output.pointee.flags = UInt32(FERRY_BATCH_PASSTHROUGH)
            case .built:
                builder.finish(into: &output.pointee)
            }
            box.rejects.store(rejects, into: result)
            return ferry_status(FERRY_OK)
        } catch {
            builder.reset()
            return fail(error, errorOut)
        }
    }

    static func store(_ sinkResult: SinkResult, _ box: InstanceBox, _ result: UnsafeMutablePointer<ferry_result>?) {
        guard let result else { return }
        if Int(result.pointee.struct_size) >= MemoryLayout<ferry_result>.offset(of: \ferry_result.unchanged)! + 8 {
            result.pointee.inserted = sinkResult.inserted
            result.pointee.updated = sinkResult.updated
            result.pointee.unchanged = sinkResult.unchanged
        }
        box.rejects.store(sinkResult.rejects, into: result)
    }

    static let write: @convention(c) (
        UnsafeMutableRawPointer?, UnsafePointer<ferry_batch>?, UnsafeMutablePointer<ferry_result>?,
        UnsafeMutablePointer<ferry_error>?
    ) -> ferry_status = { pointer, batch, result, errorOut in
        guard let box = InstanceBox.from(pointer), let sink = box.instance as? any SinkPlugin, let batch else {
            return fail(PluginError.internal("write on an instance that is not an open sink"), errorOut)
        }
        box.rejects.clear()
        var sinkResult = SinkResult()
        do {
            try sink.write(BatchView(batch.pointee), result: &sinkResult)
            store(sinkResult, box, result)
            return ferry_status(FERRY_OK)
        } catch {
            return fail(error, errorOut)
        }
    }

    static let preview: @convention(c) (
        UnsafeMutableRawPointer?, UnsafePointer<ferry_batch>?, UnsafeMutablePointer<ferry_result>?,
        UnsafeMutablePointer<ferry_error>?
    ) -> ferry_status = { pointer, batch, result, errorOut in
        guard let box = InstanceBox.from(pointer), let sink = box.instance as? any SinkPlugin, let batch else {
            return fail(PluginError.internal("preview on an instance that is not an open sink"), errorOut)
        }
        box.rejects.clear()
        var sinkResult = SinkResult()
        do {
            try sink.preview(BatchView(batch.pointee), result: &sinkResult)
            store(sinkResult, box, result)
            return ferry_status(FERRY_OK)
        } catch {
            return fail(error, errorOut)
        }
    }

    static let commit: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<ferry_error>?) -> ferry_status = {
        pointer, errorOut in
        guard let box = InstanceBox.from(pointer), let sink = box.instance as? any SinkPlugin else {
            return fail(PluginError.internal("commit on an instance that is not an open sink"), errorOut)
        }
        do {
            try sink.commit()
            return ferry_status(FERRY_OK)
        } catch {
            return fail(error, errorOut)
        }
    }

    static let check: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<ferry_error>?) -> ferry_status = {
        pointer, errorOut in
        guard let box = InstanceBox.from(pointer) else {
            return fail(PluginError.internal("check on an instance that is not open"), errorOut)
        }
        do {
            try box.instance.check()
            return ferry_status(FERRY_OK)
        } catch {
            return fail(error, errorOut)
        }
    }

    static let estimate: @convention(c) (
        UnsafeMutableRawPointer?, UnsafeMutablePointer<UInt64>?, UnsafeMutablePointer<ferry_error>?
    ) -> ferry_status = { pointer, total, errorOut in
        guard let box = InstanceBox.from(pointer), let source = box.instance as? any SourcePlugin else {
            return fail(PluginError.internal("estimate on an instance that is not an open source"), errorOut)
        }
        do {
            guard let value = try source.estimate() else {
                return fail(PluginError.unsupported("no estimate available"), errorOut)
            }
            total?.pointee = value
            return ferry_status(FERRY_OK)
        } catch {
            return fail(error, errorOut)
        }
    }
}
