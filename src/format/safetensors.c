/* safetensors.c — the safetensors reader: single files and sharded
 * directories (model.safetensors.index.json), hostile-header validation
 * (JSON shape, dtypes, shapes, offsets against the file), lookup by name and
 * conversion to f32. The writer is in safetensors_write.c. */
#include "format/safetensors.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/num.h"

#define ST_MAX_HEADER (100u * 1024 * 1024)

typedef struct st_shard {
    char *path;
    hn_map map;
    uint64_t data_start, data_size;
} st_shard;

typedef struct st_name_ix {
    const char *name;
    size_t idx;
} st_name_ix;

typedef struct st_meta {
    char *key, *val;
} st_meta;

struct st_model {
    st_shard *shards;
    size_t n_shards;
    st_tensor *tensors;
    size_t n_tensors, cap_tensors;
    st_name_ix *order; /* tensor names sorted, for st_find */
    st_meta *meta;
    size_t n_meta, cap_meta;
};

/* ---- dtypes ------------------------------------------------------------------ */

static const char *const dtype_names[] = {"F32", "F16", "BF16", "F64", "I64",
                                          "I32", "I16", "I8",   "U8",  "BOOL"};
static const unsigned char dtype_sizes[] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1};
/* Dtypes the format defines that hone does not load. */
static const char *const dtype_unsupported[] = {
    "U16", "U32", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64",
};

const char *st_dtype_name(st_dtype d) {
    return (unsigned)d <= ST_BOOL ? dtype_names[d] : "unknown";
}

size_t st_dtype_size(st_dtype d) { return (unsigned)d <= ST_BOOL ? dtype_sizes[d] : 0; }

bool st_dtype_parse(const char *s, st_dtype *out) {
    for (int i = 0; i <= ST_BOOL; i++)
        if (strcmp(s, dtype_names[i]) == 0) {
            *out = (st_dtype)i;
            return true;
        }
    return false;
}

static bool dtype_is_unsupported(const char *s) {
    for (size_t i = 0; i < sizeof dtype_unsupported / sizeof *dtype_unsupported; i++)
        if (strcmp(s, dtype_unsupported[i]) == 0) return true;
    return false;
}

/* ---- model bookkeeping ---------------------------------------------------------- */

static st_tensor *add_tensor(st_model *m) {
    if (m->n_tensors == m->cap_tensors) {
        size_t cap = m->cap_tensors ? 2 * m->cap_tensors : 64;
        st_tensor *nt = realloc(m->tensors, cap * sizeof *nt);
        if (!nt) return NULL;
        m->tensors = nt;
        m->cap_tensors = cap;
    }
    st_tensor *t = &m->tensors[m->n_tensors];
    memset(t, 0, sizeof *t);
    return t;
}

static bool add_meta(st_model *m, const char *k, const char *v) {
    if (st_metadata(m, k)) return true; /* first shard wins */
    if (m->n_meta == m->cap_meta) {
        size_t cap = m->cap_meta ? 2 * m->cap_meta : 8;
        st_meta *nm = realloc(m->meta, cap * sizeof *nm);
        if (!nm) return false;
        m->meta = nm;
        m->cap_meta = cap;
    }
    char *kk = strdup(k), *vv = strdup(v);
    if (!kk || !vv) {
        free(kk);
        free(vv);
        return false;
    }
    m->meta[m->n_meta++] = (st_meta){kk, vv};
    return true;
}

void st_close(st_model *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_shards; i++) {
        hn_map_close(&m->shards[i].map);
        free(m->shards[i].path);
    }
    for (size_t i = 0; i < m->n_tensors; i++) free((char *)m->tensors[i].name);
    for (size_t i = 0; i < m->n_meta; i++) {
        free(m->meta[i].key);
        free(m->meta[i].val);
    }
    free(m->shards);
    free(m->tensors);
    free(m->order);
    free(m->meta);
    free(m);
}

/* ---- header entries ------------------------------------------------------------- */

/* Non-negative JSON integer or false. */
static bool json_u64(const json_t *j, uint64_t *out) {
    if (!json_is_integer(j) || json_integer_value(j) < 0) return false;
    *out = (uint64_t)json_integer_value(j);
    return true;
}

static hn_status parse_dtype(const char *path, const char *name, const json_t *e,
                             st_tensor *t, hn_err *err) {
    const char *s = json_string_value(json_object_get(e, "dtype"));
    if (!s) return hn_errf(err, HN_EFORMAT, "%s: tensor '%s': missing or non-string dtype", path, name);
    if (st_dtype_parse(s, &t->dtype)) return HN_OK;
    if (dtype_is_unsupported(s))
        return hn_errf(err, HN_EUNSUPPORTED,
                       "%s: tensor '%s' has dtype %s, which hone cannot load (supported: F32, "
                       "F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)",
                       path, name, s);
    return hn_errf(err, HN_EFORMAT, "%s: tensor '%s': unknown dtype '%.40s'", path, name, s);
}

static hn_status parse_shape(const char *path, const char *name, const json_t *e,
                             st_tensor *t, hn_err *err) {
    const json_t *sh = json_object_get(e, "shape");
    if (!json_is_array(sh))
        return hn_errf(err, HN_EFORMAT, "%s: tensor '%s': missing or non-array shape", path, name);
    if (json_array_size(sh) > ST_MAX_DIMS)
        return hn_errf(err, HN_EFORMAT, "%s: tensor '%s': shape has %zu dims (max %d)", path,
                       name, json_array_size(sh), ST_MAX_DIMS);
    t->n_dims = (int)json_array_size(sh);
    uint64_t n = 1;
    for (int d = 0; d < t->n_dims; d++) {
        const json_t *v = json_array_get(sh, (size_t)d);
        uint64_t x;
        if (!json_u64(v, &x))
            return hn_errf(err, HN_EFORMAT, "%s: tensor '%s': shape[%d] is negative or not an integer",
                           path, name, d);
        if (__builtin_mul_overflow(n, x, &n) || n > (uint64_t)INT64_MAX)
            return hn_errf(err, HN_EFORMAT, "%s: tensor '%s': shape product overflows", path, name);
        t->shape[d] = (int64_t)x;
    }
    t->n_elems = n;
    if (__builtin_mul_overflow(n, (uint64_t)st_dtype_size(t->dtype), &t->nbytes))
        return hn_errf(err, HN_EFORMAT, "%s: tensor '%s': byte size overflows", path, name);
    return HN_OK;
}

static hn_status parse_offsets(const char *path, const char *name, const json_t *e,
                               const st_shard *sh, st_tensor *t, hn_err *err) {
    const json_t *o = json_object_get(e, "data_offsets");
    uint64_t b, en;
    if (!json_is_array(o) || json_array_size(o) != 2 || !json_u64(json_array_get(o, 0), &b) ||
        !json_u64(json_array_get(o, 1), &en))
        return hn_errf(err, HN_EFORMAT,
                       "%s: tensor '%s': data_offsets must be [begin, end] non-negative integers",
                       path, name);
    if (en < b)
        return hn_errf(err, HN_EFORMAT, "%s: tensor '%s': data_offsets end %llu < begin %llu",
                       path, name, (unsigned long long)en, (unsigned long long)b);
    if (en > sh->data_size)
        return hn_errf(err, HN_EFORMAT,
                       "%s: tensor '%s': data_offsets [%llu, %llu] run past end of file "
                       "(data section is %llu bytes)",
                       path, name, (unsigned long long)b, (unsigned long long)en,
                       (unsigned long long)sh->data_size);
    if (en - b != t->nbytes)
        return hn_errf(err, HN_EFORMAT,
                       "%s: tensor '%s': size mismatch: shape x %s is %llu bytes but "
                       "data_offsets span %llu",
                       path, name, st_dtype_name(t->dtype), (unsigned long long)t->nbytes,
                       (unsigned long long)(en - b));
    t->data = sh->map.data + sh->data_start + b;
    return HN_OK;
}

static hn_status parse_entry(st_model *m, int shard, const char *name, const json_t *e,
                             hn_err *err) {
    const st_shard *sh = &m->shards[shard];
    if (!json_is_object(e))
        return hn_errf(err, HN_EFORMAT, "%s: tensor '%s': entry is not an object", sh->path, name);
    st_tensor *t = add_tensor(m);
    if (!t) return hn_errf(err, HN_ENOMEM, "%s: out of memory", sh->path);
    hn_status s;
    if ((s = parse_dtype(sh->path, name, e, t, err)) || (s = parse_shape(sh->path, name, e, t, err)) ||
        (s = parse_offsets(sh->path, name, e, sh, t, err)))
        return s;
    t->shard = shard;
    if (!(t->name = strdup(name))) return hn_errf(err, HN_ENOMEM, "%s: out of memory", sh->path);
    m->n_tensors++;
    return HN_OK;
}

static hn_status parse_metadata(st_model *m, const char *path, const json_t *md, hn_err *err) {
    const char *k;
    const json_t *v;
    if (!json_is_object(md))
        return hn_errf(err, HN_EFORMAT, "%s: __metadata__ is not an object", path);
    json_object_foreach((json_t *)md, k, v) {
        if (!json_is_string(v))
            return hn_errf(err, HN_EFORMAT, "%s: __metadata__ value for '%s' is not a string", path, k);
        if (!add_meta(m, k, json_string_value(v)))
            return hn_errf(err, HN_ENOMEM, "%s: out of memory", path);
    }
    return HN_OK;
}

/* ---- shards --------------------------------------------------------------------- */

static const char *json_kind(const json_t *j) {
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static hn_status load_header(st_shard *sh, json_t **root, hn_err *err) {
    const unsigned char *p = sh->map.data;
    if (sh->map.size < 8)
        return hn_errf(err, HN_EFORMAT, "%s: file is %s (%zu bytes): too short for the 8-byte header length",
                       sh->path, sh->map.size ? "truncated" : "empty", sh->map.size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | p[i];
    if (n > ST_MAX_HEADER)
        return hn_errf(err, HN_EFORMAT, "%s: header length %llu is absurd (limit %u bytes)",
                       sh->path, (unsigned long long)n, ST_MAX_HEADER);
    if (n > sh->map.size - 8)
        return hn_errf(err, HN_EFORMAT, "%s: header length %llu exceeds the file size %zu (truncated?)",
                       sh->path, (unsigned long long)n, sh->map.size);
    sh->data_start = 8 + n;
    sh->data_size = sh->map.size - sh->data_start;
    json_error_t je;
    *root = json_loadb((const char *)p + 8, (size_t)n, JSON_REJECT_DUPLICATES, &je);
    if (!*root)
        return hn_errf(err, HN_EFORMAT, "%s: header is not valid JSON at byte %d (line %d, column %d): %s",
                       sh->path, 8 + je.position, je.line, je.column, je.text);
    if (!json_is_object(*root)) {
        hn_status s = hn_errf(err, HN_EFORMAT, "%s: header JSON is %s, expected an object",
                              sh->path, json_kind(*root));
        json_decref(*root);
        *root = NULL;
        return s;
    }
    return HN_OK;
}

static int cmp_offset(const void *a, const void *b) {
    const st_tensor *x = a, *y = b;
    if (x->data != y->data) return (const char *)x->data < (const char *)y->data ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Maps shards[idx] (path already set) and adds its tensors, in file order. */
static hn_status load_shard(st_model *m, int idx, hn_err *err) {
    st_shard *sh = &m->shards[idx];
    json_t *root = NULL, *v;
    const char *k;
    hn_status s = hn_map_open(sh->path, &sh->map, err);
    if (s || (s = load_header(sh, &root, err))) return s;
    size_t first = m->n_tensors;
    json_object_foreach(root, k, v) {
        s = strcmp(k, "__metadata__") == 0 ? parse_metadata(m, sh->path, v, err)
                                           : parse_entry(m, idx, k, v, err);
        if (s) break;
    }
    json_decref(root);
    if (!s && m->n_tensors - first > 1)
        qsort(m->tensors + first, m->n_tensors - first, sizeof *m->tensors, cmp_offset);
    return s;
}

static int cmp_name_ix(const void *a, const void *b) {
    return strcmp(((const st_name_ix *)a)->name, ((const st_name_ix *)b)->name);
}

static hn_status build_index(st_model *m, const char *path, hn_err *err) {
    if (!m->n_tensors) return HN_OK;
    if (!(m->order = malloc(m->n_tensors * sizeof *m->order)))
        return hn_errf(err, HN_ENOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < m->n_tensors; i++) m->order[i] = (st_name_ix){m->tensors[i].name, i};
    qsort(m->order, m->n_tensors, sizeof *m->order, cmp_name_ix);
    for (size_t i = 1; i < m->n_tensors; i++) {
        const st_tensor *a = &m->tensors[m->order[i - 1].idx], *b = &m->tensors[m->order[i].idx];
        if (strcmp(a->name, b->name) == 0)
            return hn_errf(err, HN_EFORMAT, "%s: duplicate tensor '%s' (in %s and %s)", path,
                           a->name, m->shards[a->shard].path, m->shards[b->shard].path);
    }
    return HN_OK;
}

static hn_status add_shard(st_model *m, const char *path, hn_err *err) {
    st_shard *ns = realloc(m->shards, (m->n_shards + 1) * sizeof *ns);
    if (!ns) return hn_errf(err, HN_ENOMEM, "%s: out of memory", path);
    m->shards = ns;
    memset(&ns[m->n_shards], 0, sizeof *ns);
    if (!(ns[m->n_shards].path = strdup(path))) return hn_errf(err, HN_ENOMEM, "%s: out of memory", path);
    m->n_shards++;
    return load_shard(m, (int)m->n_shards - 1, err);
}

/* ---- sharded directories --------------------------------------------------------- */

static bool plain_name(const char *s) {
    return *s && !strchr(s, '/') && !strchr(s, '\\') && !strstr(s, "..");
}

static hn_status load_index_json(const char *ipath, json_t **wm_out, json_t **root_out,
                                 hn_err *err) {
    char *text;
    size_t len;
    json_error_t je;
    hn_status s = hn_file_read(ipath, ST_MAX_HEADER, &text, &len, err);
    if (s) return s;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!root)
        return hn_errf(err, HN_EFORMAT, "%s: not valid JSON at byte %d (line %d, column %d): %s",
                       ipath, je.position, je.line, je.column, je.text);
    json_t *wm = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
    if (!json_is_object(wm)) {
        json_decref(root);
        return hn_errf(err, HN_EFORMAT, "%s: no \"weight_map\" object", ipath);
    }
    *wm_out = wm;
    *root_out = root;
    return HN_OK;
}

/* Validates shard names and collects the distinct ones in `shards` (name -> index). */
static hn_status collect_shards(const char *ipath, json_t *wm, json_t *shards, hn_err *err) {
    const char *k;
    json_t *v;
    json_object_foreach(wm, k, v) {
        const char *f = json_string_value(v);
        if (!f)
            return hn_errf(err, HN_EFORMAT, "%s: weight_map['%s'] is not a string", ipath, k);
        if (!plain_name(f))
            return hn_errf(err, HN_EFORMAT,
                           "%s: weight_map['%s']: shard name '%.200s' is not a plain file name "
                           "(no '/', '\\' or '..' allowed)",
                           ipath, k, f);
        if (!json_object_get(shards, f) &&
            json_object_set_new(shards, f, json_integer((json_int_t)json_object_size(shards))))
            return hn_errf(err, HN_ENOMEM, "%s: out of memory", ipath);
    }
    return HN_OK;
}

static hn_status open_shards(st_model *m, const char *dir, const char *ipath, json_t *shards,
                             hn_err *err) {
    size_t n = json_object_size(shards);
    const char **names = calloc(n ? n : 1, sizeof *names);
    const char *k;
    json_t *v;
    hn_status s = HN_OK;
    if (!names) return hn_errf(err, HN_ENOMEM, "%s: out of memory", ipath);
    json_object_foreach(shards, k, v) names[json_integer_value(v)] = k;
    for (size_t i = 0; i < n && !s; i++) {
        char p[4096];
        if (!hn_path_join(p, sizeof p, dir, names[i]))
            s = hn_errf(err, HN_EINVAL, "%s: shard path too long", ipath);
        else if (!hn_path_exists(p))
            s = hn_errf(err, HN_ENOTFOUND, "%s: shard '%s' listed in the index is missing", ipath,
                        names[i]);
        else
            s = add_shard(m, p, err);
    }
    free(names);
    return s;
}

/* Every weight_map entry must name a tensor that lives in the shard it says. */
static hn_status check_weight_map(st_model *m, const char *ipath, json_t *wm, json_t *shards,
                                  hn_err *err) {
    const char *k;
    json_t *v;
    json_object_foreach(wm, k, v) {
        const st_tensor *t = st_find(m, k);
        json_int_t want = json_integer_value(json_object_get(shards, json_string_value(v)));
        if (!t || t->shard != (int)want)
            return hn_errf(err, HN_EFORMAT, "%s: index says tensor '%s' is in '%s' but it is not there",
                           ipath, k, json_string_value(v));
    }
    return HN_OK;
}

static hn_status open_index(st_model *m, const char *dir, const char *ipath, hn_err *err) {
    json_t *root = NULL, *wm = NULL, *shards = json_object();
    if (!shards) return hn_errf(err, HN_ENOMEM, "%s: out of memory", ipath);
    hn_status s = load_index_json(ipath, &wm, &root, err);
    if (s) {
        json_decref(shards);
        return s;
    }
    if (!(s = collect_shards(ipath, wm, shards, err)) && !(s = open_shards(m, dir, ipath, shards, err)) &&
        !(s = build_index(m, ipath, err)))
        s = check_weight_map(m, ipath, wm, shards, err);
    json_decref(shards);
    json_decref(root);
    return s;
}

static hn_status open_dir(st_model *m, const char *dir, hn_err *err) {
    char p[4096];
    if (!hn_path_join(p, sizeof p, dir, "model.safetensors.index.json"))
        return hn_errf(err, HN_EINVAL, "%s: path too long", dir);
    if (hn_path_exists(p)) return open_index(m, dir, p, err);
    if (!hn_path_join(p, sizeof p, dir, "model.safetensors"))
        return hn_errf(err, HN_EINVAL, "%s: path too long", dir);
    if (!hn_path_exists(p))
        return hn_errf(err, HN_ENOTFOUND,
                       "%s: no model.safetensors or model.safetensors.index.json in this directory", dir);
    hn_status s = add_shard(m, p, err);
    return s ? s : build_index(m, p, err);
}

hn_status st_open(const char *path, st_model **out, hn_err *err) {
    *out = NULL;
    st_model *m = calloc(1, sizeof *m);
    if (!m) return hn_errf(err, HN_ENOMEM, "%s: out of memory", path);
    hn_status s;
    if (hn_path_is_dir(path)) s = open_dir(m, path, err);
    else if (!(s = add_shard(m, path, err))) s = build_index(m, path, err);
    if (s) {
        st_close(m);
        return s;
    }
    *out = m;
    return HN_OK;
}

/* ---- access ------------------------------------------------------------------------ */

size_t st_n_tensors(const st_model *m) { return m->n_tensors; }

const st_tensor *st_tensor_at(const st_model *m, size_t i) {
    return i < m->n_tensors ? &m->tensors[i] : NULL;
}

const st_tensor *st_find(const st_model *m, const char *name) {
    size_t lo = 0, hi = m->n_tensors;
    if (!name || !m->order) return NULL;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const st_tensor *t = &m->tensors[m->order[mid].idx];
        int c = strcmp(name, t->name);
        if (c == 0) return t;
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

const char *st_metadata(const st_model *m, const char *key) {
    for (size_t i = 0; i < m->n_meta; i++)
        if (strcmp(m->meta[i].key, key) == 0) return m->meta[i].val;
    return NULL;
}

size_t st_n_shards(const st_model *m) { return m->n_shards; }

const char *st_shard_path(const st_model *m, int shard) {
    return shard >= 0 && (size_t)shard < m->n_shards ? m->shards[shard].path : NULL;
}

static float elem_to_f32(st_dtype d, const unsigned char *p) {
    union { float f; double d; int64_t i64; int32_t i32; int16_t i16; uint16_t u16; } u;
    switch (d) {
    case ST_F32: memcpy(&u.f, p, 4); return u.f;
    case ST_F16: memcpy(&u.u16, p, 2); return hn_f16_to_f32(u.u16);
    case ST_BF16: memcpy(&u.u16, p, 2); return hn_bf16_to_f32(u.u16);
    case ST_F64: memcpy(&u.d, p, 8); return (float)u.d;
    case ST_I64: memcpy(&u.i64, p, 8); return (float)u.i64;
    case ST_I32: memcpy(&u.i32, p, 4); return (float)u.i32;
    case ST_I16: memcpy(&u.i16, p, 2); return (float)u.i16;
    case ST_I8: return (float)(int8_t)p[0];
    case ST_U8: return (float)p[0];
    case ST_BOOL: return p[0] ? 1.0f : 0.0f;
    }
    return 0.0f;
}

hn_status st_tensor_to_f32(const st_tensor *t, float *dst, hn_err *err) {
    const unsigned char *p = t->data;
    size_t es = st_dtype_size(t->dtype);
    if (!es) return hn_errf(err, HN_EUNSUPPORTED, "tensor '%s': unknown dtype", t->name);
    if (t->dtype == ST_F32) {
        if (t->n_elems) memcpy(dst, p, t->n_elems * 4);
        return HN_OK;
    }
    for (uint64_t i = 0; i < t->n_elems; i++) dst[i] = elem_to_f32(t->dtype, p + i * es);
    return HN_OK;
}
