/*
 * A source and sink that fails on purpose, for the daemon's run isolation
 * tests: each fault must end one run, never the daemon or another run.
 *
 * Config: {"fault": F, "records": N, "delay_ms": D}
 *   none         the source emits N records {"i": <int64>} in batches, then
 *                ends; the sink accepts every write
 *   segv_read    read() writes through NULL after the first batch (SIGSEGV)
 *   abort_write  the sink's write() calls abort() (SIGABRT)
 *   alloc        read() allocates and touches memory without bound after the
 *                first batch; under a memory limit malloc fails and the
 *                plugin writes through the NULL it got (SIGSEGV)
 *   hang_read    read() sleeps forever after the first batch, deaf to the
 *                cancel flag
 *   segv_open    open() writes through NULL (SIGSEGV)
 *   hang_open    open() sleeps forever, deaf to the cancel flag
 * delay_ms: the source sleeps this long before each batch (a slow healthy run).
 */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include "ferry_plugin.h"

enum { DOC_SIZE = 16, STATE_SIZE = 8 };

typedef struct faulty {
    char fault[16];
    int64_t records, delay_ms;
    uint32_t batch_size;
    uint64_t next, batches;
} faulty;

static int64_t config_int(const char *json, const char *key, int64_t fallback) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *at = strstr(json, pattern);
    if (!at) return fallback;
    at += strlen(pattern);
    while (*at == ' ') at++;
    return strtoll(at, NULL, 10);
}

static void config_fault(const char *json, char *out, size_t capacity) {
    snprintf(out, capacity, "none");
    const char *at = strstr(json, "\"fault\":");
    if (!at) return;
    at = strchr(at + 8, '"');
    if (!at) return;
    const char *end = strchr(++at, '"');
    if (!end || (size_t)(end - at) >= capacity) return;
    memcpy(out, at, (size_t)(end - at));
    out[end - at] = 0;
}

static ferry_status ft_open(const ferry_open_args *args, void **instance, ferry_error *error) {
    faulty *self = calloc(1, sizeof *self);
    *instance = self;
    if (!self) return FERRY_ERR_INTERNAL;
    config_fault(args->config_json, self->fault, sizeof self->fault);
    if (strcmp(self->fault, "segv_open") == 0) {
        volatile char *nowhere = NULL;
        *nowhere = 1;
    }
    if (strcmp(self->fault, "hang_open") == 0) {
        for (;;) sleep(60);
    }
    self->records = config_int(args->config_json, "records", 0);
    self->delay_ms = config_int(args->config_json, "delay_ms", 0);
    self->batch_size = args->batch_size ? args->batch_size : 1;
    if (args->resume_state) {
        if (args->resume_state_size != STATE_SIZE) {
            ferry_set_error(error, "faulty: resume state is not 8 bytes");
            return FERRY_ERR_STATE;
        }
        memcpy(&self->next, args->resume_state, STATE_SIZE);
    }
    return FERRY_OK;
}

static void ft_close(void *instance) { free(instance); }

static void fault_in_read(faulty *self) {
    volatile char *nowhere = NULL;
    if (strcmp(self->fault, "segv_read") == 0) *nowhere = 1;
    if (strcmp(self->fault, "hang_read") == 0) {
        for (;;) sleep(60);
    }
    if (strcmp(self->fault, "alloc") == 0) {
        for (;;) {
            volatile char *block = malloc(1 << 20);
            if (!block) block = nowhere;
            /* Every page, so the memory is really used. */
            for (size_t i = 0; i < (1 << 20); i += 4096) block[i] = 1;
        }
    }
}

static ferry_status ft_read(void *instance, ferry_batch *batch, ferry_error *error) {
    (void)error;
    faulty *self = instance;
    if (self->batches > 0) fault_in_read(self);
    if ((int64_t)self->next >= self->records) return FERRY_END;
    if (self->delay_ms > 0) {
        struct timespec pause = {self->delay_ms / 1000, (self->delay_ms % 1000) * 1000000};
        nanosleep(&pause, NULL);
    }
    uint64_t left = (uint64_t)self->records - self->next;
    uint32_t count = left < self->batch_size ? (uint32_t)left : self->batch_size;
    uint8_t *block = malloc((size_t)count * DOC_SIZE + STATE_SIZE);
    if (!block) return FERRY_ERR_INTERNAL;
    for (uint32_t k = 0; k < count; k++) {
        uint8_t *doc = block + (size_t)k * DOC_SIZE;
        int32_t length = DOC_SIZE;
        int64_t value = (int64_t)(self->next + k);
        memcpy(doc, &length, 4);
        doc[4] = 0x12; /* int64 */
        doc[5] = 'i';
        doc[6] = 0;
        memcpy(doc + 7, &value, 8);
        doc[15] = 0;
    }
    self->next += count;
    self->batches++;
    memcpy(block + (size_t)count * DOC_SIZE, &self->next, STATE_SIZE);
    batch->data = block;
    batch->size = (uint64_t)count * DOC_SIZE;
    batch->count = count;
    batch->state = block + (size_t)count * DOC_SIZE;
    batch->state_size = STATE_SIZE;
    batch->private_data = block;
    return FERRY_OK;
}

static void ft_release(void *instance, ferry_batch *batch) {
    (void)instance;
    free(batch->private_data);
    memset(batch, 0, sizeof *batch);
}

static ferry_status ft_write(void *instance, const ferry_batch *batch, ferry_result *result, ferry_error *error) {
    (void)batch; (void)result; (void)error;
    faulty *self = instance;
    if (strcmp(self->fault, "abort_write") == 0) abort();
    return FERRY_OK;
}

static ferry_status ft_commit(void *instance, ferry_error *error) {
    (void)instance; (void)error;
    return FERRY_OK;
}

static const ferry_plugin_descriptor descriptor = {
    .struct_size = sizeof(ferry_plugin_descriptor),
    .abi_major = FERRY_ABI_MAJOR,
    .abi_minor = FERRY_ABI_MINOR,
    .name = "faulty",
    .version = "1.0.0",
    .description = "a source and sink that crash, abort, hang or eat memory on purpose",
    .kinds = FERRY_KIND_SOURCE | FERRY_KIND_SINK,
    .capabilities = FERRY_CAP_RESUMABLE,
    .config_schema = "{\"type\":\"object\"}",
    .open = ft_open,
    .close = ft_close,
    .read = ft_read,
    .release = ft_release,
    .write = ft_write,
    .commit = ft_commit,
};

FERRY_PLUGIN_EXPORT const ferry_plugin_descriptor *ferry_plugin_entry(void) { return &descriptor; }
