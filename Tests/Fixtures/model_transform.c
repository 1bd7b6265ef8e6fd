/*
 * A transform for the runtime model test. By a rule on each record's key it
 * drops (filters) some records and rejects others to the dead letters; the
 * test computes the same rule, so it knows which keys must reach the sink.
 * The input batch comes from model_source.c: documents {"k": <int64>}.
 *
 * Config (all integers): rule_seed, filter_pct, reject_pct (the rule: a key
 * whose hash with salt 1 is below filter_pct is filtered, else with salt 2
 * below reject_pct is rejected), seed, transient_pct, transient_max (transient
 * failures per batch before it succeeds), fail_key (a batch holding it fails
 * permanently; -1: never), fail_transient, cancel_key (a batch holding it logs
 * "model-cancel"), cancel_aware (return FERRY_ERR_CANCELLED once cancelled).
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

static int rule(int64_t rule_seed, int64_t key, uint64_t salt, int64_t pct) {
    return (int64_t)(mix((uint64_t)rule_seed * 1000003u + (uint64_t)key * 4u + salt) % 100) < pct;
}

enum { DOC_SIZE = 16 };

/* The key of a model record, or -1 for anything else. */
static int64_t record_key(const uint8_t *doc) {
    int32_t length;
    memcpy(&length, doc, 4);
    if (length != DOC_SIZE || doc[4] != 0x12 || doc[5] != 'k' || doc[6] != 0) return -1;
    int64_t key;
    memcpy(&key, doc + 7, 8);
    return key;
}

typedef struct transform {
    const ferry_host_api *host;
    int64_t rule_seed, filter_pct, reject_pct, seed, transient_pct, transient_max, fail_key, fail_transient, cancel_key,
        cancel_aware;
    int64_t failing_at, failures;
    ferry_reject *rejects;
    uint32_t reject_capacity;
} transform;

static ferry_status tf_open(const ferry_open_args *args, void **instance, ferry_error *error) {
    *instance = NULL;
    if (args->kind != FERRY_KIND_TRANSFORM) {
        ferry_set_error(error, "model-transform: a transform only");
        return FERRY_ERR_UNSUPPORTED;
    }
    transform *self = calloc(1, sizeof *self);
    if (!self) return FERRY_ERR_INTERNAL;
    const char *json = args->config_json;
    self->host = args->host;
    self->rule_seed = config_int(json, "rule_seed", 1);
    self->filter_pct = config_int(json, "filter_pct", 0);
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

static void tf_close(void *instance) {
    transform *self = instance;
    if (self) free(self->rejects);
    free(self);
}

static ferry_status tf_transform(void *instance, const ferry_batch *input, ferry_batch *output, ferry_result *result,
                                 ferry_error *error) {
    transform *self = instance;
    memset(output, 0, sizeof *output);
    if (self->cancel_aware && ferry_is_cancelled(self->host)) {
        ferry_set_error(error, "model-transform: cancelled");
        return FERRY_ERR_CANCELLED;
    }
    int holds_cancel = 0, holds_fail = 0;
    for (uint32_t i = 0; i < input->count; i++) {
        int64_t key = record_key(input->data + (size_t)i * DOC_SIZE);
        if (key == self->cancel_key) holds_cancel = 1;
        if (key == self->fail_key) holds_fail = 1;
    }
    if (holds_cancel) {
        self->host->log(self->host->host_context, FERRY_LOG_WARN, "model-cancel transform");
        if (self->cancel_aware && ferry_is_cancelled(self->host)) {
            ferry_set_error(error, "model-transform: cancelled");
            return FERRY_ERR_CANCELLED;
        }
    }
    if (holds_fail) {
        ferry_set_error(error, "model-transform: permanent failure at fail_key");
        return self->fail_transient ? FERRY_ERR_TRANSIENT : FERRY_ERR_DATA;
    }
    int64_t first = input->count ? record_key(input->data) : -1;
    if (self->failing_at != first) {
        self->failing_at = first;
        self->failures = 0;
    }
    uint64_t h = mix((uint64_t)self->seed * 37 + (uint64_t)first);
    int64_t planned = (int64_t)(h % 100) < self->transient_pct ? (int64_t)((h >> 8) % (uint64_t)(self->transient_max + 1)) : 0;
    if (self->failures < planned) {
        self->failures++;
        ferry_set_error(error, "model-transform: transient failure");
        return FERRY_ERR_TRANSIENT;
    }
    if (self->reject_capacity < input->count) {
        ferry_reject *grown = realloc(self->rejects, sizeof(ferry_reject) * input->count);
        if (!grown) return FERRY_ERR_INTERNAL;
        self->rejects = grown;
        self->reject_capacity = input->count;
    }
    uint8_t *block = malloc(input->size ? input->size : 1);
    if (!block) return FERRY_ERR_INTERNAL;
    uint32_t kept = 0, rejected = 0;
    for (uint32_t i = 0; i < input->count; i++) {
        const uint8_t *doc = input->data + (size_t)i * DOC_SIZE;
        int64_t key = record_key(doc);
        if (key < 0) {
            self->rejects[rejected++] = (ferry_reject){.index = i, .reason = "model-transform: not a model record"};
        } else if (rule(self->rule_seed, key, 1, self->filter_pct)) {
            continue;
        } else if (rule(self->rule_seed, key, 2, self->reject_pct)) {
            self->rejects[rejected++] = (ferry_reject){.index = i, .reason = "model-transform: rejected by rule"};
        } else {
            memcpy(block + (size_t)kept * DOC_SIZE, doc, DOC_SIZE);
            kept++;
        }
    }
    result->reject_count = rejected;
    result->rejects = rejected ? self->rejects : NULL;
    if (kept == input->count) {
        free(block);
        output->data = input->data;
        output->size = input->size;
        output->count = input->count;
        output->flags = FERRY_BATCH_PASSTHROUGH;
        return FERRY_OK;
    }
    output->data = block;
    output->size = (uint64_t)kept * DOC_SIZE;
    output->count = kept;
    output->private_data = block;
    return FERRY_OK;
}

static void tf_release(void *instance, ferry_batch *batch) {
    (void)instance;
    free(batch->private_data); /* NULL for a passthrough batch */
    memset(batch, 0, sizeof *batch);
}

static const ferry_plugin_descriptor descriptor = {
    .struct_size = sizeof(ferry_plugin_descriptor),
    .abi_major = FERRY_ABI_MAJOR,
    .abi_minor = FERRY_ABI_MINOR,
    .name = "model-transform",
    .version = "1.0.0",
    .description = "filters and rejects by key for the runtime model test",
    .kinds = FERRY_KIND_TRANSFORM,
    .config_schema = "{\"type\":\"object\"}",
    .open = tf_open,
    .close = tf_close,
    .release = tf_release,
    .transform = tf_transform,
};

FERRY_PLUGIN_EXPORT const ferry_plugin_descriptor *ferry_plugin_entry(void) { return &descriptor; }
