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
    /* further ggml types, known by size only (so files can be inspected) */
    GGUF_T_IQ2_XXS = 16, GGUF_T_IQ2_XS = 17, GGUF_T_IQ3_XXS = 18, GGUF_T_IQ1_S = 19,
    GGUF_T_IQ4_NL = 20, GGUF_T_IQ3_S = 21, GGUF_T_IQ2_S = 22, GGUF_T_IQ4_XS = 23,
    GGUF_T_I8 = 24, GGUF_T_I16 = 25, GGUF_T_I32 = 26, GGUF_T_I64 = 27, GGUF_T_F64 = 28,
    GGUF_T_IQ1_M = 29, GGUF_T_TQ1_0 = 34, GGUF_T_TQ2_0 = 35, GGUF_T_MXFP4 = 39,
} gguf_ttype;

typedef struct gguf_str {
    const char *p;
    uint64_t len;
} gguf_str;

/* An array value: elements of `type` (nested arrays allowed). For fixed-size
 * element types `data` points at n packed little-endian elements. For string
 * and array elements `data` points at a table (owned by the gguf_file) of n
 * gguf_str / gguf_arr built by gguf_open, so gguf_arr_str and gguf_arr_arr are
 * O(1). */
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

/* --- additions ---------------------------------------------------------- */

const char *gguf_vtype_name(gguf_vtype t); /* "u32", "string", "array", ... */
/* Absolute file offset where the (aligned) tensor data section starts. */
uint64_t gguf_data_offset(const gguf_file *f);
/* Block geometry of a tensor type: elements per block and bytes per block.
 * False for a type id hone does not know. */
bool gguf_ttype_size(gguf_ttype t, uint64_t *block_elems, uint64_t *block_bytes);
/* Bytes of a tensor with element count n_elems (a multiple of the block size);
 * false on unknown type, bad multiple or overflow. */
bool gguf_ttype_nbytes(gguf_ttype t, uint64_t n_elems, uint64_t *out);
/* Q8_0 quantisation: n (a multiple of 32) floats into n/32 blocks of 34 bytes
 * (f16 scale d, 32 int8 q; x ~= d*q). */
void gguf_quantize_q8_0(const float *src, void *dst, size_t n);

/* --- writer --------------------------------------------------------------
 * Builds a GGUF v3 file in memory (metadata copied, tensor data referenced:
 * it must stay valid until gguf_writer_write) and writes it atomically.
 * Alignment is 32 unless a valid general.alignment (u32) was set. Setting a
 * key twice replaces its value. Setters return HN_ENOMEM on allocation
 * failure; the failure is also sticky and reported by gguf_writer_write. */
typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_create(void); /* NULL when out of memory */
void gguf_writer_free(gguf_writer *w);

hn_status gguf_writer_set_u8(gguf_writer *w, const char *key, uint8_t v);
hn_status gguf_writer_set_i8(gguf_writer *w, const char *key, int8_t v);
hn_status gguf_writer_set_u16(gguf_writer *w, const char *key, uint16_t v);
hn_status gguf_writer_set_i16(gguf_writer *w, const char *key, int16_t v);
hn_status gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
hn_status gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
hn_status gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
hn_status gguf_writer_set_i64(gguf_writer *w, const char *key, int64_t v);
hn_status gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
hn_status gguf_writer_set_f64(gguf_writer *w, const char *key, double v);
hn_status gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
hn_status gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
/* Array of a fixed-size numeric/bool type: n host-order elements at data. */
hn_status gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_vtype elem_type,
                              const void *data, uint64_t n);
hn_status gguf_writer_set_arr_str(gguf_writer *w, const char *key,
                                  const char *const *v, uint64_t n);
hn_status gguf_writer_set_arr_i32(gguf_writer *w, const char *key, const int32_t *v,
                                  uint64_t n);
hn_status gguf_writer_set_arr_f32(gguf_writer *w, const char *key, const float *v,
                                  uint64_t n);
/* Any value, already encoded as GGUF value bytes (e.g. nested arrays:
 * u32 elem type, u64 n, elements). Not validated. */
hn_status gguf_writer_set_raw(gguf_writer *w, const char *key, gguf_vtype type,
                              const void *bytes, size_t n);
/* ne in ggml order (ne[0] = row length); nbytes must match type and shape. */
hn_status gguf_writer_add_tensor(gguf_writer *w, const char *name, gguf_ttype type,
                                 uint32_t n_dims, const uint64_t *ne, const void *data,
                                 uint64_t nbytes, hn_err *err);
hn_status gguf_writer_write(const gguf_writer *w, const char *path, hn_err *err);

#endif
