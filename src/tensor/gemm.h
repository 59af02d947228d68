/* gemm.h — the one interface every matrix product in hone goes through.
 *
 * Row-major f32: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, where
 * op(X) is X or X^T. Backends are chosen at run time so kernels, tests and
 * benchmarks can swap them (HONE_GEMM=ref|openblas|dnnl|dnnl_bf16, default
 * dnnl when built in, else openblas — both exact f32):
 *   ref        portable loop nest, the oracle the others are tested against
 *   openblas   cblas_sgemm (f32)
 *   dnnl       oneDNN f32 matmul primitives (cached per shape)
 *   dnnl_bf16  oneDNN matmul with A and B rounded to bf16 (f32 accumulation
 *              and f32 output); looser tolerance: each product carries the
 *              bf16 rounding of both inputs (relative 2^-8 of sum |a||b|).
 *              Products with a side under 64 whose B is not a cached weight
 *              run in f32 (the conversion would cost more than it saves).
 * Decode-sized weight products (gemm_xwt_w with at most GEMV_MAX_M rows) skip
 * the libraries on every backend but ref: gemv.c streams W once (f32, or the
 * cached bf16 copy under dnnl_bf16) — they are memory-bound and a library's
 * per-call set-up cost more than the product.
 * The dnnl backends exist only when hone is built with oneDNN
 * (gemm_backend_available); otherwise selecting one falls back to openblas.
 * An f32 product that oneDNN cannot run (primitive creation failed) also
 * falls back to openblas. */
#ifndef HN_GEMM_H
#define HN_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum gemm_backend {
    GEMM_REF = 0,
    GEMM_OPENBLAS = 1,
    GEMM_DNNL = 2,
    GEMM_DNNL_BF16 = 3,
    GEMM_N_BACKENDS
} gemm_backend;

void gemm_f32(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
              int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* Linear layer helpers (the common shapes):
 *   y[T,out] (+)= x[T,in] W[out,in]^T      gemm_xwt
 *   dx[T,in] (+)= dy[T,out] W[out,in]      gemm_xw
 *   dW[out,in] (+)= dy[T,out]^T x[T,in]    gemm_dw                         */
void gemm_xwt(int T, int out, int in, const float *x, const float *W, float *y, bool accumulate);
void gemm_xw(int T, int out, int in, const float *dy, const float *W, float *dx, bool accumulate);
void gemm_dw(int T, int out, int in, const float *dy, const float *x, float *dW, bool accumulate);

/* The same products with a weight W that stays fixed across many calls (a
 * frozen LoRA base, or a full fine-tune's weights between two optimizer
 * steps). With dnnl_bf16, W's bf16 copy is made once and reused while
 * (W, out*in, version) are unchanged: the caller bumps version whenever it
 * writes W (after each optimizer step that updates it). Other backends ignore
 * version. The copies cost 2 bytes per weight element (gemm_weight_cache_bytes).
 * gemm_xwt_w of a weight inside a range marked with gemm_q8_weights_add (an
 * inference model in Q8_0, gemm_q8.h) with in % 32 == 0 runs on W's cached
 * Q8_0 copy instead (1.06 bytes per element), whatever the backend. */
void gemm_xwt_w(int T, int out, int in, const float *x, const float *W, uint64_t version,
                float *y, bool accumulate);
void gemm_xw_w(int T, int out, int in, const float *dy, const float *W, uint64_t version,
               float *dx, bool accumulate);
/* Frees every cached bf16 and Q8_0 weight (call when freeing weights that went
 * through the _w helpers, before their memory can be reused). */
void gemm_weight_cache_clear(void);
size_t gemm_weight_cache_bytes(void);
/* Rounds n floats to bf16 (nearest-even), AVX512_BF16 where available. */
void gemm_round_bf16(uint16_t *dst, const float *src, size_t n);

/* HONE_PROFILE=1: every product is timed by (transposes, M, N, K); the report
 * lists shapes by total time ("w": a cached-weight product). Single-threaded
 * callers only (the training and inference loops). */
void gemm_profile_report(FILE *f);
void gemm_profile_reset(void);

gemm_backend gemm_get_backend(void);
/* Selects a backend for the whole process (not thread-local); an unavailable
 * one resolves to openblas. */
void gemm_set_backend(gemm_backend b);
const char *gemm_backend_name(gemm_backend b);
/* Parses "ref", "openblas", "dnnl", "dnnl_bf16"; GEMM_N_BACKENDS if unknown. */
gemm_backend gemm_backend_parse(const char *name);
bool gemm_backend_available(gemm_backend b);

/* ---- backend internals ---- */

/* gemv.c: y[M,N] (+)= x[M,K] W[N,K]^T for M <= GEMV_MAX_M, W f32 or bf16 (its
 * bits as uint16_t), all packed. Used by gemm_xwt_w for decode-sized products. */
enum { GEMV_MAX_M = 4 };
void gemv_xwt_f32(int M, int N, int K, const float *x, const float *W, float *y, bool acc);
void gemv_xwt_bf16(int M, int N, int K, const float *x, const uint16_t *W, float *y, bool acc);
/* y[M,N] (+)= x[M,K] W[K,N] (W stored in, out: GPT-2's Conv1D). */
void gemv_xw_f32(int M, int N, int K, const float *x, const float *W, float *y, bool acc);
void gemv_xw_bf16(int M, int N, int K, const float *x, const uint16_t *W, float *y, bool acc);

/* gemm_dnnl.c: W's cached bf16 copy at version (made if missing or stale), or
 * NULL without oneDNN or memory. Valid until the cache is cleared or evicts
 * it (single-threaded callers: the next call may evict). */
const uint16_t *gemm_dnnl_weight_bf16(const float *W, size_t n, uint64_t version);


/* Runs the product through oneDNN; false if oneDNN is not built in or could
 * not create a primitive for the shape (the caller then falls back). */
bool gemm_dnnl_run(bool bf16, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb, float beta, float *C,
                   int ldc);
/* As gemm_dnnl_run; with b_cached, B (packed, ldb = its column count) is a
 * weight whose bf16 copy comes from the weight cache at b_version. */
bool gemm_dnnl_run_w(bool bf16, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, uint64_t b_version,
                     bool b_cached, float beta, float *C, int ldc);
bool gemm_dnnl_available(void);
/* The bf16 weight cache alone (gemm_weight_cache_clear/_bytes add the Q8_0 one). */
void gemm_dnnl_cache_clear(void);
size_t gemm_dnnl_cache_bytes(void);
/* Frees cached primitives and scratch (tests, leak checkers). */
void gemm_dnnl_release(void);

#endif
