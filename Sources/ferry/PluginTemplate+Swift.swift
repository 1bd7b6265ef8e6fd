/// The files of a new Swift plugin project: a SwiftPM package whose one
/// dynamic library depends on FerryPluginKit and exports only the entry symbol.
extension PluginTemplate {
    func swiftFiles(sdk: SDK) -> [String: String] {
        let body: String
        switch kind {
        case "source": body = Self.swiftSource
        case "sink": body = Self.swiftSink
        default: body = Self.swiftTransform
        }
        let package = Self.swiftPackage
            .replacingOccurrences(of: "{{dependency}}", with: sdk.dependency)
            .replacingOccurrences(of: "{{sdkPackage}}", with: sdk.packageIdentity)
        return [
            "Package.swift": fill(package),
            "plugin.exports": "{ global: ferry_plugin_entry; local: *; };\n",
            "Sources/{{Camel}}/{{Camel}}.swift": fill(body),
            "sample-config.yaml": fill(sampleConfig),
            "README.md": readme(swift: true),
            ".gitignore": ".build/\nPackage.resolved\n*.so\n",
        ].reduce(into: [:]) { $0[fill($1.key)] = $1.value }
    }

    static let swiftPackage = """
        // swift-tools-version:6.0
        import PackageDescription

        // A Ferry plugin: one dynamic library whose only exported symbol is
        // ferry_plugin_entry (the version script hides the rest).
        let package = Package(
            name: "{{name}}",
            products: [
                .library(name: "{{Camel}}", type: .dynamic, targets: ["{{Camel}}"]),
            ],
            dependencies: [
                // FerryPluginKit, the Swift SDK: build with the toolchain that built your ferry.
                {{dependency}},
            ],
            targets: [
                .target(
                    name: "{{Camel}}",
                    dependencies: [.product(name: "FerryPluginKit", package: "{{sdkPackage}}")],
                    linkerSettings: [
                        .unsafeFlags(["-Xlinker", "--version-script=\\(Context.packageDirectory)/plugin.exports"]),
                    ]),
            ]
        )

        """

    static let swiftSource = """
        import FerryPluginKit

        /// Emits `count` records `{_id, message}`. The state after each batch is
        /// a format version byte, then the next id: a run resumes exactly where
        /// the last commit left it, and a later version can still read it.
        final class {{Camel}}Source: SourcePlugin {
            static let stateVersion: UInt8 = 1
            let count: Int
            let batchSize: Int
            var next = 0

            init(config: PluginConfig, context: PluginContext) throws {
                // The SDK refuses a kind the manifest does not declare; the mode is ours to check.
                switch context.mode {
                case .full, .incremental, .missingOnly: break  // every mode reads from the state it is given
                }
                count = try config.int("count") ?? 10
                batchSize = context.batchSize
                if let state = context.resumeState {
                    guard state.count == 9, state[0] == Self.stateVersion else {
                        throw PluginError.state("{{name}}: resume state is not version \\(Self.stateVersion) (\\(state.count) bytes): not written by this plugin")
                    }
                    next = state.dropFirst().withUnsafeBytes { Int(Int64(littleEndian: $0.loadUnaligned(as: Int64.self))) }
                }
            }

            func read(into batch: BatchBuilder) throws -> Bool {
                var emitted = 0
                while emitted < batchSize && next < count {
                    let id = next
                    batch.appendDocument { document in
                        document.append("_id", Int64(id))
                        document.append("message", "hello \\(id)")
                    }
                    next += 1
                    emitted += 1
                }
                var position = Int64(next).littleEndian
                batch.state = [Self.stateVersion] + withUnsafeBytes(of: &position) { Array($0) }
                return next < count
            }

            /// The records this run will read: from the resume point, not from the start.
            func estimate() throws -> UInt64? { UInt64(max(0, count - next)) }
        }

        enum {{Camel}}Plugin {
            static var manifest: PluginManifest {
                PluginManifest(
                    name: "{{name}}", version: "0.1.0", description: "Emits numbered greeting records (a starting point)",
                    options: [.integer("count", default: 10, minimum: 0, "How many records to emit")],
                    capabilities: [.estimate, .resumable],
                    source: {{Camel}}Source.self)
            }
        }

        @_cdecl("ferry_plugin_entry")
        public func ferryPluginEntry() -> UnsafeRawPointer { PluginExport.entry({{Camel}}Plugin.manifest) }

        """

    static let swiftTransform = """
        import FerryPluginKit

        /// Upper-cases one string field; records without it pass unchanged.
        final class {{Camel}}Transform: TransformPlugin {
            let field: String

            init(config: PluginConfig, context: PluginContext) throws {
                // The SDK refuses a kind the manifest does not declare; the mode is ours to check.
                switch context.mode {
                case .full, .incremental, .missingOnly: break  // a record is changed the same way in every mode
                }
                field = try config.string("field") ?? "message"
            }

            func transform(_ input: BatchView, into output: BatchBuilder, rejects: inout Rejects) throws -> TransformOutcome {
                for document in input {
                    var record = document.decode()
                    if case .string(let text)? = record[field] {
                        record[field] = .string(text.uppercased())
                    }
                    output.append(record)
                }
                return .built
            }
        }

        enum {{Camel}}Plugin {
            static var manifest: PluginManifest {
                PluginManifest(
                    name: "{{name}}", version: "0.1.0", description: "Upper-cases a string field (a starting point)",
                    options: [.string("field", default: "message", "The field to upper-case")],
                    transform: {{Camel}}Transform.self)
            }
        }

        @_cdecl("ferry_plugin_entry")
        public func ferryPluginEntry() -> UnsafeRawPointer { PluginExport.entry({{Camel}}Plugin.manifest) }

        """

    static let swiftSink = """
        import FerryPluginKit
        import Foundation

        /// Writes records as JSON Lines to `path`: in mode full the file is
        /// replaced, in mode incremental appended to. `write` only buffers;
        /// `commit` writes and fsyncs, because the host saves its checkpoint
        /// right after commit returns.
        final class {{Camel}}Sink: SinkPlugin {
            let file: FileHandle
            var pending = Data()

            init(config: PluginConfig, context: PluginContext) throws {
                let path = try config.requiredString("path")
                let replace: Bool
                switch context.mode {
                case .full: replace = true
                case .incremental: replace = false
                case .missingOnly:
                    throw PluginError.unsupported("{{name}}: mode missing-only needs keys to look up; an appended file has none")
                }
                if replace || !FileManager.default.fileExists(atPath: path) {
                    guard FileManager.default.createFile(atPath: path, contents: nil) else {
                        throw PluginError.config("{{name}}: cannot create '\\(path)'")
                    }
                }
                guard let file = FileHandle(forWritingAtPath: path) else {
                    throw PluginError.config("{{name}}: cannot open '\\(path)' for writing")
                }
                self.file = file
                _ = try file.seekToEnd()
            }

            func write(_ batch: BatchView, result: inout SinkResult) throws {
                for (index, document) in batch.enumerated() {
                    guard let line = ExtendedJSON.render(document) else {
                        result.rejects.reject(index, "cannot render the record as JSON")
                        continue
                    }
                    pending.append(contentsOf: line.utf8)
                    pending.append(UInt8(ascii: "\\n"))
                    result.inserted += 1
                }
            }

            func commit() throws {
                try file.write(contentsOf: pending)
                try file.synchronize()
                pending.removeAll(keepingCapacity: true)
            }

            func close() { try? file.close() }
        }

        enum {{Camel}}Plugin {
            static var manifest: PluginManifest {
                PluginManifest(
                    name: "{{name}}", version: "0.1.0", description: "Writes records to a JSON Lines file (a starting point)",
                    options: [.string("path", required: true, "The file to write")],
                    // One instance, batches in order: lines stay in source order, and mode full truncates once.
                    capabilities: [.orderedSink],
                    sink: {{Camel}}Sink.self)
            }
        }

        @_cdecl("ferry_plugin_entry")
        public func ferryPluginEntry() -> UnsafeRawPointer { PluginExport.entry({{Camel}}Plugin.manifest) }

        """
}
