/*
 * A sink that inserts the first record of every batch and rejects the rest,
 * each with a reason: what `ferry plugin test` reports must come from this
 * ferry_result, not from the size of the batch it sent.
 */
#include <stdlib.h>
#include <string.h>
#include "ferry_plugin.h"

typedef struct {
    ferry_reject *rejects; /* valid until the next call, as the ABI asks */
} rs_instance;

static ferry_status rs_open(const ferry_open_args *args, void **instance, ferry_error *error) {
    *instance = NULL;
    if (args->kind != FERRY_KIND_SINK) {
        ferry_set_error(error, "rejecting-sink: a sink only");
        return FERRY_ERR_UNSUPPORTED;
    }
    *instance = calloc(1, sizeof(rs_instance));
    return *instance ? FERRY_OK : FERRY_ERR_INTERNAL;
}

static void rs_close(void *instance) {
    rs_instance *self = instance;
    if (!self) return;
    free(self->rejects);
    free(self);
}

static ferry_status rs_write(void *instance, const ferry_batch *batch, ferry_result *result, ferry_error *error) {
    rs_instance *self = instance;
    if (batch->count == 0) return FERRY_OK;
    ferry_reject *rejects = realloc(self->rejects, batch->count * sizeof *rejects);
    if (!rejects) {
        ferry_set_error(error, "rejecting-sink: out of memory");
        return FERRY_ERR_INTERNAL;
    }
    self->rejects = rejects;
    for (uint32_t i = 1; i < batch->count; i++) {
        rejects[i - 1] = (ferry_reject){.index = i, .reason = "rejecting-sink: only the first record of a batch lands"};
    }
    result->inserted = 1;
    result->reject_count = batch->count - 1;
    result->rejects = rejects;
    return FERRY_OK;
}

static ferry_status rs_commit(void *instance, ferry_error *error) {
    (void)instance;
    (void)error;
    return FERRY_OK;
}

static const ferry_plugin_descriptor descriptor = {
    .struct_size = sizeof(ferry_plugin_descriptor),
    .abi_major = FERRY_ABI_MAJOR,
    .abi_minor = FERRY_ABI_MINOR,
    .name = "rejecting-sink",
    .version = "0.0.1",
    .description = "Inserts one record per batch and rejects the rest",
    .kinds = FERRY_KIND_SINK,
    .config_schema = "{\"type\":\"object\",\"additionalProperties\":false}",
    .open = rs_open,
    .close = rs_close,
    .write = rs_write,
    .commit = rs_commit,
};

FERRY_PLUGIN_EXPORT const ferry_plugin_descriptor *ferry_plugin_entry(void) { return &descriptor; }
