/* gemm.h — the one interface every matrix product in hone goes through.
 *
 * Row-major f32: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, where
 * op(X) is X or X^T. Backends are chosen at run time so kernels, tests and
 * benchmarks can swap them (HONE_GEMM=ref|openblas|dnnl|dnnl_bf16, default
 * openblas):
 *   ref        portable loop nest, the oracle the others are tested against
 *   openblas   cblas_sgemm (f32)
 *   dnnl       oneDNN f32 matmul primitives (cached per shape)
 *   dnnl_bf16  oneDNN matmul with A and B rounded to bf16 (f32 accumulation
 *              and f32 output); looser tolerance: each product carries the
 *              bf16 rounding of both inputs (relative 2^-8 of sum |a||b|)
 * The dnnl backends exist only when hone is built with oneDNN
 * (gemm_backend_available); otherwise selecting one falls back to openblas.
 * An f32 product that oneDNN cannot run (primitive creation failed) also
 * falls back to openblas. */
#ifndef HN_GEMM_H
#define HN_GEMM_H

#include <stdbool.h>

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

gemm_backend gemm_get_backend(void);
/* Selects a backend for the whole process (not thread-local); an unavailable
 * one resolves to openblas. */
void gemm_set_backend(gemm_backend b);
const char *gemm_backend_name(gemm_backend b);
/* Parses "ref", "openblas", "dnnl", "dnnl_bf16"; GEMM_N_BACKENDS if unknown. */
gemm_backend gemm_backend_parse(const char *name);
bool gemm_backend_available(gemm_backend b);

/* ---- backend internals (gemm_dnnl.c) ---- */

/* Runs the product through oneDNN; false if oneDNN is not built in or could
 * not create a primitive for the shape (the caller then falls back). */
bool gemm_dnnl_run(bool bf16, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb, float beta, float *C,
                   int ldc);
bool gemm_dnnl_available(void);
/* Frees cached primitives and scratch (tests, leak checkers). */
void gemm_dnnl_release(void);

#endif
