/* gemv.c — y (+)= x·Wᵀ for a handful of rows of x (the decode step's
 * products, M = 1 per sequence). They are memory-bound: each weight byte is
 * used M times, so what matters is streaming W once at full bandwidth with
 * little fixed cost per call — a general GEMM library spends more on
 * dispatch, primitive set-up and packing than the product itself takes at
 * these sizes (oneDNN ran the 768x768 decode GEMV at ~14 GB/s, this at the
 * memory's ~25). Rows of W are split between threads in one OpenMP region;
 * every y element is one thread's fixed-order dot product, so results do not
 * depend on the thread count. W is f32 or a cached bf16 copy (widened to f32
 * in registers: x stays f32, so bf16 here rounds only the weights). */
#include "tensor/gemm.h"

#include <stdlib.h>
#include <string.h>

#include "tensor/simd.h"

#ifdef _OPENMP
#include <omp.h>
#endif

enum { ROWS = 4 }; /* W rows per register block: 4 streams x up to 4 x rows */

static void gemv_c(int M, int N, int K, const float *x, const float *Wf, const uint16_t *Wb,
                   float *y, bool acc) {
    #pragma omp parallel for schedule(static) if ((long)N * K >= 1L << 16)
    for (int i = 0; i < N; i++)
        for (int m = 0; m < M; m++) {
            const float *xm = x + (size_t)m * K;
            float s = 0;
            for (int k = 0; k < K; k++) {
                float w;
                if (Wf) w = Wf[(size_t)i * K + k];
                else {
                    uint32_t u = (uint32_t)Wb[(size_t)i * K + k] << 16;
                    memcpy(&w, &u, 4);
                }
                s += xm[k] * w;
            }
            y[(size_t)m * N + i] = acc ? y[(size_t)m * N + i] + s : s;
        }
}

#ifdef HN_HAVE_AVX512
__attribute__((target("avx512f,avx512bw,avx512vl"))) static inline __m512 load_w(const float *Wf, const uint16_t *Wb, size_t off,
                                      __mmask16 mk) {
    if (Wf) return _mm512_maskz_loadu_ps(mk, Wf + off);
    __m256i h = _mm256_maskz_loadu_epi16(mk, Wb + off);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* y[m, i0 + r] (+)= the lane sum of a[m][r], for m < M, r < nr. Inlined so
 * the accumulators stay in registers. */
__attribute__((target("avx512f"), always_inline)) static inline void
store_sums(__m512 a[4][ROWS], int M, int nr, float *y, int N, int i0, bool acc) {
    #pragma GCC unroll 4
    for (int m = 0; m < 4; m++) {
        if (m >= M) break;
        #pragma GCC unroll 4
        for (int r = 0; r < ROWS; r++) {
            if (r >= nr) break;
            float s = _mm512_reduce_add_ps(a[m][r]);
            float *o = y + (size_t)m * N + i0 + r;
            *o = acc ? *o + s : s;
        }
    }
}

/* Rows i0..i0+nr-1 of W (nr <= ROWS) against the M (<= 4) rows of x. */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void
gemv_block_avx512(int M, int K, int i0, int nr, const float *x, const float *Wf,
                  const uint16_t *Wb, float *y, int N, bool acc) {
    __m512 a[4][ROWS];
    #pragma GCC unroll 4
    for (int m = 0; m < 4; m++)
        #pragma GCC unroll 4
        for (int r = 0; r < ROWS; r++) a[m][r] = _mm512_setzero_ps();
    size_t row[ROWS];
    for (int r = 0; r < ROWS; r++) row[r] = (size_t)(i0 + (r < nr ? r : nr - 1)) * K;
    for (int k = 0; k < K; k += 16) {
        __mmask16 mk = simd_tail16(K - k);
        __m512 w[ROWS];
        #pragma GCC unroll 4
        for (int r = 0; r < ROWS; r++) w[r] = load_w(Wf, Wb, row[r] + k, mk);
        #pragma GCC unroll 4
        for (int m = 0; m < 4; m++) {
            if (m >= M) break;
            __m512 xv = _mm512_maskz_loadu_ps(mk, x + (size_t)m * K + k);
            #pragma GCC unroll 4
            for (int r = 0; r < ROWS; r++) a[m][r] = _mm512_fmadd_ps(xv, w[r], a[m][r]);
        }
    }
    store_sums(a, M, nr, y, N, i0, acc);
}

static void gemv_avx512(int M, int N, int K, const float *x, const float *Wf, const uint16_t *Wb,
                        float *y, bool acc) {
    int nb = (N + ROWS - 1) / ROWS;
    #pragma omp parallel for schedule(static) if ((long)N * K >= 1L << 16)
    for (int b = 0; b < nb; b++) {
        int i0 = b * ROWS, nr = N - i0 < ROWS ? N - i0 : ROWS;
        gemv_block_avx512(M, K, i0, nr, x, Wf, Wb, y, N, acc);
    }
}
#endif

#ifdef HN_HAVE_AVX512
/* bf16 weights on a CPU with AVX512_BF16: x is rounded to bf16 once (as the
 * bf16 GEMM rounds its inputs) and vdpbf16ps takes 32 weights per
 * instruction with no widening. xb: M rows of K2 = K rounded up to 32, zero
 * padded, so the loop runs whole pairs. */
#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
BF16_TARGET static void gemv_block_dpbf16(int M, int K, int K2, int i0, int nr, const uint16_t *xb,
                                          const uint16_t *Wb, float *y, int N, bool acc) {
    __m512 a[4][ROWS];
    #pragma GCC unroll 4
    for (int m = 0; m < 4; m++)
        #pragma GCC unroll 4
        for (int r = 0; r < ROWS; r++) a[m][r] = _mm512_setzero_ps();
    const uint16_t *row[ROWS];
    for (int r = 0; r < ROWS; r++) row[r] = Wb + (size_t)(i0 + (r < nr ? r : nr - 1)) * K;
    for (int k = 0; k < K2; k += 32) {
        __mmask32 mk = K - k >= 32 ? ~(__mmask32)0 : (__mmask32)((1u << (K - k)) - 1);
        __m512bh w[ROWS];
        #pragma GCC unroll 4
        for (int r = 0; r < ROWS; r++) w[r] = (__m512bh)_mm512_maskz_loadu_epi16(mk, row[r] + k);
        #pragma GCC unroll 4
        for (int m = 0; m < 4; m++) {
            if (m >= M) break;
            __m512bh xv = (__m512bh)_mm512_loadu_si512(xb + (size_t)m * K2 + k);
            #pragma GCC unroll 4
            for (int r = 0; r < ROWS; r++) a[m][r] = _mm512_dpbf16_ps(a[m][r], xv, w[r]);
        }
    }
    store_sums(a, M, nr, y, N, i0, acc);
}

static bool gemv_dpbf16(int M, int N, int K, const float *x, const uint16_t *Wb, float *y,
                        bool acc) {
    int K2 = (K + 31) & ~31;
    /* decode-sized x fits on the stack: no allocation per token */
    uint16_t small[GEMV_MAX_M * 2048];
    size_t need = (size_t)M * K2;
    uint16_t *xb = need <= sizeof small / sizeof small[0] ? small : malloc(need * sizeof *xb);
    if (!xb) return false;
    memset(xb, 0, need * sizeof *xb);
    for (int m = 0; m < M; m++) gemm_round_bf16(xb + (size_t)m * K2, x + (size_t)m * K, (size_t)K);
    int nb = (N + ROWS - 1) / ROWS;
    #pragma omp parallel for schedule(static) if ((long)N * K >= 1L << 16)
    for (int b = 0; b < nb; b++) {
        int i0 = b * ROWS, nr = N - i0 < ROWS ? N - i0 : ROWS;
        gemv_block_dpbf16(M, K, K2, i0, nr, xb, Wb, y, N, acc);
    }
    if (xb != small) free(xb);
    return true;
}
#endif

/* ---- y (+)= x·W with W stored (K, N): GPT-2's Conv1D layout ----
 * Each thread owns a contiguous range of columns and walks the rows of W once
 * (k outer), accumulating a sub-block of up to XW_COLS columns in an L1-sized
 * buffer: every row segment it reads is contiguous, and every y element is a
 * sum in k order, so results do not depend on the thread count. (Walking all
 * rows once per 64-column block instead read W in 256-byte pieces with a
 * row-sized stride and ran at half the bandwidth.) */
enum { XW_COLS = 512 };

static void gemv_xw_c(int M, int N, int K, int j0, int j1, const float *x, const float *Wf,
                      const uint16_t *Wb, float *acc_buf) {
    int n = j1 - j0;
    for (int k = 0; k < K; k++)
        for (int m = 0; m < M; m++) {
            float a = x[(size_t)m * K + k], *s = acc_buf + (size_t)m * XW_COLS;
            for (int j = 0; j < n; j++) {
                float w;
                if (Wf) w = Wf[(size_t)k * N + j0 + j];
                else {
                    uint32_t u = (uint32_t)Wb[(size_t)k * N + j0 + j] << 16;
                    memcpy(&w, &u, 4);
                }
                s[j] += a * w;
            }
        }
}

#ifdef HN_HAVE_AVX512
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void
gemv_xw_avx512(int M, int N, int K, int j0, int j1, const float *x, const float *Wf,
               const uint16_t *Wb, float *acc_buf) {
    int n = j1 - j0;
    for (int k = 0; k < K; k++) {
        size_t row = (size_t)k * N + j0;
        for (int j = 0; j < n; j += 16) {
            __mmask16 mk = simd_tail16(n - j);
            __m512 w = load_w(Wf, Wb, row + j, mk);
            for (int m = 0; m < M; m++) {
                float *s = acc_buf + (size_t)m * XW_COLS + j;
                __m512 xv = _mm512_set1_ps(x[(size_t)m * K + k]);
                _mm512_mask_storeu_ps(s, mk, _mm512_fmadd_ps(xv, w, _mm512_maskz_loadu_ps(mk, s)));
            }
        }
    }
}
#endif

static void gemv_xw_run(int M, int N, int K, const float *x, const float *Wf, const uint16_t *Wb,
                        float *y, bool acc) {
#ifdef HN_HAVE_AVX512
    const bool vec = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#endif
    #pragma omp parallel if ((long)N * K >= 1L << 16)
    {
        int nth = 1, id = 0;
#ifdef _OPENMP
        nth = omp_get_num_threads(), id = omp_get_thread_num();
#endif
        int per = ((N + nth - 1) / nth + 15) & ~15; /* columns per thread, whole vectors */
        int c0 = id * per, c1 = c0 + per < N ? c0 + per : N;
        float buf[4 * XW_COLS];
        for (int j0 = c0; j0 < c1; j0 += XW_COLS) {
            int j1 = j0 + XW_COLS < c1 ? j0 + XW_COLS : c1;
            memset(buf, 0, sizeof buf);
#ifdef HN_HAVE_AVX512
            if (vec) gemv_xw_avx512(M, N, K, j0, j1, x, Wf, Wb, buf);
            else
#endif
                gemv_xw_c(M, N, K, j0, j1, x, Wf, Wb, buf);
            for (int m = 0; m < M; m++)
                for (int j = j0; j < j1; j++) {
                    float *o = y + (size_t)m * N + j;
                    *o = acc ? *o + buf[(size_t)m * XW_COLS + j - j0] : buf[(size_t)m * XW_COLS + j - j0];
                }
        }
    }
}

void gemv_xw_f32(int M, int N, int K, const float *x, const float *W, float *y, bool acc) {
    gemv_xw_run(M, N, K, x, W, NULL, y, acc);
}

void gemv_xw_bf16(int M, int N, int K, const float *x, const uint16_t *W, float *y, bool acc) {
    gemv_xw_run(M, N, K, x, NULL, W, y, acc);
}

static void gemv_run(int M, int N, int K, const float *x, const float *Wf, const uint16_t *Wb,
                     float *y, bool acc) {
#ifdef HN_HAVE_AVX512
    if (Wb && __builtin_cpu_supports("avx512bf16") && gemv_dpbf16(M, N, K, x, Wb, y, acc)) return;
    if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
        gemv_avx512(M, N, K, x, Wf, Wb, y, acc);
        return;
    }
#endif
    gemv_c(M, N, K, x, Wf, Wb, y, acc);
}

void gemv_xwt_f32(int M, int N, int K, const float *x, const float *W, float *y, bool acc) {
    gemv_run(M, N, K, x, W, NULL, y, acc);
}

void gemv_xwt_bf16(int M, int N, int K, const float *x, const uint16_t *W, float *y, bool acc) {
    gemv_run(M, N, K, x, NULL, W, y, acc);
}
