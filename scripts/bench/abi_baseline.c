/*
 * abi_baseline.c — the "bare loop" baseline for scripts/bench-runtime.sh.
 *
 * Runs generate -> passthrough -> blackhole over the plugin C ABI with no
 * engine at all: no queues, no reader thread, no committer, no checkpoints.
 * Each of T threads opens its own instances (the source reads shard t of T)
 * and loops read -> transform -> write -> commit -> release until FERRY_END.
 * What ferry gets on the same plugins, divided by this, is the share of the
 * ceiling the engine keeps.
 *
 * Build:  cc -O2 -pthread -I Sources/CFerryPlugin/include \
 *            scripts/bench/abi_baseline.c -o abi_baseline -ldl
 * Usage:  abi_baseline GENERATE.so PASSTHROUGH.so BLACKHOLE.so THREADS RECORDS BATCH_SIZE
 * Output: one line on stdout,
 *   records=N threads=T batch_size=B seconds=S records_per_sec=R
 * Exit:   0 on success; 1 on any plugin error or a record count mismatch.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ferry_plugin.h"

/* ---- loading -------------------------------------------------------------- */

static const ferry_plugin_descriptor *load_plugin(const char *path, uint32_t want_kind) {
    /* RTLD_LOCAL: every plugin exports the same entry symbol. Never dlclose:
     * Swift plugins do not survive it (FIELD-NOTES pitfall 5). */
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        fprintf(stderr, "abi_baseline: dlopen %s: %s\n", path, dlerror());
        return NULL;
    }
    ferry_plugin_entry_fn entry = (ferry_plugin_entry_fn)dlsym(handle, FERRY_PLUGIN_ENTRY_SYMBOL);
    if (!entry) {
        fprintf(stderr, "abi_baseline: %s has no %s: %s\n", path, FERRY_PLUGIN_ENTRY_SYMBOL, dlerror());
        return NULL;
    }
    const ferry_plugin_descriptor *d = entry();
    /* The same checks the host makes: size and major first, then the kind. */
    if (!d || d->struct_size < FERRY_DESCRIPTOR_MIN_SIZE) {
        fprintf(stderr, "abi_baseline: %s: descriptor missing or too small\n", path);
        return NULL;
    }
    if (d->abi_major != FERRY_ABI_MAJOR) {
        fprintf(stderr, "abi_baseline: %s: ABI major %u, expected %u\n", path, (unsigned)d->abi_major,
                (unsigned)FERRY_ABI_MAJOR);
        return NULL;
    }
    if (!(d->kinds & want_kind) || !d->open || !d->close) {
        fprintf(stderr, "abi_baseline: %s (%s) is not of kind %u\n", path, d->name ? d->name : "?", want_kind);
        return NULL;
    }
    int ok = 1;
    if (want_kind == FERRY_KIND_SOURCE) ok = d->read && d->release;
    if (want_kind == FERRY_KIND_TRANSFORM) ok = d->transform && d->release;
    if (want_kind == FERRY_KIND_SINK) ok = d->write && d->commit;
    if (!ok) {
        fprintf(stderr, "abi_baseline: %s (%s) lacks a function its kind needs\n", path, d->name);
        return NULL;
    }
    return d;
}

/* ---- host API callbacks: no-ops, as cheap as the ABI allows ---------------- */

static void noop_log(void *ctx, int32_t level, const char *message) {
    (void)ctx; (void)level; (void)message;
}
static void noop_metric(void *ctx, const char *name, double value, int32_t kind) {
    (void)ctx; (void)name; (void)value; (void)kind;
}

/* ---- one worker thread ---------------------------------------------------- */

static const ferry_plugin_descriptor *g_gen, *g_pass, *g_sink;
static uint64_t g_records;
static uint32_t g_batch_size;
static uint32_t g_threads;
static const int32_t g_cancel = 0;

typedef struct {
    uint32_t index;
    uint64_t read;      /* records the source produced */
    uint64_t written;   /* records handed to the sink */
    int failed;
} worker;

static int check(ferry_status st, const char *plugin, const char *call, const ferry_error *err, uint32_t t) {
    if (st == FERRY_OK || st == FERRY_END) return 0;
    fprintf(stderr, "abi_baseline: thread %u: %s.%s failed with status %d: %s\n", t, plugin, call, (int)st,
            err->message[0] ? err->message : "(no message)");
    return 1;
}

static void *run_worker(void *arg) {
    worker *w = arg;
    char message[FERRY_ERROR_CAPACITY];
    ferry_error err = {message, FERRY_ERROR_CAPACITY, 0};
    message[0] = 0;

    ferry_host_api host;
    memset(&host, 0, sizeof host);
    host.struct_size = sizeof host;
    host.abi_major = FERRY_ABI_MAJOR;
    host.abi_minor = FERRY_ABI_MINOR;
    host.host_context = NULL;
    host.log = noop_log;
    host.metric = noop_metric;
    host.cancel_flag = &g_cancel;
    host.shard_index = w->index;
    host.shard_count = g_threads;
    host.pipeline_name = "abi_baseline";

    char gen_config[64];
    int gen_len = snprintf(gen_config, sizeof gen_config, "{\"count\": %" PRIu64 "}", g_records);
    static const char empty_config[] = "{}";

    /* One open_args per instance: only kind and config differ. */
    ferry_open_args args;
    memset(&args, 0, sizeof args);
    args.struct_size = sizeof args;
    args.host = &host;
    args.mode = FERRY_MODE_FULL;
    args.batch_size = g_batch_size;

    void *gen = NULL, *pass = NULL, *sink = NULL;
    ferry_status st;

    args.kind = FERRY_KIND_SOURCE;
    args.config_json = gen_config;
    args.config_size = (uint64_t)gen_len;
    message[0] = 0;
    st = g_gen->open(&args, &gen, &err);
    if (check(st, "generate", "open", &err, w->index)) goto fail;

    args.kind = FERRY_KIND_TRANSFORM;
    args.config_json = empty_config;
    args.config_size = sizeof empty_config - 1;
    message[0] = 0;
    st = g_pass->open(&args, &pass, &err);
    if (check(st, "passthrough", "open", &err, w->index)) goto fail;

    args.kind = FERRY_KIND_SINK;
    message[0] = 0;
    st = g_sink->open(&args, &sink, &err);
    if (check(st, "blackhole", "open", &err, w->index)) goto fail;

    for (;;) {
        ferry_batch in, out;
        ferry_result result;

        memset(&in, 0, sizeof in); /* the host zeroes the batch before read() */
        st = g_gen->read(gen, &in, &err);
        if (st == FERRY_END) break;
        if (check(st, "generate", "read", &err, w->index)) goto fail;
        w->read += in.count;

        memset(&out, 0, sizeof out);
        memset(&result, 0, sizeof result); /* the host zeroes the result, then sets its size */
        result.struct_size = sizeof result;
        st = g_pass->transform(pass, &in, &out, &result, &err);
        if (check(st, "passthrough", "transform", &err, w->index)) {
            g_gen->release(gen, &in);
            goto fail;
        }

        memset(&result, 0, sizeof result);
        result.struct_size = sizeof result;
        st = g_sink->write(sink, &out, &result, &err);
        if (st == FERRY_OK) st = g_sink->commit(sink, &err);
        if (st == FERRY_OK) w->written += out.count - result.reject_count;

        /* Newest first, as the host does: the transform's output (a no-op for a
         * passthrough batch), then the source batch it borrowed from. */
        g_pass->release(pass, &out);
        g_gen->release(gen, &in);
        if (check(st, "blackhole", "write/commit", &err, w->index)) goto fail;
    }

    g_sink->close(sink);
    g_pass->close(pass);
    g_gen->close(gen);
    return NULL;

fail:
    w->failed = 1;
    /* close() is safe on whatever the instance pointer holds, NULL included. */
    g_sink->close(sink);
    g_pass->close(pass);
    g_gen->close(gen);
    return NULL;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s GENERATE.so PASSTHROUGH.so BLACKHOLE.so THREADS RECORDS BATCH_SIZE\n", argv[0]);
        return 2;
    }
    long threads = strtol(argv[4], NULL, 10);
    long long records = strtoll(argv[5], NULL, 10);
    long batch = strtol(argv[6], NULL, 10);
    if (threads < 1 || threads > 64 || records < 0 || batch < 1 || batch > 1000000) {
        fprintf(stderr, "abi_baseline: bad THREADS (1-64), RECORDS (>=0) or BATCH_SIZE (1-1000000)\n");
        return 2;
    }
    g_threads = (uint32_t)threads;
    g_records = (uint64_t)records;
    g_batch_size = (uint32_t)batch;

    if (!(g_gen = load_plugin(argv[1], FERRY_KIND_SOURCE))) return 1;
    if (!(g_pass = load_plugin(argv[2], FERRY_KIND_TRANSFORM))) return 1;
    if (!(g_sink = load_plugin(argv[3], FERRY_KIND_SINK))) return 1;
    if (!(g_gen->capabilities & FERRY_CAP_SHARDED_READ) && g_threads > 1) {
        fprintf(stderr, "abi_baseline: %s cannot read shards; use 1 thread\n", g_gen->name);
        return 1;
    }

    worker workers[64];
    pthread_t tids[64];
    memset(workers, 0, sizeof workers);

    /* The clock covers opening, the whole loop and closing, like ferry's elapsed time. */
    double start = now_seconds();
    for (uint32_t t = 0; t < g_threads; t++) {
        workers[t].index = t;
        if (pthread_create(&tids[t], NULL, run_worker, &workers[t]) != 0) {
            fprintf(stderr, "abi_baseline: pthread_create failed\n");
            return 1;
        }
    }
    uint64_t read = 0, written = 0;
    int failed = 0;
    for (uint32_t t = 0; t < g_threads; t++) {
        pthread_join(tids[t], NULL);
        read += workers[t].read;
        written += workers[t].written;
        failed |= workers[t].failed;
    }
    double seconds = now_seconds() - start;
    if (failed) return 1;
    if (read != g_records || written != g_records) {
        fprintf(stderr, "abi_baseline: expected %" PRIu64 " records, read %" PRIu64 ", written %" PRIu64 "\n",
                g_records, read, written);
        return 1;
    }
    printf("records=%" PRIu64 " threads=%u batch_size=%u seconds=%.6f records_per_sec=%.0f\n", written, g_threads,
           g_batch_size, seconds, seconds > 0 ? (double)written / seconds : 0.0);
    return 0;
}
