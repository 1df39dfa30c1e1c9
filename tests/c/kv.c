/* kv.c - the kv example library driven from C through its generated header: records
 * (nested, optional, in arrays) both ways, enums, options, vectors, errors, static
 * methods, the CBOR view byte for byte, and bad native input refused before queueing. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "echo_client.h" /* the CBOR writer and the waiter; echo is linked in too */
#include "kv.h"

#define TIMEOUT_MS 10000

/* A call whose answer is inspected inside the callback, while its pointers are valid. */
typedef struct probe probe;
typedef void (*inspect_fn)(probe* p, const char* msg, size_t len);
struct probe {
    waiter w;
    inspect_fn inspect; /* runs on FFID_RET_OK, before the waiter is released */
    const void* want;   /* what inspect compares against */
    int good;           /* inspect's verdict */
};

static void probe_cb(int ret, const char* msg, size_t len, void* user_data) {
    probe* p = (probe*)user_data;
    if (ret == FFID_RET_OK && p->inspect) p->inspect(p, msg, len);
    waiter_cb(ret, msg, len, &p->w);
}

static void probe_reset(probe* p, inspect_fn inspect, const void* want) {
    waiter_reset(&p->w);
    p->inspect = inspect;
    p->want = want;
    p->good = 0;
}

/* Waits for exactly one terminal callback with status `ret`. */
static void expect(probe* p, int ret) {
    CHECK(waiter_wait(&p->w, TIMEOUT_MS) == 0);
    CHECK(atomic_load(&p->w.terminals) == 1);
    CHECK(p->w.ret == ret);
    CHECK(p->w.nul_ok);
    if (p->w.ret != ret) fprintf(stderr, "    got %d \"%s\"\n", p->w.ret, p->w.msg);
}

static ffid_ctx* make(const char* name, int max) {
    probe p;
    probe_reset(&p, NULL, NULL);
    KvConfig cfg = {name, max > 0, (uint32_t)(max > 0 ? max : 0)};
    ffid_ctx* ctx = kv_create(probe_cb, &p, &cfg);
    CHECK(ctx != NULL);
    if (!ctx) return NULL;
    expect(&p, FFID_RET_OK);
    return ctx;
}

static void stray_cb(int ret, const char* msg, size_t len, void* user_data) {
    (void)ret;
    (void)msg;
    (void)len;
    atomic_fetch_add((atomic_int*)user_data, 1);
}

/* ---- inspectors ------------------------------------------------------------------ */

/* An expected entry, compared field by field with the KvEntry the callback points to. */
typedef struct {
    const char* key;
    const char* value;
    KvKind kind;
    size_t ntags;
    const char* tags[2];
    int has_ttl;
    uint64_t ttl;
    const char* note; /* NULL = absent */
    uint32_t version;
} entry_want;

static int entry_is(const KvEntry* e, const entry_want* w) {
    if (strcmp(e->key, w->key) != 0) return 0;
    if (e->value_len != strlen(w->value) || memcmp(e->value, w->value, e->value_len) != 0) return 0;
    if (e->kind != w->kind || e->tags_len != w->ntags) return 0;
    for (size_t i = 0; i < w->ntags; i++)
        if (strcmp(e->tags[i], w->tags[i]) != 0) return 0;
    if (e->has_ttl_ms != (w->has_ttl != 0) || (w->has_ttl && e->ttl_ms != w->ttl)) return 0;
    if ((e->note == NULL) != (w->note == NULL)) return 0;
    if (w->note && strcmp(e->note, w->note) != 0) return 0;
    return e->meta.version == w->version && e->meta.seq > 0;
}

static void inspect_entry(probe* p, const char* msg, size_t len) {
    p->good = len == sizeof(KvEntry) && entry_is((const KvEntry*)(const void*)msg, (const entry_want*)p->want);
}

/* The answer is an array of entries whose keys are the NULL-terminated list `want`. */
static void inspect_entry_keys(probe* p, const char* msg, size_t len) {
    const char* const* want = (const char* const*)p->want;
    const KvEntry* e = (const KvEntry*)(const void*)msg;
    size_t n = 0;
    while (want[n]) n++;
    p->good = len == n * sizeof(KvEntry);
    for (size_t i = 0; p->good && i < n; i++) p->good = strcmp(e[i].key, want[i]) == 0;
}

static void inspect_string_array(probe* p, const char* msg, size_t len) {
    const char* const* want = (const char* const*)p->want;
    const char* const* got = (const char* const*)(const void*)msg;
    size_t n = 0;
    while (want[n]) n++;
    p->good = len == n * sizeof(const char*);
    for (size_t i = 0; p->good && i < n; i++) p->good = strcmp(got[i], want[i]) == 0;
}

static void inspect_usage(probe* p, const char* msg, size_t len) {
    const KvUsage* u = (const KvUsage*)(const void*)msg;
    const uint64_t* want = (const uint64_t*)p->want; /* entries, bytes */
    p->good = len == sizeof(KvUsage) && u->entries == want[0] && u->bytes == want[1] &&
              u->largest != NULL && strcmp(u->largest->key, "k-big") == 0 &&
              u->largest->value_len == 9 && u->largest->meta.version == 1;
}

static void inspect_bytes(probe* p, const char* msg, size_t len) {
    const cbor_w* want = (const cbor_w*)p->want;
    p->good = len == want->len && memcmp(msg, want->buf, len) == 0;
    if (!p->good) {
        fprintf(stderr, "    CBOR answer (%zu bytes):", len);
        for (size_t i = 0; i < len; i++) fprintf(stderr, " %02x", (uint8_t)msg[i]);
        fprintf(stderr, "\n    expected (%zu bytes):   ", want->len);
        for (size_t i = 0; i < want->len; i++) fprintf(stderr, " %02x", want->buf[i]);
        fprintf(stderr, "\n");
    }
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_create(void) {
    probe p;
    ffid_ctx* ctx = make("store", 0);
    probe_reset(&p, NULL, NULL);
    CHECK(kv_name(ctx, probe_cb, &p) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    CHECK(strcmp(p.w.msg, "store") == 0);
    CHECK(kv_destroy(ctx) == FFID_RET_OK);

    /* The constructor's error reaches the create callback; queued calls fail. */
    probe_reset(&p, NULL, NULL);
    KvConfig empty = {"", false, 0};
    ctx = kv_create(probe_cb, &p, &empty);
    CHECK(ctx != NULL);
    expect(&p, FFID_RET_ERR);
    CHECK(strcmp(p.w.msg, "the store needs a name") == 0);
    probe_reset(&p, NULL, NULL);
    CHECK(kv_name(ctx, probe_cb, &p) == FFID_RET_OK);
    expect(&p, FFID_RET_ERR);
    CHECK(strstr(p.w.msg, "constructor failed") != NULL);
    CHECK(kv_destroy(ctx) == FFID_RET_OK);

    /* Refusals: NULL config or name, and malformed CBOR arguments. */
    KvConfig null_name = {NULL, false, 0};
    CHECK(kv_create(probe_cb, &p, NULL) == NULL);
    CHECK(kv_create(probe_cb, &p, &null_name) == NULL);
    cbor_w r = {0};
    cbor_map(&r, 1);
    cbor_text(&r, "name");
    cbor_uint(&r, 5);
    CHECK(kv_create_cbor(probe_cb, &p, r.buf, r.len) == NULL);

    /* CBOR: the optional key absent, then null, then present. */
    for (int form = 0; form < 3; form++) {
        cbor_reset(&r);
        cbor_map(&r, form == 0 ? 1 : 2);
        cbor_text(&r, "name");
        cbor_text(&r, "c");
        if (form > 0) {
            cbor_text(&r, "max_entries");
            if (form == 1) cbor_put(&r, "\xf6", 1);
            else cbor_uint(&r, 1);
        }
        probe_reset(&p, NULL, NULL);
        ctx = kv_create_cbor(probe_cb, &p, r.buf, r.len);
        CHECK(ctx != NULL);
        expect(&p, FFID_RET_OK);
        /* With max_entries 1 the second key is refused by the store. */
        const char* keys[] = {"a", "b"};
        for (int i = 0; i < 2; i++) {
            KvPutArgs put = {keys[i], (const uint8_t*)"v", 1, KV_KIND_TEXT, NULL, 0, false, 0};
            probe_reset(&p, NULL, NULL);
            CHECK(kv_put(ctx, probe_cb, &p, &put) == FFID_RET_OK);
            expect(&p, form == 2 && i == 1 ? FFID_RET_ERR : FFID_RET_OK);
        }
        CHECK(form != 2 || strcmp(p.w.msg, "store full (1 entries)") == 0);
        CHECK(kv_destroy(ctx) == FFID_RET_OK);
    }
    cbor_free(&r);
}

static void test_records_natively(void) {
    ffid_ctx* ctx = make("s", 0);
    probe p;
    const char* tags[] = {"x", "y"};
    KvPutArgs put = {"a", (const uint8_t*)"hello", 5, KV_KIND_TEXT, tags, 2, true, 500};
    probe_reset(&p, NULL, NULL);
    CHECK(kv_put(ctx, probe_cb, &p, &put) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    CHECK(p.w.len == 0); /* nothing replaced */

    /* Replacing answers the previous entry as a KvEntry. */
    entry_want before = {"a", "hello", KV_KIND_TEXT, 2, {"x", "y"}, 1, 500, NULL, 1};
    KvPutArgs again = {"a", (const uint8_t*)"bytes", 5, KV_KIND_BLOB, NULL, 0, false, 0};
    probe_reset(&p, inspect_entry, &before);
    CHECK(kv_put(ctx, probe_cb, &p, &again) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    CHECK(p.good);

    entry_want now = {"a", "bytes", KV_KIND_BLOB, 0, {NULL, NULL}, 0, 0, NULL, 2};
    KvGetArgs get = {"a"};
    probe_reset(&p, inspect_entry, &now);
    CHECK(kv_get(ctx, probe_cb, &p, &get) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    CHECK(p.good);

    /* An optional string field, set and cleared. */
    KvAnnotateArgs note = {"a", "remember"};
    probe_reset(&p, NULL, NULL);
    CHECK(kv_annotate(ctx, probe_cb, &p, &note) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    entry_want noted = now;
    noted.note = "remember";
    KvFindArgs find = {"a"};
    probe_reset(&p, inspect_entry, &noted);
    CHECK(kv_find(ctx, probe_cb, &p, &find) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    CHECK(p.good);
    KvAnnotateArgs clear = {"a", NULL};
    probe_reset(&p, NULL, NULL);
    CHECK(kv_annotate(ctx, probe_cb, &p, &clear) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    probe_reset(&p, inspect_entry, &now);
    CHECK(kv_find(ctx, probe_cb, &p, &find) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    CHECK(p.good);

    /* Absent: an error from get, an empty answer from find. */
    KvGetArgs missing = {"zz"};
    probe_reset(&p, NULL, NULL);
    CHECK(kv_get(ctx, probe_cb, &p, &missing) == FFID_RET_OK);
    expect(&p, FFID_RET_ERR);
    CHECK(strcmp(p.w.msg, "not found: zz") == 0);
    KvFindArgs find_missing = {"zz"};
    probe_reset(&p, NULL, NULL);
    CHECK(kv_find(ctx, probe_cb, &p, &find_missing) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    CHECK(p.w.len == 0);

    KvDeleteArgs del = {"a"};
    for (int i = 0; i < 2; i++) {
        probe_reset(&p, NULL, NULL);
        CHECK(kv_delete(ctx, probe_cb, &p, &del) == FFID_RET_OK);
        expect(&p, FFID_RET_OK);
        CHECK(p.w.len == 1 && p.w.msg[0] == (i == 0)); /* there the first time only */
    }
    CHECK(kv_destroy(ctx) == FFID_RET_OK);
}

static void test_arrays_and_nested_records(void) {
    ffid_ctx* ctx = make("s", 0);
    probe p;
    const char* t1[] = {"one"};
    KvEntry in[3];
    memset(in, 0, sizeof in);
    in[0].key = "k-1";
    in[0].value = (const uint8_t*)"v1";
    in[0].value_len = 2;
    in[0].kind = KV_KIND_TEXT;
    in[0].tags = t1;
    in[0].tags_len = 1;
    in[1].key = "k-big";
    in[1].value = (const uint8_t*)"123456789";
    in[1].value_len = 9;
    in[1].kind = KV_KIND_BLOB;
    in[1].note = "big one";
    in[2].key = "other";
    in[2].value = NULL; /* empty value: NULL is allowed with length 0 */
    in[2].kind = KV_KIND_BLOB;
    in[2].has_ttl_ms = true;
    in[2].ttl_ms = 7;
    KvPutManyArgs many = {in, 3};
    probe_reset(&p, NULL, NULL);
    CHECK(kv_put_many(ctx, probe_cb, &p, &many) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    uint32_t stored = 0;
    memcpy(&stored, p.w.msg, sizeof stored);
    CHECK(p.w.len == 4 && stored == 3);

    const char* all[] = {"k-1", "k-big", "other", NULL};
    probe_reset(&p, inspect_string_array, all);
    CHECK(kv_keys(ctx, probe_cb, &p) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    CHECK(p.good);

    const char* with_k[] = {"k-1", "k-big", NULL};
    KvListArgs by_prefix = {"k-", NULL, false, 0};
    probe_reset(&p, inspect_entry_keys, with_k);
    CHECK(kv_list(ctx, probe_cb, &p, &by_prefix) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    CHECK(p.good);

    KvKind blob = KV_KIND_BLOB;
    const char* blobs_first[] = {"k-big", NULL};
    KvListArgs by_kind = {NULL, &blob, true, 1};
    probe_reset(&p, inspect_entry_keys, blobs_first);
    CHECK(kv_list(ctx, probe_cb, &p, &by_kind) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    CHECK(p.good);

    const char* none[] = {NULL};
    KvListArgs nothing = {"nope", NULL, false, 0};
    probe_reset(&p, inspect_entry_keys, none);
    CHECK(kv_list(ctx, probe_cb, &p, &nothing) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    CHECK(p.good && p.w.len == 0);

    uint64_t usage[] = {3, 11};
    probe_reset(&p, inspect_usage, usage);
    CHECK(kv_usage(ctx, probe_cb, &p) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    CHECK(p.good);

    entry_want other = {"other", "", KV_KIND_BLOB, 0, {NULL, NULL}, 1, 7, NULL, 1};
    KvGetArgs get = {"other"};
    probe_reset(&p, inspect_entry, &other);
    CHECK(kv_get(ctx, probe_cb, &p, &get) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    CHECK(p.good);
    CHECK(kv_destroy(ctx) == FFID_RET_OK);
}

static void test_counters_and_errors(void) {
    ffid_ctx* ctx = make("s", 0);
    probe p;
    int64_t want[] = {5, -2};
    int64_t by[] = {5, -7};
    for (int i = 0; i < 2; i++) {
        KvIncrArgs incr = {"n", by[i]};
        probe_reset(&p, NULL, NULL);
        CHECK(kv_incr(ctx, probe_cb, &p, &incr) == FFID_RET_OK);
        expect(&p, FFID_RET_OK);
        int64_t got = 0;
        memcpy(&got, p.w.msg, sizeof got);
        CHECK(p.w.len == 8 && got == want[i]);
    }
    KvIncrArgs overflow = {"n", INT64_MIN};
    probe_reset(&p, NULL, NULL);
    CHECK(kv_incr(ctx, probe_cb, &p, &overflow) == FFID_RET_OK);
    expect(&p, FFID_RET_ERR);
    CHECK(strcmp(p.w.msg, "counter overflow") == 0);

    KvPutArgs text = {"t", (const uint8_t*)"x", 1, KV_KIND_TEXT, NULL, 0, false, 0};
    probe_reset(&p, NULL, NULL);
    CHECK(kv_put(ctx, probe_cb, &p, &text) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    KvIncrArgs not_counter = {"t", 1};
    probe_reset(&p, NULL, NULL);
    CHECK(kv_incr(ctx, probe_cb, &p, &not_counter) == FFID_RET_OK);
    expect(&p, FFID_RET_ERR);
    CHECK(strcmp(p.w.msg, "not a counter: t") == 0);

    KvPutArgs empty_key = {"", (const uint8_t*)"x", 1, KV_KIND_TEXT, NULL, 0, false, 0};
    probe_reset(&p, NULL, NULL);
    CHECK(kv_put(ctx, probe_cb, &p, &empty_key) == FFID_RET_OK);
    expect(&p, FFID_RET_ERR);
    CHECK(strcmp(p.w.msg, "keys are 1 to 256 bytes") == 0);
    CHECK(kv_destroy(ctx) == FFID_RET_OK);
}

/* Before any other static call: the first static call makes the static context, which is no create
 * of the host's and leaves the host's last create error as it was. */
static void test_static_calls_keep_the_create_error(void) {
    KvConfig cfg = {"s", false, 0};
    CHECK(kv_create(NULL, NULL, &cfg) == NULL);
    CHECK(strstr(kv_last_error(), "cb is NULL") != NULL);
    probe p;
    probe_reset(&p, NULL, NULL);
    CHECK(kv_version(probe_cb, &p) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    CHECK(strstr(kv_last_error(), "cb is NULL") != NULL);
}

static void test_static_methods(void) {
    probe p;
    probe_reset(&p, NULL, NULL);
    CHECK(kv_version(probe_cb, &p) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    CHECK(strcmp(p.w.msg, "0.1.0") == 0);

    probe_reset(&p, NULL, NULL);
    CHECK(kv_version_cbor(probe_cb, &p, NULL, 0) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    const char* s;
    size_t n;
    CHECK(cbor_read_text(p.w.msg, p.w.len, &s, &n) == 0 && n == 5 && memcmp(s, "0.1.0", 5) == 0);

    /* check_key is an inline export: answered before it returns. */
    KvCheckKeyArgs good = {"fine"}, bad = {""};
    probe_reset(&p, NULL, NULL);
    CHECK(kv_check_key(probe_cb, &p, &good) == FFID_RET_OK);
    CHECK(atomic_load(&p.w.done) == 1);
    expect(&p, FFID_RET_OK);
    probe_reset(&p, NULL, NULL);
    CHECK(kv_check_key(probe_cb, &p, &bad) == FFID_RET_OK);
    CHECK(atomic_load(&p.w.done) == 1);
    expect(&p, FFID_RET_ERR);
    char longest[KV_MAX_KEY_LEN + 2];
    memset(longest, 'k', sizeof longest);
    longest[KV_MAX_KEY_LEN] = 0;
    KvCheckKeyArgs at_limit = {longest};
    probe_reset(&p, NULL, NULL);
    CHECK(kv_check_key(probe_cb, &p, &at_limit) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    longest[KV_MAX_KEY_LEN] = 'k';
    longest[KV_MAX_KEY_LEN + 1] = 0;
    probe_reset(&p, NULL, NULL);
    CHECK(kv_check_key(probe_cb, &p, &at_limit) == FFID_RET_OK);
    expect(&p, FFID_RET_ERR);
    CHECK(strcmp(KV_PROTOCOL, "kv/1") == 0);
    CHECK(kv_check_key(probe_cb, &p, NULL) == FFID_RET_ERR);
    CHECK(kv_version(NULL, &p) == FFID_RET_MISSING_CALLBACK);
}

/* The CBOR view: requests with every kind of value, answers compared byte for byte. */
static void test_cbor_view(void) {
    ffid_ctx* ctx = make("s", 0);
    probe p;
    cbor_w r = {0}, want = {0};

    /* put {key, value, kind, tags} with ttl_ms absent */
    cbor_map(&r, 4);
    cbor_text(&r, "key");
    cbor_text(&r, "c");
    cbor_text(&r, "value");
    cbor_bytes(&r, (const uint8_t*)"v", 1);
    cbor_text(&r, "kind");
    cbor_text(&r, "Blob");
    cbor_text(&r, "tags");
    cbor_head(&r, 4, 1);
    cbor_text(&r, "t");
    probe_reset(&p, NULL, NULL);
    CHECK(kv_put_cbor(ctx, probe_cb, &p, r.buf, r.len) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    CHECK(p.w.len == 1 && (uint8_t)p.w.msg[0] == 0xf6); /* None: null */

    /* get answers the entry as a map, fields in declaration order, None as null */
    cbor_map(&want, 7);
    cbor_text(&want, "key");
    cbor_text(&want, "c");
    cbor_text(&want, "value");
    cbor_bytes(&want, (const uint8_t*)"v", 1);
    cbor_text(&want, "kind");
    cbor_text(&want, "Blob");
    cbor_text(&want, "tags");
    cbor_head(&want, 4, 1);
    cbor_text(&want, "t");
    cbor_text(&want, "ttl_ms");
    cbor_put(&want, "\xf6", 1);
    cbor_text(&want, "note");
    cbor_put(&want, "\xf6", 1);
    cbor_text(&want, "meta");
    cbor_map(&want, 2);
    cbor_text(&want, "version");
    cbor_uint(&want, 1);
    cbor_text(&want, "seq");
    cbor_uint(&want, 1);
    cbor_reset(&r);
    cbor_map(&r, 1);
    cbor_text(&r, "key");
    cbor_text(&r, "c");
    probe_reset(&p, inspect_bytes, &want);
    CHECK(kv_get_cbor(ctx, probe_cb, &p, r.buf, r.len) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    CHECK(p.good);

    /* put_many takes records as maps; a record's optional keys may be absent */
    cbor_reset(&r);
    cbor_map(&r, 1);
    cbor_text(&r, "entries");
    cbor_head(&r, 4, 1);
    cbor_map(&r, 5);
    cbor_text(&r, "key");
    cbor_text(&r, "d");
    cbor_text(&r, "value");
    cbor_bytes(&r, (const uint8_t*)"", 0);
    cbor_text(&r, "kind");
    cbor_text(&r, "Text");
    cbor_text(&r, "tags");
    cbor_head(&r, 4, 0);
    cbor_text(&r, "meta");
    cbor_map(&r, 2);
    cbor_text(&r, "version");
    cbor_uint(&r, 99);
    cbor_text(&r, "seq");
    cbor_uint(&r, 99);
    probe_reset(&p, NULL, NULL);
    CHECK(kv_put_many_cbor(ctx, probe_cb, &p, r.buf, r.len) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    uint64_t stored = 0;
    CHECK(cbor_read_uint(p.w.msg, p.w.len, &stored) == 0 && stored == 1);

    /* keys: an array of text */
    cbor_reset(&want);
    cbor_head(&want, 4, 2);
    cbor_text(&want, "c");
    cbor_text(&want, "d");
    probe_reset(&p, inspect_bytes, &want);
    CHECK(kv_keys_cbor(ctx, probe_cb, &p, NULL, 0) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    CHECK(p.good);

    /* Errors name the key: an unknown enum name, a wrong type inside a record. */
    cbor_reset(&r);
    cbor_map(&r, 4);
    cbor_text(&r, "key");
    cbor_text(&r, "e");
    cbor_text(&r, "value");
    cbor_bytes(&r, (const uint8_t*)"v", 1);
    cbor_text(&r, "kind");
    cbor_text(&r, "Nope");
    cbor_text(&r, "tags");
    cbor_head(&r, 4, 0);
    probe_reset(&p, NULL, NULL);
    CHECK(kv_put_cbor(ctx, probe_cb, &p, r.buf, r.len) == FFID_RET_OK);
    expect(&p, FFID_RET_ERR);
    CHECK(strstr(p.w.msg, "key `kind`") != NULL && strstr(p.w.msg, "Nope") != NULL);

    cbor_reset(&r);
    cbor_map(&r, 1);
    cbor_text(&r, "entries");
    cbor_head(&r, 4, 1);
    cbor_map(&r, 1);
    cbor_text(&r, "key");
    cbor_uint(&r, 3);
    probe_reset(&p, NULL, NULL);
    CHECK(kv_put_many_cbor(ctx, probe_cb, &p, r.buf, r.len) == FFID_RET_OK);
    expect(&p, FFID_RET_ERR);
    CHECK(strstr(p.w.msg, "key `entries`") != NULL && strstr(p.w.msg, "key `key`") != NULL);

    cbor_free(&r);
    cbor_free(&want);
    CHECK(kv_destroy(ctx) == FFID_RET_OK);
}

/* Bad native input is refused on the calling thread: a non-zero return, no callback. */
static void test_bad_native_input_is_refused(void) {
    ffid_ctx* ctx = make("s", 0);
    atomic_int stray = 0;
    const char* bad_utf8[] = {"ok", "\xc3\x28"};
    const char* tags[] = {"ok"};
    struct {
        KvPutArgs args;
        int code;
        const char* why; /* this thread's last_error after the refusal */
    } cases[] = {
        {{NULL, (const uint8_t*)"v", 1, KV_KIND_TEXT, NULL, 0, false, 0}, FFID_RET_ERR,
         "argument `key`: NULL where a value is required"},
        {{"k", NULL, 3, KV_KIND_TEXT, NULL, 0, false, 0}, FFID_RET_ERR,
         "argument `value`: NULL where a value is required"},
        {{"k", NULL, SIZE_MAX, KV_KIND_TEXT, NULL, 0, false, 0}, FFID_RET_ERR,
         "argument `value`: NULL where a value is required"},
        {{"k", (const uint8_t*)"v", 1, 7, NULL, 0, false, 0}, FFID_RET_ERR,
         "argument `kind`: unknown enum value 7"},
        {{"k", (const uint8_t*)"v", 1, KV_KIND_TEXT, NULL, 2, false, 0}, FFID_RET_ERR,
         "argument `tags`: NULL where a value is required"},
        {{"k", (const uint8_t*)"v", 1, KV_KIND_TEXT, tags, SIZE_MAX, false, 0}, FFID_RET_TOO_LARGE,
         "argument `tags`: a length larger than any memory can hold"},
        {{"k", (const uint8_t*)"v", 1, KV_KIND_TEXT, bad_utf8, 2, false, 0}, FFID_RET_ERR,
         "argument `tags`: invalid UTF-8 at byte 0"},
        {{"\xff", (const uint8_t*)"v", 1, KV_KIND_TEXT, NULL, 0, false, 0}, FFID_RET_ERR,
         "argument `key`: invalid UTF-8 at byte 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = kv_put(ctx, stray_cb, &stray, &cases[i].args);
        int named = strcmp(kv_last_error(), cases[i].why) == 0;
        CHECK(rc == cases[i].code && named);
        if (rc != cases[i].code || !named)
            fprintf(stderr, "    case %zu: %d \"%s\"\n", i, rc, kv_last_error());
    }
    CHECK(kv_put(ctx, stray_cb, &stray, NULL) == FFID_RET_ERR);
    KvKind bogus = 42;
    KvListArgs list = {NULL, &bogus, false, 0};
    CHECK(kv_list(ctx, stray_cb, &stray, &list) == FFID_RET_ERR);
    CHECK(strcmp(kv_last_error(), "argument `kind`: unknown enum value 42") == 0);
    KvEntry e;
    memset(&e, 0, sizeof e);
    e.key = "k";
    e.kind = -1;
    KvPutManyArgs many = {&e, 1};
    CHECK(kv_put_many(ctx, stray_cb, &stray, &many) == FFID_RET_ERR);
    /* the argument, and the record field inside it */
    CHECK(strcmp(kv_last_error(), "argument `entries`, field `kind`: unknown enum value -1") == 0);
    KvGetArgs get = {"k"};
    CHECK(kv_get(NULL, stray_cb, &stray, &get) == FFID_RET_INVALID_CTX);
    CHECK(kv_get(ctx, NULL, &stray, &get) == FFID_RET_MISSING_CALLBACK);
    CHECK(kv_get_cbor(ctx, stray_cb, &stray, NULL, 5) == FFID_RET_ERR);
    CHECK(kv_destroy(ctx) == FFID_RET_OK);
    CHECK(atomic_load(&stray) == 0);
    CHECK(kv_get(ctx, stray_cb, &stray, &get) == FFID_RET_CLOSED); /* destroyed */
}

/* Completion mode: answers wait for the host's drain, so a record's pointers must stay
 * valid past the answers made after it (a regression: they pointed into the worker's
 * reply arena, which the next answer reused; valgrind saw the freed reads). */
typedef struct {
    int seen;
    int right;
} drained_entries;

static void drained_entry_cb(int ret, const char* msg, size_t len, void* user_data) {
    drained_entries* d = user_data;
    d->seen++;
    if (ret != FFID_RET_OK || len != sizeof(KvEntry)) return;
    const KvEntry* e = (const KvEntry*)msg;
    char want[64];
    snprintf(want, sizeof want, "key-%d", d->seen);
    d->right += strcmp(e->key, want) == 0 && e->value_len == (size_t)d->seen * 40 && e->tags_len == 1 &&
                strcmp(e->tags[0], want) == 0;
}

static void count_cb(int ret, const char* msg, size_t len, void* user_data) {
    (void)msg;
    (void)len;
    *(int*)user_data += ret == FFID_RET_OK;
}

static void test_drained_records_outlive_later_answers(void) {
    ffid_options o;
    ffid_options_init(&o);
    o.completion = FFID_COMPLETION_QUEUE;
    KvConfig cfg = {"queued", false, 0};
    int oks = 0;
    ffid_ctx* ctx = kv_create_with_options(count_cb, &oks, &cfg, &o);
    CHECK(ctx != NULL);
    if (!ctx) return;
    char keys[3][16];
    const char* tags[3][1];
    uint8_t value[120] = {0};
    for (int i = 0; i < 3; i++) {
        snprintf(keys[i], sizeof keys[i], "key-%d", i + 1);
        tags[i][0] = keys[i];
        KvPutArgs put = {keys[i], value, (size_t)(i + 1) * 40, KV_KIND_BLOB, tags[i], 1, false, 0};
        CHECK(kv_put(ctx, count_cb, &oks, &put) == FFID_RET_OK);
    }
    /* Three record answers queued one after the other, drained together. */
    drained_entries d = {0, 0};
    for (int i = 0; i < 3; i++) {
        KvGetArgs get = {keys[i]};
        CHECK(kv_get(ctx, drained_entry_cb, &d, &get) == FFID_RET_OK);
    }
    for (int i = 0; i < 10000 && d.seen < 3; i++) {
        kv_drain(ctx, 64);
        struct timespec t = {0, 100000};
        nanosleep(&t, NULL);
    }
    CHECK(oks == 4 && d.seen == 3 && d.right == 3);
    CHECK(kv_destroy(ctx) == FFID_RET_OK);
}

/* A pointer kept past its callback reads poison (FFID_POISON_BYTE), not the next answer:
 * on with FFID_POISON_ON, and by default in a debug build of the library (as the tests'
 * are); off with FFID_POISON_OFF. A record answer's C struct lives in the worker's reply
 * arena, which the blocking call after it leaves alone (its answer is owned), so the
 * bytes read are the first answer's, poisoned or not. */
typedef struct {
    atomic_int done;
    const KvEntry* kept;
} keeper;

static void keep_cb(int ret, const char* msg, size_t len, void* ud) {
    keeper* k = ud;
    if (ret == FFID_RET_OK && len == sizeof(KvEntry)) k->kept = (const KvEntry*)msg;
    atomic_store(&k->done, 1);
}

/* 1: the kept struct's first 8 bytes are all poison; 0: they are the answer's. */
static int kept_answer_poisoned(uint32_t poison) {
    ffid_options o;
    ffid_options_init(&o);
    if (poison != UINT32_MAX) o.poison_replies = poison;
    probe p;
    probe_reset(&p, NULL, NULL);
    KvConfig cfg = {"poison", false, 0};
    ffid_ctx* ctx = kv_create_with_options(probe_cb, &p, &cfg, poison != UINT32_MAX ? &o : NULL);
    CHECK(ctx != NULL);
    if (!ctx) return -1;
    expect(&p, FFID_RET_OK);
    KvPutArgs put = {"k", (const uint8_t*)"v", 1, KV_KIND_BLOB, NULL, 0, false, 0};
    CHECK(kv_put_sync(ctx, &put, NULL, TIMEOUT_MS) == FFID_RET_OK);
    keeper k = {0, NULL};
    KvGetArgs get = {"k"};
    CHECK(kv_get(ctx, keep_cb, &k, &get) == FFID_RET_OK);
    /* Answered after the get, whose poisoning the worker did before taking this call. */
    int64_t n = 0;
    KvIncrArgs incr = {"n", 1};
    CHECK(kv_incr_sync(ctx, &incr, &n, TIMEOUT_MS) == FFID_RET_OK && n == 1);
    CHECK(atomic_load(&k.done) == 1 && k.kept != NULL);
    int poisoned = -1;
    if (k.kept) {
        const uint8_t* bytes = (const uint8_t*)k.kept;
        poisoned = 1;
        for (int i = 0; i < 8; i++) poisoned &= bytes[i] == FFID_POISON_BYTE;
    }
    CHECK(kv_destroy(ctx) == FFID_RET_OK);
    return poisoned;
}

static void test_kept_pointers_read_poison(void) {
    CHECK(kept_answer_poisoned(FFID_POISON_ON) == 1);
    CHECK(kept_answer_poisoned(UINT32_MAX) == 1); /* NULL options: the default */
    CHECK(kept_answer_poisoned(FFID_POISON_DEFAULT) == 1);
    CHECK(kept_answer_poisoned(FFID_POISON_OFF) == 0);
    ffid_options o;
    ffid_options_init(&o);
    o.poison_replies = 7;
    KvConfig cfg = {"bad", false, 0};
    CHECK(kv_create_with_options(probe_cb, NULL, &cfg, &o) == NULL);
}

/* A handle of another library in the same process (each cdylib has its own registry)
 * is refused both ways with no callback, although both libraries have live contexts in
 * their first slots. */
static void test_foreign_handles_are_refused(void) {
    ffid_ctx* kv = make("s", 0);
    waiter w;
    waiter_reset(&w);
    EchoConfig ec = {"p"};
    ffid_ctx* echo = echo_create(waiter_cb, &w, &ec);
    CHECK(echo != NULL && waiter_wait(&w, TIMEOUT_MS) == 0 && w.ret == FFID_RET_OK);
    atomic_int stray = 0;
    KvGetArgs get = {"k"};
    EchoShoutArgs shout = {"x"};
    uint8_t empty_map = 0xa0;
    CHECK(kv_get(echo, stray_cb, &stray, &get) == FFID_RET_INVALID_CTX);
    CHECK(kv_name(echo, stray_cb, &stray) == FFID_RET_INVALID_CTX);
    CHECK(kv_keys_cbor(echo, stray_cb, &stray, &empty_map, 1) == FFID_RET_INVALID_CTX);
    CHECK(kv_destroy(echo) == FFID_RET_INVALID_CTX);
    CHECK(strstr(kv_last_error(), "not a handle this library issued") != NULL);
    CHECK(echo_shout(kv, stray_cb, &stray, &shout) == FFID_RET_INVALID_CTX);
    CHECK(echo_count(kv, stray_cb, &stray) == FFID_RET_INVALID_CTX);
    CHECK(echo_count_cbor(kv, stray_cb, &stray, &empty_map, 1) == FFID_RET_INVALID_CTX);
    CHECK(echo_destroy(kv) == FFID_RET_INVALID_CTX);
    /* Both contexts are untouched. */
    probe p;
    probe_reset(&p, NULL, NULL);
    CHECK(kv_name(kv, probe_cb, &p) == FFID_RET_OK);
    expect(&p, FFID_RET_OK);
    waiter_reset(&w);
    CHECK(echo_shout(echo, waiter_cb, &w, &shout) == FFID_RET_OK);
    CHECK(waiter_wait(&w, TIMEOUT_MS) == 0 && w.ret == FFID_RET_OK && strcmp(w.msg, "p: X") == 0);
    CHECK(echo_destroy(echo) == FFID_RET_OK);
    CHECK(kv_destroy(kv) == FFID_RET_OK);
    CHECK(atomic_load(&stray) == 0);
}

int main(void) {
    static const test_case tests[] = {
        /* First: each library's first context then sits in slot 0 of its registry. */
        TEST_ENTRY(test_foreign_handles_are_refused),
        TEST_ENTRY(test_static_calls_keep_the_create_error),
        TEST_ENTRY(test_create),
        TEST_ENTRY(test_records_natively),
        TEST_ENTRY(test_arrays_and_nested_records),
        TEST_ENTRY(test_counters_and_errors),
        TEST_ENTRY(test_static_methods),
        TEST_ENTRY(test_cbor_view),
        TEST_ENTRY(test_bad_native_input_is_refused),
        TEST_ENTRY(test_drained_records_outlive_later_answers),
        TEST_ENTRY(test_kept_pointers_read_poison),
    };
    return run_tests(tests, sizeof tests / sizeof tests[0]);
}
