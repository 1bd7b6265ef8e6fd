/*
 * Deliberately broken plugins for the loader and runtime tests, one per
 * -D flag. Each must be reported with a clear error, never crash the host.
 *   WRONG_ABI        descriptor claims ABI 2.0
 *   SMALL_DESCRIPTOR struct_size smaller than ABI 1 needs
 *   NO_ENTRY         exports no ferry_plugin_entry
 *   FAILING_OPEN     open() fails with the plugin's own message
 *   BAD_BATCH        transform returns a batch whose count lies
 *   CRASH_IN_OPEN    open() writes through a null pointer (SIGSEGV)
 *   INVALID_BSON     transform returns a well-framed document libbson rejects
 *   LEAK             every open() leaks 64 KiB of touched memory
 *   WRITES_STDOUT    transform prints to stdout, which belongs to the host
 *   LOAD_NOISE       a constructor prints to stderr while the file is loaded,
 *                    as libmongoc's does (otherwise a good plugin)
 *   CRASH_IN_TRANSFORM transform() writes through a null pointer (SIGSEGV)
 *   FLAKY            every other transform() fails with FERRY_ERR_TRANSIENT
 *   CANCELLABLE      a slow transform (up to 2 s a batch) that polls the
 *                    cancel flag and returns FERRY_ERR_CANCELLED, as
 *                    plugin-abi.md asks of long calls
 *   RENDEZVOUS=N     open() waits (up to 3 s) until N opens of this library
 *                    are inside open() at once, and fails if they never are:
 *                    the run must open its instances side by side
 *   NAME=...         plugin name (default "fixture")
 */
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include "ferry_plugin.h"

#ifndef NAME
#define NAME "fixture"
#endif

#ifdef LOAD_NOISE
#include <stdio.h>
__attribute__((constructor)) static void fx_load_noise(void) {
    fprintf(stderr, "fixture: WARNING: hello from a library constructor\n");
}
#endif

#ifdef CANCELLABLE
#include <time.h>
static const ferry_host_api *fx_host;
#endif

#ifdef RENDEZVOUS
#include <pthread.h>
#include <stdio.h>
#include <time.h>
static pthread_mutex_t fx_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fx_arrived = PTHREAD_COND_INITIALIZER;
static int fx_arrivals;
/* How many opens had arrived when this one stopped waiting. */
static int fx_rendezvous(void) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 3;
    pthread_mutex_lock(&fx_lock);
    fx_arrivals++;
    pthread_cond_broadcast(&fx_arrived);
    while (fx_arrivals < RENDEZVOUS) {
        if (pthread_cond_timedwait(&fx_arrived, &fx_lock, &deadline) != 0) break;
    }
    int arrived = fx_arrivals;
    pthread_mutex_unlock(&fx_lock);
    return arrived;
}
#endif

static ferry_status fx_open(const ferry_open_args *args, void **instance, ferry_error *error) {
    (void)args;
#ifdef CANCELLABLE
    fx_host = args->host;
#endif
#ifdef CRASH_IN_OPEN
    volatile int *nowhere = NULL;
    *nowhere = 1;
#endif
#ifdef LEAK
    /* Stored where the compiler cannot prove it dead, so the leak is real. */
    static void *volatile last_leak;
    last_leak = malloc(64 * 1024);
    if (last_leak) memset(last_leak, 1, 64 * 1024);
#endif
#ifdef RENDEZVOUS
    int arrived = fx_rendezvous();
    if (arrived < RENDEZVOUS) {
        char message[160];
        snprintf(message, sizeof message, "%d of %d opens arrived within 3 s: the instances were opened one after the other",
                 arrived, RENDEZVOUS);
        *instance = calloc(1, 16);
        ferry_set_error(error, message);
        return FERRY_ERR_CONFIG;
    }
#endif
#ifdef FAILING_OPEN
    *instance = malloc(16); /* close() must still be called on it */
    ferry_set_error(error, "cannot connect to postgresql://bob:hunter2@db.example:5432/shop (password rejected)");
    return FERRY_ERR_CONFIG;
#else
    (void)error;
    *instance = calloc(1, 16);
    return FERRY_OK;
#endif
}

static void fx_close(void *instance) { free(instance); }

static ferry_status fx_transform(void *instance, const ferry_batch *input, ferry_batch *output, ferry_result *result,
                                 ferry_error *error) {
    (void)instance; (void)result; (void)error;
#ifdef FLAKY
    /* Per instance: one instance is called from one thread at a time. */
    int *calls = instance;
    if ((*calls)++ % 2 == 0) {
        ferry_set_error(error, "flaky: connection reset");
        return FERRY_ERR_TRANSIENT;
    }
#endif
#ifdef CRASH_IN_TRANSFORM
    volatile int *nowhere_else = NULL;
    *nowhere_else = 2;
#endif
#ifdef CANCELLABLE
    for (int i = 0; i < 200; i++) {
        if (ferry_is_cancelled(fx_host)) {
            ferry_set_error(error, "cancelled while transforming");
            return FERRY_ERR_CANCELLED;
        }
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
#endif
    memset(output, 0, sizeof *output);
    output->data = input->data;
    output->size = input->size;
    output->count = input->count;
#ifdef BAD_BATCH
    output->count = input->count + 1; /* claims a document that is not there */
#endif
#ifdef INVALID_BSON
    /* Framing is fine (length 8, terminator), but 0x77 is no BSON type. */
    static const uint8_t garbage[8] = {8, 0, 0, 0, 0x77, 'a', 0, 0};
    output->data = garbage;
    output->size = sizeof garbage;
    output->count = input->count ? 1 : 0;
    if (!input->count) output->size = 0;
#endif
#ifdef WRITES_STDOUT
    (void)!write(1, "debug: transform called\n", 24);
#endif
    return FERRY_OK;
}

static void fx_release(void *instance, ferry_batch *batch) { (void)instance; memset(batch, 0, sizeof *batch); }

static const ferry_plugin_descriptor descriptor = {
#ifdef SMALL_DESCRIPTOR
    .struct_size = 16,
#else
    .struct_size = sizeof(ferry_plugin_descriptor),
#endif
#ifdef WRONG_ABI
    .abi_major = 2,
    .abi_minor = 3,
#else
    .abi_major = FERRY_ABI_MAJOR,
    .abi_minor = FERRY_ABI_MINOR,
#endif
    .name = NAME,
    .version = "0.0.1",
    .description = "test fixture",
    .kinds = FERRY_KIND_TRANSFORM,
    .config_schema = "{\"type\":\"object\"}",
    .open = fx_open,
    .close = fx_close,
    .release = fx_release,
    .transform = fx_transform,
};

#ifdef NO_ENTRY
FERRY_PLUGIN_EXPORT const ferry_plugin_descriptor *some_other_symbol(void) { return &descriptor; }
#else
FERRY_PLUGIN_EXPORT const ferry_plugin_descriptor *ferry_plugin_entry(void) { return &descriptor; }
#endif
