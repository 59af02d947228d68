/* gemm.h — the one interface every matrix product in hone goes through.
 *
 * Row-major f32: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, where
 * op(X) is X or X^T. Backends are chosen at run time (HONE_GEMM=ref|openblas,
 * default openblas) so kernels, tests and benchmarks can swap them. */
#ifndef HN_GEMM_H
#define HN_GEMM_H

#include <stdbool.h>

typedef enum gemm_backend { GEMM_REF = 0, GEMM_OPENBLAS = 1, GEMM_N_BACKENDS } gemm_backend;

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
void gemm_set_backend(gemm_backend b);
const char *gemm_backend_name(gemm_backend b);

#endif
