/*
 * An ABI 1.1 sink keyed by _id that keeps its target in memory (one per
 * process), reads it back, digests it per key bucket and deletes by key:
 * what `ferry plugin test` checks of read-back, digest and delete plugins.
 * One -D flag breaks one promise:
 *   NO_DIFF_INFO     declares read-back, but diff_info is NULL
 *   NO_DELETE_KEYS   declares delete, but delete_keys is NULL
 *   BAD_KEY_JSON     diff_info's key is "_id", not a JSON array
 *   NO_KEY           diff_info gives no key
 *   LOSES_RECORDS    read-back yields only the first record it holds
 *   SELECT_IGNORED   select_buckets is accepted, and the reads still yield every bucket
 *   NAME=...         plugin name (default "diffsink")
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "ferry_plugin.h"

#ifndef NAME
#define NAME "diffsink"
#endif

typedef struct stored {
    uint8_t *doc;       /* the whole document */
    uint32_t size;
    uint64_t key_hash;
} stored;

/* The target: shared by every instance in the process. */
static pthread_mutex_t target_lock = PTHREAD_MUTEX_INITIALIZER;
static stored *target;
static size_t target_count, target_capacity;

typedef struct instance {
    size_t cursor;              /* read-back position in the target */
    uint32_t bits;              /* select_buckets: 0 and no list is every bucket */
    uint64_t *buckets;
    uint64_t bucket_count;
    ferry_bucket_digest *digest;
} instance;

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* Bytes of the value of an element of `type` at p (limit: bytes left), or -1. */
static long value_size(uint8_t type, const uint8_t *p, size_t limit) {
    switch (type) {
    case 0x01: case 0x09: case 0x11: case 0x12: return 8;
    case 0x02: return limit >= 4 ? 4 + (long)le32(p) : -1;
    case 0x03: case 0x04: return limit >= 4 ? (long)le32(p) : -1;
    case 0x05: return limit >= 4 ? 5 + (long)le32(p) : -1;
    case 0x07: return 12;
    case 0x08: return 1;
    case 0x0A: return 0;
    case 0x10: return 4;
    case 0x13: return 16;
    default: return -1;
    }
}

/* The hash of the _id element (type byte and value), or 0 when the document has none. */
static int key_hash(const uint8_t *doc, uint32_t size, uint64_t *hash) {
    size_t at = 4;
    while (at < size && doc[at] != 0) {
        uint8_t type = doc[at];
        const char *name = (const char *)doc + at + 1;
        size_t name_size = strnlen(name, size - at - 1);
        size_t value_at = at + 1 + name_size + 1;
        if (value_at > size) return 0;
        long n = value_size(type, doc + value_at, size - value_at);
        if (n < 0 || value_at + (size_t)n > size) return 0;
        if (strcmp(name, "_id") == 0) {
            uint8_t bytes[64];
            size_t len = (size_t)n + 1 < sizeof bytes ? (size_t)n + 1 : sizeof bytes;
            bytes[0] = type;
            memcpy(bytes + 1, doc + value_at, len - 1);
            *hash = fnv1a(bytes, len);
            return 1;
        }
        at = value_at + (size_t)n;
    }
    return 0;
}

static uint64_t bucket_of(uint64_t hash, uint32_t bits) { return bits == 0 ? 0 : hash >> (64 - bits); }

static ferry_status ds_open(const ferry_open_args *args, void **out, ferry_error *error) {
    *out = NULL;
    if (args->kind != FERRY_KIND_SINK) {
        ferry_set_error(error, NAME ": a sink only");
        return FERRY_ERR_UNSUPPORTED;
    }
    if (args->config_size == 0 || args->config_json[0] != '{') {
        ferry_set_error(error, NAME ": the config must be a JSON object");
        return FERRY_ERR_CONFIG;
    }
    if (args->mode == FERRY_MODE_FULL) {
        pthread_mutex_lock(&target_lock);
        for (size_t i = 0; i < target_count; i++) free(target[i].doc);
        target_count = 0;
        pthread_mutex_unlock(&target_lock);
    }
    *out = calloc(1, sizeof(instance));
    return *out ? FERRY_OK : FERRY_ERR_INTERNAL;
}

static void ds_close(void *p) {
    instance *self = p;
    if (!self) return;
    free(self->buckets);
    free(self->digest);
    free(self);
}

/* Removes the record with this key hash; 1 if there was one. */
static int remove_locked(uint64_t hash) {
    for (size_t i = 0; i < target_count; i++) {
        if (target[i].key_hash == hash) {
            free(target[i].doc);
            target[i] = target[--target_count];
            return 1;
        }
    }
    return 0;
}

static ferry_status ds_write(void *p, const ferry_batch *batch, ferry_result *result, ferry_error *error) {
    (void)p;
    size_t at = 0;
    pthread_mutex_lock(&target_lock);
    for (uint32_t i = 0; i < batch->count; i++) {
        uint32_t size = le32(batch->data + at);
        uint64_t hash;
        if (!key_hash(batch->data + at, size, &hash)) {
            pthread_mutex_unlock(&target_lock);
            ferry_set_error(error, NAME ": a record without _id");
            return FERRY_ERR_DATA;
        }
        if (remove_locked(hash)) result->updated++; else result->inserted++;
        if (target_count == target_capacity) {
            target_capacity = target_capacity ? target_capacity * 2 : 16;
            target = realloc(target, target_capacity * sizeof *target);
        }
        uint8_t *copy = malloc(size);
        memcpy(copy, batch->data + at, size);
        target[target_count++] = (stored){copy, size, hash};
        at += size;
    }
    pthread_mutex_unlock(&target_lock);
    return FERRY_OK;
}

static ferry_status ds_commit(void *p, ferry_error *error) {
    (void)p; (void)error;
    return FERRY_OK;
}

static int selected(const instance *self, uint64_t hash) {
#ifdef SELECT_IGNORED
    (void)self; (void)hash;
    return 1;
#else
    if (self->bucket_count == 0) return 1;
    uint64_t bucket = bucket_of(hash, self->bits);
    for (uint64_t i = 0; i < self->bucket_count; i++)
        if (self->buckets[i] == bucket) return 1;
    return 0;
#endif
}

static ferry_status ds_read(void *p, ferry_batch *batch, ferry_error *error) {
    (void)error;
    instance *self = p;
    pthread_mutex_lock(&target_lock);
    size_t end = target_count;
#ifdef LOSES_RECORDS
    if (end > 1) end = 1;
#endif
    uint8_t *data = NULL;
    size_t size = 0;
    uint32_t count = 0;
    while (self->cursor < end && count < 4) {
        stored *record = &target[self->cursor++];
        if (!selected(self, record->key_hash)) continue;
        data = realloc(data, size + record->size);
        memcpy(data + size, record->doc, record->size);
        size += record->size;
        count++;
    }
    pthread_mutex_unlock(&target_lock);
    if (count == 0) return FERRY_END;
    batch->data = data;
    batch->size = size;
    batch->count = count;
    batch->private_data = data;
    return FERRY_OK;
}

static void ds_release(void *p, ferry_batch *batch) {
    (void)p;
    free(batch->private_data);
    memset(batch, 0, sizeof *batch);
}

static ferry_status ds_diff_info(void *p, ferry_diff_info *info, ferry_error *error) {
    (void)p; (void)error;
#if defined(BAD_KEY_JSON)
    info->key_json = "_id";
#elif defined(NO_KEY)
    info->key_json = NULL;
#else
    info->key_json = "[\"_id\"]";
#endif
    info->digest_scheme = NAME "-fnv1a-1";
    return FERRY_OK;
}

static ferry_status ds_digest(void *p, const ferry_buckets *within, ferry_digest *out, ferry_error *error) {
    instance *self = p;
    if (out->bits > 16) {
        ferry_set_error(error, NAME ": digests at most 16 bits");
        return FERRY_ERR_UNSUPPORTED;
    }
    size_t buckets = (size_t)1 << out->bits;
    free(self->digest);
    self->digest = calloc(buckets, sizeof *self->digest);
    pthread_mutex_lock(&target_lock);
    for (size_t i = 0; i < target_count; i++) {
        uint64_t hash = target[i].key_hash;
        int inside = within->count == 0;
        for (uint64_t j = 0; j < within->count && !inside; j++) inside = within->buckets[j] == bucket_of(hash, within->bits);
        if (!inside) continue;
        ferry_bucket_digest *slot = &self->digest[bucket_of(hash, out->bits)];
        slot->count++;
        slot->hash += fnv1a(target[i].doc, target[i].size);
    }
    pthread_mutex_unlock(&target_lock);
    size_t kept = 0;
    for (size_t b = 0; b < buckets; b++) {
        if (self->digest[b].count == 0) continue;
        self->digest[kept] = self->digest[b];
        self->digest[kept++].bucket = b;
    }
    out->buckets = self->digest;
    out->count = kept;
    return FERRY_OK;
}

static ferry_status ds_select_buckets(void *p, const ferry_buckets *request, ferry_error *error) {
    (void)error;
    instance *self = p;
    free(self->buckets);
    self->buckets = NULL;
    self->bits = request->bits;
    self->bucket_count = request->count;
    if (request->count) {
        self->buckets = malloc(request->count * sizeof(uint64_t));
        memcpy(self->buckets, request->buckets, request->count * sizeof(uint64_t));
    }
    self->cursor = 0;
    return FERRY_OK;
}

static ferry_status ds_delete_keys(void *p, const ferry_batch *keys, uint64_t *deleted, ferry_error *error) {
    (void)p;
    size_t at = 0;
    *deleted = 0;
    pthread_mutex_lock(&target_lock);
    for (uint32_t i = 0; i < keys->count; i++) {
        uint32_t size = le32(keys->data + at);
        uint64_t hash;
        if (!key_hash(keys->data + at, size, &hash)) {
            pthread_mutex_unlock(&target_lock);
            ferry_set_error(error, NAME ": a key document without _id");
            return FERRY_ERR_DATA;
        }
        *deleted += (uint64_t)remove_locked(hash);
        at += size;
    }
    pthread_mutex_unlock(&target_lock);
    return FERRY_OK;
}

static const ferry_plugin_descriptor ds_descriptor = {
    .struct_size = sizeof(ferry_plugin_descriptor),
    .abi_major = FERRY_ABI_MAJOR,
    .abi_minor = FERRY_ABI_MINOR,
    .name = NAME,
    .version = "1.0.0",
    .description = "An in-memory sink keyed by _id that reads back, digests and deletes",
    .kinds = FERRY_KIND_SINK,
    .capabilities = FERRY_CAP_UPSERT | FERRY_CAP_READ_BACK | FERRY_CAP_DIGEST | FERRY_CAP_DELETE,
    .config_schema = "{\"type\":\"object\"}",
    .open = ds_open,
    .close = ds_close,
    .read = ds_read,
    .release = ds_release,
    .write = ds_write,
    .commit = ds_commit,
#ifndef NO_DIFF_INFO
    .diff_info = ds_diff_info,
#endif
    .digest = ds_digest,
    .select_buckets = ds_select_buckets,
#ifndef NO_DELETE_KEYS
    .delete_keys = ds_delete_keys,
#endif
};

FERRY_PLUGIN_EXPORT const ferry_plugin_descriptor *ferry_plugin_entry(void) {
    (void)ds_diff_info; (void)ds_delete_keys;
    return &ds_descriptor;
}
