/* test_gguf.c — the GGUF reader and writer: the real stories260K file (metadata,
 * tokenizer array, token_embd equal to the HF safetensors weights), a writer
 * round trip with every value type and F32/F16/BF16/Q8_0 tensors, and a battery
 * of corrupt files (byte edits of a valid file, every truncation) that must be
 * refused with a message naming the file and the problem. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/num.h"
#include "format/gguf.h"
#include "format/safetensors.h"
#include "test.h"

static bool str_eq(gguf_str s, const char *c) {
    return s.len == strlen(c) && memcmp(s.p, c, s.len) == 0;
}

static int64_t get_int(const gguf_file *f, const char *key) {
    int64_t v = -1;
    hn_err err;
    hn_status s = gguf_get_int(f, key, &v, &err);
    CHECK(s == HN_OK, "%s: %s", key, err.msg);
    return v;
}

/* ---- the real model ---------------------------------------------------------- */

static void check_embd_matches_hf(const gguf_file *f, const gguf_tensor *t) {
    st_model *m = NULL;
    hn_err err;
    hn_status s = st_open(test_shared("models/stories260K/hf/model.safetensors"), &m, &err);
    CHECK(s == HN_OK, "%s", err.msg);
    if (s) return;
    const st_tensor *e = st_find(m, "model.embed_tokens.weight");
    CHECK(e && e->n_elems == t->n_elems);
    float *a = malloc(t->n_elems * sizeof *a), *b = malloc(t->n_elems * sizeof *b);
    if (e && e->n_elems == t->n_elems && a && b) {
        CHECK(gguf_tensor_to_f32(f, t, a, &err) == HN_OK, "%s", err.msg);
        CHECK(st_tensor_to_f32(e, b, &err) == HN_OK, "%s", err.msg);
        CHECK(memcmp(a, b, t->n_elems * sizeof *a) == 0, "token_embd != embed_tokens");
        CHECK(a[64 * 7 + 3] == b[7 * 64 + 3]); /* row 7, column 3 in both layouts */
    }
    free(a);
    free(b);
    st_close(m);
}

static void test_stories(void) {
    gguf_file *f = NULL;
    hn_err err;
    const char *path = test_shared("models/stories260K/stories260K.gguf");
    hn_status s = gguf_open(path, &f, &err);
    CHECK(s == HN_OK, "%s", err.msg);
    if (s) return;
    CHECK(gguf_version(f) == 3);
    CHECK(gguf_n_tensors(f) == 48, "%llu", (unsigned long long)gguf_n_tensors(f));
    CHECK(gguf_alignment(f) == 32);
    CHECK(get_int(f, "llama.embedding_length") == 64);
    CHECK(get_int(f, "llama.block_count") == 5);
    CHECK(get_int(f, "llama.attention.head_count") == 8);
    CHECK(get_int(f, "llama.attention.head_count_kv") == 4);
    CHECK(get_int(f, "llama.context_length") == 512);
    gguf_str arch;
    CHECK(gguf_get_str(f, "general.architecture", &arch, &err) == HN_OK && str_eq(arch, "llama"));
    gguf_arr toks;
    s = gguf_get_arr(f, "tokenizer.ggml.tokens", &toks, &err);
    CHECK(s == HN_OK, "%s", err.msg);
    CHECK(toks.type == GGUF_STRING && toks.n == 512);
    CHECK(str_eq(gguf_arr_str(&toks, 1), "<s>"));
    CHECK(str_eq(gguf_arr_str(&toks, 13), "<0x0A>"));
    CHECK(gguf_arr_str(&toks, 512).len == 0); /* out of range: empty */
    int64_t ki = gguf_find_kv(f, "tokenizer.ggml.tokens");
    char buf[256];
    CHECK(ki >= 0);
    gguf_kv_format(f, (uint64_t)ki, buf, sizeof buf);
    CHECK(strstr(buf, "\"<s>\"") && strstr(buf, "(512 items)"), "%s", buf);
    int64_t v;
    CHECK(gguf_get_int(f, "no.such.key", &v, &err) == HN_ENOTFOUND);
    CHECK(gguf_get_int(f, "general.architecture", &v, &err) == HN_EFORMAT &&
          strstr(err.msg, "general.architecture"), "%s", err.msg);
    const gguf_tensor *t = gguf_find_tensor(f, "token_embd.weight");
    CHECK(t && t->n_dims == 2 && t->ne[0] == 64 && t->ne[1] == 512 && t->type == GGUF_T_F32);
    CHECK(gguf_find_tensor(f, "blk.4.ffn_down.weight") != NULL);
    CHECK(gguf_find_tensor(f, "nope") == NULL);
    if (t) check_embd_matches_hf(f, t);
    gguf_close(f);
}

/* ---- writer round trip ---------------------------------------------------------- */

static const float f32v[24] = {1, -2, 3.5f, 0.25f, -1e-3f, 7, 8, 9, 10, 11, 12, 13,
                               14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 1e6f};
static const float f16v[8] = {1, -2, 0.5f, 0.125f, 65504.0f, -0.0f, 3.0f, 1024.0f};
static const float bf16v[5] = {1.5f, -2.25f, 0.0078125f, 0x1p100f, -1.0f};

/* Nested value: array of 2 arrays of strings: [["a","bc"],[]] */
static size_t nested_bytes(unsigned char *b) {
    size_t n = 0;
#define PUT(v, k) do { uint64_t x_ = (v); for (int i_ = 0; i_ < (k); i_++) b[n++] = (unsigned char)(x_ >> (8 * i_)); } while (0)
    PUT(GGUF_ARRAY, 4); PUT(2, 8);
    PUT(GGUF_STRING, 4); PUT(2, 8); PUT(1, 8); b[n++] = 'a'; PUT(2, 8); b[n++] = 'b'; b[n++] = 'c';
    PUT(GGUF_STRING, 4); PUT(0, 8);
#undef PUT
    return n;
}

static void write_roundtrip(const char *path, float *q8src) {
    gguf_writer *w = gguf_writer_create();
    hn_err err;
    static uint16_t f16b[8], bf16b[5];
    static unsigned char q8b[2 * 2 * 34];
    for (int i = 0; i < 8; i++) f16b[i] = hn_f32_to_f16(f16v[i]);
    for (int i = 0; i < 5; i++) bf16b[i] = hn_f32_to_bf16(bf16v[i]);
    for (int i = 0; i < 128; i++) q8src[i] = sinf((float)i * 0.37f) * (float)(1 + i % 7);
    gguf_quantize_q8_0(q8src, q8b, 128);
    gguf_writer_set_u8(w, "v.u8", 200);
    gguf_writer_set_i8(w, "v.i8", -100);
    gguf_writer_set_u16(w, "v.u16", 60000);
    gguf_writer_set_i16(w, "v.i16", -30000);
    gguf_writer_set_u32(w, "v.u32", 4000000000u);
    gguf_writer_set_i32(w, "v.i32", -2000000000);
    gguf_writer_set_u64(w, "v.u64", 1ull << 62);
    gguf_writer_set_i64(w, "v.i64", -(1ll << 60));
    gguf_writer_set_f32(w, "v.f32", 0.5f);
    gguf_writer_set_f64(w, "v.f64", 1e-300);
    gguf_writer_set_bool(w, "v.bool", true);
    gguf_writer_set_str(w, "v.str", "hello \"world\"");
    gguf_writer_set_str(w, "v.str", "replaced");
    const char *strs[] = {"x", "", "yz"};
    gguf_writer_set_arr_str(w, "v.arr_str", strs, 3);
    int32_t iv[] = {-1, 2, -3};
    gguf_writer_set_arr_i32(w, "v.arr_i32", iv, 3);
    float fv[] = {0.5f, -1.5f};
    gguf_writer_set_arr_f32(w, "v.arr_f32", fv, 2);
    uint8_t bv[] = {1, 0, 1};
    gguf_writer_set_arr(w, "v.arr_bool", GGUF_BOOL, bv, 3);
    gguf_writer_set_arr(w, "v.arr_empty", GGUF_UINT64, NULL, 0);
    unsigned char nb[128];
    gguf_writer_set_raw(w, "v.nested", GGUF_ARRAY, nb, nested_bytes(nb));
    uint64_t ne_f32[2] = {8, 3}, ne_f16[1] = {8}, ne_bf16[1] = {5}, ne_q8[2] = {64, 2};
    CHECK(gguf_writer_add_tensor(w, "t.f32", GGUF_T_F32, 2, ne_f32, f32v, 96, &err) == HN_OK, "%s", err.msg);
    CHECK(gguf_writer_add_tensor(w, "t.f16", GGUF_T_F16, 1, ne_f16, f16b, 16, &err) == HN_OK, "%s", err.msg);
    CHECK(gguf_writer_add_tensor(w, "t.bf16", GGUF_T_BF16, 1, ne_bf16, bf16b, 10, &err) == HN_OK, "%s", err.msg);
    CHECK(gguf_writer_add_tensor(w, "t.q8", GGUF_T_Q8_0, 2, ne_q8, q8b, sizeof q8b, &err) == HN_OK, "%s", err.msg);
    /* writer validation */
    CHECK(gguf_writer_add_tensor(w, "t.f32", GGUF_T_F32, 2, ne_f32, f32v, 96, &err) == HN_EINVAL);
    CHECK(gguf_writer_add_tensor(w, "bad", GGUF_T_F32, 2, ne_f32, f32v, 95, &err) == HN_EINVAL);
    uint64_t ne_odd[1] = {33};
    CHECK(gguf_writer_add_tensor(w, "bad", GGUF_T_Q8_0, 1, ne_odd, q8b, 34, &err) == HN_EINVAL);
    hn_status s = gguf_writer_write(w, path, &err);
    CHECK(s == HN_OK, "%s", err.msg);
    gguf_writer_free(w);
}

static void check_scalars(const gguf_file *f) {
    hn_err err;
    double d;
    bool b;
    gguf_str s;
    CHECK(get_int(f, "v.u8") == 200 && get_int(f, "v.i8") == -100);
    CHECK(get_int(f, "v.u16") == 60000 && get_int(f, "v.i16") == -30000);
    CHECK(get_int(f, "v.u32") == 4000000000ll && get_int(f, "v.i32") == -2000000000);
    CHECK(get_int(f, "v.u64") == (1ll << 62) && get_int(f, "v.i64") == -(1ll << 60));
    CHECK(gguf_get_float(f, "v.f32", &d, &err) == HN_OK && d == 0.5);
    CHECK(gguf_get_float(f, "v.f64", &d, &err) == HN_OK && d == 1e-300);
    CHECK(gguf_get_float(f, "v.i8", &d, &err) == HN_OK && d == -100);
    CHECK(gguf_get_bool(f, "v.bool", &b, &err) == HN_OK && b);
    CHECK(gguf_get_str(f, "v.str", &s, &err) == HN_OK && str_eq(s, "replaced"));
    CHECK(gguf_get_bool(f, "v.u8", &b, &err) == HN_EFORMAT && strstr(err.msg, "v.u8"));
    CHECK(gguf_get_str(f, "v.f32", &s, &err) == HN_EFORMAT);
}

static void check_arrays(const gguf_file *f) {
    hn_err err;
    gguf_arr a;
    CHECK(gguf_get_arr(f, "v.arr_str", &a, &err) == HN_OK && a.type == GGUF_STRING && a.n == 3);
    CHECK(str_eq(gguf_arr_str(&a, 0), "x") && str_eq(gguf_arr_str(&a, 1), "") &&
          str_eq(gguf_arr_str(&a, 2), "yz"));
    CHECK(gguf_get_arr(f, "v.arr_i32", &a, &err) == HN_OK && a.type == GGUF_INT32 && a.n == 3);
    CHECK(gguf_arr_num(&a, 0) == -1 && gguf_arr_num(&a, 2) == -3 && gguf_arr_num(&a, 3) == 0);
    CHECK(gguf_get_arr(f, "v.arr_f32", &a, &err) == HN_OK && gguf_arr_num(&a, 1) == -1.5);
    CHECK(gguf_get_arr(f, "v.arr_bool", &a, &err) == HN_OK && a.type == GGUF_BOOL &&
          gguf_arr_num(&a, 0) == 1 && gguf_arr_num(&a, 1) == 0);
    CHECK(gguf_get_arr(f, "v.arr_empty", &a, &err) == HN_OK && a.n == 0 && a.type == GGUF_UINT64);
    CHECK(gguf_get_arr(f, "v.nested", &a, &err) == HN_OK && a.type == GGUF_ARRAY && a.n == 2);
    gguf_arr a0 = gguf_arr_arr(&a, 0), a1 = gguf_arr_arr(&a, 1);
    CHECK(a0.type == GGUF_STRING && a0.n == 2 && str_eq(gguf_arr_str(&a0, 1), "bc"));
    CHECK(a1.type == GGUF_STRING && a1.n == 0);
    char buf[200];
    gguf_kv_format(f, (uint64_t)gguf_find_kv(f, "v.nested"), buf, sizeof buf);
    CHECK(strcmp(buf, "[[\"a\", \"bc\"], []]") == 0, "%s", buf);
    gguf_kv_format(f, (uint64_t)gguf_find_kv(f, "v.i32"), buf, sizeof buf);
    CHECK(strcmp(buf, "-2000000000") == 0, "%s", buf);
    gguf_kv_format(f, (uint64_t)gguf_find_kv(f, "v.bool"), buf, 3); /* truncation */
    CHECK(strcmp(buf, "tr") == 0, "%s", buf);
}

static void check_tensors(const gguf_file *f, const float *q8src) {
    hn_err err;
    float out[128];
    const gguf_tensor *t = gguf_find_tensor(f, "t.f32");
    CHECK(t && t->ne[0] == 8 && t->ne[1] == 3 && t->n_elems == 24 && t->nbytes == 96);
    CHECK(t && gguf_tensor_to_f32(f, t, out, &err) == HN_OK && memcmp(out, f32v, 96) == 0);
    t = gguf_find_tensor(f, "t.f16");
    CHECK(t && gguf_tensor_to_f32(f, t, out, &err) == HN_OK && memcmp(out, f16v, 32) == 0);
    t = gguf_find_tensor(f, "t.bf16");
    CHECK(t && gguf_tensor_to_f32(f, t, out, &err) == HN_OK && memcmp(out, bf16v, 20) == 0);
    t = gguf_find_tensor(f, "t.q8");
    CHECK(t && t->nbytes == 136 && gguf_tensor_to_f32(f, t, out, &err) == HN_OK);
    for (int b = 0; t && b < 4; b++) {
        float amax = 0, worst = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(q8src[b * 32 + j]));
        for (int j = 0; j < 32; j++) worst = fmaxf(worst, fabsf(out[b * 32 + j] - q8src[b * 32 + j]));
        CHECK(worst <= amax / 127 * 0.5f + amax * 1e-3f, "block %d err %g amax %g", b, worst, amax);
    }
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *ti = gguf_tensor_at(f, i);
        CHECK((uintptr_t)((const char *)ti->data - (const char *)gguf_tensor_at(f, 0)->data) % 32 == 0);
    }
}

static void test_roundtrip(void) {
    const char *path = test_tmp_path("rt.gguf");
    float q8src[128];
    write_roundtrip(path, q8src);
    gguf_file *f = NULL;
    hn_err err;
    hn_status s = gguf_open(path, &f, &err);
    CHECK(s == HN_OK, "%s", err.msg);
    if (s) return;
    CHECK(gguf_version(f) == 3 && gguf_n_tensors(f) == 4 && gguf_n_kv(f) == 18,
          "n_kv %llu", (unsigned long long)gguf_n_kv(f));
    CHECK(gguf_data_offset(f) % 32 == 0);
    check_scalars(f);
    check_arrays(f);
    check_tensors(f, q8src);
    gguf_close(f);
}

/* ---- corrupt files ----------------------------------------------------------------- */

/* A small valid file: 2 tensors (F32 [4,2] "t0", Q8_0 [32] "t1"). */
static unsigned char *base_file(size_t *len, uint64_t *data_end) {
    gguf_writer *w = gguf_writer_create();
    hn_err err;
    static float f[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    static unsigned char q[34];
    float src[32] = {1};
    gguf_quantize_q8_0(src, q, 32);
    gguf_writer_set_u32(w, "general.alignment", 32);
    gguf_writer_set_str(w, "general.name", "tiny");
    gguf_writer_set_u8(w, "dup.a", 1);
    gguf_writer_set_u8(w, "dup.b", 2);
    const char *s[] = {"a", "b"};
    gguf_writer_set_arr_str(w, "arr.s", s, 2);
    uint64_t ne0[2] = {4, 2}, ne1[1] = {32};
    gguf_writer_add_tensor(w, "t0", GGUF_T_F32, 2, ne0, f, 32, &err);
    gguf_writer_add_tensor(w, "t1", GGUF_T_Q8_0, 1, ne1, q, 34, &err);
    const char *p = test_tmp_path("base.gguf");
    CHECK(gguf_writer_write(w, p, &err) == HN_OK, "%s", err.msg);
    gguf_writer_free(w);
    gguf_file *g = NULL;
    CHECK(gguf_open(p, &g, &err) == HN_OK, "%s", err.msg);
    if (!g) exit(2);
    const gguf_tensor *t1 = gguf_find_tensor(g, "t1");
    *data_end = gguf_data_offset(g) + t1->offset + t1->nbytes;
    gguf_close(g);
    return (unsigned char *)test_read(p, len);
}

static size_t find(const unsigned char *b, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(b + i, needle, k) == 0) return i;
    fprintf(stderr, "needle '%s' not found\n", needle);
    exit(2);
}

static void put_u32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static void put_u64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }

static void expect_refused(const char *name, const unsigned char *b, size_t n,
                           hn_status want, const char *word) {
    const char *p = test_tmp_path(name);
    test_write_file(p, b, n);
    gguf_file *f = NULL;
    hn_err err = {0};
    hn_status s = gguf_open(p, &f, &err);
    CHECK(s == want, "%s: got %s want %s: %s", name, hn_status_name(s), hn_status_name(want), err.msg);
    CHECK(f == NULL);
    CHECK(strstr(err.msg, p) != NULL, "%s: message lacks path: %s", name, err.msg);
    CHECK(strstr(err.msg, word) != NULL, "%s: message lacks '%s': %s", name, word, err.msg);
    gguf_close(f);
}

typedef struct edit_ctx {
    const unsigned char *base;
    size_t len;
    unsigned char *b;
} edit_ctx;

static unsigned char *fresh(edit_ctx *c) {
    memcpy(c->b, c->base, c->len);
    return c->b;
}

/* Offsets of a tensor info's fields (after its name). */
static size_t tinfo(edit_ctx *c, const char *tname) {
    unsigned char key[40];
    size_t k = strlen(tname);
    put_u64(key, k);
    memcpy(key + 8, tname, k);
    for (size_t i = 0; i + 8 + k <= c->len; i++)
        if (memcmp(c->base + i, key, 8 + k) == 0) return i + 8 + k;
    exit(2);
}

static void header_edits(edit_ctx *c) {
    unsigned char *b;
    expect_refused("empty.gguf", c->base, 0, HN_EFORMAT, "empty");
    b = fresh(c), b[0] = 'X';
    expect_refused("magic.gguf", b, c->len, HN_EFORMAT, "magic");
    b = fresh(c), put_u32(b + 4, 1);
    expect_refused("v1.gguf", b, c->len, HN_EUNSUPPORTED, "version 1");
    b = fresh(c), put_u32(b + 4, 99);
    expect_refused("v99.gguf", b, c->len, HN_EUNSUPPORTED, "version 99");
    b = fresh(c), put_u32(b + 4, 0x03000000);
    expect_refused("bigendian.gguf", b, c->len, HN_EUNSUPPORTED, "big-endian");
    expect_refused("trunc_header.gguf", c->base, 13, HN_EFORMAT, "truncated");
    b = fresh(c), put_u64(b + 16, 1ull << 40);
    expect_refused("kv_count.gguf", b, c->len, HN_EFORMAT, "kv_count");
    b = fresh(c), put_u64(b + 8, 1ull << 50);
    expect_refused("tensor_count.gguf", b, c->len, HN_EFORMAT, "tensor_count");
}

static void kv_edits(edit_ctx *c) {
    unsigned char *b;
    size_t name = find(c->base, c->len, "tiny"), key = find(c->base, c->len, "general.name");
    b = fresh(c), put_u64(b + 8, 0), put_u64(b + 16, 2); /* counts plausible for the cut */
    expect_refused("trunc_kvstr.gguf", b, name + 2, HN_EFORMAT, "general.name");
    b = fresh(c), put_u64(b + name - 8, 1ull << 40);
    expect_refused("strlen.gguf", b, c->len, HN_EFORMAT, "past end");
    b = fresh(c), put_u32(b + key + 12, 13);
    expect_refused("vtype.gguf", b, c->len, HN_EFORMAT, "unknown value type");
    size_t arr = find(c->base, c->len, "arr.s") + 5 + 4; /* elem type */
    b = fresh(c), put_u32(b + arr, 77);
    expect_refused("arr_etype.gguf", b, c->len, HN_EFORMAT, "element value type");
    b = fresh(c), put_u64(b + arr + 4, 1ull << 60);
    expect_refused("arr_count.gguf", b, c->len, HN_EFORMAT, "arr.s");
    size_t dup = find(c->base, c->len, "dup.b");
    b = fresh(c), b[dup + 4] = 'a';
    expect_refused("dupkey.gguf", b, c->len, HN_EFORMAT, "duplicate metadata key 'dup.a'");
    size_t al = find(c->base, c->len, "general.alignment") + 17 + 4;
    b = fresh(c), put_u32(b + al, 0);
    expect_refused("align0.gguf", b, c->len, HN_EFORMAT, "alignment");
    b = fresh(c), put_u32(b + al, 48);
    expect_refused("align48.gguf", b, c->len, HN_EFORMAT, "power of two");
    b = fresh(c), put_u32(b + al - 4, GGUF_FLOAT32);
    expect_refused("align_type.gguf", b, c->len, HN_EFORMAT, "general.alignment");
}

static void tensor_edits(edit_ctx *c, uint64_t data_end) {
    unsigned char *b;
    size_t t0 = tinfo(c, "t0"), t1 = tinfo(c, "t1"); /* -> n_dims */
    b = fresh(c), put_u32(b + t0, 5);
    expect_refused("ndims5.gguf", b, c->len, HN_EFORMAT, "n_dims 5");
    b = fresh(c), put_u64(b + t0 + 4, 1ull << 40), put_u64(b + t0 + 12, 1ull << 40);
    expect_refused("overflow.gguf", b, c->len, HN_EFORMAT, "overflow");
    b = fresh(c), put_u64(b + t0 + 12, 0);
    expect_refused("zerodim.gguf", b, c->len, HN_EFORMAT, "zero");
    b = fresh(c), put_u32(b + t0 + 20, 99);
    expect_refused("ttype.gguf", b, c->len, HN_EUNSUPPORTED, "'t0': unknown ggml tensor type 99");
    b = fresh(c), put_u64(b + t1 + 4, 33);
    expect_refused("block.gguf", b, c->len, HN_EFORMAT, "block size 32");
    b = fresh(c), put_u64(b + t1 + 16, 1u << 20);
    expect_refused("offset_end.gguf", b, c->len, HN_EFORMAT, "'t1': data [offset");
    b = fresh(c), put_u64(b + t1 + 16, 33);
    expect_refused("misaligned.gguf", b, c->len, HN_EFORMAT, "misaligned");
    b = fresh(c), put_u64(b + t1 + 16, UINT64_MAX - 31);
    expect_refused("offset_wrap.gguf", b, c->len, HN_EFORMAT, "past end");
    expect_refused("data_trunc.gguf", c->base, data_end - 1, HN_EFORMAT, "past end of file");
    b = fresh(c), b[t1 - 1] = '0';
    expect_refused("dupname.gguf", b, c->len, HN_EFORMAT, "duplicate tensor name 't0'");
    b = fresh(c), put_u64(b + t0 - 10, 1ull << 40);
    expect_refused("namelen.gguf", b, c->len, HN_EFORMAT, "tensor 0");
}

static void depth_bomb(void) {
    unsigned char raw[12 * 40 + 12];
    size_t n = 0;
    for (int d = 0; d < 40; d++, n += 12) put_u32(raw + n, GGUF_ARRAY), put_u64(raw + n + 4, 1);
    put_u32(raw + n, GGUF_UINT8), put_u64(raw + n + 4, 0), n += 12;
    gguf_writer *w = gguf_writer_create();
    hn_err err;
    gguf_writer_set_raw(w, "bomb", GGUF_ARRAY, raw + 12, n - 12); /* value = (type, n, elems) */
    const char *p = test_tmp_path("bomb_src.gguf");
    CHECK(gguf_writer_write(w, p, &err) == HN_OK);
    gguf_writer_free(w);
    size_t len;
    char *b = test_read(p, &len);
    expect_refused("bomb.gguf", (unsigned char *)b, len, HN_EFORMAT, "nested deeper");
    free(b);
}

static void every_prefix(const unsigned char *b, size_t len, uint64_t data_end) {
    const char *p = test_tmp_path("prefix.gguf");
    int bad = 0;
    for (size_t n = 0; n <= len; n++) {
        test_write_file(p, b, n);
        gguf_file *f = NULL;
        hn_err err;
        hn_status s = gguf_open(p, &f, &err);
        bool want_ok = n >= data_end; /* the padding after the last tensor is optional */
        if ((s == HN_OK) != want_ok || (s && !strstr(err.msg, p))) bad++;
        if (s == HN_OK) {
            float out[32];
            for (uint64_t i = 0; i < gguf_n_tensors(f); i++)
                CHECK(gguf_tensor_to_f32(f, gguf_tensor_at(f, i), out, &err) == HN_OK);
        }
        gguf_close(f);
    }
    CHECK(bad == 0, "%d prefix lengths misjudged", bad);
}

static void test_corrupt(void) {
    size_t len;
    uint64_t data_end;
    unsigned char *base = base_file(&len, &data_end);
    edit_ctx c = {base, len, malloc(len)};
    header_edits(&c);
    kv_edits(&c);
    tensor_edits(&c, data_end);
    depth_bomb();
    every_prefix(base, len, data_end);
    free(c.b);
    free(base);
}

static void test_unsupported_type(void) {
    gguf_writer *w = gguf_writer_create();
    hn_err err;
    static unsigned char q4k[144];
    uint64_t ne[1] = {256};
    CHECK(gguf_writer_add_tensor(w, "x.q4k", GGUF_T_Q4_K, 1, ne, q4k, 144, &err) == HN_OK, "%s", err.msg);
    const char *p = test_tmp_path("q4k.gguf");
    CHECK(gguf_writer_write(w, p, &err) == HN_OK, "%s", err.msg);
    gguf_writer_free(w);
    gguf_file *f = NULL;
    CHECK(gguf_open(p, &f, &err) == HN_OK, "%s", err.msg);
    if (!f) return;
    float out[256];
    const gguf_tensor *t = gguf_find_tensor(f, "x.q4k");
    CHECK(t && gguf_tensor_to_f32(f, t, out, &err) == HN_EUNSUPPORTED);
    CHECK(strstr(err.msg, "tensor 'x.q4k' has type Q4_K, which hone cannot load"), "%s", err.msg);
    CHECK(strcmp(gguf_ttype_name((gguf_ttype)99), "type 99") == 0);
    gguf_close(f);
}

int main(void) {
    test_stories();
    test_roundtrip();
    test_corrupt();
    test_unsupported_type();
    return test_finish("test_gguf");
}
