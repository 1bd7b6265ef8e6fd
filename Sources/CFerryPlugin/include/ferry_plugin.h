/*
 * ferry_plugin.h — the Ferry plugin ABI, version 1.1.
 *
 * This is the only file a Ferry plugin has to include. It is plain C11 with
 * stdint types, so a plugin can be written in C, in Swift (through the
 * FerryPluginKit SDK) or in any language that can export a C function.
 *
 * The contract in words (MUST/SHOULD) lives in docs/plugin-abi.md; the
 * comments here say what each field is for.
 *
 * Stability rules (see docs/plugin-abi.md, "Versioning"):
 *   - Within ABI major 1, structs only grow at the end, and every struct
 *     that can grow starts with its own size, so each side can tell which
 *     fields the other one knows about.
 *   - The host refuses a plugin whose major differs from its own and a
 *     descriptor smaller than FERRY_DESCRIPTOR_MIN_SIZE.
 *   - A minor bump adds fields or status codes; the host still loads plugins
 *     built against an older minor.
 */
#ifndef FERRY_PLUGIN_H
#define FERRY_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FERRY_ABI_MAJOR 1
#define FERRY_ABI_MINOR 1

/* The one symbol a plugin exports. */
#define FERRY_PLUGIN_ENTRY_SYMBOL "ferry_plugin_entry"

/* ---------------------------------------------------------------------------
 * Status codes. Every call that can fail returns one of these.
 * ------------------------------------------------------------------------- */
typedef int32_t ferry_status;

enum {
    FERRY_OK = 0,
    /* read(): the source has no more records (the batch is empty). */
    FERRY_END = 1,
    /* Bad or missing configuration; retrying will not help. */
    FERRY_ERR_CONFIG = 10,
    /* A transient failure (connection lost, timeout): the host may retry. */
    FERRY_ERR_TRANSIENT = 11,
    /* The data cannot be handled as a whole (e.g. a batch is not valid BSON). */
    FERRY_ERR_DATA = 12,
    /* The resume state handed to open() is not one this plugin understands. */
    FERRY_ERR_STATE = 13,
    /* The host's cancel flag was seen; the call stopped early. */
    FERRY_ERR_CANCELLED = 14,
    /* The call or the requested mode is not supported by this plugin. */
    FERRY_ERR_UNSUPPORTED = 15,
    /* Anything else: a bug or a permanent failure of the plugin. */
    FERRY_ERR_INTERNAL = 16
};

/* ---------------------------------------------------------------------------
 * Kinds (bit flags in the descriptor; one value in ferry_open_args.kind).
 * ------------------------------------------------------------------------- */
enum {
    FERRY_KIND_SOURCE = 1u << 0,
    FERRY_KIND_TRANSFORM = 1u << 1,
    FERRY_KIND_SINK = 1u << 2
};

/* Capability flags (descriptor.capabilities). Unknown bits are ignored. */
enum {
    /* The source honours ferry_host_api.shard_index / shard_count. */
    FERRY_CAP_SHARDED_READ = 1u << 0,
    /* The sink can upsert by key, so replaying a batch is harmless. */
    FERRY_CAP_UPSERT = 1u << 1,
    /* The sink implements preview() for dry runs. */
    FERRY_CAP_PREVIEW = 1u << 2,
    /* The source implements estimate() for progress and ETA. */
    FERRY_CAP_ESTIMATE = 1u << 3,
    /* The sink must see batches one at a time, in source order, through a
     * single instance (e.g. an append-only file). Without it the host opens
     * one sink instance per worker and writes in parallel. */
    FERRY_CAP_ORDERED_SINK = 1u << 4,
    /* The source produces an opaque resume state with every batch. */
    FERRY_CAP_RESUMABLE = 1u << 5,
    /* ABI 1.1. The sink can read its target back: read() and release() on a
     * sink instance yield the records the target holds, shaped as the
     * pipeline wrote them (ferry diff). Needs diff_info() with a key. */
    FERRY_CAP_READ_BACK = 1u << 6,
    /* ABI 1.1. The instance implements digest() and select_buckets(): it can
     * hash its records per key bucket where they are stored (diff push-down). */
    FERRY_CAP_DIGEST = 1u << 7,
    /* ABI 1.1. The sink implements delete_keys() (ferry repair). */
    FERRY_CAP_DELETE = 1u << 8
};

/* Sync mode the pipeline runs in (ferry_open_args.mode). */
enum {
    FERRY_MODE_FULL = 0,
    FERRY_MODE_INCREMENTAL = 1,
    FERRY_MODE_MISSING_ONLY = 2
};

/* Log levels for ferry_host_api.log. */
enum {
    FERRY_LOG_TRACE = 0,
    FERRY_LOG_DEBUG = 1,
    FERRY_LOG_INFO = 2,
    FERRY_LOG_WARN = 3,
    FERRY_LOG_ERROR = 4
};

/* Metric kinds for ferry_host_api.metric. */
enum {
    FERRY_METRIC_COUNTER = 0, /* value is added */
    FERRY_METRIC_GAUGE = 1    /* value replaces */
};

/* Batch flags. */
enum {
    /* transform(): the output is the input, unchanged. data points at the
     * input buffer and must not be freed by release(). */
    FERRY_BATCH_PASSTHROUGH = 1u << 0
};

/* ---------------------------------------------------------------------------
 * Error buffer: owned by the host, handed to every call that can fail.
 * The plugin writes a NUL-terminated message of at most capacity-1 bytes
 * (truncating if needed). The host reads it only when the call did not
 * return FERRY_OK or FERRY_END.
 * ------------------------------------------------------------------------- */
typedef struct ferry_error {
    char *message;
    uint32_t capacity;
    uint32_t reserved;
} ferry_error;

#define FERRY_ERROR_CAPACITY 1024u

/* ---------------------------------------------------------------------------
 * A batch: one contiguous buffer of concatenated BSON documents.
 *
 * The producer (a source's read() or a transform's transform()) fills it and
 * owns the memory until the host calls the producer's release() on it.
 * Consumers (transforms, sinks) only borrow it for the length of the call.
 * ------------------------------------------------------------------------- */
typedef struct ferry_batch {
    const uint8_t *data;    /* count BSON documents, back to back */
    uint64_t size;          /* bytes in data */
    uint32_t count;         /* documents in data */
    uint32_t flags;         /* FERRY_BATCH_* */
    /* Source batches: the opaque resume position *after* this batch. The host
     * copies it before release() and hands it back to open() on resume. */
    const uint8_t *state;
    uint32_t state_size;
    uint32_t reserved0;
    /* For the producer's bookkeeping (e.g. the allocation to free). */
    void *private_data;
    uint64_t reserved[2];
} ferry_batch;

/* One record a transform or sink refused, with the reason. The host writes
 * it to the dead-letter output; it is never dropped in silence. */
typedef struct ferry_reject {
    uint32_t index;         /* 0-based position in the input batch */
    uint32_t reserved;
    const char *reason;     /* NUL-terminated, owned by the plugin */
} ferry_reject;

/* Per-call outcome of transform(), write() and preview(). The host zeroes it
 * before the call. rejects stays valid until the next call on the instance. */
typedef struct ferry_result {
    uint32_t struct_size;   /* sizeof(ferry_result) as the host knows it */
    uint32_t reject_count;
    const ferry_reject *rejects;
    /* Sinks (write/preview): what the batch did (or would do) to the target.
     * Records neither inserted, updated, unchanged nor rejected are counted
     * by the host as written. */
    uint64_t inserted;
    uint64_t updated;
    uint64_t unchanged;
    uint64_t reserved[4];
} ferry_result;

/* ---------------------------------------------------------------------------
 * The host API table, handed to open(). Valid until close() returns.
 * It only ever grows at the end; read struct_size before any later field.
 * ------------------------------------------------------------------------- */
typedef struct ferry_host_api {
    uint32_t struct_size;
    uint16_t abi_major;
    uint16_t abi_minor;
    void *host_context;     /* pass back to every callback */
    /* Log one line. Thread-safe. message is copied before return. */
    void (*log)(void *host_context, int32_t level, const char *message);
    /* Report a metric (counter adds, gauge replaces). Thread-safe. */
    void (*metric)(void *host_context, const char *name, double value, int32_t kind);
    /* Non-zero once the run is cancelled. Read with ferry_is_cancelled(). */
    const int32_t *cancel_flag;
    /* The slice of the source this instance reads: shard_index in
     * [0, shard_count). shard_count == 1 means everything. */
    uint32_t shard_index;
    uint32_t shard_count;
    /* The pipeline's name, for messages. NUL-terminated. */
    const char *pipeline_name;
    /* --- ABI 1.0 ends here; new fields are appended below. --- */
} ferry_host_api;

static inline int ferry_is_cancelled(const ferry_host_api *host) {
    return host && host->cancel_flag && __atomic_load_n(host->cancel_flag, __ATOMIC_RELAXED) != 0;
}

/* Arguments of open(). Grows at the end like ferry_host_api. */
typedef struct ferry_open_args {
    uint32_t struct_size;
    uint32_t kind;                  /* the one FERRY_KIND_* this instance serves */
    const ferry_host_api *host;
    const char *config_json;        /* the plugin's config as a JSON object */
    uint64_t config_size;           /* bytes, without the NUL */
    /* Sources: where to resume (a state blob this plugin produced earlier),
     * or NULL/0 to start from the beginning. */
    const uint8_t *resume_state;
    uint32_t resume_state_size;
    uint32_t mode;                  /* FERRY_MODE_* */
    uint32_t batch_size;            /* records per batch the host asks for */
    uint32_t reserved0;
    uint64_t reserved[4];
    /* --- ABI 1.0 ends here. --- */
    uint32_t flags;                 /* ABI 1.1: FERRY_OPEN_* bits; read only when struct_size covers it */
    uint32_t reserved1;
} ferry_open_args;

/* ferry_open_args.flags (ABI 1.1). */
enum {
    /* The sink instance writes a repair (ferry repair, deletes: propagate):
     * it MUST NOT empty or replace its target, whatever its config says; a
     * sink configured to do so fails open() with FERRY_ERR_UNSUPPORTED. */
    FERRY_OPEN_REPAIR = 1u << 0
};

/* ---------------------------------------------------------------------------
 * ABI 1.1: comparing a source with a sink's target (ferry diff, ferry repair).
 *
 * Records are matched by key. A digest scheme (a name the plugin chooses,
 * e.g. "postgres-md5-jsonb-1") hashes a record's key to 64 bits and the whole
 * record to 64 bits; a record's bucket at `bits` is the top `bits` bits of
 * its key hash. The host compares the digests of two instances only when
 * their schemes are equal, and decides about single records itself.
 * ------------------------------------------------------------------------- */

/* What an instance says about its records. The host zeroes it and sets
 * struct_size; the strings stay valid until the next call on the instance. */
typedef struct ferry_diff_info {
    uint32_t struct_size;
    uint32_t reserved0;
    /* JSON array of the fields that identify a record, e.g. ["id"]; NULL when
     * the instance has no key (a sink without one cannot be diffed). */
    const char *key_json;
    /* JSON array of the fields every record has (a table's columns), or NULL
     * when records vary. */
    const char *fields_json;
    /* With FERRY_CAP_DIGEST: the digest scheme's name; else NULL. */
    const char *digest_scheme;
    uint64_t reserved[4];
} ferry_diff_info;

/* A set of key buckets, and what to hash. Filled by the host. */
typedef struct ferry_buckets {
    uint32_t struct_size;
    uint32_t bits;              /* 0..32; 0 is one bucket, all records */
    const uint64_t *buckets;    /* ascending bucket numbers at `bits`; NULL (count 0) is every bucket */
    uint64_t count;
    const char *key_json;       /* JSON array of the key fields to hash */
    const char *fields_json;    /* digest(): JSON array of the fields to hash; NULL is every field */
    uint64_t reserved[4];
} ferry_buckets;

/* One non-empty bucket of a digest. */
typedef struct ferry_bucket_digest {
    uint64_t bucket;            /* at ferry_digest.bits */
    uint64_t count;             /* records in the bucket */
    uint64_t hash;              /* sum of the records' hashes, modulo 2^64 */
} ferry_bucket_digest;

/* The answer of digest(). The host zeroes it and sets struct_size and bits;
 * the plugin sets buckets (ascending, non-empty ones only), valid until the
 * next call on the instance. */
typedef struct ferry_digest {
    uint32_t struct_size;
    uint32_t bits;              /* granularity of the answer, >= the request's bits */
    const ferry_bucket_digest *buckets;
    uint64_t count;
    uint64_t reserved[4];
} ferry_digest;

/* ---------------------------------------------------------------------------
 * The descriptor, returned by ferry_plugin_entry(). It must stay valid and
 * unchanged for as long as the plugin is loaded.
 *
 * Threading: the host never calls into one instance from two threads at once;
 * it opens one instance per worker. Different instances, open() included, may
 * be called concurrently, so state they share must be thread-safe.
 * release() is the exception: it may run on
 * any thread, concurrently with other calls on the same instance, and must
 * touch only the memory of the batch it is given.
 * ------------------------------------------------------------------------- */
typedef struct ferry_plugin_descriptor {
    /* These three stay at offsets 0, 4 and 6 in every ABI major version, so a
     * host can always read them and refuse a mismatch safely. */
    uint32_t struct_size;           /* sizeof(ferry_plugin_descriptor) */
    uint16_t abi_major;             /* FERRY_ABI_MAJOR */
    uint16_t abi_minor;             /* FERRY_ABI_MINOR */
    const char *name;               /* [a-z][a-z0-9_-]*, unique in a plugins dir */
    const char *version;            /* semantic version of the plugin */
    const char *description;        /* one line */
    uint32_t kinds;                 /* FERRY_KIND_* bits */
    uint32_t capabilities;          /* FERRY_CAP_* bits */
    const char *config_schema;      /* JSON Schema (draft 2020-12 subset) */

    /* Every plugin. open() may fail; close() is then still safe on whatever
     * *instance holds (NULL included). */
    ferry_status (*open)(const ferry_open_args *args, void **instance, ferry_error *error);
    void (*close)(void *instance);

    /* Sources. read() fills *batch (zeroed by the host) and returns FERRY_OK,
     * or FERRY_END with an empty batch when no records are left. */
    ferry_status (*read)(void *instance, ferry_batch *batch, ferry_error *error);
    /* Sources and transforms: give back a batch this instance produced. */
    void (*release)(void *instance, ferry_batch *batch);

    /* Transforms. Records missing from the output were filtered; records
     * listed in result->rejects go to the dead-letter output. */
    ferry_status (*transform)(void *instance, const ferry_batch *input, ferry_batch *output,
                              ferry_result *result, ferry_error *error);

    /* Sinks. write() stages a batch; commit() makes everything written so far
     * durable. The host saves a checkpoint only after commit() succeeds. */
    ferry_status (*write)(void *instance, const ferry_batch *batch, ferry_result *result,
                          ferry_error *error);
    ferry_status (*commit)(void *instance, ferry_error *error);

    /* Optional (NULL if absent). check(): can the plugin reach its system?
     * preview(): what would write() do to the target, without changing it.
     * estimate(): how many records the source expects to read in all. */
    ferry_status (*check)(void *instance, ferry_error *error);
    ferry_status (*preview)(void *instance, const ferry_batch *batch, ferry_result *result,
                            ferry_error *error);
    ferry_status (*estimate)(void *instance, uint64_t *total, ferry_error *error);

    void *reserved[8];
    /* --- ABI 1.0 ends here; new fields are appended below. --- */

    /* ABI 1.1, all optional (NULL if absent; the host reads them only when
     * struct_size covers them). diff_info(): the key, fields and digest
     * scheme of the instance's records. digest(): per bucket at digest->bits,
     * the count and hash of the records in `within`. select_buckets(): the
     * next read()s of this instance yield only the records in `buckets`,
     * from the start, in any order. delete_keys(): removes the records whose
     * keys are in `keys` (documents holding only the key fields), durable at
     * the next commit(); *deleted is how many existed. */
    ferry_status (*diff_info)(void *instance, ferry_diff_info *info, ferry_error *error);
    ferry_status (*digest)(void *instance, const ferry_buckets *within, ferry_digest *digest, ferry_error *error);
    ferry_status (*select_buckets)(void *instance, const ferry_buckets *buckets, ferry_error *error);
    ferry_status (*delete_keys)(void *instance, const ferry_batch *keys, uint64_t *deleted, ferry_error *error);
    /* --- ABI 1.1 ends here. --- */
} ferry_plugin_descriptor;

/* The descriptor's size in ABI 1.0, for a host that meets an older plugin. */
#define FERRY_DESCRIPTOR_SIZE_1_0 192u

/* The smallest descriptor the host accepts: everything up to reserved. */
#define FERRY_DESCRIPTOR_MIN_SIZE offsetof(ferry_plugin_descriptor, reserved)

typedef const ferry_plugin_descriptor *(*ferry_plugin_entry_fn)(void);

/* Marks the entry point visible even when a plugin builds with
 * -fvisibility=hidden (which it should, to export nothing else). */
#define FERRY_PLUGIN_EXPORT __attribute__((visibility("default")))

/* A plugin defines exactly this. */
FERRY_PLUGIN_EXPORT const ferry_plugin_descriptor *ferry_plugin_entry(void);

/* Writes a message into a host error buffer, truncating to fit. */
static inline void ferry_set_error(ferry_error *error, const char *message) {
    if (!error || !error->message || error->capacity == 0) return;
    uint32_t i = 0;
    if (message) {
        for (; message[i] != 0 && i + 1 < error->capacity; i++) error->message[i] = message[i];
    }
    error->message[i] = 0;
}

/* ---------------------------------------------------------------------------
 * Layout pins (LP64: Linux x86_64 and aarch64). An accidental change breaks
 * the build here, not a user's pipeline.
 * ------------------------------------------------------------------------- */
#if defined(__LP64__)
#ifdef __cplusplus
#define FERRY_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define FERRY_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif
FERRY_STATIC_ASSERT(sizeof(ferry_error) == 16, "ferry_error size");
FERRY_STATIC_ASSERT(sizeof(ferry_batch) == 64, "ferry_batch size");
FERRY_STATIC_ASSERT(offsetof(ferry_batch, state) == 24, "ferry_batch.state");
FERRY_STATIC_ASSERT(offsetof(ferry_batch, private_data) == 40, "ferry_batch.private_data");
FERRY_STATIC_ASSERT(sizeof(ferry_reject) == 16, "ferry_reject size");
FERRY_STATIC_ASSERT(sizeof(ferry_result) == 72, "ferry_result size");
FERRY_STATIC_ASSERT(offsetof(ferry_result, inserted) == 16, "ferry_result.inserted");
FERRY_STATIC_ASSERT(sizeof(ferry_host_api) == 56, "ferry_host_api size");
FERRY_STATIC_ASSERT(offsetof(ferry_host_api, cancel_flag) == 32, "ferry_host_api.cancel_flag");
FERRY_STATIC_ASSERT(offsetof(ferry_host_api, shard_index) == 40, "ferry_host_api.shard_index");
FERRY_STATIC_ASSERT(sizeof(ferry_open_args) == 96, "ferry_open_args size");
FERRY_STATIC_ASSERT(offsetof(ferry_open_args, flags) == 88, "ferry_open_args.flags");
FERRY_STATIC_ASSERT(offsetof(ferry_open_args, resume_state) == 32, "ferry_open_args.resume_state");
FERRY_STATIC_ASSERT(offsetof(ferry_open_args, mode) == 44, "ferry_open_args.mode");
FERRY_STATIC_ASSERT(sizeof(ferry_plugin_descriptor) == 224, "ferry_plugin_descriptor size");
FERRY_STATIC_ASSERT(offsetof(ferry_plugin_descriptor, diff_info) == FERRY_DESCRIPTOR_SIZE_1_0, "descriptor.diff_info");
FERRY_STATIC_ASSERT(sizeof(ferry_diff_info) == 64, "ferry_diff_info size");
FERRY_STATIC_ASSERT(sizeof(ferry_buckets) == 72, "ferry_buckets size");
FERRY_STATIC_ASSERT(sizeof(ferry_bucket_digest) == 24, "ferry_bucket_digest size");
FERRY_STATIC_ASSERT(sizeof(ferry_digest) == 56, "ferry_digest size");
FERRY_STATIC_ASSERT(offsetof(ferry_plugin_descriptor, name) == 8, "descriptor.name");
FERRY_STATIC_ASSERT(offsetof(ferry_plugin_descriptor, kinds) == 32, "descriptor.kinds");
FERRY_STATIC_ASSERT(offsetof(ferry_plugin_descriptor, open) == 48, "descriptor.open");
FERRY_STATIC_ASSERT(offsetof(ferry_plugin_descriptor, reserved) == 128, "descriptor.reserved");
#undef FERRY_STATIC_ASSERT
#endif

#ifdef __cplusplus
}
#endif

#endif /* FERRY_PLUGIN_H */
