/* gemm.c — GEMM dispatch (HONE_GEMM / gemm_set_backend), the OpenBLAS
 * backend and the portable reference backend (oneDNN lives in gemm_dnnl.c,
 * Q8_0 weight products in gemm_q8.c).
 * The reference is a straightforward loop nest ordered so the inner loop is
 * contiguous (vectorizable); it is the oracle the faster backends are tested
 * against, not a fast path. */
#include "tensor/gemm.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/gemm_q8.h"

static gemm_backend g_backend = GEMM_N_BACKENDS; /* unset: resolve from env */

static const char *g_names[] = {"ref", "openblas", "dnnl", "dnnl_bf16"};
_Static_assert(sizeof g_names / sizeof g_names[0] == GEMM_N_BACKENDS, "backend names");

gemm_backend gemm_backend_parse(const char *name) {
    for (int i = 0; i < GEMM_N_BACKENDS; i++)
        if (name && !strcmp(name, g_names[i])) return (gemm_backend)i;
    return GEMM_N_BACKENDS;
}

bool gemm_backend_available(gemm_backend b) {
    if (b == GEMM_DNNL || b == GEMM_DNNL_BF16) return gemm_dnnl_available();
    return (unsigned)b < GEMM_N_BACKENDS;
}

/* Default: oneDNN f32 when built in, else OpenBLAS. Both are exact f32;
 * oneDNN runs on libgomp's threads like hone's own kernels (Debian's OpenBLAS
 * is the pthread build: a second pool spinning against the first on 2 vCPUs),
 * is 3-5x faster at LoRA-rank shapes, and a LoRA 4x256 step of the 110M model
 * used ~20% less CPU time with it (docs/bench.md). bf16 stays opt-in: it
 * moves the golden logits by ~0.1 and breaks the bitwise-equivalence tests. */
static gemm_backend resolve_backend(void) {
    gemm_backend b = gemm_backend_parse(getenv("HONE_GEMM"));
    if (b != GEMM_N_BACKENDS && gemm_backend_available(b)) return b;
    return gemm_backend_available(GEMM_DNNL) ? GEMM_DNNL : GEMM_OPENBLAS;
}

gemm_backend gemm_get_backend(void) {
    if (g_backend == GEMM_N_BACKENDS) g_backend = resolve_backend();
    return g_backend;
}

void gemm_set_backend(gemm_backend b) {
    g_backend = gemm_backend_available(b) ? b : GEMM_OPENBLAS;
}

const char *gemm_backend_name(gemm_backend b) {
    return (unsigned)b < GEMM_N_BACKENDS ? g_names[b] : "?";
}

static void gemm_ref(bool ta, bool tb, int M, int N, int K, float alpha, const float *A,
                     int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    #pragma omp parallel for schedule(static) if ((long)M * N * K > 1 << 16)
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f) memset(c, 0, sizeof(float) * N);
        else if (beta != 1.0f) for (int j = 0; j < N; j++) c[j] *= beta;
        for (int k = 0; k < K; k++) {
            float a = alpha * (ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]);
            if (!tb) {
                const float *b = B + (size_t)k * ldb;
                for (int j = 0; j < N; j++) c[j] += a * b[j];
            } else {
                for (int j = 0; j < N; j++) c[j] += a * B[(size_t)j * ldb + k];
            }
        }
    }
}

void gemm_f32(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* C = beta*C */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] *= beta;
        return;
    }
    gemm_backend b = gemm_get_backend();
    if (b == GEMM_REF) {
        gemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if ((b == GEMM_DNNL || b == GEMM_DNNL_BF16) &&
        gemm_dnnl_run(b == GEMM_DNNL_BF16, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))
        return;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* gemm_f32 with B a versioned weight (cached as bf16 by dnnl_bf16). */
static void gemm_f32_w(bool ta, bool tb, int M, int N, int K, const float *A, int lda,
                       const float *B, int ldb, uint64_t version, float beta, float *C, int ldc) {
    if (M > 0 && N > 0 && K > 0 && gemm_get_backend() == GEMM_DNNL_BF16 &&
        gemm_dnnl_run_w(true, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, version, true, beta, C, ldc))
        return;
    gemm_f32(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

void gemm_xwt_w(int T, int out, int in, const float *x, const float *W, uint64_t version,
                float *y, bool acc) {
    if (gemm_q8_xwt_w(T, out, in, x, W, version, y, acc)) return;
    gemm_f32_w(false, true, T, out, in, x, in, W, in, version, acc ? 1.0f : 0.0f, y, out);
}

void gemm_xw_w(int T, int out, int in, const float *dy, const float *W, uint64_t version,
               float *dx, bool acc) {
    gemm_f32_w(false, false, T, in, out, dy, out, W, in, version, acc ? 1.0f : 0.0f, dx, in);
}

void gemm_weight_cache_clear(void) {
    gemm_dnnl_cache_clear();
    gemm_q8_cache_clear();
}

size_t gemm_weight_cache_bytes(void) { return gemm_dnnl_cache_bytes() + gemm_q8_cache_bytes(); }

void gemm_xwt(int T, int out, int in, const float *x, const float *W, float *y, bool acc) {
    gemm_f32(false, true, T, out, in, 1.0f, x, in, W, in, acc ? 1.0f : 0.0f, y, out);
}

void gemm_xw(int T, int out, int in, const float *dy, const float *W, float *dx, bool acc) {
    gemm_f32(false, false, T, in, out, 1.0f, dy, out, W, in, acc ? 1.0f : 0.0f, dx, in);
}

void gemm_dw(int T, int out, int in, const float *dy, const float *x, float *dW, bool acc) {
    gemm_f32(true, false, out, in, T, 1.0f, dy, out, x, in, acc ? 1.0f : 0.0f, dW, in);
}
