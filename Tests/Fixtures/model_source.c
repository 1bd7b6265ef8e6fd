/*
 * A sharded, resumable source of `n` keyed records for the runtime model
 * test. Record k is the BSON document {"k": <int64 k>}; shard i of S holds the
 * keys k with k % S == i, in ascending order. The resume state is the next
 * key to read (with the shard it belongs to), so the test can tell exactly
 * which records a checkpoint covers.
 *
 * Config (all integers): n, seed, transient_pct, transient_max (transient
 * failures of a read, per batch, before it succeeds), fail_key (a read whose
 * batch holds it fails permanently; -1: never), fail_transient (that failure
 * is a transient error repeated forever instead of an internal error),
 * cancel_key (a read whose batch holds it logs "model-cancel", which the test
 * turns into a cancel), cancel_aware (return FERRY_ERR_CANCELLED once the
 * cancel flag is set).
 */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include "ferry_plugin.h"

static int64_t config_int(const char *json, const char *key, int64_t fallback) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *at = strstr(json, pattern);
    if (!at) return fallback;
    at += strlen(pattern);
    while (*at == ' ') at++;
    return strtoll(at, NULL, 10);
}

static uint64_t mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

enum { STATE_SIZE = 16, DOC_SIZE = 16 };

typedef struct source {
    const ferry_host_api *host;
    int64_t n, seed, transient_pct, transient_max, fail_key, fail_transient, cancel_key, cancel_aware;
    uint32_t shard_index, shard_count, batch_size;
    uint64_t next;          /* next key to read */
    uint64_t failing_at;    /* the batch start the transient count belongs to */
    int64_t failures;
} source;

static ferry_status src_open(const ferry_open_args *args, void **instance, ferry_error *error) {
    *instance = NULL;
    if (args->kind != FERRY_KIND_SOURCE) {
        ferry_set_error(error, "model-source: a source only");
        return FERRY_ERR_UNSUPPORTED;
    }
    source *self = calloc(1, sizeof *self);
    if (!self) return FERRY_ERR_INTERNAL;
    const char *json = args->config_json;
    self->host = args->host;
    self->n = config_int(json, "n", 0);
    self->seed = config_int(json, "seed", 1);
    self->transient_pct = config_int(json, "transient_pct", 0);
    self->transient_max = config_int(json, "transient_max", 0);
    self->fail_key = config_int(json, "fail_key", -1);
    self->fail_transient = config_int(json, "fail_transient", 0);
    self->cancel_key = config_int(json, "cancel_key", -1);
    self->cancel_aware = config_int(json, "cancel_aware", 0);
    self->shard_index = args->host->shard_index;
    self->shard_count = args->host->shard_count ? args->host->shard_count : 1;
    self->batch_size = args->batch_size ? args->batch_size : 1;
    self->next = self->shard_index;
    self->failing_at = UINT64_MAX;
    if (args->resume_state) {
        uint32_t count;
        if (args->resume_state_size != STATE_SIZE || memcmp(args->resume_state, "MDL1", 4) != 0) {
            free(self);
            ferry_set_error(error, "model-source: resume state is not a model-source state");
            return FERRY_ERR_STATE;
        }
        memcpy(&count, args->resume_state + 4, 4);
        memcpy(&self->next, args->resume_state + 8, 8);
        if (count != self->shard_count || self->next % self->shard_count != self->shard_index) {
            free(self);
            ferry_set_error(error, "model-source: resume state belongs to another shard");
            return FERRY_ERR_STATE;
        }
    }
    *instance = self;
    return FERRY_OK;
}

static void src_close(void *instance) { free(instance); }

static int holds(uint64_t first, uint32_t count, uint32_t step, int64_t key) {
    if (key < 0 || (uint64_t)key < first) return 0;
    uint64_t offset = (uint64_t)key - first;
    return offset % step == 0 && offset / step < count;
}

static ferry_status src_read(void *instance, ferry_batch *batch, ferry_error *error) {
    source *self = instance;
    if (self->cancel_aware && ferry_is_cancelled(self->host)) {
        ferry_set_error(error, "model-source: cancelled");
        return FERRY_ERR_CANCELLED;
    }
    uint32_t count = 0;
    if ((int64_t)self->next < self->n) {
        uint64_t left = ((uint64_t)self->n - self->next + self->shard_count - 1) / self->shard_count;
        count = left < self->batch_size ? (uint32_t)left : self->batch_size;
    }
    if (count == 0) return FERRY_END;
    if (holds(self->next, count, self->shard_count, self->cancel_key)) {
        self->host->log(self->host->host_context, FERRY_LOG_WARN, "model-cancel source");
        if (self->cancel_aware && ferry_is_cancelled(self->host)) {
            ferry_set_error(error, "model-source: cancelled");
            return FERRY_ERR_CANCELLED;
        }
    }
    if (holds(self->next, count, self->shard_count, self->fail_key)) {
        ferry_set_error(error, "model-source: permanent failure at fail_key");
        return self->fail_transient ? FERRY_ERR_TRANSIENT : FERRY_ERR_INTERNAL;
    }
    if (self->failing_at != self->next) {
        self->failing_at = self->next;
        self->failures = 0;
    }
    uint64_t h = mix((uint64_t)self->seed * 31 + self->next);
    int64_t planned = (int64_t)(h % 100) < self->transient_pct ? (int64_t)((h >> 8) % (uint64_t)(self->transient_max + 1)) : 0;
    if (self->failures < planned) {
        self->failures++;
        ferry_set_error(error, "model-source: transient read failure");
        return FERRY_ERR_TRANSIENT;
    }
    uint8_t *block = malloc((size_t)count * DOC_SIZE + STATE_SIZE);
    if (!block) return FERRY_ERR_INTERNAL;
    uint8_t *doc = block;
    for (uint32_t i = 0; i < count; i++, doc += DOC_SIZE) {
        int64_t key = (int64_t)(self->next + (uint64_t)i * self->shard_count);
        int32_t length = DOC_SIZE;
        memcpy(doc, &length, 4);
        doc[4] = 0x12; /* int64 */
        doc[5] = 'k';
        doc[6] = 0;
        memcpy(doc + 7, &key, 8);
        doc[15] = 0;
    }
    self->next += (uint64_t)count * self->shard_count;
    uint8_t *state = block + (size_t)count * DOC_SIZE;
    memcpy(state, "MDL1", 4);
    memcpy(state + 4, &self->shard_count, 4);
    memcpy(state + 8, &self->next, 8);
    batch->data = block;
    batch->size = (uint64_t)count * DOC_SIZE;
    batch->count = count;
    batch->state = state;
    batch->state_size = STATE_SIZE;
    batch->private_data = block;
    return FERRY_OK;
}

static void src_release(void *instance, ferry_batch *batch) {
    (void)instance;
    free(batch->private_data);
    memset(batch, 0, sizeof *batch);
}

static const ferry_plugin_descriptor descriptor = {
    .struct_size = sizeof(ferry_plugin_descriptor),
    .abi_major = FERRY_ABI_MAJOR,
    .abi_minor = FERRY_ABI_MINOR,
    .name = "model-source",
    .version = "1.0.0",
    .description = "keyed records for the runtime model test",
    .kinds = FERRY_KIND_SOURCE,
    .capabilities = FERRY_CAP_SHARDED_READ | FERRY_CAP_RESUMABLE,
    .config_schema = "{\"type\":\"object\"}",
    .open = src_open,
    .close = src_close,
    .read = src_read,
    .release = src_release,
};

FERRY_PLUGIN_EXPORT const ferry_plugin_descriptor *ferry_plugin_entry(void) { return &descriptor; }
