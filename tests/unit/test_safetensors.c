/* test_safetensors.c — the safetensors reader and writer: the team's real
 * files (stories260K HF dir, gpt2-tiny BF16 vs F32, a training fixture with
 * I32 tokens), a write/read round trip with every dtype and metadata, a
 * sharded directory, and corrupt headers/indexes that must be refused with a
 * message naming the file; every truncation of a valid file is refused. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/num.h"
#include "format/safetensors.h"
#include "test.h"

static st_model *open_ok(const char *path) {
    st_model *m = NULL;
    hn_err err;
    hn_status s = st_open(path, &m, &err);
    CHECK(s == HN_OK, "%s", err.msg);
    return m;
}

/* ---- shared files ---------------------------------------------------------------- */

static void test_stories_dir(void) {
    st_model *m = open_ok(test_shared("models/stories260K/hf"));
    if (!m) return;
    CHECK(st_n_tensors(m) == 47, "%zu", st_n_tensors(m));
    const st_tensor *t = st_find(m, "model.embed_tokens.weight");
    CHECK(t && t->dtype == ST_F32 && t->n_dims == 2 && t->shape[0] == 512 && t->shape[1] == 64);
    CHECK(t && t->n_elems == 512 * 64 && t->nbytes == 512 * 64 * 4);
    CHECK(st_find(m, "lm_head.weight") == NULL);
    CHECK(st_metadata(m, "format") && strcmp(st_metadata(m, "format"), "pt") == 0);
    for (size_t i = 0; i < st_n_tensors(m); i++) /* st_find agrees with st_tensor_at */
        CHECK(st_find(m, st_tensor_at(m, i)->name) == st_tensor_at(m, i));
    for (size_t i = 1; i < st_n_tensors(m); i++) /* file order */
        CHECK((const char *)st_tensor_at(m, i)->data > (const char *)st_tensor_at(m, i - 1)->data);
    st_close(m);
}

static void compare_bf16(const st_tensor *a, const st_tensor *b) {
    float *x = malloc(a->n_elems * 4), *y = malloc(a->n_elems * 4);
    hn_err err;
    CHECK(st_tensor_to_f32(a, x, &err) == HN_OK && st_tensor_to_f32(b, y, &err) == HN_OK);
    uint64_t bad = 0;
    for (uint64_t i = 0; i < a->n_elems; i++)
        if (fabsf(x[i] - y[i]) > fabsf(x[i]) / 256.0f || hn_f32_to_bf16(x[i]) != hn_f32_to_bf16(y[i]))
            bad++;
    CHECK(bad == 0, "%s: %llu elements differ beyond bf16 rounding", a->name, (unsigned long long)bad);
    free(x);
    free(y);
}

static void test_gpt2_bf16(void) {
    st_model *f = open_ok(test_shared("models/gpt2-tiny/model.safetensors"));
    st_model *b = open_ok(test_shared("models/gpt2-tiny/model-bf16.safetensors"));
    if (f && b) {
        CHECK(st_n_tensors(f) == st_n_tensors(b) && st_n_tensors(f) > 0);
        for (size_t i = 0; i < st_n_tensors(f); i++) {
            const st_tensor *tf = st_tensor_at(f, i), *tb = st_find(b, tf->name);
            CHECK(tb && tb->dtype == ST_BF16 && tf->dtype == ST_F32 && tb->n_elems == tf->n_elems,
                  "%s", tf->name);
            if (tb && tb->n_elems == tf->n_elems) compare_bf16(tf, tb);
        }
    }
    st_close(f);
    st_close(b);
}

static void test_train_fixture(void) {
    st_model *m = open_ok(test_shared("fixtures/stories260K/train_step.safetensors"));
    if (!m) return;
    const st_tensor *t = st_find(m, "tokens");
    CHECK(t && t->dtype == ST_I32 && t->n_dims == 2 && t->shape[0] == 2 && t->shape[1] == 70);
    if (t) {
        float v[140];
        hn_err err;
        CHECK(st_tensor_to_f32(t, v, &err) == HN_OK);
        CHECK(v[0] == 1 && v[1] == 410 && v[69] == 2 && v[70] == 1, "%g %g %g", v[0], v[1], v[69]);
    }
    st_close(m);
}

/* ---- writer round trip ------------------------------------------------------------ */

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed + i * 37);
}

static void test_roundtrip(void) {
    static unsigned char data[10][64];
    st_wtensor ts[12];
    memset(ts, 0, sizeof ts);
    for (int d = 0; d <= ST_BOOL; d++) {
        ts[d].dtype = (st_dtype)d;
        ts[d].n_dims = 2;
        ts[d].shape[0] = 2;
        ts[d].shape[1] = (int64_t)(32 / (st_dtype_size((st_dtype)d) * 2)) ;
        fill(data[d], 64, (unsigned)d);
        ts[d].data = data[d];
    }
    static const char *names[] = {"a.f32", "a.f16", "a.bf16", "a.f64", "a.i64", "a.i32",
                                  "a.i16", "a.i8",  "a.u8",   "a.bool", "scalar", "empty"};
    for (int i = 0; i < 12; i++) ts[i].name = names[i];
    float scalar = 42.5f, f32[4] = {1, -2, 3, 0.5f};
    memcpy(data[0], f32, sizeof f32);
    data[9][0] = 1, data[9][1] = 0;
    ts[10] = (st_wtensor){"scalar", ST_F32, 0, {0}, &scalar};
    ts[11] = (st_wtensor){"empty", ST_F16, 2, {0, 3}, NULL};
    const char *meta[] = {"format", "pt", "note", "h\u00e9llo \"q\"", NULL};
    hn_err err;
    const char *p = test_tmp_path("rt.safetensors");
    CHECK(st_write(p, ts, 12, meta, &err) == HN_OK, "%s", err.msg);
    st_model *m = open_ok(p);
    if (!m) return;
    CHECK(st_n_tensors(m) == 12);
    CHECK(strcmp(st_metadata(m, "note"), "h\u00e9llo \"q\"") == 0 && !st_metadata(m, "x"));
    for (int i = 0; i < 12; i++) {
        const st_tensor *t = st_find(m, names[i]);
        CHECK(t && t->dtype == ts[i].dtype && t->n_dims == ts[i].n_dims, "%s", names[i]);
        if (!t) continue;
        CHECK(memcmp(t->shape, ts[i].shape, sizeof(int64_t) * (size_t)t->n_dims) == 0);
        CHECK(t->nbytes == 0 || memcmp(t->data, ts[i].data, t->nbytes) == 0, "%s", names[i]);
        CHECK(st_tensor_at(m, (size_t)i) == t, "order %s", names[i]); /* order kept */
    }
    float out[32];
    const st_tensor *t = st_find(m, "a.f32");
    CHECK(t && st_tensor_to_f32(t, out, &err) == HN_OK && out[1] == -2 && out[3] == 0.5f);
    t = st_find(m, "a.bool");
    CHECK(t && st_tensor_to_f32(t, out, &err) == HN_OK && out[0] == 1 && out[1] == 0);
    t = st_find(m, "scalar");
    CHECK(t && t->n_elems == 1 && st_tensor_to_f32(t, out, &err) == HN_OK && out[0] == 42.5f);
    t = st_find(m, "a.i8");
    CHECK(t && st_tensor_to_f32(t, out, &err) == HN_OK && out[1] == (float)(int8_t)(7 + 37));
    size_t len;
    char *raw = test_read(p, &len);
    uint64_t hl = 0;
    memcpy(&hl, raw, 8);
    CHECK(hl % 8 == 0 && raw[8] == '{' && strncmp(raw + 8, "{\"__metadata__\"", 15) == 0);
    free(raw);
    st_close(m);
    /* writer validation */
    st_wtensor dup[2] = {{"x", ST_F32, 1, {1}, f32}, {"x", ST_F32, 1, {1}, f32}};
    CHECK(st_write(test_tmp_path("dup.safetensors"), dup, 2, NULL, &err) == HN_EINVAL);
    dup[1].name = "__metadata__";
    CHECK(st_write(test_tmp_path("dup.safetensors"), dup, 2, NULL, &err) == HN_EINVAL);
    dup[1] = (st_wtensor){"y", ST_F32, 1, {-1}, f32};
    CHECK(st_write(test_tmp_path("dup.safetensors"), dup, 2, NULL, &err) == HN_EINVAL);
}

/* ---- sharded directory -------------------------------------------------------------- */

static void make_sharded(const char *dir, const char *index_json) {
    mkdir(dir, 0755);
    float a[6] = {1, 2, 3, 4, 5, 6}, b[2] = {7, 8};
    st_wtensor s1[2] = {{"w.a", ST_F32, 2, {2, 3}, a}, {"w.b", ST_F32, 1, {2}, b}};
    st_wtensor s2[1] = {{"w.c", ST_F32, 1, {1}, b}};
    char p[600];
    hn_err err;
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", dir);
    CHECK(st_write(p, s1, 2, NULL, &err) == HN_OK, "%s", err.msg);
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
    CHECK(st_write(p, s2, 1, NULL, &err) == HN_OK, "%s", err.msg);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    test_write_file(p, index_json, strlen(index_json));
}

#define SHARD1 "\"model-00001-of-00002.safetensors\""
#define SHARD2 "\"model-00002-of-00002.safetensors\""

static void test_sharded(void) {
    const char *dir = test_tmp_path("sharded");
    make_sharded(dir, "{\"metadata\": {\"total_size\": 36}, \"weight_map\": {\"w.a\": " SHARD1
                      ", \"w.c\": " SHARD2 ", \"w.b\": " SHARD1 "}}");
    st_model *m = open_ok(dir);
    if (!m) return;
    CHECK(st_n_tensors(m) == 3 && st_n_shards(m) == 2);
    const st_tensor *a = st_find(m, "w.a"), *c = st_find(m, "w.c");
    CHECK(a && c && a->shard != c->shard && a->shape[1] == 3);
    CHECK(c && strstr(st_shard_path(m, c->shard), "model-00002-of-00002"));
    float out[6];
    hn_err err;
    CHECK(a && st_tensor_to_f32(a, out, &err) == HN_OK && out[5] == 6);
    st_close(m);
    /* a plain directory with model.safetensors */
    const char *d2 = test_tmp_path("single");
    mkdir(d2, 0755);
    char p[600];
    float x = 1;
    st_wtensor t = {"x", ST_F32, 1, {1}, &x};
    snprintf(p, sizeof p, "%s/model.safetensors", d2);
    CHECK(st_write(p, &t, 1, NULL, &err) == HN_OK);
    m = open_ok(d2);
    CHECK(m && st_n_tensors(m) == 1);
    st_close(m);
}

/* ---- corrupt files -------------------------------------------------------------------- */

static void expect_refused_at(const char *p, hn_status want, const char *word) {
    st_model *m = NULL;
    hn_err err = {0};
    hn_status s = st_open(p, &m, &err);
    CHECK(s == want, "%s: got %s want %s: %s", p, hn_status_name(s), hn_status_name(want), err.msg);
    CHECK(m == NULL);
    CHECK(strstr(err.msg, p) != NULL, "message lacks path: %s", err.msg);
    CHECK(strstr(err.msg, word) != NULL, "message lacks '%s': %s", word, err.msg);
    st_close(m);
}

static void expect_bytes(const char *name, const void *b, size_t n, hn_status want, const char *word) {
    const char *p = test_tmp_path(name);
    test_write_file(p, b, n);
    expect_refused_at(p, want, word);
}

/* A file with this header text and data_len zero bytes of data. */
static void expect_header(const char *name, const char *json, size_t data_len, hn_status want,
                          const char *word) {
    size_t hl = strlen(json), n = 8 + hl + data_len;
    unsigned char *b = calloc(1, n);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, json, hl);
    expect_bytes(name, b, n, want, word);
    free(b);
}

static void test_corrupt_headers(void) {
    unsigned char b[16] = {0};
    expect_bytes("empty.safetensors", b, 0, HN_EFORMAT, "empty");
    expect_bytes("short.safetensors", b, 5, HN_EFORMAT, "too short");
    b[0] = 100;
    expect_bytes("hlen.safetensors", b, 16, HN_EFORMAT, "exceeds the file size");
    b[0] = 0, b[6] = 1;
    expect_bytes("hlen_huge.safetensors", b, 16, HN_EFORMAT, "absurd");
    expect_header("notjson.safetensors", "{\"a\": ", 0, HN_EFORMAT, "not valid JSON");
    expect_header("array.safetensors", "[1, 2]", 0, HN_EFORMAT, "is an array, expected an object");
    expect_header("entry.safetensors", "{\"t\": 5}", 0, HN_EFORMAT, "'t': entry is not an object");
    expect_header("dtype.safetensors", "{\"t\": {\"dtype\": \"Q7\", \"shape\": [1], \"data_offsets\": [0, 1]}}",
                  1, HN_EFORMAT, "unknown dtype 'Q7'");
    expect_header("fp8.safetensors", "{\"t\": {\"dtype\": \"F8_E4M3\", \"shape\": [1], \"data_offsets\": [0, 1]}}",
                  1, HN_EUNSUPPORTED, "tensor 't' has dtype F8_E4M3");
    expect_header("neg.safetensors", "{\"t\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}",
                  4, HN_EFORMAT, "negative");
    expect_header("real.safetensors", "{\"t\": {\"dtype\": \"F32\", \"shape\": [1.0], \"data_offsets\": [0, 4]}}",
                  4, HN_EFORMAT, "shape[0]");
    expect_header("ndims.safetensors", "{\"t\": {\"dtype\": \"U8\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 1]}}",
                  1, HN_EFORMAT, "dims");
    expect_header("mismatch.safetensors", "{\"t\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 4]}}",
                  8, HN_EFORMAT, "mismatch");
    expect_header("endbegin.safetensors", "{\"t\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}}",
                  8, HN_EFORMAT, "< begin");
    expect_header("pastend.safetensors", "{\"t\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}",
                  4, HN_EFORMAT, "past end");
    expect_header("overflow.safetensors",
                  "{\"t\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], \"data_offsets\": [0, 0]}}",
                  0, HN_EFORMAT, "overflow");
    expect_header("overflow2.safetensors",
                  "{\"t\": {\"dtype\": \"F64\", \"shape\": [4611686018427387904], \"data_offsets\": [0, 0]}}",
                  0, HN_EFORMAT, "overflow");
    expect_header("offsets.safetensors", "{\"t\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}",
                  4, HN_EFORMAT, "data_offsets");
    expect_header("nodtype.safetensors", "{\"t\": {\"shape\": [1], \"data_offsets\": [0, 4]}}",
                  4, HN_EFORMAT, "dtype");
    expect_header("dupkey.safetensors",
                  "{\"t\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}, "
                  "\"t\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}}",
                  1, HN_EFORMAT, "duplicate");
    expect_header("meta.safetensors", "{\"__metadata__\": {\"a\": 1}}", 0, HN_EFORMAT, "__metadata__");
    expect_header("nul.safetensors", "{\"t\\u0000x\": {}}", 0, HN_EFORMAT, "not valid JSON");
}

static void test_corrupt_index(void) {
    const char *d = test_tmp_path("idx_missing");
    make_sharded(d, "{\"weight_map\": {\"w.a\": " SHARD1 ", \"w.z\": \"model-00009-of-00009.safetensors\"}}");
    char ip[600];
    snprintf(ip, sizeof ip, "%s/model.safetensors.index.json", d);
    expect_refused_at(ip, HN_EFORMAT, "header length"); /* JSON is not safetensors */
    st_model *m = NULL;
    hn_err err;
    CHECK(st_open(d, &m, &err) == HN_ENOTFOUND && strstr(err.msg, ip) &&
          strstr(err.msg, "model-00009-of-00009.safetensors"), "%s", err.msg);
    d = test_tmp_path("idx_dotdot");
    make_sharded(d, "{\"weight_map\": {\"w.a\": \"../model-00001-of-00002.safetensors\"}}");
    CHECK(st_open(d, &m, &err) == HN_EFORMAT && strstr(err.msg, "not a plain file name"), "%s", err.msg);
    d = test_tmp_path("idx_slash");
    make_sharded(d, "{\"weight_map\": {\"w.a\": \"/etc/passwd\"}}");
    CHECK(st_open(d, &m, &err) == HN_EFORMAT && strstr(err.msg, "plain file name"), "%s", err.msg);
    d = test_tmp_path("idx_wrong");
    make_sharded(d, "{\"weight_map\": {\"w.a\": " SHARD2 ", \"w.c\": " SHARD2 "}}");
    CHECK(st_open(d, &m, &err) == HN_EFORMAT && strstr(err.msg, "'w.a'"), "%s", err.msg);
    d = test_tmp_path("idx_nomap");
    make_sharded(d, "{\"weight_map\": [1]}");
    CHECK(st_open(d, &m, &err) == HN_EFORMAT && strstr(err.msg, "weight_map"), "%s", err.msg);
    d = test_tmp_path("idx_badjson");
    make_sharded(d, "{\"weight_map\": ");
    CHECK(st_open(d, &m, &err) == HN_EFORMAT && strstr(err.msg, "JSON"), "%s", err.msg);
    d = test_tmp_path("idx_dupe_tensor"); /* same tensor in both shards */
    mkdir(d, 0755);
    make_sharded(d, "{\"weight_map\": {\"w.a\": " SHARD1 ", \"w.c\": " SHARD2 "}}");
    float x = 1;
    st_wtensor t[2] = {{"w.c", ST_F32, 1, {1}, &x}, {"w.a", ST_F32, 1, {1}, &x}};
    char p[600];
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", d);
    CHECK(st_write(p, t, 2, NULL, &err) == HN_OK);
    CHECK(st_open(d, &m, &err) == HN_EFORMAT && strstr(err.msg, "duplicate tensor 'w.a'"), "%s", err.msg);
    CHECK(st_open(test_tmp_path("nothing_here"), &m, &err) != HN_OK);
    mkdir(test_tmp_path("emptydir"), 0755);
    CHECK(st_open(test_tmp_path("emptydir"), &m, &err) == HN_ENOTFOUND && strstr(err.msg, "model.safetensors"));
    CHECK(m == NULL);
}

static void test_prefixes(void) {
    float a[5] = {1, 2, 3, 4, 5};
    uint16_t h[3] = {1, 2, 3};
    st_wtensor ts[2] = {{"a", ST_F32, 1, {5}, a}, {"h", ST_BF16, 2, {1, 3}, h}};
    const char *meta[] = {"k", "v", NULL};
    const char *p = test_tmp_path("prefix_src.safetensors"), *q = test_tmp_path("prefix.safetensors");
    hn_err err;
    CHECK(st_write(p, ts, 2, meta, &err) == HN_OK);
    size_t len;
    char *b = test_read(p, &len);
    int bad = 0;
    for (size_t n = 0; n < len; n++) {
        test_write_file(q, b, n);
        st_model *m = NULL;
        hn_status s = st_open(q, &m, &err);
        if (s == HN_OK || !strstr(err.msg, q)) bad++;
        st_close(m);
    }
    CHECK(bad == 0, "%d truncations accepted", bad);
    test_write_file(q, b, len);
    st_model *m = open_ok(q);
    st_close(m);
    free(b);
}

int main(void) {
    test_stories_dir();
    test_gpt2_bf16();
    test_train_fixture();
    test_roundtrip();
    test_sharded();
    test_corrupt_headers();
    test_corrupt_index();
    test_prefixes();
    return test_finish("test_safetensors");
}
