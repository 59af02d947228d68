/* gguf.c — the GGUF v2/v3 reader: validation of a hostile, memory-mapped file
 * (header, metadata of every value type incl. nested arrays, tensor infos,
 * aligned data section), typed metadata access, display formatting and the
 * F32/F16/BF16/Q8_0 -> f32 conversion. The writer lives in gguf_writer.c. */
#include "format/gguf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/num.h"
#include "tensor/gemm_q8.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf.c assumes a little-endian host for tensor data"
#endif

#define GGUF_MAX_DEPTH 8          /* nested array levels accepted */
#define GGUF_DEFAULT_ALIGN 32
#define GGUF_MIN_KV_BYTES 13      /* key len 8 + type 4 + 1-byte value */
#define GGUF_MIN_TENSOR_BYTES 32  /* name len 8 + n_dims 4 + ne 8 + type 4 + off 8 */

typedef struct gguf_kv {
    gguf_str key;
    gguf_vtype type;
    const unsigned char *val; /* fixed-size scalar bytes */
    gguf_str str;             /* GGUF_STRING */
    gguf_arr arr;             /* GGUF_ARRAY */
} gguf_kv;

typedef struct name_ix { /* sorted index entry for bsearch by name */
    const char *p;
    uint64_t len, idx;
} name_ix;

struct gguf_file {
    char *path;
    hn_map map;
    uint32_t version;
    uint64_t alignment, data_off;
    uint64_t n_kv, n_tensors;
    gguf_kv *kvs;
    gguf_tensor *tensors;
    name_ix *kv_ix, *t_ix;
    void **blocks; /* string/array element tables */
    size_t n_blocks, cap_blocks;
};

/* Parse cursor: position in the map plus a "where" context for messages. */
typedef struct cur {
    gguf_file *f;
    const unsigned char *p;
    uint64_t size, pos;
    hn_err *err;
    char ctx[160];
} cur;

/* ---- small helpers ------------------------------------------------------ */

static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const unsigned char *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

/* Copies a (possibly binary, unterminated) name into out for messages. */
static const char *show(const char *p, uint64_t len, char *out, size_t cap) {
    size_t n = 0;
    for (uint64_t i = 0; i < len && n + 4 < cap; i++)
        out[n++] = (p[i] >= 32 && p[i] < 127) ? p[i] : '?';
    if (len > n && n + 4 >= cap) out[n++] = '.', out[n++] = '.', out[n++] = '.';
    out[n] = 0;
    return out;
}

static hn_status cerr(cur *c, hn_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static hn_status cerr(cur *c, hn_status code, const char *fmt, ...) {
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return hn_errf(c->err, code, "%s: %s%s%s", c->f->path, c->ctx, c->ctx[0] ? ": " : "",
                   msg);
}

static void set_ctx_name(cur *c, const char *kind, gguf_str s) {
    char b[96];
    snprintf(c->ctx, sizeof c->ctx, "%s '%s'", kind, show(s.p, s.len, b, sizeof b));
}

static uint64_t remaining(const cur *c) { return c->size - c->pos; }

static hn_status need(cur *c, uint64_t n, const char *what) {
    if (n <= remaining(c)) return HN_OK;
    return cerr(c, HN_EFORMAT,
                "%s at byte %llu needs %llu bytes but the file ends at byte %llu (truncated)",
                what, (unsigned long long)c->pos, (unsigned long long)n,
                (unsigned long long)c->size);
}

static hn_status rd_u32(cur *c, uint32_t *v, const char *what) {
    hn_status s = need(c, 4, what);
    if (s) return s;
    *v = le32(c->p + c->pos);
    c->pos += 4;
    return HN_OK;
}

static hn_status rd_u64(cur *c, uint64_t *v, const char *what) {
    hn_status s = need(c, 8, what);
    if (s) return s;
    *v = le64(c->p + c->pos);
    c->pos += 8;
    return HN_OK;
}

static hn_status rd_str(cur *c, gguf_str *out, const char *what) {
    uint64_t len, at = c->pos;
    hn_status s = rd_u64(c, &len, what);
    if (s) return s;
    if (len > remaining(c))
        return cerr(c, HN_EFORMAT,
                    "%s: string length %llu at byte %llu runs past end of file (size %llu)",
                    what, (unsigned long long)len, (unsigned long long)at,
                    (unsigned long long)c->size);
    out->p = (const char *)c->p + c->pos;
    out->len = len;
    c->pos += len;
    return HN_OK;
}

static void *new_block(gguf_file *f, size_t n, size_t size) {
    if (f->n_blocks == f->cap_blocks) {
        size_t cap = f->cap_blocks ? 2 * f->cap_blocks : 16;
        void **nb = realloc(f->blocks, cap * sizeof *nb);
        if (!nb) return NULL;
        f->blocks = nb;
        f->cap_blocks = cap;
    }
    void *b = calloc(n, size);
    if (b) f->blocks[f->n_blocks++] = b;
    return b;
}

static size_t vtype_size(uint32_t t) { /* 0 for string/array/unknown */
    static const unsigned char sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < sizeof sz ? sz[t] : 0;
}

static bool vtype_known(uint32_t t) { return t <= GGUF_FLOAT64; }

const char *gguf_vtype_name(gguf_vtype t) {
    static const char *names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                  "bool", "string", "array", "u64", "i64", "f64"};
    return vtype_known((uint32_t)t) ? names[t] : "unknown";
}

/* ---- metadata values ---------------------------------------------------- */

static hn_status parse_array(cur *c, int depth, gguf_arr *out);

static hn_status parse_strings(cur *c, uint64_t n, gguf_arr *out) {
    if (n > remaining(c) / 8)
        return cerr(c, HN_EFORMAT, "array of %llu strings at byte %llu runs past end of file",
                    (unsigned long long)n, (unsigned long long)c->pos);
    gguf_str *tab = n ? new_block(c->f, n, sizeof *tab) : NULL;
    if (n && !tab) return cerr(c, HN_ENOMEM, "out of memory for %llu strings", (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++) {
        hn_status s = rd_str(c, &tab[i], "array string");
        if (s) return s;
    }
    out->data = (const unsigned char *)tab;
    return HN_OK;
}

static hn_status parse_arrays(cur *c, uint64_t n, int depth, gguf_arr *out) {
    if (n > remaining(c) / 12)
        return cerr(c, HN_EFORMAT, "array of %llu arrays at byte %llu runs past end of file",
                    (unsigned long long)n, (unsigned long long)c->pos);
    gguf_arr *tab = n ? new_block(c->f, n, sizeof *tab) : NULL;
    if (n && !tab) return cerr(c, HN_ENOMEM, "out of memory for %llu arrays", (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++) {
        hn_status s = parse_array(c, depth + 1, &tab[i]);
        if (s) return s;
    }
    out->data = (const unsigned char *)tab;
    return HN_OK;
}

/* An array value: u32 element type, u64 count, elements. */
static hn_status parse_array(cur *c, int depth, gguf_arr *out) {
    uint64_t at = c->pos, n;
    uint32_t et;
    if (depth >= GGUF_MAX_DEPTH)
        return cerr(c, HN_EFORMAT, "arrays nested deeper than %d levels at byte %llu",
                    GGUF_MAX_DEPTH, (unsigned long long)at);
    hn_status s = rd_u32(c, &et, "array element type");
    if (!s) s = rd_u64(c, &n, "array length");
    if (s) return s;
    if (!vtype_known(et))
        return cerr(c, HN_EFORMAT, "unknown array element value type %u at byte %llu", et,
                    (unsigned long long)at);
    out->type = (gguf_vtype)et;
    out->n = n;
    out->data = NULL;
    if (et == GGUF_STRING) return parse_strings(c, n, out);
    if (et == GGUF_ARRAY) return parse_arrays(c, n, depth, out);
    size_t es = vtype_size(et);
    if (n > remaining(c) / es)
        return cerr(c, HN_EFORMAT, "array of %llu %s at byte %llu runs past end of file (size %llu)",
                    (unsigned long long)n, gguf_vtype_name(out->type), (unsigned long long)at,
                    (unsigned long long)c->size);
    out->data = c->p + c->pos;
    c->pos += n * es;
    return HN_OK;
}

static hn_status parse_kv(cur *c, uint64_t i, gguf_kv *kv) {
    snprintf(c->ctx, sizeof c->ctx, "metadata entry %llu", (unsigned long long)i);
    uint32_t t;
    hn_status s = rd_str(c, &kv->key, "key");
    if (s) return s;
    set_ctx_name(c, "key", kv->key);
    uint64_t at = c->pos;
    if ((s = rd_u32(c, &t, "value type"))) return s;
    if (!vtype_known(t))
        return cerr(c, HN_EFORMAT, "unknown value type %u at byte %llu", t, (unsigned long long)at);
    kv->type = (gguf_vtype)t;
    if (t == GGUF_STRING) return rd_str(c, &kv->str, "value");
    if (t == GGUF_ARRAY) return parse_array(c, 0, &kv->arr);
    if ((s = need(c, vtype_size(t), "value"))) return s;
    kv->val = c->p + c->pos;
    c->pos += vtype_size(t);
    return HN_OK;
}

/* ---- name indexes --------------------------------------------------------- */

static int ix_cmp(const void *a, const void *b) {
    const name_ix *x = a, *y = b;
    uint64_t n = x->len < y->len ? x->len : y->len;
    int r = n ? memcmp(x->p, y->p, n) : 0;
    if (r) return r;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* Sorts the index; returns the position of a duplicate name or -1. */
static int64_t ix_sort(name_ix *ix, uint64_t n) {
    if (n > 1) qsort(ix, n, sizeof *ix, ix_cmp);
    for (uint64_t i = 1; i < n; i++)
        if (ix_cmp(&ix[i - 1], &ix[i]) == 0) return (int64_t)i;
    return -1;
}

static int64_t ix_find(const name_ix *ix, uint64_t n, const char *name) {
    if (!ix || !name) return -1;
    name_ix key = {name, strlen(name), 0};
    const name_ix *hit = bsearch(&key, ix, n, sizeof *ix, ix_cmp);
    return hit ? (int64_t)hit->idx : -1;
}

/* ---- header and metadata -------------------------------------------------- */

static hn_status parse_magic_version(cur *c) {
    if (c->size == 0) return cerr(c, HN_EFORMAT, "file is empty (0 bytes), not a GGUF file");
    if (c->size < 4 || memcmp(c->p, "GGUF", 4) != 0) {
        char b[16];
        return cerr(c, HN_EFORMAT, "bad magic '%s' (expected 'GGUF'): not a GGUF file",
                    show((const char *)c->p, c->size < 4 ? c->size : 4, b, sizeof b));
    }
    c->pos = 4;
    uint32_t v;
    hn_status s = rd_u32(c, &v, "version");
    if (s) return s;
    c->f->version = v;
    if (v != 0 && (v & 0xffff) == 0)
        return cerr(c, HN_EUNSUPPORTED, "big-endian GGUF (version field 0x%08x) is not supported", v);
    if (v == 1)
        return cerr(c, HN_EUNSUPPORTED,
                    "GGUF version 1 is not supported (hone reads versions 2 and 3; "
                    "re-convert the model with a current llama.cpp)");
    if (v != 2 && v != 3)
        return cerr(c, HN_EUNSUPPORTED,
                    "GGUF version %u is not supported (hone reads versions 2 and 3)", v);
    return HN_OK;
}

static hn_status parse_counts(cur *c) {
    gguf_file *f = c->f;
    hn_status s = rd_u64(c, &f->n_tensors, "tensor_count");
    if (!s) s = rd_u64(c, &f->n_kv, "kv_count");
    if (s) return s;
    uint64_t rem = remaining(c);
    if (f->n_kv > rem / GGUF_MIN_KV_BYTES)
        return cerr(c, HN_EFORMAT, "kv_count %llu is absurd: the remaining %llu bytes cannot hold it (truncated or corrupt file?)",
                    (unsigned long long)f->n_kv, (unsigned long long)rem);
    if (f->n_tensors > rem / GGUF_MIN_TENSOR_BYTES ||
        f->n_kv * GGUF_MIN_KV_BYTES + f->n_tensors * GGUF_MIN_TENSOR_BYTES > rem)
        return cerr(c, HN_EFORMAT,
                    "tensor_count %llu is absurd: the remaining %llu bytes cannot hold it (truncated or corrupt file?)",
                    (unsigned long long)f->n_tensors, (unsigned long long)rem);
    return HN_OK;
}

static hn_status parse_kvs(cur *c) {
    gguf_file *f = c->f;
    if (f->n_kv) {
        f->kvs = calloc(f->n_kv, sizeof *f->kvs);
        f->kv_ix = calloc(f->n_kv, sizeof *f->kv_ix);
        if (!f->kvs || !f->kv_ix) return cerr(c, HN_ENOMEM, "out of memory for metadata");
    }
    for (uint64_t i = 0; i < f->n_kv; i++) {
        hn_status s = parse_kv(c, i, &f->kvs[i]);
        if (s) return s;
        f->kv_ix[i] = (name_ix){f->kvs[i].key.p, f->kvs[i].key.len, i};
    }
    c->ctx[0] = 0;
    int64_t d = ix_sort(f->kv_ix, f->n_kv);
    if (d >= 0) {
        char b[96];
        return cerr(c, HN_EFORMAT, "duplicate metadata key '%s'",
                    show(f->kv_ix[d].p, f->kv_ix[d].len, b, sizeof b));
    }
    return HN_OK;
}

static hn_status parse_alignment(cur *c) {
    gguf_file *f = c->f;
    f->alignment = GGUF_DEFAULT_ALIGN;
    int64_t i = gguf_find_kv(f, "general.alignment");
    if (i < 0) return HN_OK;
    int64_t a;
    if (gguf_get_int(f, "general.alignment", &a, NULL) != HN_OK)
        return cerr(c, HN_EFORMAT, "general.alignment has type %s, expected an integer",
                    gguf_vtype_name(f->kvs[i].type));
    if (a <= 0 || (a & (a - 1)) != 0)
        return cerr(c, HN_EFORMAT, "general.alignment %lld is not a nonzero power of two",
                    (long long)a);
    f->alignment = (uint64_t)a;
    return HN_OK;
}

/* ---- tensor infos ----------------------------------------------------------- */

static hn_status parse_dims(cur *c, gguf_tensor *t) {
    hn_status s = rd_u32(c, &t->n_dims, "n_dims");
    if (s) return s;
    if (t->n_dims == 0 || t->n_dims > 4)
        return cerr(c, HN_EFORMAT, "n_dims %u at byte %llu is out of range (1..4)", t->n_dims,
                    (unsigned long long)(c->pos - 4));
    uint64_t n = 1;
    for (uint32_t d = 0; d < 4; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if ((s = rd_u64(c, &t->ne[d], "dimension"))) return s;
        if (t->ne[d] == 0)
            return cerr(c, HN_EFORMAT, "dimension %u is zero", d);
        if (__builtin_mul_overflow(n, t->ne[d], &n) || n > (uint64_t)INT64_MAX)
            return cerr(c, HN_EFORMAT, "dimensions overflow: element count exceeds 2^63 at ne[%u]=%llu",
                        d, (unsigned long long)t->ne[d]);
    }
    t->n_elems = n;
    return HN_OK;
}

static hn_status parse_ttype(cur *c, gguf_tensor *t) {
    uint32_t ty;
    uint64_t blk, bsz;
    hn_status s = rd_u32(c, &ty, "tensor type");
    if (s) return s;
    t->type = (gguf_ttype)ty;
    if (!gguf_ttype_size(t->type, &blk, &bsz))
        return cerr(c, HN_EUNSUPPORTED, "unknown ggml tensor type %u", ty);
    if (t->ne[0] % blk)
        return cerr(c, HN_EFORMAT, "ne[0]=%llu is not a multiple of the %s block size %llu",
                    (unsigned long long)t->ne[0], gguf_ttype_name(t->type),
                    (unsigned long long)blk);
    if (!gguf_ttype_nbytes(t->type, t->n_elems, &t->nbytes))
        return cerr(c, HN_EFORMAT, "byte size of %llu %s elements overflows",
                    (unsigned long long)t->n_elems, gguf_ttype_name(t->type));
    return HN_OK;
}

static hn_status parse_tensor_info(cur *c, uint64_t i, gguf_tensor *t) {
    snprintf(c->ctx, sizeof c->ctx, "tensor %llu", (unsigned long long)i);
    hn_status s = rd_str(c, &t->name, "name");
    if (s) return s;
    set_ctx_name(c, "tensor", t->name);
    if ((s = parse_dims(c, t)) || (s = parse_ttype(c, t))) return s;
    uint64_t at = c->pos;
    if ((s = rd_u64(c, &t->offset, "data offset"))) return s;
    if (t->offset % c->f->alignment)
        return cerr(c, HN_EFORMAT,
                    "data offset %llu (at byte %llu) is misaligned: not a multiple of the "
                    "alignment %llu",
                    (unsigned long long)t->offset, (unsigned long long)at,
                    (unsigned long long)c->f->alignment);
    return HN_OK;
}

static hn_status place_tensor(cur *c, gguf_tensor *t) {
    gguf_file *f = c->f;
    uint64_t start, end;
    set_ctx_name(c, "tensor", t->name);
    if (__builtin_add_overflow(f->data_off, t->offset, &start) ||
        __builtin_add_overflow(start, t->nbytes, &end) || end > c->size)
        return cerr(c, HN_EFORMAT,
                    "data [offset %llu, %llu bytes] runs past end of file (size %llu)",
                    (unsigned long long)(start < f->data_off ? t->offset : start),
                    (unsigned long long)t->nbytes, (unsigned long long)c->size);
    t->data = c->p + start;
    return HN_OK;
}

static hn_status parse_tensors(cur *c) {
    gguf_file *f = c->f;
    if (f->n_tensors) {
        f->tensors = calloc(f->n_tensors, sizeof *f->tensors);
        f->t_ix = calloc(f->n_tensors, sizeof *f->t_ix);
        if (!f->tensors || !f->t_ix) return cerr(c, HN_ENOMEM, "out of memory for tensor infos");
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        hn_status s = parse_tensor_info(c, i, &f->tensors[i]);
        if (s) return s;
        f->t_ix[i] = (name_ix){f->tensors[i].name.p, f->tensors[i].name.len, i};
    }
    c->ctx[0] = 0;
    int64_t d = ix_sort(f->t_ix, f->n_tensors);
    if (d >= 0) {
        char b[96];
        return cerr(c, HN_EFORMAT, "duplicate tensor name '%s'",
                    show(f->t_ix[d].p, f->t_ix[d].len, b, sizeof b));
    }
    uint64_t pad = (f->alignment - c->pos % f->alignment) % f->alignment;
    if (__builtin_add_overflow(c->pos, pad, &f->data_off))
        return cerr(c, HN_EFORMAT, "data section offset overflows");
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        hn_status s = place_tensor(c, &f->tensors[i]);
        if (s) return s;
    }
    c->ctx[0] = 0;
    return HN_OK;
}

/* ---- open/close ---------------------------------------------------------------- */

hn_status gguf_open(const char *path, gguf_file **out, hn_err *err) {
    *out = NULL;
    gguf_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return hn_errf(err, HN_ENOMEM, "%s: out of memory", path);
    }
    hn_status s = hn_map_open(path, &f->map, err);
    if (s) {
        gguf_close(f);
        return s;
    }
    cur c = {.f = f, .p = f->map.data, .size = f->map.size, .err = err};
    if (!(s = parse_magic_version(&c)) && !(s = parse_counts(&c)) && !(s = parse_kvs(&c)) &&
        !(s = parse_alignment(&c)))
        s = parse_tensors(&c);
    if (s) {
        gguf_close(f);
        return s;
    }
    *out = f;
    return HN_OK;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n_blocks; i++) free(f->blocks[i]);
    free(f->blocks);
    free(f->kvs);
    free(f->kv_ix);
    free(f->tensors);
    free(f->t_ix);
    hn_map_close(&f->map);
    free(f->path);
    free(f);
}

const char *gguf_path(const gguf_file *f) { return f->path; }
uint32_t gguf_version(const gguf_file *f) { return f->version; }
uint64_t gguf_alignment(const gguf_file *f) { return f->alignment; }
uint64_t gguf_data_offset(const gguf_file *f) { return f->data_off; }

/* ---- metadata access ------------------------------------------------------------- */

uint64_t gguf_n_kv(const gguf_file *f) { return f->n_kv; }

gguf_str gguf_kv_key(const gguf_file *f, uint64_t i) {
    return i < f->n_kv ? f->kvs[i].key : (gguf_str){"", 0};
}

gguf_vtype gguf_kv_type(const gguf_file *f, uint64_t i) {
    return i < f->n_kv ? f->kvs[i].type : GGUF_UINT8;
}

int64_t gguf_find_kv(const gguf_file *f, const char *key) {
    return ix_find(f->kv_ix, f->n_kv, key);
}

static bool is_int_type(gguf_vtype t) {
    return t <= GGUF_INT32 || t == GGUF_UINT64 || t == GGUF_INT64;
}

/* Integer value of a fixed-size integer element at p. */
static bool int_at(gguf_vtype t, const unsigned char *p, int64_t *out) {
    switch (t) {
    case GGUF_UINT8: *out = p[0]; return true;
    case GGUF_INT8: *out = (int8_t)p[0]; return true;
    case GGUF_UINT16: *out = le16(p); return true;
    case GGUF_INT16: *out = (int16_t)le16(p); return true;
    case GGUF_UINT32: *out = le32(p); return true;
    case GGUF_INT32: *out = (int32_t)le32(p); return true;
    case GGUF_INT64: *out = (int64_t)le64(p); return true;
    case GGUF_UINT64:
        *out = (int64_t)le64(p);
        return le64(p) <= (uint64_t)INT64_MAX;
    default: return false;
    }
}

static double num_at(gguf_vtype t, const unsigned char *p) {
    int64_t i;
    if (t == GGUF_FLOAT32) {
        uint32_t b = le32(p);
        float v;
        memcpy(&v, &b, 4);
        return v;
    }
    if (t == GGUF_FLOAT64) {
        uint64_t b = le64(p);
        double v;
        memcpy(&v, &b, 8);
        return v;
    }
    if (t == GGUF_UINT64) return (double)le64(p);
    if (t == GGUF_BOOL) return p[0] != 0;
    return int_at(t, p, &i) ? (double)i : 0.0;
}

static hn_status lookup(const gguf_file *f, const char *key, const gguf_kv **kv, hn_err *err) {
    int64_t i = gguf_find_kv(f, key);
    if (i < 0) return hn_errf(err, HN_ENOTFOUND, "%s: key '%s' not found", f->path, key);
    *kv = &f->kvs[i];
    return HN_OK;
}

static hn_status wrong_type(const gguf_file *f, const gguf_kv *kv, const char *want, hn_err *err) {
    char b[96];
    return hn_errf(err, HN_EFORMAT, "%s: key '%s' has type %s, expected %s", f->path,
                   show(kv->key.p, kv->key.len, b, sizeof b), gguf_vtype_name(kv->type), want);
}

hn_status gguf_get_int(const gguf_file *f, const char *key, int64_t *out, hn_err *err) {
    const gguf_kv *kv = NULL;
    hn_status s = lookup(f, key, &kv, err);
    if (s) return s;
    if (!is_int_type(kv->type)) return wrong_type(f, kv, "an integer", err);
    if (!int_at(kv->type, kv->val, out))
        return hn_errf(err, HN_EFORMAT, "%s: key '%s': value %llu out of range", f->path, key,
                       (unsigned long long)le64(kv->val));
    return HN_OK;
}

hn_status gguf_get_float(const gguf_file *f, const char *key, double *out, hn_err *err) {
    const gguf_kv *kv = NULL;
    hn_status s = lookup(f, key, &kv, err);
    if (s) return s;
    if (!is_int_type(kv->type) && kv->type != GGUF_FLOAT32 && kv->type != GGUF_FLOAT64)
        return wrong_type(f, kv, "a number", err);
    *out = num_at(kv->type, kv->val);
    return HN_OK;
}

hn_status gguf_get_bool(const gguf_file *f, const char *key, bool *out, hn_err *err) {
    const gguf_kv *kv = NULL;
    hn_status s = lookup(f, key, &kv, err);
    if (s) return s;
    if (kv->type != GGUF_BOOL) return wrong_type(f, kv, "bool", err);
    *out = kv->val[0] != 0;
    return HN_OK;
}

hn_status gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, hn_err *err) {
    const gguf_kv *kv = NULL;
    hn_status s = lookup(f, key, &kv, err);
    if (s) return s;
    if (kv->type != GGUF_STRING) return wrong_type(f, kv, "string", err);
    *out = kv->str;
    return HN_OK;
}

hn_status gguf_get_arr(const gguf_file *f, const char *key, gguf_arr *out, hn_err *err) {
    const gguf_kv *kv = NULL;
    hn_status s = lookup(f, key, &kv, err);
    if (s) return s;
    if (kv->type != GGUF_ARRAY) return wrong_type(f, kv, "array", err);
    *out = kv->arr;
    return HN_OK;
}

gguf_str gguf_arr_str(const gguf_arr *a, uint64_t i) {
    if (a->type != GGUF_STRING || i >= a->n) return (gguf_str){"", 0};
    return ((const gguf_str *)(const void *)a->data)[i];
}

double gguf_arr_num(const gguf_arr *a, uint64_t i) {
    size_t es = vtype_size(a->type);
    if (!es || i >= a->n) return 0.0;
    return num_at(a->type, a->data + i * es);
}

gguf_arr gguf_arr_arr(const gguf_arr *a, uint64_t i) {
    if (a->type != GGUF_ARRAY || i >= a->n) return (gguf_arr){GGUF_UINT8, 0, NULL};
    return ((const gguf_arr *)(const void *)a->data)[i];
}

/* ---- display ------------------------------------------------------------------------ */

typedef struct outbuf {
    char *p;
    size_t cap, len;
} outbuf;

static void put(outbuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(outbuf *o, const char *fmt, ...) {
    if (o->len + 1 >= o->cap) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n > 0) o->len = o->len + (size_t)n < o->cap ? o->len + (size_t)n : o->cap - 1;
}

static void put_str(outbuf *o, gguf_str s, uint64_t max) {
    put(o, "\"");
    for (uint64_t i = 0; i < s.len && i < max; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        if (ch == '"' || ch == '\\') put(o, "\\%c", ch);
        else if (ch < 32 || ch == 127) put(o, "\\x%02x", ch);
        else put(o, "%c", ch);
    }
    put(o, s.len > max ? "...\"" : "\"");
}

static void put_scalar(outbuf *o, gguf_vtype t, const unsigned char *p) {
    int64_t i;
    if (t == GGUF_BOOL) put(o, "%s", p[0] ? "true" : "false");
    else if (t == GGUF_FLOAT32 || t == GGUF_FLOAT64) put(o, "%.9g", num_at(t, p));
    else if (t == GGUF_UINT64) put(o, "%llu", (unsigned long long)le64(p));
    else if (int_at(t, p, &i)) put(o, "%lld", (long long)i);
}

static void put_arr(outbuf *o, const gguf_arr *a, int depth) {
    const uint64_t show_n = 6;
    put(o, "[");
    for (uint64_t i = 0; i < a->n && i < show_n; i++) {
        if (i) put(o, ", ");
        if (a->type == GGUF_STRING) put_str(o, gguf_arr_str(a, i), 40);
        else if (a->type == GGUF_ARRAY) {
            gguf_arr sub = gguf_arr_arr(a, i);
            if (depth < 3) put_arr(o, &sub, depth + 1);
            else put(o, "[...]");
        } else put_scalar(o, a->type, a->data + i * vtype_size(a->type));
    }
    if (a->n > show_n) put(o, ", ... (%llu items)", (unsigned long long)a->n);
    put(o, "]");
}

void gguf_kv_format(const gguf_file *f, uint64_t i, char *out, size_t cap) {
    if (!cap) return;
    out[0] = 0;
    if (i >= f->n_kv) return;
    outbuf o = {out, cap, 0};
    const gguf_kv *kv = &f->kvs[i];
    if (kv->type == GGUF_STRING) put_str(&o, kv->str, 200);
    else if (kv->type == GGUF_ARRAY) put_arr(&o, &kv->arr, 0);
    else put_scalar(&o, kv->type, kv->val);
}

/* ---- tensors -------------------------------------------------------------------------- */

uint64_t gguf_n_tensors(const gguf_file *f) { return f->n_tensors; }

const gguf_tensor *gguf_tensor_at(const gguf_file *f, uint64_t i) {
    return i < f->n_tensors ? &f->tensors[i] : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    int64_t i = ix_find(f->t_ix, f->n_tensors, name);
    return i < 0 ? NULL : &f->tensors[i];
}

typedef struct ttype_info {
    const char *name;
    uint16_t blk, bytes;
} ttype_info;

static const ttype_info *ttype_info_of(gguf_ttype t) {
    static const ttype_info tab[40] = {
        [GGUF_T_F32] = {"F32", 1, 4},        [GGUF_T_F16] = {"F16", 1, 2},
        [GGUF_T_Q4_0] = {"Q4_0", 32, 18},    [GGUF_T_Q4_1] = {"Q4_1", 32, 20},
        [GGUF_T_Q5_0] = {"Q5_0", 32, 22},    [GGUF_T_Q5_1] = {"Q5_1", 32, 24},
        [GGUF_T_Q8_0] = {"Q8_0", 32, 34},    [GGUF_T_Q8_1] = {"Q8_1", 32, 36},
        [GGUF_T_Q2_K] = {"Q2_K", 256, 84},   [GGUF_T_Q3_K] = {"Q3_K", 256, 110},
        [GGUF_T_Q4_K] = {"Q4_K", 256, 144},  [GGUF_T_Q5_K] = {"Q5_K", 256, 176},
        [GGUF_T_Q6_K] = {"Q6_K", 256, 210},  [GGUF_T_Q8_K] = {"Q8_K", 256, 292},
        [GGUF_T_IQ2_XXS] = {"IQ2_XXS", 256, 66}, [GGUF_T_IQ2_XS] = {"IQ2_XS", 256, 74},
        [GGUF_T_IQ3_XXS] = {"IQ3_XXS", 256, 98}, [GGUF_T_IQ1_S] = {"IQ1_S", 256, 50},
        [GGUF_T_IQ4_NL] = {"IQ4_NL", 32, 18},    [GGUF_T_IQ3_S] = {"IQ3_S", 256, 110},
        [GGUF_T_IQ2_S] = {"IQ2_S", 256, 82},     [GGUF_T_IQ4_XS] = {"IQ4_XS", 256, 136},
        [GGUF_T_I8] = {"I8", 1, 1},          [GGUF_T_I16] = {"I16", 1, 2},
        [GGUF_T_I32] = {"I32", 1, 4},        [GGUF_T_I64] = {"I64", 1, 8},
        [GGUF_T_F64] = {"F64", 1, 8},        [GGUF_T_IQ1_M] = {"IQ1_M", 256, 56},
        [GGUF_T_BF16] = {"BF16", 1, 2},      [GGUF_T_TQ1_0] = {"TQ1_0", 256, 54},
        [GGUF_T_TQ2_0] = {"TQ2_0", 256, 66}, [GGUF_T_MXFP4] = {"MXFP4", 32, 17},
    };
    unsigned u = (unsigned)t;
    return u < sizeof tab / sizeof tab[0] && tab[u].name ? &tab[u] : NULL;
}

const char *gguf_ttype_name(gguf_ttype t) {
    static _Thread_local char buf[24];
    const ttype_info *ti = ttype_info_of(t);
    if (ti) return ti->name;
    snprintf(buf, sizeof buf, "type %u", (unsigned)t);
    return buf;
}

bool gguf_ttype_size(gguf_ttype t, uint64_t *block_elems, uint64_t *block_bytes) {
    const ttype_info *ti = ttype_info_of(t);
    if (!ti) return false;
    *block_elems = ti->blk;
    *block_bytes = ti->bytes;
    return true;
}

bool gguf_ttype_nbytes(gguf_ttype t, uint64_t n_elems, uint64_t *out) {
    uint64_t blk, bsz;
    if (!gguf_ttype_size(t, &blk, &bsz) || n_elems % blk) return false;
    return !__builtin_mul_overflow(n_elems / blk, bsz, out);
}

static void q8_0_to_f32(const unsigned char *src, float *dst, uint64_t n) {
    for (uint64_t b = 0; b < n / 32; b++, src += 34) {
        float d = hn_f16_to_f32(le16(src));
        for (int j = 0; j < 32; j++) dst[b * 32 + (uint64_t)j] = d * (float)(int8_t)src[2 + j];
    }
}

static void u16_to_f32(const unsigned char *src, float *dst, uint64_t n, bool bf16) {
    for (uint64_t i = 0; i < n; i++) {
        uint16_t h = le16(src + 2 * i);
        dst[i] = bf16 ? hn_bf16_to_f32(h) : hn_f16_to_f32(h);
    }
}

hn_status gguf_tensor_to_f32(const gguf_file *f, const gguf_tensor *t, float *dst,
                             hn_err *err) {
    char b[96];
    switch (t->type) {
    case GGUF_T_F32: memcpy(dst, t->data, t->n_elems * 4); return HN_OK;
    case GGUF_T_F16: u16_to_f32(t->data, dst, t->n_elems, false); return HN_OK;
    case GGUF_T_BF16: u16_to_f32(t->data, dst, t->n_elems, true); return HN_OK;
    case GGUF_T_Q8_0: q8_0_to_f32(t->data, dst, t->n_elems); return HN_OK;
    default:
        return hn_errf(err, HN_EUNSUPPORTED,
                       "%s: tensor '%s' has type %s, which hone cannot load "
                       "(supported: F32, F16, BF16, Q8_0)",
                       f->path, show(t->name.p, t->name.len, b, sizeof b),
                       gguf_ttype_name(t->type));
    }
}

/* The quantization itself is the Q8_0 inference kernels' (gemm_q8.h), so a
 * written block and a weight quantized for compute are the same bytes. */
void gguf_quantize_q8_0(const float *src, void *dst, size_t n) {
    unsigned char *o = dst;
    for (size_t b = 0; b < n / 32; b++, o += 34) {
        uint16_t h;
        gemm_q8_quantize(src + b * 32, 32, &h, (int8_t *)(o + 2));
        o[0] = (unsigned char)(h & 0xff);
        o[1] = (unsigned char)(h >> 8);
    }
}
