/*
 * An upsert sink keyed by record key, for the runtime model test. write()
 * stages the keys of a batch; commit() appends them, as one write(2) to the
 * file at config "log", as 16-byte entries (uint32 run, uint32 zero, int64
 * key, little-endian), and a failed commit rolls the staged keys back. The
 * test reads that file as the target: a key's entries are its committed
 * writes, so an upsert target holds the set of keys.
 * Built with -DORDERED it declares FERRY_CAP_ORDERED_SINK (and is named
 * "model-sink-ordered"), so the host must hand it batches one at a time in
 * source order through a single instance.
 *
 * Config: log (path), run, rule_seed, reject_pct (a key whose hash with salt 3
 * is below reject_pct is rejected to the dead letters), seed, transient_pct,
 * transient_max (transient failures of write or commit per batch before it
 * succeeds), fail_key (a batch holding it fails permanently; -1: never),
 * fail_transient, cancel_key (a batch holding it logs "model-cancel"),
 * cancel_aware (write and commit return FERRY_ERR_CANCELLED once cancelled).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ferry_plugin.h"

#ifdef ORDERED
#define SINK_NAME "model-sink-ordered"
#define SINK_CAPABILITIES (FERRY_CAP_UPSERT | FERRY_CAP_ORDERED_SINK)
#else
#define SINK_NAME "model-sink"
#define SINK_CAPABILITIES FERRY_CAP_UPSERT
#endif

static int64_t config_int(const char *json, const char *key, int64_t fallback) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *at = strstr(json, pattern);
    if (!at) return fallback;
    at += strlen(pattern);
    while (*at == ' ') at++;
    return strtoll(at, NULL, 10);
}

/* A JSON string value without escapes other than "\/" and "\\"; 0 if absent. */
static int config_string(const char *json, const char *key, char *out, size_t capacity) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *at = strstr(json, pattern);
    if (!at) return 0;
    at += strlen(pattern);
    while (*at == ' ') at++;
    if (*at++ != '"') return 0;
    size_t n = 0;
    while (*at && *at != '"' && n + 1 < capacity) {
        if (*at == '\\' && at[1]) at++;
        out[n++] = *at++;
    }
    out[n] = 0;
    return *at == '"';
}

static uint64_t mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static int rule(int64_t rule_seed, int64_t key, uint64_t salt, int64_t pct) {
    return (int64_t)(mix((uint64_t)rule_seed * 1000003u + (uint64_t)key * 4u + salt) % 100) < pct;
}

enum { DOC_SIZE = 16, ENTRY_SIZE = 16 };

static int64_t record_key(const uint8_t *doc) {
    int32_t length;
    memcpy(&length, doc, 4);
    if (length != DOC_SIZE || doc[4] != 0x12 || doc[5] != 'k' || doc[6] != 0) return -1;
    int64_t key;
    memcpy(&key, doc + 7, 8);
    return key;
}

/* Commits of every instance go through one lock, so entries never interleave. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct sink {
    const ferry_host_api *host;
    int fd;
    uint32_t run;
    int64_t rule_seed, reject_pct, seed, transient_pct, transient_max, fail_key, fail_transient, cancel_key, cancel_aware;
    int64_t failing_at, failures;
    uint8_t *staged;
    size_t staged_count, staged_capacity;
    ferry_reject *rejects;
    uint32_t reject_capacity;
} sink;

static ferry_status sk_open(const ferry_open_args *args, void **instance, ferry_error *error) {
    *instance = NULL;
    if (args->kind != FERRY_KIND_SINK) {
        ferry_set_error(error, SINK_NAME ": a sink only");
        return FERRY_ERR_UNSUPPORTED;
    }
    const char *json = args->config_json;
    char path[4096];
    if (!config_string(json, "log", path, sizeof path)) {
        ferry_set_error(error, SINK_NAME ": config.log: a path is required");
        return FERRY_ERR_CONFIG;
    }
    sink *self = calloc(1, sizeof *self);
    if (!self) return FERRY_ERR_INTERNAL;
    self->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (self->fd < 0) {
        char message[256];
        snprintf(message, sizeof message, SINK_NAME ": cannot open config.log: %s", strerror(errno));
        ferry_set_error(error, message);
        free(self);
        return FERRY_ERR_CONFIG;
    }
    self->host = args->host;
    self->run = (uint32_t)config_int(json, "run", 0);
    self->rule_seed = config_int(json, "rule_seed", 1);
    self->reject_pct = config_int(json, "reject_pct", 0);
    self->seed = config_int(json, "seed", 1);
    self->transient_pct = config_int(json, "transient_pct", 0);
    self->transient_max = config_int(json, "transient_max", 0);
    self->fail_key = config_int(json, "fail_key", -1);
    self->fail_transient = config_int(json, "fail_transient", 0);
    self->cancel_key = config_int(json, "cancel_key", -1);
    self->cancel_aware = config_int(json, "cancel_aware", 0);
    self->failing_at = -2;
    *instance = self;
    return FERRY_OK;
}

static void sk_close(void *instance) {
    sink *self = instance;
    if (!self) return;
    close(self->fd);
    free(self->staged);
    free(self->rejects);
    free(self);
}

/* Transient failures planned for the batch starting at `first`, and whether at commit. */
static int64_t planned_failures(sink *self, int64_t first, int *at_commit) {
    uint64_t h = mix((uint64_t)self->seed * 41 + (uint64_t)first);
    *at_commit = (int)((h >> 20) & 1);
    return (int64_t)(h % 100) < self->transient_pct ? (int64_t)((h >> 8) % (uint64_t)(self->transient_max + 1)) : 0;
}

static ferry_status sk_write(void *instance, const ferry_batch *batch, ferry_result *result, ferry_error *error) {
    sink *self = instance;
    if (self->cancel_aware && ferry_is_cancelled(self->host)) {
        ferry_set_error(error, SINK_NAME ": cancelled");
        return FERRY_ERR_CANCELLED;
    }
    int holds_cancel = 0, holds_fail = 0;
    for (uint32_t i = 0; i < batch->count; i++) {
        int64_t key = record_key(batch->data + (size_t)i * DOC_SIZE);
        if (key == self->cancel_key) holds_cancel = 1;
        if (key == self->fail_key) holds_fail = 1;
    }
    if (holds_cancel) {
        self->host->log(self->host->host_context, FERRY_LOG_WARN, "model-cancel sink");
        if (self->cancel_aware && ferry_is_cancelled(self->host)) {
            ferry_set_error(error, SINK_NAME ": cancelled");
            return FERRY_ERR_CANCELLED;
        }
    }
    if (holds_fail) {
        ferry_set_error(error, SINK_NAME ": permanent failure at fail_key");
        return self->fail_transient ? FERRY_ERR_TRANSIENT : FERRY_ERR_INTERNAL;
    }
    int64_t first = batch->count ? record_key(batch->data) : -1;
    if (self->failing_at != first) {
        self->failing_at = first;
        self->failures = 0;
    }
    int at_commit;
    int64_t planned = planned_failures(self, first, &at_commit);
    if (!at_commit && self->failures < planned) {
        self->failures++;
        ferry_set_error(error, SINK_NAME ": transient write failure");
        return FERRY_ERR_TRANSIENT;
    }
    size_t needed = self->staged_count + batch->count;
    if (needed > self->staged_capacity) {
        size_t capacity = needed * 2;
        uint8_t *grown = realloc(self->staged, capacity * ENTRY_SIZE);
        if (!grown) return FERRY_ERR_INTERNAL;
        self->staged = grown;
        self->staged_capacity = capacity;
    }
    if (self->reject_capacity < batch->count) {
        ferry_reject *grown = realloc(self->rejects, sizeof(ferry_reject) * batch->count);
        if (!grown) return FERRY_ERR_INTERNAL;
        self->rejects = grown;
        self->reject_capacity = batch->count;
    }
    uint32_t rejected = 0;
    for (uint32_t i = 0; i < batch->count; i++) {
        int64_t key = record_key(batch->data + (size_t)i * DOC_SIZE);
        if (key < 0) {
            self->rejects[rejected++] = (ferry_reject){.index = i, .reason = SINK_NAME ": not a model record"};
            continue;
        }
        if (rule(self->rule_seed, key, 3, self->reject_pct)) {
            self->rejects[rejected++] = (ferry_reject){.index = i, .reason = SINK_NAME ": rejected by rule"};
            continue;
        }
        uint8_t *entry = self->staged + self->staged_count * ENTRY_SIZE;
        uint32_t zero = 0;
        memcpy(entry, &self->run, 4);
        memcpy(entry + 4, &zero, 4);
        memcpy(entry + 8, &key, 8);
        self->staged_count++;
    }
    result->reject_count = rejected;
    result->rejects = rejected ? self->rejects : NULL;
    return FERRY_OK;
}

static ferry_status sk_commit(void *instance, ferry_error *error) {
    sink *self = instance;
    if (self->cancel_aware && ferry_is_cancelled(self->host)) {
        self->staged_count = 0;
        ferry_set_error(error, SINK_NAME ": cancelled, nothing committed");
        return FERRY_ERR_CANCELLED;
    }
    int at_commit;
    int64_t planned = planned_failures(self, self->failing_at, &at_commit);
    if (at_commit && self->failures < planned) {
        self->failures++;
        self->staged_count = 0;
        ferry_set_error(error, SINK_NAME ": transient commit failure, rolled back");
        return FERRY_ERR_TRANSIENT;
    }
    if (self->staged_count == 0) return FERRY_OK;
    size_t size = self->staged_count * ENTRY_SIZE;
    pthread_mutex_lock(&log_lock);
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(self->fd, self->staged + done, size - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            pthread_mutex_unlock(&log_lock);
            ferry_set_error(error, SINK_NAME ": cannot append to config.log");
            return FERRY_ERR_INTERNAL;
        }
        done += (size_t)n;
    }
    pthread_mutex_unlock(&log_lock);
    self->staged_count = 0;
    return FERRY_OK;
}

static const ferry_plugin_descriptor descriptor = {
    .struct_size = sizeof(ferry_plugin_descriptor),
    .abi_major = FERRY_ABI_MAJOR,
    .abi_minor = FERRY_ABI_MINOR,
    .name = SINK_NAME,
    .version = "1.0.0",
    .description = "upserts keys into a log file for the runtime model test",
    .kinds = FERRY_KIND_SINK,
    .capabilities = SINK_CAPABILITIES,
    .config_schema = "{\"type\":\"object\"}",
    .open = sk_open,
    .close = sk_close,
    .write = sk_write,
    .commit = sk_commit,
};

FERRY_PLUGIN_EXPORT const ferry_plugin_descriptor *ferry_plugin_entry(void) { return &descriptor; }
