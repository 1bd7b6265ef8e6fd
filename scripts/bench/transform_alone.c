/*
 * transform_alone.c — one transform's own cost, for scripts/bench-regex.sh.
 *
 * Reads RECORDS records from the generate source once and keeps the batches
 * in memory, then calls only the transform on them, REPEAT times over, and
 * reports the best pass: no source, no sink, no engine, no other thread.
 * What is left is the plugin itself and the ABI call (and, for a transform
 * that builds its output, that output's allocation and release).
 *
 * Build:  cc -O2 -I Sources/CFerryPlugin/include scripts/bench/transform_alone.c -o transform_alone -ldl
 * Usage:  transform_alone GENERATE.so TRANSFORM.so CONFIG_JSON RECORDS BATCH_SIZE REPEAT
 * Output: one line on stdout,
 *   records=N kept=K seconds=S ns_per_record=X records_per_sec=R cpu_ns_per_record=C
 * Exit:   0 on success; 1 on any plugin error.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ferry_plugin.h"

static const ferry_plugin_descriptor *load_plugin(const char *path, uint32_t want_kind) {
    /* Never dlclose: Swift plugins do not survive it. */
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        fprintf(stderr, "transform_alone: dlopen %s: %s\n", path, dlerror());
        return NULL;
    }
    ferry_plugin_entry_fn entry = (ferry_plugin_entry_fn)dlsym(handle, FERRY_PLUGIN_ENTRY_SYMBOL);
    const ferry_plugin_descriptor *d = entry ? entry() : NULL;
    if (!d || d->struct_size < FERRY_DESCRIPTOR_MIN_SIZE || d->abi_major != FERRY_ABI_MAJOR || !(d->kinds & want_kind)
        || !d->open || !d->close || !d->release || (want_kind == FERRY_KIND_SOURCE ? !d->read : !d->transform)) {
        fprintf(stderr, "transform_alone: %s is not a usable plugin of kind %u\n", path, want_kind);
        return NULL;
    }
    return d;
}

static void noop_log(void *ctx, int32_t level, const char *message) {
    (void)ctx; (void)level; (void)message;
}
static void noop_metric(void *ctx, const char *name, double value, int32_t kind) {
    (void)ctx; (void)name; (void)value; (void)kind;
}

static double clock_seconds(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s GENERATE.so TRANSFORM.so CONFIG_JSON RECORDS BATCH_SIZE REPEAT\n", argv[0]);
        return 1;
    }
    const char *config = argv[3];
    long long records = strtoll(argv[4], NULL, 10);
    long batch_size = strtol(argv[5], NULL, 10);
    long repeat = strtol(argv[6], NULL, 10);
    if (records <= 0 || batch_size <= 0 || repeat <= 0) {
        fprintf(stderr, "transform_alone: RECORDS, BATCH_SIZE and REPEAT must be positive\n");
        return 1;
    }
    const ferry_plugin_descriptor *gen = load_plugin(argv[1], FERRY_KIND_SOURCE);
    const ferry_plugin_descriptor *xform = load_plugin(argv[2], FERRY_KIND_TRANSFORM);
    if (!gen || !xform) return 1;

    char message[FERRY_ERROR_CAPACITY];
    ferry_error err = {message, FERRY_ERROR_CAPACITY, 0};
    message[0] = 0;
    static const int32_t cancel = 0;
    ferry_host_api host;
    memset(&host, 0, sizeof host);
    host.struct_size = sizeof host;
    host.abi_major = FERRY_ABI_MAJOR;
    host.abi_minor = FERRY_ABI_MINOR;
    host.log = noop_log;
    host.metric = noop_metric;
    host.cancel_flag = &cancel;
    host.shard_count = 1;
    host.pipeline_name = "transform_alone";

    ferry_open_args args;
    memset(&args, 0, sizeof args);
    args.struct_size = sizeof args;
    args.host = &host;
    args.mode = FERRY_MODE_FULL;
    args.batch_size = (uint32_t)batch_size;

    char gen_config[64];
    int gen_len = snprintf(gen_config, sizeof gen_config, "{\"count\": %lld}", records);
    void *source = NULL, *transform = NULL;
    args.kind = FERRY_KIND_SOURCE;
    args.config_json = gen_config;
    args.config_size = (uint64_t)gen_len;
    if (gen->open(&args, &source, &err) != FERRY_OK) {
        fprintf(stderr, "transform_alone: generate open: %s\n", message);
        return 1;
    }
    args.kind = FERRY_KIND_TRANSFORM;
    args.config_json = config;
    args.config_size = strlen(config);
    if (xform->open(&args, &transform, &err) != FERRY_OK) {
        fprintf(stderr, "transform_alone: transform open: %s\n", message);
        return 1;
    }

    /* Every source batch, kept (not released) until the end. */
    long capacity = (long)(records / batch_size) + 2, batches = 0;
    ferry_batch *input = calloc((size_t)capacity, sizeof *input);
    if (!input) return 1;
    long long read = 0;
    while (batches < capacity) {
        ferry_batch batch;
        memset(&batch, 0, sizeof batch);
        ferry_status st = gen->read(source, &batch, &err);
        if (st == FERRY_END) break;
        if (st != FERRY_OK) {
            fprintf(stderr, "transform_alone: generate read: %s\n", message);
            return 1;
        }
        read += batch.count;
        input[batches++] = batch;
    }

    double best = 0, best_cpu = 0;
    uint64_t kept = 0;
    for (long r = 0; r < repeat; r++) {
        kept = 0;
        double start = clock_seconds(CLOCK_MONOTONIC);
        double start_cpu = clock_seconds(CLOCK_THREAD_CPUTIME_ID);
        for (long i = 0; i < batches; i++) {
            ferry_batch out;
            ferry_result result;
            memset(&out, 0, sizeof out);
            memset(&result, 0, sizeof result);
            result.struct_size = sizeof result;
            if (xform->transform(transform, &input[i], &out, &result, &err) != FERRY_OK) {
                fprintf(stderr, "transform_alone: transform: %s\n", message);
                return 1;
            }
            kept += out.count;
            xform->release(transform, &out);
        }
        double elapsed = clock_seconds(CLOCK_MONOTONIC) - start;
        double cpu = clock_seconds(CLOCK_THREAD_CPUTIME_ID) - start_cpu;
        if (r == 0 || elapsed < best) best = elapsed;
        if (r == 0 || cpu < best_cpu) best_cpu = cpu;
    }
    for (long i = 0; i < batches; i++) gen->release(source, &input[i]);
    free(input);
    xform->close(transform);
    gen->close(source);

    printf("records=%lld kept=%" PRIu64 " seconds=%.4f ns_per_record=%.1f records_per_sec=%.0f cpu_ns_per_record=%.1f\n", read,
           kept, best, best * 1e9 / (double)read, (double)read / best, best_cpu * 1e9 / (double)read);
    return 0;
}
