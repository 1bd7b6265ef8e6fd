/// The files of a new plugin project, per language and kind. Kept as plain
/// text with `{{…}}` slots so what an author gets is easy to read here.
struct PluginTemplate {
    let name: String
    let kind: String
    let ferryPath: String

    /// `my-source` → `MySource`: the Swift module and product name.
    var camel: String {
        name.split(whereSeparator: { $0 == "-" || $0 == "_" }).map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

    func libraryPath(_ swift: Bool) -> String { swift ? ".build/debug/lib\(camel).so" : "lib\(name).so" }
    func buildCommand(_ swift: Bool) -> String { swift ? "swift build" : "make" }

    func fill(_ text: String) -> String {
        text.replacingOccurrences(of: "{{name}}", with: name)
            .replacingOccurrences(of: "{{Camel}}", with: camel)
            .replacingOccurrences(of: "{{kind}}", with: kind)
            .replacingOccurrences(of: "{{ferry}}", with: ferryPath)
            .replacingOccurrences(of: "{{ferryPackage}}", with: ferryPath.split(separator: "/").last.map(String.init) ?? "ferry")
    }

    var sampleConfig: String {
        switch kind {
        case "source": "# Opens the source: emit 25 records.\ncount: 25\n"
        case "sink": "# Opens the sink: where records are appended.\npath: /tmp/{{name}}-sample.out\n"
        default: "# Opens the transform.\n"
        }
    }

    // MARK: - Swift

    var swiftFiles: [String: String] {
        let body: String
        switch kind {
        case "source": body = Self.swiftSource
        case "sink": body = Self.swiftSink
        default: body = Self.swiftTransform
        }
        let transformConfig = "field: message\n"
        return [
            "Package.swift": fill(Self.swiftPackage),
            "plugin.exports": "{ global: ferry_plugin_entry; local: *; };\n",
            "Sources/{{Camel}}/{{Camel}}.swift": fill(body),
            "sample-config.yaml": fill(kind == "transform" ? "# Opens the transform.\n" + transformConfig : sampleConfig),
            "README.md": fill(Self.readme(swift: true)),
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
                // The Ferry source tree, for the SDK (FerryPluginKit).
                .package(path: "{{ferry}}"),
            ],
            targets: [
                .target(
                    name: "{{Camel}}",
                    dependencies: [.product(name: "FerryPluginKit", package: "{{ferryPackage}}")],
                    linkerSettings: [
                        .unsafeFlags(["-Xlinker", "--version-script=\\(Context.packageDirectory)/plugin.exports"]),
                    ]),
            ]
        )

        """

    static let swiftSource = """
        import FerryPluginKit

        /// Emits `count` records `{_id, message}`. The state after each batch is
        /// the next id, so a run resumes exactly where the last commit left it.
        final class {{Camel}}Source: SourcePlugin {
            let count: Int
            let batchSize: Int
            var next = 0

            init(config: PluginConfig, context: PluginContext) throws {
                count = try config.int("count") ?? 10
                batchSize = context.batchSize
                if let state = context.resumeState {
                    guard state.count == 8 else {
                        throw PluginError.state("{{name}}: resume state has \\(state.count) bytes, expected 8")
                    }
                    next = state.withUnsafeBytes { Int(Int64(littleEndian: $0.loadUnaligned(as: Int64.self))) }
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
                batch.state = withUnsafeBytes(of: &position) { Array($0) }
                return next < count
            }

            func estimate() throws -> UInt64? { UInt64(max(0, count - next)) }
        }

        enum {{Camel}}Plugin {
            static var manifest: PluginManifest {
                PluginManifest(
                    name: "{{name}}", version: "0.1.0", description: "Emits numbered greeting records (a starting point)",
                    options: [.integer("count", default: 10, minimum: 0, "How many records to emit")],
                    capabilities: [.estimate],
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

        /// Appends records as JSON Lines to `path`. `write` only buffers;
        /// `commit` writes and fsyncs, because the host saves its checkpoint
        /// right after commit returns.
        final class {{Camel}}Sink: SinkPlugin {
            let file: FileHandle
            var pending = Data()

            init(config: PluginConfig, context: PluginContext) throws {
                let path = try config.requiredString("path")
                if !FileManager.default.fileExists(atPath: path) {
                    FileManager.default.createFile(atPath: path, contents: nil)
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
                    name: "{{name}}", version: "0.1.0", description: "Appends records to a JSON Lines file (a starting point)",
                    options: [.string("path", required: true, "The file to append to")],
                    sink: {{Camel}}Sink.self)
            }
        }

        @_cdecl("ferry_plugin_entry")
        public func ferryPluginEntry() -> UnsafeRawPointer { PluginExport.entry({{Camel}}Plugin.manifest) }

        """

    // MARK: - C

    var cFiles: [String: String] {
        let body: String
        switch kind {
        case "source": body = Self.cSource
        case "sink": body = Self.cSink
        default: body = Self.cTransform
        }
        return [
            "{{name}}.c": fill(Self.cCommon + body),
            "Makefile": fill(Self.cMakefile),
            "sample-config.yaml": fill(kind == "transform" ? "# Opens the transform: keep one record in 2.\nevery: 2\n" : sampleConfig),
            "README.md": fill(Self.readme(swift: false)),
            ".gitignore": "*.so\n",
        ].reduce(into: [:]) { $0[fill($1.key)] = $1.value }
    }

    static let cMakefile = """
        # Builds the plugin against nothing but ferry_plugin.h.
        FERRY ?= {{ferry}}
        CFLAGS ?= -O2 -Wall -Wextra -std=c11
        lib{{name}}.so: {{name}}.c $(FERRY)/Sources/CFerryPlugin/include/ferry_plugin.h
        \t$(CC) $(CFLAGS) -shared -fPIC -fvisibility=hidden -I $(FERRY)/Sources/CFerryPlugin/include {{name}}.c -o $@
        clean:
        \trm -f lib{{name}}.so
        .PHONY: clean

        """

    /// A strict reader for a config of at most one key: `{}` or `{"KEY": VALUE}`.
    /// Anything else is refused, so a typo never opens with defaults.
    static let cCommon = """
        /*
         * {{name}} — a Ferry {{kind}} plugin in C, built against ferry_plugin.h only.
         * The contract is docs/plugin-abi.md in the Ferry tree.
         */
        #include <ctype.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include "ferry_plugin.h"

        /* Reads `{}` or `{"<key>": <value>}` (value: an integer, or a string without
         * escapes). Returns 1 and sets *found when the key is there, 0 on anything else. */
        static int read_config(const char *json, const char *key, int is_string, long *number, char *text, size_t text_size,
                               int *found, ferry_error *error) {
            const char *p = json ? json : "{}";
            *found = 0;
            while (isspace((unsigned char)*p)) p++;
            if (*p++ != '{') goto bad;
            while (isspace((unsigned char)*p)) p++;
            if (*p == '}') return 1;
            size_t key_length = strlen(key);
            if (*p != '"' || strncmp(p + 1, key, key_length) != 0 || p[1 + key_length] != '"') goto bad;
            p += key_length + 2;
            while (isspace((unsigned char)*p)) p++;
            if (*p++ != ':') goto bad;
            while (isspace((unsigned char)*p)) p++;
            if (is_string) {
                if (*p++ != '"') goto bad;
                const char *end = strchr(p, '"');
                if (!end || (size_t)(end - p) >= text_size || memchr(p, '\\\\', (size_t)(end - p))) goto bad;
                memcpy(text, p, (size_t)(end - p));
                text[end - p] = 0;
                p = end + 1;
            } else {
                char *end = NULL;
                *number = strtol(p, &end, 10);
                if (end == p) goto bad;
                p = end;
            }
            while (isspace((unsigned char)*p)) p++;
            if (*p++ != '}') goto bad;
            while (isspace((unsigned char)*p)) p++;
            if (*p) goto bad;
            *found = 1;
            return 1;
        bad:
            snprintf(error->message, error->capacity, "config: expected {} or {\\"%s\\": <%s>}", key, is_string ? "string" : "integer");
            return 0;
        }

        """

    static let cTransform = """
        typedef struct {
            long every;
            unsigned long long seen; /* records seen by this instance, across batches */
        } {{Camel}}_state;

        static ferry_status plugin_open(const ferry_open_args *args, void **instance, ferry_error *error) {
            *instance = NULL;
            long every = 1;
            int found;
            if (!read_config(args->config_json, "every", 0, &every, NULL, 0, &found, error)) return FERRY_ERR_CONFIG;
            if (every < 1) {
                ferry_set_error(error, "config field 'every': expected an integer >= 1");
                return FERRY_ERR_CONFIG;
            }
            {{Camel}}_state *state = calloc(1, sizeof *state);
            if (!state) {
                ferry_set_error(error, "out of memory");
                return FERRY_ERR_INTERNAL;
            }
            state->every = every;
            *instance = state;
            return FERRY_OK;
        }

        static void plugin_close(void *instance) { free(instance); }

        /* Keeps one record in `every`, copying the kept documents into a batch of its own. */
        static ferry_status plugin_transform(void *instance, const ferry_batch *input, ferry_batch *output,
                                             ferry_result *result, ferry_error *error) {
            (void)result;
            {{Camel}}_state *state = instance;
            uint8_t *data = malloc(input->size ? input->size : 1);
            if (!data) {
                ferry_set_error(error, "out of memory");
                return FERRY_ERR_INTERNAL;
            }
            uint64_t offset = 0, size = 0;
            uint32_t kept = 0;
            for (uint32_t i = 0; i < input->count; i++) {
                int32_t length;
                if (offset + 4 > input->size) break;
                memcpy(&length, input->data + offset, 4); /* BSON lengths are little-endian */
                if (length < 5 || offset + (uint64_t)length > input->size) {
                    free(data);
                    ferry_set_error(error, "input batch is malformed");
                    return FERRY_ERR_DATA;
                }
                if (state->seen++ % (unsigned long long)state->every == 0) {
                    memcpy(data + size, input->data + offset, (size_t)length);
                    size += (uint64_t)length;
                    kept++;
                }
                offset += (uint64_t)length;
            }
            memset(output, 0, sizeof *output);
            output->data = data;
            output->size = size;
            output->count = kept;
            output->private_data = data;
            return FERRY_OK;
        }

        /* Touches only the batch's own memory, so it is safe from any thread. */
        static void plugin_release(void *instance, ferry_batch *batch) {
            (void)instance;
            free(batch->private_data);
            memset(batch, 0, sizeof *batch);
        }

        static const ferry_plugin_descriptor descriptor = {
            .struct_size = sizeof(ferry_plugin_descriptor),
            .abi_major = FERRY_ABI_MAJOR,
            .abi_minor = FERRY_ABI_MINOR,
            .name = "{{name}}",
            .version = "0.1.0",
            .description = "Keeps one record in every N (a starting point)",
            .kinds = FERRY_KIND_TRANSFORM,
            .config_schema = "{\\"type\\":\\"object\\",\\"additionalProperties\\":false,"
                             "\\"properties\\":{\\"every\\":{\\"type\\":\\"integer\\",\\"minimum\\":1,\\"default\\":1,"
                             "\\"description\\":\\"Keep one record in this many\\"}}}",
            .open = plugin_open,
            .close = plugin_close,
            .release = plugin_release,
            .transform = plugin_transform,
        };

        FERRY_PLUGIN_EXPORT const ferry_plugin_descriptor *ferry_plugin_entry(void) { return &descriptor; }

        """

    static let cSource = """
        typedef struct {
            long count;
            long next;
            uint32_t batch_size;
        } {{Camel}}_state;

        static ferry_status plugin_open(const ferry_open_args *args, void **instance, ferry_error *error) {
            *instance = NULL;
            long count = 10;
            int found;
            if (!read_config(args->config_json, "count", 0, &count, NULL, 0, &found, error)) return FERRY_ERR_CONFIG;
            if (count < 0) {
                ferry_set_error(error, "config field 'count': expected an integer >= 0");
                return FERRY_ERR_CONFIG;
            }
            long next = 0;
            if (args->resume_state) {
                if (args->resume_state_size != sizeof next) {
                    ferry_set_error(error, "resume state is not 8 bytes: not written by this plugin");
                    return FERRY_ERR_STATE;
                }
                memcpy(&next, args->resume_state, sizeof next);
            }
            {{Camel}}_state *state = calloc(1, sizeof *state);
            if (!state) {
                ferry_set_error(error, "out of memory");
                return FERRY_ERR_INTERNAL;
            }
            state->count = count;
            state->next = next;
            state->batch_size = args->batch_size ? args->batch_size : 100;
            *instance = state;
            return FERRY_OK;
        }

        static void plugin_close(void *instance) { free(instance); }

        static void put_i32(uint8_t *p, int32_t value) { memcpy(p, &value, 4); } /* little-endian hosts */

        /* Appends {"_id": <int64>, "message": "hello <n>"} at `out`; returns its length. */
        static size_t put_record(uint8_t *out, long id) {
            char message[32];
            int text = snprintf(message, sizeof message, "hello %ld", id);
            size_t p = 4;
            out[p++] = 0x12; memcpy(out + p, "_id", 4); p += 4;
            int64_t value = id; memcpy(out + p, &value, 8); p += 8;
            out[p++] = 0x02; memcpy(out + p, "message", 8); p += 8;
            put_i32(out + p, text + 1); p += 4;
            memcpy(out + p, message, (size_t)text + 1); p += (size_t)text + 1;
            out[p++] = 0;
            put_i32(out, (int32_t)p);
            return p;
        }

        /* One allocation holds the documents, then the state (the next id). */
        static ferry_status plugin_read(void *instance, ferry_batch *batch, ferry_error *error) {
            {{Camel}}_state *state = instance;
            memset(batch, 0, sizeof *batch);
            if (state->next >= state->count) return FERRY_END;
            uint8_t *data = malloc((size_t)state->batch_size * 64 + sizeof state->next);
            if (!data) {
                ferry_set_error(error, "out of memory");
                return FERRY_ERR_INTERNAL;
            }
            size_t size = 0;
            uint32_t count = 0;
            while (count < state->batch_size && state->next < state->count) {
                size += put_record(data + size, state->next++);
                count++;
            }
            memcpy(data + size, &state->next, sizeof state->next);
            batch->data = data;
            batch->size = size;
            batch->count = count;
            batch->state = data + size;
            batch->state_size = sizeof state->next;
            batch->private_data = data;
            return FERRY_OK;
        }

        static void plugin_release(void *instance, ferry_batch *batch) {
            (void)instance;
            free(batch->private_data);
            memset(batch, 0, sizeof *batch);
        }

        static ferry_status plugin_estimate(void *instance, uint64_t *total, ferry_error *error) {
            (void)error;
            {{Camel}}_state *state = instance;
            *total = state->count > state->next ? (uint64_t)(state->count - state->next) : 0;
            return FERRY_OK;
        }

        static const ferry_plugin_descriptor descriptor = {
            .struct_size = sizeof(ferry_plugin_descriptor),
            .abi_major = FERRY_ABI_MAJOR,
            .abi_minor = FERRY_ABI_MINOR,
            .name = "{{name}}",
            .version = "0.1.0",
            .description = "Emits numbered greeting records (a starting point)",
            .kinds = FERRY_KIND_SOURCE,
            .capabilities = FERRY_CAP_ESTIMATE,
            .config_schema = "{\\"type\\":\\"object\\",\\"additionalProperties\\":false,"
                             "\\"properties\\":{\\"count\\":{\\"type\\":\\"integer\\",\\"minimum\\":0,\\"default\\":10,"
                             "\\"description\\":\\"How many records to emit\\"}}}",
            .open = plugin_open,
            .close = plugin_close,
            .read = plugin_read,
            .release = plugin_release,
            .estimate = plugin_estimate,
        };

        FERRY_PLUGIN_EXPORT const ferry_plugin_descriptor *ferry_plugin_entry(void) { return &descriptor; }

        """

    static let cSink = """
        typedef struct {
            FILE *file;
        } {{Camel}}_state;

        static ferry_status plugin_open(const ferry_open_args *args, void **instance, ferry_error *error) {
            *instance = NULL;
            char path[4096];
            int found;
            if (!read_config(args->config_json, "path", 1, NULL, path, sizeof path, &found, error)) return FERRY_ERR_CONFIG;
            if (!found) {
                ferry_set_error(error, "config field 'path' is required");
                return FERRY_ERR_CONFIG;
            }
            {{Camel}}_state *state = calloc(1, sizeof *state);
            if (!state) {
                ferry_set_error(error, "out of memory");
                return FERRY_ERR_INTERNAL;
            }
            state->file = fopen(path, "ab");
            if (!state->file) {
                snprintf(error->message, error->capacity, "cannot open '%s' for appending", path);
                free(state);
                return FERRY_ERR_CONFIG;
            }
            *instance = state;
            return FERRY_OK;
        }

        static void plugin_close(void *instance) {
            {{Camel}}_state *state = instance;
            if (!state) return;
            if (state->file) fclose(state->file);
            free(state);
        }

        /* Appends the batch's BSON documents as they are (read them with bsondump). */
        static ferry_status plugin_write(void *instance, const ferry_batch *batch, ferry_result *result, ferry_error *error) {
            {{Camel}}_state *state = instance;
            if (batch->size && fwrite(batch->data, 1, (size_t)batch->size, state->file) != batch->size) {
                ferry_set_error(error, "write failed");
                return FERRY_ERR_TRANSIENT;
            }
            result->inserted = batch->count;
            return FERRY_OK;
        }

        /* The host checkpoints right after commit returns: flush to the kernel first. */
        static ferry_status plugin_commit(void *instance, ferry_error *error) {
            {{Camel}}_state *state = instance;
            if (fflush(state->file) != 0) {
                ferry_set_error(error, "flush failed");
                return FERRY_ERR_TRANSIENT;
            }
            return FERRY_OK;
        }

        static const ferry_plugin_descriptor descriptor = {
            .struct_size = sizeof(ferry_plugin_descriptor),
            .abi_major = FERRY_ABI_MAJOR,
            .abi_minor = FERRY_ABI_MINOR,
            .name = "{{name}}",
            .version = "0.1.0",
            .description = "Appends records to a BSON file (a starting point)",
            .kinds = FERRY_KIND_SINK,
            .config_schema = "{\\"type\\":\\"object\\",\\"additionalProperties\\":false,\\"required\\":[\\"path\\"],"
                             "\\"properties\\":{\\"path\\":{\\"type\\":\\"string\\",\\"description\\":\\"The file to append to\\"}}}",
            .open = plugin_open,
            .close = plugin_close,
            .write = plugin_write,
            .commit = plugin_commit,
        };

        FERRY_PLUGIN_EXPORT const ferry_plugin_descriptor *ferry_plugin_entry(void) { return &descriptor; }

        """

    static func readme(swift: Bool) -> String {
        """
        # {{name}}

        A Ferry {{kind}} plugin, generated by `ferry plugin new`. Edit it from here.

        ## Build and check

        ```sh
        \(swift ? "swift build" : "make")
        ferry plugin test \(swift ? ".build/debug/lib{{Camel}}.so" : "lib{{name}}.so") --config sample-config.yaml
        ```

        `ferry plugin test` runs the conformance suite (descriptor, config errors, batches, state,
        threads, leaks) in child processes and exits non-zero if a check fails. Run it in your CI.

        ## Use it in a pipeline

        Copy the `.so` into a plugins directory (`--plugins DIR` or `$FERRY_PLUGIN_PATH`), then
        refer to it by name:

        ```yaml
        \("{{kind}}" == "transform" ? "transforms:\n  - plugin: {{name}}\n    config: {}" : "{{kind}}:\n  plugin: {{name}}\n  config: {}  # see sample-config.yaml")
        ```

        The contract your plugin must keep (ownership, threading, errors, versioning) is
        `docs/plugin-abi.md` in the Ferry tree ({{ferry}}); the guide is `docs/writing-a-plugin.md`.

        """
    }
}
