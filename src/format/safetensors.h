/* safetensors.h — reader and writer for Hugging Face safetensors.
 *
 * A st_model is a set of one or more memory-mapped shards: a single
 * .safetensors file, or a directory holding model.safetensors or
 * model.safetensors.index.json (+ its shards). Headers are treated as hostile:
 * the JSON must be an object, every dtype/shape/offset is validated against
 * the file size and shape product before st_open returns. */
#ifndef HN_SAFETENSORS_H
#define HN_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef enum st_dtype {
    ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL,
} st_dtype;

#define ST_MAX_DIMS 8

typedef struct st_tensor {
    const char *name;  /* NUL-terminated, owned by the st_model */
    st_dtype dtype;
    int n_dims;
    int64_t shape[ST_MAX_DIMS];
    uint64_t n_elems;
    uint64_t nbytes;
    const void *data;  /* into the shard's map */
    int shard;         /* index of the file it lives in */
} st_tensor;

typedef struct st_model st_model;

/* path: a .safetensors file or a directory (see above). */
hn_status st_open(const char *path, st_model **out, hn_err *err);
void st_close(st_model *m);

size_t st_n_tensors(const st_model *m);
const st_tensor *st_tensor_at(const st_model *m, size_t i);
const st_tensor *st_find(const st_model *m, const char *name);
/* The __metadata__ string value for key, or NULL. */
const char *st_metadata(const st_model *m, const char *key);
const char *st_dtype_name(st_dtype d);
size_t st_dtype_size(st_dtype d);

/* Converts F32/F16/BF16/F64 (and integer dtypes) into n_elems floats. */
hn_status st_tensor_to_f32(const st_tensor *t, float *dst, hn_err *err);

/* Writing: tensors are described by name/dtype/shape/data; the file is
 * written atomically (temp, fsync, rename). `meta` is NULL or a NULL-terminated
 * list of key,value string pairs stored in __metadata__. Tensors are laid out
 * in the order given, 8-byte aligned header as the format requires. */
typedef struct st_wtensor {
    const char *name;
    st_dtype dtype;
    int n_dims;
    int64_t shape[ST_MAX_DIMS];
    const void *data; /* n_elems * dtype size bytes */
} st_wtensor;

hn_status st_write(const char *path, const st_wtensor *tensors, size_t n,
                   const char *const *meta, hn_err *err);

/* --- additions --- */
/* Parses a dtype name ("F32", ...); false for names hone does not load. */
bool st_dtype_parse(const char *s, st_dtype *out);
/* Shard files: count and path of shard i (st_tensor.shard), NULL if out of range. */
size_t st_n_shards(const st_model *m);
const char *st_shard_path(const st_model *m, int shard);

#endif
