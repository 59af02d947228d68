/* gguf.h — reader for GGUF v2/v3 files (llama.cpp's weight format).
 *
 * The file is memory-mapped and treated as hostile: every count, length,
 * offset and dimension is validated in gguf_open before anything is used, so
 * the accessors below never read out of bounds. Strings returned point into
 * the map (not NUL-terminated: use the length) and live as long as the file. */
#ifndef HN_GGUF_H
#define HN_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef enum gguf_vtype {
    GGUF_UINT8 = 0, GGUF_INT8 = 1, GGUF_UINT16 = 2, GGUF_INT16 = 3,
    GGUF_UINT32 = 4, GGUF_INT32 = 5, GGUF_FLOAT32 = 6, GGUF_BOOL = 7,
    GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_UINT64 = 10, GGUF_INT64 = 11,
    GGUF_FLOAT64 = 12,
} gguf_vtype;

/* ggml tensor types we know by name; only F32/F16/BF16/Q8_0 are loadable. */
typedef enum gguf_ttype {
    GGUF_T_F32 = 0, GGUF_T_F16 = 1, GGUF_T_Q4_0 = 2, GGUF_T_Q4_1 = 3,
    GGUF_T_Q5_0 = 6, GGUF_T_Q5_1 = 7, GGUF_T_Q8_0 = 8, GGUF_T_Q8_1 = 9,
    GGUF_T_Q2_K = 10, GGUF_T_Q3_K = 11, GGUF_T_Q4_K = 12, GGUF_T_Q5_K = 13,
    GGUF_T_Q6_K = 14, GGUF_T_Q8_K = 15, GGUF_T_BF16 = 30,
} gguf_ttype;

typedef struct gguf_str {
    const char *p;
    uint64_t len;
} gguf_str;

/* An array value: elements of `type` (nested arrays allowed). For fixed-size
 * element types `data` points at n packed little-endian elements. */
typedef struct gguf_arr {
    gguf_vtype type;
    uint64_t n;
    const unsigned char *data;
} gguf_arr;

typedef struct gguf_tensor {
    gguf_str name;
    uint32_t n_dims;
    uint64_t ne[4];     /* ggml order: ne[0] is the fastest-varying (row length) */
    gguf_ttype type;
    uint64_t n_elems;
    uint64_t offset;    /* relative to the data section */
    uint64_t nbytes;
    const void *data;   /* into the map, already bounds-checked */
} gguf_tensor;

typedef struct gguf_file gguf_file;

hn_status gguf_open(const char *path, gguf_file **out, hn_err *err);
void gguf_close(gguf_file *f);

const char *gguf_path(const gguf_file *f);
uint32_t gguf_version(const gguf_file *f);
uint64_t gguf_alignment(const gguf_file *f);

/* Metadata: key count, key name/type by index, and typed getters by key.
 * Getters return HN_ENOTFOUND if the key is absent and HN_EFORMAT (with a
 * message naming the key) if it has an incompatible type. gguf_get_int accepts
 * any integer type, gguf_get_float any integer or float type. */
uint64_t gguf_n_kv(const gguf_file *f);
gguf_str gguf_kv_key(const gguf_file *f, uint64_t i);
gguf_vtype gguf_kv_type(const gguf_file *f, uint64_t i);
int64_t gguf_find_kv(const gguf_file *f, const char *key); /* -1 if absent */
hn_status gguf_get_int(const gguf_file *f, const char *key, int64_t *out, hn_err *err);
hn_status gguf_get_float(const gguf_file *f, const char *key, double *out, hn_err *err);
hn_status gguf_get_bool(const gguf_file *f, const char *key, bool *out, hn_err *err);
hn_status gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, hn_err *err);
hn_status gguf_get_arr(const gguf_file *f, const char *key, gguf_arr *out, hn_err *err);
/* Element access for arrays (bounds-checked; i < a->n). */
gguf_str gguf_arr_str(const gguf_arr *a, uint64_t i);  /* for GGUF_STRING arrays */
double gguf_arr_num(const gguf_arr *a, uint64_t i);    /* for numeric arrays */
gguf_arr gguf_arr_arr(const gguf_arr *a, uint64_t i);  /* for nested arrays */
/* Renders a value for display (hone inspect): numbers, "..." strings, arrays
 * abbreviated as [a, b, c, ... (N items)]. Writes at most cap bytes. */
void gguf_kv_format(const gguf_file *f, uint64_t i, char *out, size_t cap);

uint64_t gguf_n_tensors(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, uint64_t i);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);
const char *gguf_ttype_name(gguf_ttype t); /* "F32", "Q8_0", ..., "type 99" */

/* Dequantises/converts a tensor to n_elems floats (F32, F16, BF16, Q8_0);
 * any other type -> HN_EUNSUPPORTED naming the tensor and its type. */
hn_status gguf_tensor_to_f32(const gguf_file *f, const gguf_tensor *t, float *dst,
                             hn_err *err);

#endif
