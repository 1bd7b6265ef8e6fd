/*
 * mongo_drain.c — the "bare cursor" baseline for scripts/bench-mongo.sh, and
 * its data tool.
 *
 *   mongo_drain ping  URI DB COLL      the server answers a ping (exit 0)
 *   mongo_drain seed  URI DB COLL N    drop COLL, insert N product documents
 *                                      (unordered bulk inserts of 10,000),
 *                                      create the {updatedAt: 1, _id: 1} index
 *   mongo_drain drain URI DB COLL      the find the mongo source sends for a
 *                                      full read, walked to the end with no
 *                                      engine at all: the source's own limit
 *   mongo_drain drain-natural URI DB COLL
 *                                      the same find without the sort
 *   mongo_drain count URI DB COLL      time estimatedDocumentCount (what the
 *                                      plugin's estimate costs on this server)
 *   mongo_drain touch URI DB COLL P    set updatedAt to now on every P-th
 *                                      document (n % P == 0)
 *
 * Output: one line on stdout, e.g. `docs=N seconds=S docs_per_sec=R bytes=B`.
 * Exit:   0 on success, 1 on any error (message on stderr).
 *
 * Build:  cc -O2 $(pkg-config --cflags libmongoc-1.0) mongo_drain.c \
 *            -o mongo_drain $(pkg-config --libs libmongoc-1.0)
 */
#define _POSIX_C_SOURCE 200809L
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int fail(const char *what, const bson_error_t *error) {
    fprintf(stderr, "mongo_drain: %s: %s\n", what, error ? error->message : "failed");
    return 1;
}

static const char *categories[] = {"garden", "kitchen", "tools", "toys", "books", "lighting", "sports", "office"};
static const char *colors[] = {"red", "green", "blue", "black", "white", "oak", "steel"};

static void append_product(bson_t *doc, int64_t n, int64_t base_ms) {
    char sku[32], name[64], text[160];
    bson_oid_t oid;
    bson_oid_init(&oid, NULL);
    BSON_APPEND_OID(doc, "_id", &oid);
    BSON_APPEND_INT64(doc, "n", n);
    snprintf(sku, sizeof sku, "SKU-%08lld", (long long)n);
    BSON_APPEND_UTF8(doc, "sku", sku);
    snprintf(name, sizeof name, "Deluxe %s item %lld", categories[n % 8], (long long)n);
    BSON_APPEND_UTF8(doc, "name", name);
    snprintf(text, sizeof text, "A sturdy %s product, number %lld, made to last; ships in 2-3 days.", colors[n % 7], (long long)n);
    BSON_APPEND_UTF8(doc, "description", text);
    bson_decimal128_t price;
    char price_text[32];
    snprintf(price_text, sizeof price_text, "%lld.%02lld", (long long)(n % 500), (long long)(n % 100));
    bson_decimal128_from_string(price_text, &price);
    BSON_APPEND_DECIMAL128(doc, "price", &price);
    BSON_APPEND_INT32(doc, "stock", (int32_t)(n % 250));
    BSON_APPEND_UTF8(doc, "category", categories[n % 8]);
    bson_t tags, attributes;
    BSON_APPEND_ARRAY_BEGIN(doc, "tags", &tags);
    BSON_APPEND_UTF8(&tags, "0", categories[(n + 1) % 8]);
    BSON_APPEND_UTF8(&tags, "1", colors[n % 7]);
    bson_append_array_end(doc, &tags);
    BSON_APPEND_DOCUMENT_BEGIN(doc, "attributes", &attributes);
    BSON_APPEND_UTF8(&attributes, "color", colors[n % 7]);
    BSON_APPEND_DOUBLE(&attributes, "weight_kg", (double)(n % 1000) / 10.0);
    BSON_APPEND_BOOL(&attributes, "fragile", n % 5 == 0);
    bson_append_document_end(doc, &attributes);
    /* Ten documents share each millisecond: cursor ties, as in real data. */
    BSON_APPEND_DATE_TIME(doc, "updatedAt", base_ms + n / 10);
}

static int seed(mongoc_collection_t *collection, int64_t count) {
    bson_error_t error;
    if (!mongoc_collection_drop(collection, &error) && !strstr(error.message, "not found")) {
        /* dropping a missing collection is fine */
    }
    int64_t base_ms = 1767225600000LL; /* 2026-01-01 */
    for (int64_t start = 0; start < count; start += 10000) {
        bson_t opts = BSON_INITIALIZER;
        BSON_APPEND_BOOL(&opts, "ordered", false);
        mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(collection, &opts);
        bson_destroy(&opts);
        for (int64_t n = start; n < start + 10000 && n < count; n++) {
            bson_t doc = BSON_INITIALIZER;
            append_product(&doc, n, base_ms);
            mongoc_bulk_operation_insert(bulk, &doc);
            bson_destroy(&doc);
        }
        bson_t reply;
        bool ok = mongoc_bulk_operation_execute(bulk, &reply, &error);
        bson_destroy(&reply);
        mongoc_bulk_operation_destroy(bulk);
        if (!ok) return fail("bulk insert", &error);
    }
    /* The index an incremental read by (updatedAt, _id) sorts on. */
    bson_t command = BSON_INITIALIZER, indexes, index, keys, reply;
    BSON_APPEND_UTF8(&command, "createIndexes", mongoc_collection_get_name(collection));
    BSON_APPEND_ARRAY_BEGIN(&command, "indexes", &indexes);
    BSON_APPEND_DOCUMENT_BEGIN(&indexes, "0", &index);
    BSON_APPEND_DOCUMENT_BEGIN(&index, "key", &keys);
    BSON_APPEND_INT32(&keys, "updatedAt", 1);
    BSON_APPEND_INT32(&keys, "_id", 1);
    bson_append_document_end(&index, &keys);
    BSON_APPEND_UTF8(&index, "name", "updatedAt_1__id_1");
    bson_append_document_end(&indexes, &index);
    bson_append_array_end(&command, &indexes);
    bool ok = mongoc_collection_write_command_with_opts(collection, &command, NULL, &reply, &error);
    bson_destroy(&command);
    bson_destroy(&reply);
    if (!ok) return fail("create index {updatedAt: 1, _id: 1}", &error);
    printf("docs=%lld\n", (long long)count);
    return 0;
}

/* The find of Plugins/Mongo (MongoQuery.filter() and .options()) for a full
 * read with no filter, projection, batch_size or shards: filter {}, options
 * {sort: {_id: 1}}, and no batchSize, so the server sizes its replies
 * (MongoDB: 101 documents, then up to 16 MiB each). A change there belongs
 * here too, or (a) stops being the limit of (b). */
static int drain(mongoc_collection_t *collection, bool sorted) {
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
    if (sorted) {
        BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
        BSON_APPEND_INT32(&sort, "_id", 1);
        bson_append_document_end(&opts, &sort);
    }
    double started = now();
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(collection, &filter, &opts, NULL);
    const bson_t *doc;
    int64_t docs = 0, bytes = 0;
    while (mongoc_cursor_next(cursor, &doc)) {
        docs++;
        bytes += doc->len;
    }
    bson_error_t error;
    if (mongoc_cursor_error(cursor, &error)) return fail("cursor", &error);
    double seconds = now() - started;
    mongoc_cursor_destroy(cursor);
    bson_destroy(&opts);
    printf("docs=%lld seconds=%.3f docs_per_sec=%.0f bytes=%lld\n", (long long)docs, seconds, docs / seconds, (long long)bytes);
    return 0;
}

static int ping(mongoc_client_t *client) {
    bson_t command = BSON_INITIALIZER, reply;
    BSON_APPEND_INT32(&command, "ping", 1);
    bson_error_t error;
    bool ok = mongoc_client_command_simple(client, "admin", &command, NULL, &reply, &error);
    bson_destroy(&command);
    bson_destroy(&reply);
    if (!ok) return fail("ping", &error);
    printf("ok=1\n");
    return 0;
}

static int count(mongoc_collection_t *collection) {
    bson_error_t error;
    double started = now();
    int64_t docs = mongoc_collection_estimated_document_count(collection, NULL, NULL, NULL, &error);
    if (docs < 0) return fail("estimatedDocumentCount", &error);
    printf("docs=%lld seconds=%.3f\n", (long long)docs, now() - started);
    return 0;
}

static int touch(mongoc_collection_t *collection, int64_t every) {
    bson_t filter = BSON_INITIALIZER, mod, update = BSON_INITIALIZER, set, reply;
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "n", &mod);
    bson_t args;
    BSON_APPEND_ARRAY_BEGIN(&mod, "$mod", &args);
    BSON_APPEND_INT64(&args, "0", every);
    BSON_APPEND_INT64(&args, "1", 0);
    bson_append_array_end(&mod, &args);
    bson_append_document_end(&filter, &mod);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    BSON_APPEND_DATE_TIME(&set, "updatedAt", (int64_t)time(NULL) * 1000);
    bson_append_document_end(&update, &set);
    bson_error_t error;
    if (!mongoc_collection_update_many(collection, &filter, &update, NULL, &reply, &error)) return fail("update_many", &error);
    bson_iter_t it;
    int64_t modified = 0;
    if (bson_iter_init_find(&it, &reply, "modifiedCount")) modified = bson_iter_as_int64(&it);
    printf("docs=%lld\n", (long long)modified);
    bson_destroy(&reply);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: mongo_drain ping|seed|drain|drain-natural|count|touch URI DB COLL [N|P]\n");
        return 1;
    }
    mongoc_init();
    bson_error_t error;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(argv[2], &error);
    if (!uri) return fail("uri", &error);
    mongoc_client_t *client = mongoc_client_new_from_uri(uri);
    mongoc_collection_t *collection = mongoc_client_get_collection(client, argv[3], argv[4]);
    int rc;
    if (strcmp(argv[1], "seed") == 0 && argc > 5) rc = seed(collection, atoll(argv[5]));
    else if (strcmp(argv[1], "drain") == 0) rc = drain(collection, true);
    else if (strcmp(argv[1], "drain-natural") == 0) rc = drain(collection, false);
    else if (strcmp(argv[1], "ping") == 0) rc = ping(client);
    else if (strcmp(argv[1], "count") == 0) rc = count(collection);
    else if (strcmp(argv[1], "touch") == 0 && argc > 5) rc = touch(collection, atoll(argv[5]));
    else rc = fail("unknown mode or missing argument", NULL);
    mongoc_collection_destroy(collection);
    mongoc_client_destroy(client);
    mongoc_uri_destroy(uri);
    mongoc_cleanup();
    return rc;
}
