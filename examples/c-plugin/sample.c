/*
 * sample — a Ferry transform plugin in plain C, built outside SwiftPM
 * against nothing but ferry_plugin.h. It keeps one record in `every`
 * (config: {"every": N}, default 1 = keep all), copying the kept documents
 * into a batch of its own.
 *
 *   cc -O2 -shared -fPIC -fvisibility=hidden -I ../../Sources/CFerryPlugin/include sample.c -o libsample.so
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ferry_plugin.h"

typedef struct {
    long every;
    unsigned long long seen; /* records seen by this instance, across batches */
} sample_state;

/* The host hands over the config as a JSON object; this plugin has one integer
 * field, so a strict scan of `{}` or `{"every": N}` is enough (a real plugin would
 * use a JSON parser). Anything else is refused: a typo must not open with defaults. */
static int parse_every(const char *json, long *every, ferry_error *error) {
    const char *p = json ? json : "{}";
    char *end = NULL;
    *every = 1;
    while (isspace((unsigned char)*p)) p++;
    if (*p++ != '{') goto bad;
    while (isspace((unsigned char)*p)) p++;
    if (*p != '}') {
        if (strncmp(p, "\"every\"", 7) != 0) goto bad;
        p += 7;
        while (isspace((unsigned char)*p)) p++;
        if (*p++ != ':') goto bad;
        *every = strtol(p, &end, 10);
        if (end == p) goto bad;
        if (*every < 1) {
            ferry_set_error(error, "field 'every': expected an integer >= 1");
            return 0;
        }
        p = end;
        while (isspace((unsigned char)*p)) p++;
        if (*p != '}') goto bad;
    }
    p++;
    while (isspace((unsigned char)*p)) p++;
    if (*p == 0) return 1;
bad:
    ferry_set_error(error, "config: expected {} or {\"every\": <integer >= 1>}");
    return 0;
}

static ferry_status sample_open(const ferry_open_args *args, void **instance, ferry_error *error) {
    *instance = NULL;
    if (args->kind != FERRY_KIND_TRANSFORM) {
        ferry_set_error(error, "sample is a transform");
        return FERRY_ERR_UNSUPPORTED;
    }
    long every;
    if (!parse_every(args->config_json, &every, error)) return FERRY_ERR_CONFIG;
    sample_state *state = calloc(1, sizeof *state);
    if (!state) {
        ferry_set_error(error, "out of memory");
        return FERRY_ERR_INTERNAL;
    }
    state->every = every;
    *instance = state;
    return FERRY_OK;
}

static void sample_close(void *instance) { free(instance); }

static ferry_status sample_transform(void *instance, const ferry_batch *input, ferry_batch *output,
                                     ferry_result *result, ferry_error *error) {
    (void)result;
    sample_state *state = instance;
    if (state->every == 1) {
        /* Keep everything: hand the input back without copying. */
        *output = *input;
        output->flags = FERRY_BATCH_PASSTHROUGH;
        output->state = NULL;
        output->state_size = 0;
        output->private_data = NULL;
        state->seen += input->count;
        return FERRY_OK;
    }
    uint8_t *data = malloc(input->size ? input->size : 1);
    if (!data) {
        ferry_set_error(error, "out of memory");
        return FERRY_ERR_INTERNAL;
    }
    uint64_t in_offset = 0, out_size = 0;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < input->count; i++) {
        int32_t length;
        if (in_offset + 4 > input->size) break;
        memcpy(&length, input->data + in_offset, 4); /* BSON lengths are little-endian */
        if (length < 5 || in_offset + (uint64_t)length > input->size) {
            free(data);
            ferry_set_error(error, "input batch is malformed");
            return FERRY_ERR_DATA;
        }
        if (state->seen++ % (unsigned long long)state->every == 0) {
            memcpy(data + out_size, input->data + in_offset, (size_t)length);
            out_size += (uint64_t)length;
            kept++;
        }
        in_offset += (uint64_t)length;
    }
    memset(output, 0, sizeof *output);
    output->data = data;
    output->size = out_size;
    output->count = kept;
    output->private_data = data;
    return FERRY_OK;
}

/* Touches only the batch's own memory, so it is safe from any thread. */
static void sample_release(void *instance, ferry_batch *batch) {
    (void)instance;
    if (!(batch->flags & FERRY_BATCH_PASSTHROUGH)) free(batch->private_data);
    memset(batch, 0, sizeof *batch);
}

static const ferry_plugin_descriptor descriptor = {
    .struct_size = sizeof(ferry_plugin_descriptor),
    .abi_major = FERRY_ABI_MAJOR,
    .abi_minor = FERRY_ABI_MINOR,
    .name = "sample",
    .version = "1.0.0",
    .description = "Keeps one record in every N (a C example plugin)",
    .kinds = FERRY_KIND_TRANSFORM,
    .capabilities = 0,
    .config_schema = "{\"type\":\"object\",\"additionalProperties\":false,"
                     "\"properties\":{\"every\":{\"type\":\"integer\",\"minimum\":1,\"default\":1,"
                     "\"description\":\"Keep one record in this many\"}}}",
    .open = sample_open,
    .close = sample_close,
    .release = sample_release,
    .transform = sample_transform,
};

FERRY_PLUGIN_EXPORT const ferry_plugin_descriptor *ferry_plugin_entry(void) { return &descriptor; }
