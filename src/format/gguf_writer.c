/* gguf_writer.c — builds GGUF v3 files: metadata encoded in memory, tensor
 * data referenced (not copied), one atomic write with aligned tensor data.
 * Used for model export and by tests to make valid and corrupt files. */
#include "format/gguf.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/file.h"

typedef struct wkv {
    char *key;
    gguf_vtype type;
    hn_buf val; /* encoded value bytes */
} wkv;

typedef struct wtensor {
    char *name;
    gguf_ttype type;
    uint32_t n_dims;
    uint64_t ne[4];
    const void *data;
    uint64_t nbytes;
} wtensor;

struct gguf_writer {
    wkv *kvs;
    size_t n_kv, cap_kv;
    wtensor *ts;
    size_t n_t, cap_t;
    bool oom;
};

gguf_writer *gguf_writer_create(void) { return calloc(1, sizeof(gguf_writer)); }

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        hn_buf_free(&w->kvs[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) free(w->ts[i].name);
    free(w->kvs);
    free(w->ts);
    free(w);
}

/* ---- encoding ------------------------------------------------------------ */

static void put_le(hn_buf *b, uint64_t v, int n) {
    unsigned char x[8];
    for (int i = 0; i < n; i++) x[i] = (unsigned char)(v >> (8 * i));
    hn_buf_append(b, x, (size_t)n);
}

static void put_gstr(hn_buf *b, const char *s, size_t len) {
    put_le(b, len, 8);
    hn_buf_append(b, s, len);
}

static int elem_size(gguf_vtype t) {
    static const signed char sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return (unsigned)t < sizeof sz ? sz[t] : 0;
}

/* Host-order element i of a packed array -> little-endian bytes. */
static void put_elem(hn_buf *b, gguf_vtype t, const unsigned char *p) {
    int n = elem_size(t);
    uint64_t v = 0;
    if (n == 1) v = p[0];
    else if (n == 2) { uint16_t x; memcpy(&x, p, 2); v = x; }
    else if (n == 4) { uint32_t x; memcpy(&x, p, 4); v = x; }
    else if (n == 8) memcpy(&v, p, 8);
    put_le(b, v, n);
}

/* Finds or creates key and returns its cleared value buffer. */
static hn_buf *slot(gguf_writer *w, const char *key, gguf_vtype type) {
    if (!w || !key) return NULL;
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kvs[i].key, key) == 0) {
            w->kvs[i].type = type;
            hn_buf_clear(&w->kvs[i].val);
            return &w->kvs[i].val;
        }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
        wkv *nk = realloc(w->kvs, cap * sizeof *nk);
        if (!nk) return NULL;
        w->kvs = nk;
        w->cap_kv = cap;
    }
    wkv *kv = &w->kvs[w->n_kv];
    if (!(kv->key = strdup(key))) return NULL;
    kv->type = type;
    hn_buf_init(&kv->val);
    w->n_kv++;
    return &kv->val;
}

static hn_status done(gguf_writer *w, hn_buf *b) {
    if (b && !b->oom) return HN_OK;
    if (w) w->oom = true;
    return HN_ENOMEM;
}

static hn_status set_int(gguf_writer *w, const char *key, gguf_vtype t, uint64_t v) {
    hn_buf *b = slot(w, key, t);
    if (b) put_le(b, v, elem_size(t));
    return done(w, b);
}

hn_status gguf_writer_set_u8(gguf_writer *w, const char *k, uint8_t v) { return set_int(w, k, GGUF_UINT8, v); }
hn_status gguf_writer_set_i8(gguf_writer *w, const char *k, int8_t v) { return set_int(w, k, GGUF_INT8, (uint8_t)v); }
hn_status gguf_writer_set_u16(gguf_writer *w, const char *k, uint16_t v) { return set_int(w, k, GGUF_UINT16, v); }
hn_status gguf_writer_set_i16(gguf_writer *w, const char *k, int16_t v) { return set_int(w, k, GGUF_INT16, (uint16_t)v); }
hn_status gguf_writer_set_u32(gguf_writer *w, const char *k, uint32_t v) { return set_int(w, k, GGUF_UINT32, v); }
hn_status gguf_writer_set_i32(gguf_writer *w, const char *k, int32_t v) { return set_int(w, k, GGUF_INT32, (uint32_t)v); }
hn_status gguf_writer_set_u64(gguf_writer *w, const char *k, uint64_t v) { return set_int(w, k, GGUF_UINT64, v); }
hn_status gguf_writer_set_i64(gguf_writer *w, const char *k, int64_t v) { return set_int(w, k, GGUF_INT64, (uint64_t)v); }
hn_status gguf_writer_set_bool(gguf_writer *w, const char *k, bool v) { return set_int(w, k, GGUF_BOOL, v ? 1 : 0); }

hn_status gguf_writer_set_f32(gguf_writer *w, const char *key, float v) {
    uint32_t x;
    memcpy(&x, &v, 4);
    return set_int(w, key, GGUF_FLOAT32, x);
}

hn_status gguf_writer_set_f64(gguf_writer *w, const char *key, double v) {
    uint64_t x;
    memcpy(&x, &v, 8);
    return set_int(w, key, GGUF_FLOAT64, x);
}

hn_status gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    hn_buf *b = slot(w, key, GGUF_STRING);
    if (b) put_gstr(b, v, strlen(v));
    return done(w, b);
}

hn_status gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_vtype et,
                              const void *data, uint64_t n) {
    int es = elem_size(et);
    if (!es) return HN_EINVAL;
    hn_buf *b = slot(w, key, GGUF_ARRAY);
    if (!b) return done(w, b);
    put_le(b, (uint64_t)et, 4);
    put_le(b, n, 8);
    for (uint64_t i = 0; i < n; i++) put_elem(b, et, (const unsigned char *)data + i * (uint64_t)es);
    return done(w, b);
}

hn_status gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v,
                                  uint64_t n) {
    hn_buf *b = slot(w, key, GGUF_ARRAY);
    if (!b) return done(w, b);
    put_le(b, GGUF_STRING, 4);
    put_le(b, n, 8);
    for (uint64_t i = 0; i < n; i++) put_gstr(b, v[i], strlen(v[i]));
    return done(w, b);
}

hn_status gguf_writer_set_arr_i32(gguf_writer *w, const char *key, const int32_t *v,
                                  uint64_t n) {
    return gguf_writer_set_arr(w, key, GGUF_INT32, v, n);
}

hn_status gguf_writer_set_arr_f32(gguf_writer *w, const char *key, const float *v,
                                  uint64_t n) {
    return gguf_writer_set_arr(w, key, GGUF_FLOAT32, v, n);
}

hn_status gguf_writer_set_raw(gguf_writer *w, const char *key, gguf_vtype type,
                              const void *bytes, size_t n) {
    hn_buf *b = slot(w, key, type);
    if (b) hn_buf_append(b, bytes, n);
    return done(w, b);
}

/* ---- tensors ----------------------------------------------------------------- */

static hn_status check_tensor(const gguf_writer *w, const char *name, gguf_ttype type,
                              uint32_t n_dims, const uint64_t *ne, uint64_t nbytes,
                              hn_err *err) {
    uint64_t n = 1, want = 0;
    if (!name || !*name) return hn_errf(err, HN_EINVAL, "gguf writer: empty tensor name");
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->ts[i].name, name) == 0)
            return hn_errf(err, HN_EINVAL, "gguf writer: duplicate tensor '%s'", name);
    if (n_dims < 1 || n_dims > 4)
        return hn_errf(err, HN_EINVAL, "gguf writer: tensor '%s': n_dims %u not in 1..4", name, n_dims);
    for (uint32_t d = 0; d < n_dims; d++)
        if (ne[d] == 0 || __builtin_mul_overflow(n, ne[d], &n) || n > (uint64_t)INT64_MAX)
            return hn_errf(err, HN_EINVAL, "gguf writer: tensor '%s': bad dimension ne[%u]=%llu",
                           name, d, (unsigned long long)ne[d]);
    uint64_t blk, bsz;
    if (!gguf_ttype_size(type, &blk, &bsz))
        return hn_errf(err, HN_EINVAL, "gguf writer: tensor '%s': unknown type %u", name, (unsigned)type);
    if (ne[0] % blk || !gguf_ttype_nbytes(type, n, &want) || want != nbytes)
        return hn_errf(err, HN_EINVAL,
                       "gguf writer: tensor '%s': %llu bytes given, shape and type %s need %llu "
                       "(ne[0] a multiple of %llu)",
                       name, (unsigned long long)nbytes, gguf_ttype_name(type),
                       (unsigned long long)want, (unsigned long long)blk);
    return HN_OK;
}

hn_status gguf_writer_add_tensor(gguf_writer *w, const char *name, gguf_ttype type,
                                 uint32_t n_dims, const uint64_t *ne, const void *data,
                                 uint64_t nbytes, hn_err *err) {
    hn_status s = check_tensor(w, name, type, n_dims, ne, nbytes, err);
    if (s) return s;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 16;
        wtensor *nt = realloc(w->ts, cap * sizeof *nt);
        if (!nt) return hn_errf(err, HN_ENOMEM, "gguf writer: out of memory");
        w->ts = nt;
        w->cap_t = cap;
    }
    wtensor *t = &w->ts[w->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return hn_errf(err, HN_ENOMEM, "gguf writer: out of memory");
    t->type = type;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < 4; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->data = data;
    t->nbytes = nbytes;
    w->n_t++;
    return HN_OK;
}

/* ---- output ------------------------------------------------------------------------ */

static hn_status writer_alignment(const gguf_writer *w, const char *path, uint64_t *out,
                                  hn_err *err) {
    *out = 32;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, "general.alignment") != 0) continue;
        const unsigned char *p = (const unsigned char *)w->kvs[i].val.data;
        uint32_t a = w->kvs[i].type == GGUF_UINT32 && w->kvs[i].val.len == 4
                         ? (uint32_t)(p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24)
                         : 0;
        if (a == 0 || (a & (a - 1)))
            return hn_errf(err, HN_EINVAL,
                           "%s: general.alignment must be a nonzero power of two (u32)", path);
        *out = a;
    }
    return HN_OK;
}

static uint64_t pad_to(uint64_t x, uint64_t a) { return (a - x % a) % a; }

/* Header, metadata and tensor infos, padded to the alignment. */
static void encode_head(const gguf_writer *w, uint64_t align, hn_buf *h) {
    hn_buf_append(h, "GGUF", 4);
    put_le(h, 3, 4);
    put_le(h, w->n_t, 8);
    put_le(h, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_gstr(h, w->kvs[i].key, strlen(w->kvs[i].key));
        put_le(h, (uint64_t)w->kvs[i].type, 4);
        hn_buf_append(h, w->kvs[i].val.data, w->kvs[i].val.len);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->ts[i];
        put_gstr(h, t->name, strlen(t->name));
        put_le(h, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++) put_le(h, t->ne[d], 8);
        put_le(h, (uint64_t)t->type, 4);
        put_le(h, off, 8);
        off += t->nbytes + pad_to(t->nbytes, align);
    }
    for (uint64_t p = pad_to(h->len, align); p > 0; p--) hn_buf_putc(h, 0);
}

hn_status gguf_writer_write(const gguf_writer *w, const char *path, hn_err *err) {
    uint64_t align;
    if (w->oom) return hn_errf(err, HN_ENOMEM, "%s: out of memory while building GGUF", path);
    hn_status s = writer_alignment(w, path, &align, err);
    if (s) return s;
    hn_buf head;
    hn_buf_init(&head);
    encode_head(w, align, &head);
    size_t n_parts = 1 + 2 * w->n_t;
    const void **parts = calloc(n_parts, sizeof *parts);
    size_t *lens = calloc(n_parts, sizeof *lens);
    void *zeros = calloc(1, align);
    if (head.oom || !parts || !lens || !zeros || n_parts > (size_t)INT32_MAX) {
        s = hn_errf(err, HN_ENOMEM, "%s: out of memory while encoding GGUF", path);
    } else {
        parts[0] = head.data;
        lens[0] = head.len;
        for (size_t i = 0; i < w->n_t; i++) {
            parts[1 + 2 * i] = w->ts[i].data;
            lens[1 + 2 * i] = w->ts[i].nbytes;
            parts[2 + 2 * i] = zeros;
            lens[2 + 2 * i] = pad_to(w->ts[i].nbytes, align);
        }
        s = hn_file_write_atomic(path, parts, lens, (int)n_parts, err);
    }
    free(zeros);
    free(lens);
    free(parts);
    hn_buf_free(&head);
    return s;
}
