/*
 * A sink as plugins of other ABI minors lay out their descriptor, for the
 * host's version tests. One -D flag picks the layout:
 *   (none)        built against ABI 1.0: struct_size FERRY_DESCRIPTOR_SIZE_1_0,
 *                 abi_minor 0, nothing after reserved[8]
 *   GARBAGE_TAIL  as 1.0, but the bytes after its 192 hold the ABI 1.1
 *                 functions (working ones, and the 1.1 capability bits set):
 *                 a host that reads past struct_size would find and call them
 *   GUARD_PAGE    as 1.0, with the 192 bytes placed at the very end of a page
 *                 followed by an inaccessible (PROT_NONE) page: a host that
 *                 reads past struct_size crashes
 *   FUTURE_MINOR  built against a minor newer than the host's: abi_minor one
 *                 above, 32 bytes of fields the host does not know after the
 *                 1.1 ones, and diff_info and delete_keys set
 *   NAME=...      plugin name (default "abisink")
 */
#include <stdlib.h>
#include <string.h>
#include "ferry_plugin.h"

#ifdef GUARD_PAGE
#include <sys/mman.h>
#include <unistd.h>
#endif

#ifndef NAME
#define NAME "abisink"
#endif

static ferry_status as_open(const ferry_open_args *args, void **instance, ferry_error *error) {
    *instance = NULL;
    if (args->kind != FERRY_KIND_SINK) {
        ferry_set_error(error, NAME ": a sink only");
        return FERRY_ERR_UNSUPPORTED;
    }
    *instance = calloc(1, sizeof(uint64_t));
    return FERRY_OK;
}

static void as_close(void *instance) { free(instance); }

static ferry_status as_write(void *instance, const ferry_batch *batch, ferry_result *result, ferry_error *error) {
    (void)error;
    *(uint64_t *)instance += batch->count;
    result->inserted = batch->count;
    return FERRY_OK;
}

static ferry_status as_commit(void *instance, ferry_error *error) {
    (void)instance; (void)error;
    return FERRY_OK;
}

/* The ABI 1.1 functions: answers a host must never see from a 1.0 layout. */
__attribute__((unused)) static ferry_status as_diff_info(void *instance, ferry_diff_info *info, ferry_error *error) {
    (void)instance; (void)error;
    info->key_json = "[\"id\"]";
    return FERRY_OK;
}

__attribute__((unused)) static ferry_status as_digest(void *instance, const ferry_buckets *within, ferry_digest *digest, ferry_error *error) {
    (void)instance; (void)within; (void)digest; (void)error;
    return FERRY_OK;
}

__attribute__((unused)) static ferry_status as_select_buckets(void *instance, const ferry_buckets *buckets, ferry_error *error) {
    (void)instance; (void)buckets; (void)error;
    return FERRY_OK;
}

__attribute__((unused)) static ferry_status as_delete_keys(void *instance, const ferry_batch *keys, uint64_t *deleted, ferry_error *error) {
    (void)instance; (void)error;
    *deleted = keys->count;
    return FERRY_OK;
}

#ifdef FUTURE_MINOR
typedef struct future_descriptor {
    ferry_plugin_descriptor known;
    void *added_later[4];
} future_descriptor;
#define AS_SIZE sizeof(future_descriptor)
#define AS_MINOR (FERRY_ABI_MINOR + 1)
#else
#define AS_SIZE FERRY_DESCRIPTOR_SIZE_1_0
#define AS_MINOR 0
#endif

#if defined(GARBAGE_TAIL) || defined(FUTURE_MINOR)
#define AS_CAPABILITIES (FERRY_CAP_READ_BACK | FERRY_CAP_DIGEST | FERRY_CAP_DELETE)
#else
#define AS_CAPABILITIES 0
#endif

static const ferry_plugin_descriptor as_descriptor = {
    .struct_size = AS_SIZE,
    .abi_major = FERRY_ABI_MAJOR,
    .abi_minor = AS_MINOR,
    .name = NAME,
    .version = "1.0.0",
    .description = "a sink laid out as another ABI minor builds it",
    .kinds = FERRY_KIND_SINK,
    .capabilities = AS_CAPABILITIES,
    .config_schema = "{\"type\":\"object\"}",
    .open = as_open,
    .close = as_close,
    .write = as_write,
    .commit = as_commit,
#if defined(GARBAGE_TAIL)
    .diff_info = as_diff_info,
    .digest = as_digest,
    .select_buckets = as_select_buckets,
    .delete_keys = as_delete_keys,
#elif defined(FUTURE_MINOR)
    .diff_info = as_diff_info,
    .delete_keys = as_delete_keys,
#endif
};

#ifdef FUTURE_MINOR
static const future_descriptor as_future = {.known = as_descriptor, .added_later = {(void *)1, (void *)2, (void *)3, (void *)4}};
#endif

#ifdef GUARD_PAGE
static const ferry_plugin_descriptor *as_guarded;

/* Runs once, at load: the descriptor must not change after the first call. */
__attribute__((constructor)) static void as_place_before_guard(void) {
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *pages = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pages == MAP_FAILED) return;
    uint8_t *end = pages + page;
    if (mprotect(end, (size_t)page, PROT_NONE) != 0) return;
    memcpy(end - FERRY_DESCRIPTOR_SIZE_1_0, &as_descriptor, FERRY_DESCRIPTOR_SIZE_1_0);
    as_guarded = (const ferry_plugin_descriptor *)(const void *)(end - FERRY_DESCRIPTOR_SIZE_1_0);
}
#endif

FERRY_PLUGIN_EXPORT const ferry_plugin_descriptor *ferry_plugin_entry(void) {
#if defined(GUARD_PAGE)
    return as_guarded;
#elif defined(FUTURE_MINOR)
    return &as_future.known;
#else
    return &as_descriptor;
#endif
}
