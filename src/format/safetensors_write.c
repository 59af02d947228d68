/* safetensors_write.c — st_write: validates the tensor list, builds the JSON
 * header (__metadata__ first, then tensors in the order given, contiguous
 * offsets), pads it with spaces to a multiple of 8 and writes the file
 * atomically without copying tensor data. */
#include "format/safetensors.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"

static hn_status check_wtensor(const char *path, const st_wtensor *t, uint64_t *nbytes,
                               hn_err *err) {
    if (!t->name || !*t->name || strcmp(t->name, "__metadata__") == 0)
        return hn_errf(err, HN_EINVAL, "%s: invalid tensor name '%s'", path, t->name ? t->name : "");
    size_t es = st_dtype_size(t->dtype);
    if (!es) return hn_errf(err, HN_EINVAL, "%s: tensor '%s': invalid dtype", path, t->name);
    if (t->n_dims < 0 || t->n_dims > ST_MAX_DIMS)
        return hn_errf(err, HN_EINVAL, "%s: tensor '%s': n_dims %d not in 0..%d", path, t->name,
                       t->n_dims, ST_MAX_DIMS);
    uint64_t n = es;
    for (int d = 0; d < t->n_dims; d++)
        if (t->shape[d] < 0 || __builtin_mul_overflow(n, (uint64_t)t->shape[d], &n))
            return hn_errf(err, HN_EINVAL, "%s: tensor '%s': bad shape[%d]=%lld", path, t->name, d,
                           (long long)t->shape[d]);
    if (n && !t->data) return hn_errf(err, HN_EINVAL, "%s: tensor '%s': no data", path, t->name);
    *nbytes = n;
    return HN_OK;
}

static json_t *entry_json(const st_wtensor *t, uint64_t begin, uint64_t end) {
    json_t *shape = json_array();
    for (int d = 0; shape && d < t->n_dims; d++)
        if (json_array_append_new(shape, json_integer(t->shape[d]))) {
            json_decref(shape);
            return NULL;
        }
    if (!shape) return NULL;
    return json_pack("{s:s, s:o, s:[I, I]}", "dtype", st_dtype_name(t->dtype), "shape", shape,
                     "data_offsets", (json_int_t)begin, (json_int_t)end);
}

static hn_status add_meta(json_t *root, const char *path, const char *const *meta, hn_err *err) {
    json_t *md = json_object();
    if (!md || json_object_set_new(root, "__metadata__", md))
        return hn_errf(err, HN_ENOMEM, "%s: out of memory", path);
    for (size_t i = 0; meta[i]; i += 2) {
        if (!meta[i + 1])
            return hn_errf(err, HN_EINVAL, "%s: metadata key '%s' has no value", path, meta[i]);
        if (json_object_set_new(md, meta[i], json_string(meta[i + 1])))
            return hn_errf(err, HN_EINVAL, "%s: metadata '%s' is not valid UTF-8", path, meta[i]);
    }
    return HN_OK;
}

/* Builds the header object and the per-tensor byte sizes. */
static hn_status build_header(const char *path, const st_wtensor *ts, size_t n,
                              const char *const *meta, json_t *root, size_t *sizes,
                              hn_err *err) {
    hn_status s = meta ? add_meta(root, path, meta, err) : HN_OK;
    uint64_t off = 0, nb = 0;
    for (size_t i = 0; i < n && !s; i++) {
        if ((s = check_wtensor(path, &ts[i], &nb, err))) break;
        if (json_object_get(root, ts[i].name))
            return hn_errf(err, HN_EINVAL, "%s: duplicate tensor '%s'", path, ts[i].name);
        if (__builtin_add_overflow(off, nb, &off) || off > (uint64_t)INT64_MAX)
            return hn_errf(err, HN_EINVAL, "%s: total size overflows", path);
        json_t *e = entry_json(&ts[i], off - nb, off);
        if (!e || json_object_set_new(root, ts[i].name, e))
            return hn_errf(err, HN_EINVAL, "%s: tensor '%s': cannot encode (bad UTF-8 name?)",
                           path, ts[i].name);
        sizes[i] = (size_t)nb;
    }
    return s;
}

static hn_status write_parts(const char *path, const st_wtensor *ts, size_t n, const char *hdr,
                             const size_t *sizes, hn_err *err) {
    size_t hlen = strlen(hdr), padded = (hlen + 7) / 8 * 8;
    char *h = malloc(padded ? padded : 1);
    const void **parts = calloc(n + 2, sizeof *parts);
    size_t *lens = calloc(n + 2, sizeof *lens);
    unsigned char len8[8];
    hn_status s;
    if (!h || !parts || !lens || n + 2 > (size_t)INT32_MAX) {
        s = hn_errf(err, HN_ENOMEM, "%s: out of memory", path);
    } else {
        memcpy(h, hdr, hlen);
        memset(h + hlen, ' ', padded - hlen);
        for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
        parts[0] = len8, lens[0] = 8;
        parts[1] = h, lens[1] = padded;
        for (size_t i = 0; i < n; i++) parts[2 + i] = ts[i].data, lens[2 + i] = sizes[i];
        s = hn_file_write_atomic(path, parts, lens, (int)(n + 2), err);
    }
    free(h);
    free(parts);
    free(lens);
    return s;
}

hn_status st_write(const char *path, const st_wtensor *tensors, size_t n,
                   const char *const *meta, hn_err *err) {
    json_t *root = json_object();
    size_t *sizes = calloc(n ? n : 1, sizeof *sizes);
    char *hdr = NULL;
    hn_status s;
    if (!root || !sizes) s = hn_errf(err, HN_ENOMEM, "%s: out of memory", path);
    else if (!(s = build_header(path, tensors, n, meta, root, sizes, err))) {
        hdr = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
        s = hdr ? write_parts(path, tensors, n, hdr, sizes, err)
                : hn_errf(err, HN_ENOMEM, "%s: cannot encode header", path);
    }
    free(hdr);
    free(sizes);
    json_decref(root);
    return s;
}
