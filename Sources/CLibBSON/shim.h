// libbson for Swift: bson_t is 128-byte aligned and cannot be allocated from
// Swift, so the few calls Ferry needs go through heap bson_t's and these helpers.
#ifndef FERRY_CLIBBSON_SHIM_H
#define FERRY_CLIBBSON_SHIM_H
#include <bson/bson.h>
#include <stdint.h>
#include <stdlib.h>

// Renders one document as relaxed extended JSON; the caller frees with bson_free.
static inline char *ferry_bson_to_relaxed_json(const uint8_t *data, uint32_t length, size_t *out_length) {
    bson_t doc;
    if (!bson_init_static(&doc, data, length)) return NULL;
    return bson_as_relaxed_extended_json(&doc, out_length);
}

// Renders one document as canonical extended JSON (types preserved exactly).
static inline char *ferry_bson_to_canonical_json(const uint8_t *data, uint32_t length, size_t *out_length) {
    bson_t doc;
    if (!bson_init_static(&doc, data, length)) return NULL;
    return bson_as_canonical_extended_json(&doc, out_length);
}

// Parses extended JSON into a new heap document; on failure fills message.
static inline bson_t *ferry_bson_from_json(const char *json, ssize_t length, char *message, size_t capacity) {
    bson_error_t error;
    bson_t *doc = bson_new_from_json((const uint8_t *)json, length, &error);
    if (!doc && message && capacity > 0) {
        snprintf(message, capacity, "%s", error.message);
    }
    return doc;
}

static inline const uint8_t *ferry_bson_data(const bson_t *doc) { return bson_get_data(doc); }
static inline uint32_t ferry_bson_length(const bson_t *doc) { return doc->len; }

// Full structural validation (UTF-8, nesting, lengths); returns the offset of the first error or -1.
static inline int64_t ferry_bson_validate(const uint8_t *data, uint32_t length) {
    bson_t doc;
    if (!bson_init_static(&doc, data, length)) return 0;
    size_t offset = 0;
    if (bson_validate(&doc, BSON_VALIDATE_UTF8 | BSON_VALIDATE_UTF8_ALLOW_NULL, &offset)) return -1;
    return (int64_t)offset;
}
#endif
