/// The files of a new C plugin project: one `.c` file on ferry_plugin.h and
/// libbson, and a Makefile that finds both with pkg-config (no paths of this
/// machine written into it).
extension PluginTemplate {
    var cFiles: [String: String] {
        let body: String
        switch kind {
        case "source": body = Self.cSource
        case "sink": body = Self.cSink
        default: body = Self.cTransform
        }
        return [
            "{{name}}.c": fill(Self.cCommon + "\n" + body),
            "Makefile": fill(Self.cMakefile),
            "sample-config.yaml": fill(sampleConfig),
            "README.md": readme(swift: false),
            ".gitignore": "*.so\n",
        ].reduce(into: [:]) { $0[fill($1.key)] = $1.value }
    }

    /// Tabs are the recipe lines' own: make needs them.
    static let cMakefile = #"""
        # Builds lib{{name}}.so against ferry_plugin.h and libbson. The header comes
        # from pkg-config (ferry-plugin.pc, installed by Ferry's `make install`), else
        # from include/ferry beside the bin/ that holds the `ferry` on PATH; or pass
        # FERRY_CFLAGS=-I/dir/holding/ferry_plugin.h.
        FERRY_CFLAGS ?= $(shell pkg-config --cflags ferry-plugin 2>/dev/null)
        ifeq ($(strip $(FERRY_CFLAGS)),)
        FERRY_CFLAGS := -I$(abspath $(dir $(realpath $(shell command -v ferry 2>/dev/null)))../include/ferry)
        endif
        BSON_CFLAGS ?= $(shell pkg-config --cflags libbson-1.0)
        BSON_LIBS ?= $(shell pkg-config --libs libbson-1.0)
        CFLAGS ?= -O2 -Wall -Wextra -std=c11
        HEADER := $(firstword $(foreach dir,$(patsubst -I%,%,$(filter -I%,$(FERRY_CFLAGS))),$(wildcard $(dir)/ferry_plugin.h)))

        lib{{name}}.so: {{name}}.c $(HEADER)
        	@test -n "$(HEADER)" || { echo "ferry_plugin.h not found with FERRY_CFLAGS=$(FERRY_CFLAGS): see README.md" >&2; exit 1; }
        	@test -n "$(BSON_LIBS)" || { echo "libbson not found by pkg-config (Debian: apt-get install libbson-dev pkg-config)" >&2; exit 1; }
        	$(CC) $(CFLAGS) $(FERRY_CFLAGS) $(BSON_CFLAGS) -shared -fPIC -fvisibility=hidden {{name}}.c -o $@ $(BSON_LIBS)

        clean:
        	rm -f lib{{name}}.so
        .PHONY: clean

        """#

    /// Includes, and a config reader on libbson that refuses unknown keys.
    static let cCommon = #"""
        /*
         * {{name}}: a Ferry {{kind}} plugin in C. A batch is BSON documents laid back
         * to back; libbson reads them (bson_reader_new_from_data, bson_iter_*) and
         * writes them (bson_writer_*). The contract is docs/plugin-abi.md in the
         * Ferry repository.
         */
        #define _POSIX_C_SOURCE 200809L
        #include <bson/bson.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <unistd.h>
        #include "ferry_plugin.h"

        /* The config arrives as a JSON object already checked against config_schema.
         * Keys the pipeline left out are absent: the host passes {}, not the schema's
         * defaults, so every default below is applied here. Returns NULL (and says
         * why) for anything but an object whose keys are all in `known`. */
        static bson_t *read_config(const ferry_open_args *args, const char *const *known, ferry_error *error) {
            const char *json = args->config_json ? args->config_json : "{}";
            size_t size = args->config_json ? args->config_size : 2;
            size_t first = 0;
            while (first < size && strchr(" \t\r\n", json[first])) first++;
            if (first == size || json[first] != '{') {
                ferry_set_error(error, "{{name}}: config must be a JSON object");
                return NULL;
            }
            bson_error_t parse_error;
            bson_t *config = bson_new_from_json((const uint8_t *)json, (ssize_t)size, &parse_error);
            if (!config) {
                snprintf(error->message, error->capacity, "{{name}}: config is not JSON: %s", parse_error.message);
                return NULL;
            }
            bson_iter_t iter;
            bson_iter_init(&iter, config);
            while (bson_iter_next(&iter)) {
                const char *key = bson_iter_key(&iter);
                int found = 0;
                for (const char *const *name = known; *name; name++) found |= strcmp(key, *name) == 0;
                if (!found) {
                    snprintf(error->message, error->capacity, "{{name}}: config: unknown key '%s'", key);
                    bson_destroy(config);
                    return NULL;
                }
            }
            return config;
        }


        """#

    /// Upper-cases one string field: reads with bson_reader/bson_iter, writes with bson_writer.
    static let cTransform = #"""
        /* One instance per worker; the host never calls one from two threads at once. */
        typedef struct {
            const ferry_host_api *host; /* valid until close() returns */
            char *field;                /* the string field to upper-case */
            ferry_reject *rejects;      /* the last call's rejects: valid until the next call */
            uint32_t reject_capacity;
        } {{ident}}_instance;

        static void plugin_close(void *instance) {
            {{ident}}_instance *self = instance;
            if (!self) return; /* close() also runs after a failed open() */
            bson_free(self->field);
            free(self->rejects);
            free(self);
        }

        static ferry_status plugin_open(const ferry_open_args *args, void **instance, ferry_error *error) {
            *instance = NULL;
            if (args->kind != FERRY_KIND_TRANSFORM) {
                ferry_set_error(error, "{{name}}: this plugin is a transform only");
                return FERRY_ERR_UNSUPPORTED;
            }
            switch (args->mode) {
            case FERRY_MODE_FULL:
            case FERRY_MODE_INCREMENTAL:
            case FERRY_MODE_MISSING_ONLY:
                break; /* a record is changed the same way in every mode */
            default:
                ferry_set_error(error, "{{name}}: unknown sync mode");
                return FERRY_ERR_UNSUPPORTED;
            }
            static const char *const known[] = {"field", NULL};
            bson_t *config = read_config(args, known, error);
            if (!config) return FERRY_ERR_CONFIG;
            const char *field = "message"; /* the schema's default, applied here */
            bson_iter_t iter;
            if (bson_iter_init_find(&iter, config, "field")) {
                if (!BSON_ITER_HOLDS_UTF8(&iter) || bson_iter_utf8(&iter, NULL)[0] == '\0') {
                    ferry_set_error(error, "{{name}}: config field 'field': expected a non-empty string");
                    bson_destroy(config);
                    return FERRY_ERR_CONFIG;
                }
                field = bson_iter_utf8(&iter, NULL);
            }
            {{ident}}_instance *self = calloc(1, sizeof *self);
            if (self) self->field = bson_strdup(field);
            bson_destroy(config);
            if (!self || !self->field) {
                plugin_close(self);
                ferry_set_error(error, "{{name}}: out of memory");
                return FERRY_ERR_INTERNAL;
            }
            self->host = args->host;
            *instance = self;
            return FERRY_OK;
        }

        static int add_reject({{ident}}_instance *self, ferry_result *result, uint32_t index, const char *reason) {
            if (result->reject_count == self->reject_capacity) {
                uint32_t capacity = self->reject_capacity ? self->reject_capacity * 2 : 16;
                ferry_reject *grown = realloc(self->rejects, capacity * sizeof *grown);
                if (!grown) return 0;
                self->rejects = grown;
                self->reject_capacity = capacity;
            }
            self->rejects[result->reject_count++] = (ferry_reject){.index = index, .reason = reason};
            result->rejects = self->rejects;
            return 1;
        }

        /* Copies `record` into the writer's next document with `field` upper-cased
         * (ASCII letters); every other field is appended as it is. */
        static int upper_case(const {{ident}}_instance *self, const bson_t *record, bson_writer_t *writer) {
            bson_iter_t iter;
            if (!bson_iter_init(&iter, record)) return 0;
            bson_t *out;
            if (!bson_writer_begin(writer, &out)) return 0;
            int ok = 1;
            while (ok && bson_iter_next(&iter)) {
                const char *key = bson_iter_key(&iter);
                if (BSON_ITER_HOLDS_UTF8(&iter) && strcmp(key, self->field) == 0) {
                    uint32_t length;
                    const char *text = bson_iter_utf8(&iter, &length);
                    char *upper = bson_malloc(length + 1);
                    for (uint32_t i = 0; i < length; i++) upper[i] = (text[i] >= 'a' && text[i] <= 'z') ? text[i] - 32 : text[i];
                    upper[length] = '\0';
                    ok = bson_append_utf8(out, key, -1, upper, (int)length);
                    bson_free(upper);
                } else {
                    ok = bson_append_iter(out, key, -1, &iter);
                }
            }
            if (ok) {
                bson_writer_end(writer);
            } else {
                bson_writer_rollback(writer);
            }
            return ok;
        }

        static ferry_status plugin_transform(void *instance, const ferry_batch *input, ferry_batch *output,
                                             ferry_result *result, ferry_error *error) {
            {{ident}}_instance *self = instance;
            memset(output, 0, sizeof *output);
            if (input->count == 0) return FERRY_OK; /* an empty batch may have data == NULL */
            if (ferry_is_cancelled(self->host)) {
                ferry_set_error(error, "{{name}}: cancelled");
                return FERRY_ERR_CANCELLED;
            }
            uint8_t *buffer = NULL; /* grows with bson_realloc_ctx; becomes the output batch */
            size_t buffer_size = 0;
            bson_writer_t *writer = bson_writer_new(&buffer, &buffer_size, 0, bson_realloc_ctx, NULL);
            bson_reader_t *reader = bson_reader_new_from_data(input->data, (size_t)input->size);
            uint32_t index = 0, kept = 0;
            ferry_status status = FERRY_OK;
            const bson_t *record;
            bool eof = false;
            while (index < input->count && (record = bson_reader_read(reader, &eof)) != NULL) {
                if (!bson_validate(record, BSON_VALIDATE_UTF8 | BSON_VALIDATE_UTF8_ALLOW_NULL, NULL)) {
                    /* The host checks framing, not content: a bad record is rejected, never trusted. */
                    if (!add_reject(self, result, index, "{{name}}: record is not valid BSON")) status = FERRY_ERR_INTERNAL;
                } else if (upper_case(self, record, writer)) {
                    kept++;
                } else if (!add_reject(self, result, index, "{{name}}: the changed record does not fit in a BSON document")) {
                    status = FERRY_ERR_INTERNAL;
                }
                if (status != FERRY_OK) break;
                index++;
            }
            size_t size = bson_writer_get_length(writer);
            bson_writer_destroy(writer); /* leaves the buffer to us */
            bson_reader_destroy(reader);
            if (status == FERRY_OK && index != input->count) {
                status = FERRY_ERR_DATA;
                snprintf(error->message, error->capacity, "{{name}}: the batch declares %u records but holds %u", input->count, index);
            } else if (status != FERRY_OK) {
                ferry_set_error(error, "{{name}}: out of memory");
            }
            if (status != FERRY_OK) {
                bson_free(buffer);
                result->reject_count = 0;
                result->rejects = NULL;
                return status;
            }
            output->data = buffer;
            output->size = size;
            output->count = kept;
            output->private_data = buffer;
            return FERRY_OK;
        }

        /* Touches only the batch's own memory, so it is safe from any thread. */
        static void plugin_release(void *instance, ferry_batch *batch) {
            (void)instance;
            bson_free(batch->private_data);
            memset(batch, 0, sizeof *batch);
        }

        static const ferry_plugin_descriptor descriptor = {
            .struct_size = sizeof(ferry_plugin_descriptor),
            .abi_major = FERRY_ABI_MAJOR,
            .abi_minor = FERRY_ABI_MINOR,
            .name = "{{name}}",
            .version = "0.1.0",
            .description = "Upper-cases a string field (a starting point)",
            .kinds = FERRY_KIND_TRANSFORM,
            .config_schema = "{\"type\":\"object\",\"additionalProperties\":false,"
                             "\"properties\":{\"field\":{\"type\":\"string\",\"default\":\"message\","
                             "\"description\":\"The string field to upper-case\"}}}",
            .open = plugin_open,
            .close = plugin_close,
            .release = plugin_release,
            .transform = plugin_transform,
        };

        FERRY_PLUGIN_EXPORT const ferry_plugin_descriptor *ferry_plugin_entry(void) { return &descriptor; }

        """#

    /// Emits `count` numbered records; the state carries a version byte.
    static let cSource = #"""
        /* The resume state: a format version byte, then the next id (little-endian
         * int64), so a later version of the plugin can tell an old state from a new one. */
        #define STATE_VERSION 1
        #define STATE_SIZE 9

        typedef struct {
            const ferry_host_api *host; /* valid until close() returns */
            int64_t count;
            int64_t next;
            uint32_t batch_size;
        } {{ident}}_instance;

        /* One allocation per batch, found again through private_data in release(). */
        typedef struct {
            uint8_t *documents;
            uint8_t state[STATE_SIZE];
        } {{ident}}_batch;

        static void plugin_close(void *instance) { free(instance); } /* free(NULL) does nothing */

        static void put_state(uint8_t *state, int64_t next) {
            state[0] = STATE_VERSION;
            for (int i = 0; i < 8; i++) state[1 + i] = (uint8_t)((uint64_t)next >> (8 * i));
        }

        static int64_t get_state(const uint8_t *state) {
            uint64_t next = 0;
            for (int i = 0; i < 8; i++) next |= (uint64_t)state[1 + i] << (8 * i);
            return (int64_t)next;
        }

        static ferry_status plugin_open(const ferry_open_args *args, void **instance, ferry_error *error) {
            *instance = NULL;
            if (args->kind != FERRY_KIND_SOURCE) {
                ferry_set_error(error, "{{name}}: this plugin is a source only");
                return FERRY_ERR_UNSUPPORTED;
            }
            switch (args->mode) {
            case FERRY_MODE_FULL:         /* the host passes no resume state: read from the start */
            case FERRY_MODE_INCREMENTAL:  /* read on from the resume state, if any */
            case FERRY_MODE_MISSING_ONLY: /* as incremental: the sink decides what is missing */
                break;
            default:
                ferry_set_error(error, "{{name}}: unknown sync mode");
                return FERRY_ERR_UNSUPPORTED;
            }
            static const char *const known[] = {"count", NULL};
            bson_t *config = read_config(args, known, error);
            if (!config) return FERRY_ERR_CONFIG;
            int64_t count = 10; /* the schema's default, applied here */
            bson_iter_t iter;
            int bad = 0;
            if (bson_iter_init_find(&iter, config, "count")) {
                if (BSON_ITER_HOLDS_INT32(&iter) || BSON_ITER_HOLDS_INT64(&iter)) {
                    count = bson_iter_as_int64(&iter);
                } else {
                    bad = 1;
                }
            }
            bson_destroy(config);
            if (bad || count < 0) {
                ferry_set_error(error, "{{name}}: config field 'count': expected an integer >= 0");
                return FERRY_ERR_CONFIG;
            }
            int64_t next = 0;
            if (args->resume_state) {
                if (args->resume_state_size != STATE_SIZE || args->resume_state[0] != STATE_VERSION) {
                    ferry_set_error(error, "{{name}}: resume state is not one this version wrote (version byte 1, 9 bytes)");
                    return FERRY_ERR_STATE;
                }
                next = get_state(args->resume_state);
            }
            {{ident}}_instance *self = calloc(1, sizeof *self);
            if (!self) {
                ferry_set_error(error, "{{name}}: out of memory");
                return FERRY_ERR_INTERNAL;
            }
            self->host = args->host;
            self->count = count;
            self->next = next;
            self->batch_size = args->batch_size ? args->batch_size : 100;
            *instance = self;
            return FERRY_OK;
        }

        /* Up to batch_size records {"_id": <int64>, "message": "hello <n>"}, then the state after them. */
        static ferry_status plugin_read(void *instance, ferry_batch *batch, ferry_error *error) {
            {{ident}}_instance *self = instance;
            if (self->next >= self->count) return FERRY_END;
            if (ferry_is_cancelled(self->host)) {
                ferry_set_error(error, "{{name}}: cancelled");
                return FERRY_ERR_CANCELLED;
            }
            {{ident}}_batch *memory = calloc(1, sizeof *memory);
            if (!memory) {
                ferry_set_error(error, "{{name}}: out of memory");
                return FERRY_ERR_INTERNAL;
            }
            size_t size = 0;
            bson_writer_t *writer = bson_writer_new(&memory->documents, &size, 0, bson_realloc_ctx, NULL);
            uint32_t count = 0;
            while (count < self->batch_size && self->next < self->count) {
                bson_t *record;
                char message[32];
                bson_writer_begin(writer, &record);
                snprintf(message, sizeof message, "hello %lld", (long long)self->next);
                BSON_APPEND_INT64(record, "_id", self->next);
                BSON_APPEND_UTF8(record, "message", message);
                bson_writer_end(writer);
                self->next++;
                count++;
            }
            size = bson_writer_get_length(writer);
            bson_writer_destroy(writer); /* leaves the documents to us */
            put_state(memory->state, self->next);
            batch->data = memory->documents;
            batch->size = size;
            batch->count = count;
            batch->state = memory->state;
            batch->state_size = STATE_SIZE;
            batch->private_data = memory;
            return FERRY_OK;
        }

        /* Touches only the batch's own memory, so it is safe from any thread. */
        static void plugin_release(void *instance, ferry_batch *batch) {
            (void)instance;
            {{ident}}_batch *memory = batch->private_data;
            if (memory) bson_free(memory->documents);
            free(memory);
            memset(batch, 0, sizeof *batch);
        }

        /* The records this run will still read: from the resume point, not from the start. */
        static ferry_status plugin_estimate(void *instance, uint64_t *total, ferry_error *error) {
            (void)error;
            {{ident}}_instance *self = instance;
            *total = self->count > self->next ? (uint64_t)(self->count - self->next) : 0;
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
            .capabilities = FERRY_CAP_ESTIMATE | FERRY_CAP_RESUMABLE,
            .config_schema = "{\"type\":\"object\",\"additionalProperties\":false,"
                             "\"properties\":{\"count\":{\"type\":\"integer\",\"minimum\":0,\"default\":10,"
                             "\"description\":\"How many records to emit\"}}}",
            .open = plugin_open,
            .close = plugin_close,
            .read = plugin_read,
            .release = plugin_release,
            .estimate = plugin_estimate,
        };

        FERRY_PLUGIN_EXPORT const ferry_plugin_descriptor *ferry_plugin_entry(void) { return &descriptor; }

        """#

    /// Writes JSON Lines; mode full replaces the file, incremental appends.
    static let cSink = #"""
        /* The file sink writes through one instance (FERRY_CAP_ORDERED_SINK): lines in
         * source order, and one truncation in mode full. */
        typedef struct {
            FILE *file;
            ferry_reject *rejects; /* the last call's rejects: valid until the next call */
            uint32_t reject_capacity;
        } {{ident}}_instance;

        static void plugin_close(void *instance) {
            {{ident}}_instance *self = instance;
            if (!self) return; /* close() also runs after a failed open() */
            if (self->file) fclose(self->file);
            free(self->rejects);
            free(self);
        }

        static ferry_status plugin_open(const ferry_open_args *args, void **instance, ferry_error *error) {
            *instance = NULL;
            if (args->kind != FERRY_KIND_SINK) {
                ferry_set_error(error, "{{name}}: this plugin is a sink only");
                return FERRY_ERR_UNSUPPORTED;
            }
            const char *how;
            switch (args->mode) {
            case FERRY_MODE_FULL: how = "wb"; break;        /* a full run replaces the target's contents */
            case FERRY_MODE_INCREMENTAL: how = "ab"; break; /* later runs append */
            case FERRY_MODE_MISSING_ONLY:
                ferry_set_error(error, "{{name}}: mode missing-only needs keys to look up; an appended file has none");
                return FERRY_ERR_UNSUPPORTED;
            default:
                ferry_set_error(error, "{{name}}: unknown sync mode");
                return FERRY_ERR_UNSUPPORTED;
            }
            static const char *const known[] = {"path", NULL};
            bson_t *config = read_config(args, known, error);
            if (!config) return FERRY_ERR_CONFIG;
            bson_iter_t iter;
            if (!bson_iter_init_find(&iter, config, "path") || !BSON_ITER_HOLDS_UTF8(&iter)) {
                ferry_set_error(error, "{{name}}: config field 'path' is required (a string)");
                bson_destroy(config);
                return FERRY_ERR_CONFIG;
            }
            {{ident}}_instance *self = calloc(1, sizeof *self);
            if (!self) {
                bson_destroy(config);
                ferry_set_error(error, "{{name}}: out of memory");
                return FERRY_ERR_INTERNAL;
            }
            self->file = fopen(bson_iter_utf8(&iter, NULL), how);
            if (!self->file) {
                snprintf(error->message, error->capacity, "{{name}}: cannot open '%s' for writing", bson_iter_utf8(&iter, NULL));
                bson_destroy(config);
                plugin_close(self);
                return FERRY_ERR_CONFIG;
            }
            bson_destroy(config);
            *instance = self;
            return FERRY_OK;
        }

        static int add_reject({{ident}}_instance *self, ferry_result *result, uint32_t index, const char *reason) {
            if (result->reject_count == self->reject_capacity) {
                uint32_t capacity = self->reject_capacity ? self->reject_capacity * 2 : 16;
                ferry_reject *grown = realloc(self->rejects, capacity * sizeof *grown);
                if (!grown) return 0;
                self->rejects = grown;
                self->reject_capacity = capacity;
            }
            self->rejects[result->reject_count++] = (ferry_reject){.index = index, .reason = reason};
            result->rejects = self->rejects;
            return 1;
        }

        /* One line of relaxed extended JSON per record; commit() makes them durable. */
        static ferry_status plugin_write(void *instance, const ferry_batch *batch, ferry_result *result, ferry_error *error) {
            {{ident}}_instance *self = instance;
            if (batch->count == 0) return FERRY_OK; /* an empty batch may have data == NULL */
            bson_reader_t *reader = bson_reader_new_from_data(batch->data, (size_t)batch->size);
            const bson_t *record;
            bool eof = false;
            uint32_t index = 0;
            ferry_status status = FERRY_OK;
            while (index < batch->count && (record = bson_reader_read(reader, &eof)) != NULL) {
                char *json = NULL;
                if (bson_validate(record, BSON_VALIDATE_UTF8 | BSON_VALIDATE_UTF8_ALLOW_NULL, NULL)) {
                    json = bson_as_relaxed_extended_json(record, NULL);
                }
                if (!json) {
                    if (!add_reject(self, result, index, "{{name}}: record is not valid BSON")) status = FERRY_ERR_INTERNAL;
                } else {
                    if (fputs(json, self->file) == EOF || fputc('\n', self->file) == EOF) status = FERRY_ERR_TRANSIENT;
                    else result->inserted++;
                    bson_free(json);
                }
                if (status != FERRY_OK) break;
                index++;
            }
            bson_reader_destroy(reader);
            if (status == FERRY_OK && index != batch->count) {
                snprintf(error->message, error->capacity, "{{name}}: the batch declares %u records but holds %u", batch->count, index);
                return FERRY_ERR_DATA;
            }
            if (status != FERRY_OK) ferry_set_error(error, status == FERRY_ERR_TRANSIENT ? "{{name}}: write failed" : "{{name}}: out of memory");
            return status;
        }

        /* The host saves its checkpoint right after commit returns: data first on disk. */
        static ferry_status plugin_commit(void *instance, ferry_error *error) {
            {{ident}}_instance *self = instance;
            if (fflush(self->file) != 0 || fsync(fileno(self->file)) != 0) {
                ferry_set_error(error, "{{name}}: flush failed");
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
            .description = "Writes records to a JSON Lines file (a starting point)",
            .kinds = FERRY_KIND_SINK,
            .capabilities = FERRY_CAP_ORDERED_SINK,
            .config_schema = "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"path\"],"
                             "\"properties\":{\"path\":{\"type\":\"string\",\"description\":\"The file to write\"}}}",
            .open = plugin_open,
            .close = plugin_close,
            .write = plugin_write,
            .commit = plugin_commit,
        };

        FERRY_PLUGIN_EXPORT const ferry_plugin_descriptor *ferry_plugin_entry(void) { return &descriptor; }

        """#
}
