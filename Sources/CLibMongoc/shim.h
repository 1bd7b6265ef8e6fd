// libmongoc for the MongoDB plugin only; the engine never links it.
// bson_t and bson_iter_t are 128-byte aligned and cannot be allocated from
// Swift: every call that needs one on the stack lives here, as static inline
// C taking raw BSON bytes, so Swift only ever sees byte buffers and opaque
// client/collection/cursor/bulk pointers.
#ifndef FERRY_CLIBMONGOC_SHIM_H
#define FERRY_CLIBMONGOC_SHIM_H
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// An error Swift can allocate: bson_error_t copied out field by field.
typedef struct {
    uint32_t domain;
    uint32_t code;
    char message[504];
} ferry_mongo_error;

static inline void ferry_mongo_copy_error(ferry_mongo_error *out, const bson_error_t *error) {
    if (!out) return;
    out->domain = error->domain;
    out->code = error->code;
    snprintf(out->message, sizeof out->message, "%s", error->message);
}

static inline void ferry_mongo_set_error(ferry_mongo_error *out, const char *message) {
    if (!out) return;
    out->domain = 0;
    out->code = 0;
    snprintf(out->message, sizeof out->message, "%s", message);
}

// mongoc_init must run once per process, before any other call; the plugin
// may be opened many times (one instance per worker), so guard it.
static pthread_once_t ferry_mongo_once = PTHREAD_ONCE_INIT;
// libmongoc's own log goes to stderr by default and can echo a URI: silence
// it; every failure reaches the host through the plugin's error messages.
static inline void ferry_mongo_init_once(void) {
    mongoc_log_set_handler(NULL, NULL);
    mongoc_init();
}
static inline void ferry_mongo_init(void) { pthread_once(&ferry_mongo_once, ferry_mongo_init_once); }

// A client for one instance. Timeouts (ms, > 0) apply only when the URI does
// not set them itself, so a URI option always wins over the plugin's default.
static inline mongoc_client_t *ferry_mongo_client_new(
    const char *uri_string, int32_t server_selection_ms, int32_t connect_ms, ferry_mongo_error *err) {
    ferry_mongo_init();
    bson_error_t error;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_string, &error);
    if (!uri) {
        ferry_mongo_copy_error(err, &error);
        return NULL;
    }
    if (server_selection_ms > 0 && !mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS)) {
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, server_selection_ms);
    }
    if (connect_ms > 0 && !mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS)) {
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, connect_ms);
    }
    if (!mongoc_uri_has_option(uri, MONGOC_URI_APPNAME)) {
        mongoc_uri_set_option_as_utf8(uri, MONGOC_URI_APPNAME, "ferry");
    }
    mongoc_client_t *client = mongoc_client_new_from_uri_with_error(uri, &error);
    mongoc_uri_destroy(uri);
    if (!client) {
        ferry_mongo_copy_error(err, &error);
        return NULL;
    }
    mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
    return client;
}

// Copies a reply into malloc'd bytes the caller frees with free().
static inline void ferry_mongo_take_reply(bson_t *reply, uint8_t **out, uint32_t *out_length) {
    if (out && out_length) {
        *out_length = reply->len;
        *out = (uint8_t *)malloc(reply->len);
        if (*out) memcpy(*out, bson_get_data(reply), reply->len);
    }
    bson_destroy(reply);
}

// Runs a command on a database (ping, count, aggregate with cursor). The
// reply (even on error, when the server sent one) goes to *reply.
static inline bool ferry_mongo_command(
    mongoc_client_t *client, const char *db, const uint8_t *command, uint32_t length,
    uint8_t **reply_out, uint32_t *reply_length, ferry_mongo_error *err) {
    bson_t cmd;
    if (!bson_init_static(&cmd, command, length)) {
        ferry_mongo_set_error(err, "invalid command document");
        return false;
    }
    bson_t reply;
    bson_error_t error;
    bool ok = mongoc_client_command_simple(client, db, &cmd, NULL, &reply, &error);
    if (!ok) ferry_mongo_copy_error(err, &error);
    ferry_mongo_take_reply(&reply, reply_out, reply_length);
    return ok;
}

static inline mongoc_cursor_t *ferry_mongo_find(
    mongoc_collection_t *collection, const uint8_t *filter, uint32_t filter_length,
    const uint8_t *opts, uint32_t opts_length) {
    bson_t f, o;
    if (!bson_init_static(&f, filter, filter_length)) return NULL;
    if (!bson_init_static(&o, opts, opts_length)) return NULL;
    return mongoc_collection_find_with_opts(collection, &f, &o, NULL);
}

// 1: *data/*length point at the next document (valid until the next call);
// 0: the cursor is exhausted; -1: error in *err.
static inline int ferry_mongo_cursor_next(
    mongoc_cursor_t *cursor, const uint8_t **data, uint32_t *length, ferry_mongo_error *err) {
    const bson_t *doc;
    if (mongoc_cursor_next(cursor, &doc)) {
        *data = bson_get_data(doc);
        *length = doc->len;
        return 1;
    }
    bson_error_t error;
    if (mongoc_cursor_error(cursor, &error)) {
        ferry_mongo_copy_error(err, &error);
        return -1;
    }
    return 0;
}

// estimatedDocumentCount (filter NULL) or countDocuments(filter); -1 on error.
static inline int64_t ferry_mongo_count(
    mongoc_collection_t *collection, const uint8_t *filter, uint32_t filter_length, ferry_mongo_error *err) {
    bson_error_t error;
    int64_t count;
    if (filter) {
        bson_t f;
        if (!bson_init_static(&f, filter, filter_length)) {
            ferry_mongo_set_error(err, "invalid filter document");
            return -1;
        }
        count = mongoc_collection_count_documents(collection, &f, NULL, NULL, NULL, &error);
    } else {
        count = mongoc_collection_estimated_document_count(collection, NULL, NULL, NULL, &error);
    }
    if (count < 0) ferry_mongo_copy_error(err, &error);
    return count;
}

static inline bool ferry_mongo_delete_all(mongoc_collection_t *collection, ferry_mongo_error *err) {
    bson_t empty = BSON_INITIALIZER;
    bson_error_t error;
    bool ok = mongoc_collection_delete_many(collection, &empty, NULL, NULL, &error);
    if (!ok) ferry_mongo_copy_error(err, &error);
    return ok;
}

// deleteMany(filter, opts); *deleted is the server's deletedCount. Without a
// writeConcern in opts the collection's own (the URI's) applies, as for bulks.
static inline bool ferry_mongo_delete_many(
    mongoc_collection_t *collection, const uint8_t *filter, uint32_t filter_length,
    const uint8_t *opts, uint32_t opts_length, int64_t *deleted, ferry_mongo_error *err) {
    bson_t f, o;
    if (!bson_init_static(&f, filter, filter_length) || !bson_init_static(&o, opts, opts_length)) {
        ferry_mongo_set_error(err, "invalid BSON document");
        return false;
    }
    bson_t reply;
    bson_error_t error;
    bool ok = mongoc_collection_delete_many(collection, &f, &o, &reply, &error);
    if (!ok) ferry_mongo_copy_error(err, &error);
    bson_iter_t iter;
    *deleted = ok && bson_iter_init_find(&iter, &reply, "deletedCount") ? bson_iter_as_int64(&iter) : 0;
    bson_destroy(&reply);
    return ok;
}

static inline mongoc_bulk_operation_t *ferry_mongo_bulk_new(
    mongoc_collection_t *collection, const uint8_t *opts, uint32_t opts_length) {
    bson_t o;
    if (!bson_init_static(&o, opts, opts_length)) return NULL;
    return mongoc_collection_create_bulk_operation_with_opts(collection, &o);
}

static inline bool ferry_mongo_bulk_insert(
    mongoc_bulk_operation_t *bulk, const uint8_t *doc, uint32_t length, ferry_mongo_error *err) {
    bson_t d;
    if (!bson_init_static(&d, doc, length)) {
        ferry_mongo_set_error(err, "invalid BSON document");
        return false;
    }
    bson_error_t error;
    bool ok = mongoc_bulk_operation_insert_with_opts(bulk, &d, NULL, &error);
    if (!ok) ferry_mongo_copy_error(err, &error);
    return ok;
}

// replace: replaceOne(selector, document, {upsert}); otherwise updateOne(selector, update, {upsert}).
static inline bool ferry_mongo_bulk_upsert(
    mongoc_bulk_operation_t *bulk, bool replace, const uint8_t *selector, uint32_t selector_length,
    const uint8_t *doc, uint32_t length, ferry_mongo_error *err) {
    bson_t s, d;
    if (!bson_init_static(&s, selector, selector_length) || !bson_init_static(&d, doc, length)) {
        ferry_mongo_set_error(err, "invalid BSON document");
        return false;
    }
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&opts, "upsert", true);
    bson_error_t error;
    bool ok = replace
        ? mongoc_bulk_operation_replace_one_with_opts(bulk, &s, &d, &opts, &error)
        : mongoc_bulk_operation_update_one_with_opts(bulk, &s, &d, &opts, &error);
    bson_destroy(&opts);
    if (!ok) ferry_mongo_copy_error(err, &error);
    return ok;
}

// Runs the bulk; the reply (counts, writeErrors with indexes) goes to *reply
// whether or not it failed. Returns false when anything failed: then *err
// holds the first error, and the reply tells which documents.
static inline bool ferry_mongo_bulk_execute(
    mongoc_bulk_operation_t *bulk, uint8_t **reply_out, uint32_t *reply_length, ferry_mongo_error *err) {
    bson_t reply;
    bson_error_t error;
    uint32_t ok = mongoc_bulk_operation_execute(bulk, &reply, &error);
    if (!ok) ferry_mongo_copy_error(err, &error);
    ferry_mongo_take_reply(&reply, reply_out, reply_length);
    return ok != 0;
}
#endif
