/* gemm_q8.h — Q8_0 weight products for inference: y (+)= x · Wᵀ with W held
 * in ggml's Q8_0 format and x quantized on the fly, as llama.cpp computes its
 * q8_0 × q8_0 dot products.
 *
 * Q8_0 (ggml, llama.cpp, GGUF type 8): a row of W in blocks of 32 values, each
 * block one scale d = max|w|/127 (stored as f16) and 32 int8 q = round(w/d),
 * w ≈ d·q. Activations get the same treatment per row and block of 32, with
 * the scale kept in f32 (llama.cpp rounds it to f16; f32 costs nothing here
 * and loses less). A block's int8 × int8 dot product is an exact int32; it is
 * scaled by d_w·d_x into an f32 accumulator.
 *
 * Matrices: a gemm_q8_mat holds W's rows with the quants of a row contiguous
 * and, separately, the row's f16 scales, so the kernels load whole cache lines
 * of quants and one vector of 16 scales per 16 blocks. The quants are stored
 * offset by 128 (u = q + 128, a byte in 1..255): that is what lets VNNI's
 * vpdpbusd (unsigned × signed bytes) take the weights as its unsigned operand
 * with the activation as the signed one; the offset adds 128·Σx per block,
 * which depends on the activations only and is subtracted once per call
 * rather than once per weight (gemm_q8.c).
 *
 * Weights reach these kernels through gemm_xwt_w: a weight that lies in a
 * range registered with gemm_q8_weights_add gets a cached Q8_0 copy, made once
 * per (pointer, size, version) and freed by gemm_weight_cache_clear
 * (gemm_q8_cache.c). Products whose in (K) is not a multiple of 32 stay on the
 * GEMM backend. */
#ifndef HN_GEMM_Q8_H
#define HN_GEMM_Q8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { GEMM_Q8_BLOCK = 32 };

/* A Q8_0 matrix of rows × cols (cols % 32 == 0): u[rows*cols] quants + 128,
 * d[rows*cols/32] f16 scales (IEEE half bits), both row-major. */
typedef struct gemm_q8_mat {
    int rows, cols;
    const uint8_t *u;
    const uint16_t *d;
} gemm_q8_mat;

/* Q8_0-quantizes n floats (n % 32 == 0) into n/32 f16 scales and n int8
 * quants: ggml's quantize_row_q8_0_ref exactly (d = max|x|/127 rounded to f16,
 * q = round(x·(1/d)) with the unrounded d, clamped to ±127; an all-zero block
 * has d = 0, q = 0). gguf_quantize_q8_0 writes these into 34-byte blocks, so a
 * Q8_0 GGUF's dequantized values quantize back to the file's own blocks. */
void gemm_q8_quantize(const float *x, size_t n, uint16_t *d, int8_t *q);

/* y[M, W.rows] (+)= x[M, W.cols] · Wᵀ, x row-major with leading dimension
 * W.cols, y with leading dimension W.rows. The fastest kernel this CPU runs
 * (AVX512-VNNI, else the portable one); threaded over W's rows with OpenMP
 * when the product is big enough. M from 1 (decode) up; rows of x are taken
 * 4 at a time against each weight tile so a loaded weight block serves them
 * all. False (y untouched) only when out of memory for the quantized x. */
bool gemm_q8_xwt(int M, const float *x, const gemm_q8_mat *W, float *y, bool accumulate);
/* The same in portable C, the oracle: the same activation quantization and
 * int32 block sums, f32 accumulation block after block. */
bool gemm_q8_xwt_ref(int M, const float *x, const gemm_q8_mat *W, float *y, bool accumulate);
/* "avx512vnni" or "scalar": the kernel gemm_q8_xwt runs on this CPU. */
const char *gemm_q8_kernel_name(void);

/* ---- the weight cache (gemm_q8_cache.c) ---- */

/* Marks the n floats at base as weights to compute in Q8_0 when they pass
 * through gemm_xwt_w (a model's parameter slab: model_set_q8_0). Up to 64
 * ranges; false when full. Removing forgets the range starting at base (its
 * cached copies go with the next gemm_weight_cache_clear). */
bool gemm_q8_weights_add(const float *base, size_t n);
void gemm_q8_weights_remove(const float *base);
/* gemm_xwt_w's Q8_0 path: when W (out × in, in % 32 == 0) lies in a
 * registered range, computes y with W's cached Q8_0 copy (quantized now if
 * missing or if version changed) and returns true; otherwise false and the
 * caller runs the f32 product. */
bool gemm_q8_xwt_w(int T, int out, int in, const float *x, const float *W, uint64_t version,
                   float *y, bool accumulate);
/* W's cached copy as GGUF Q8_0 blocks (34 bytes per 32 values: f16 d, int8 q),
 * made if missing: n_blocks*34 bytes into dst. False if W is not in a
 * registered range or in % 32 != 0. (Tests: a Q8_0 GGUF's own bytes.) */
bool gemm_q8_cached_blocks(const float *W, int out, int in, uint64_t version, void *dst);
void gemm_q8_cache_clear(void);
size_t gemm_q8_cache_bytes(void);

#endif
