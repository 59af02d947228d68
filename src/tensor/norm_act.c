/* norm_act.c — LayerNorm, GELU-tanh and bias kernels (see norm_act.h),
 * threaded by rows (or by columns for sums over rows), every element in a
 * fixed order whatever the thread count.
 * Row statistics are accumulated in double: the golden tests compare with a
 * float64 reference and LayerNorm's mean subtraction is where f32 sums of
 * large-mean rows lose digits. */
#include "tensor/norm_act.h"

#include <math.h>
#include <stddef.h>

#include "tensor/simd.h"

enum { PAR_MIN = 1 << 15 }; /* elements below which a parallel region costs more than it saves */

void layernorm_forward(float *out, float *mean, float *rstd, const float *x, const float *w,
                       const float *b, int T, int C, float eps) {
    #pragma omp parallel for if ((long)T * C > 32768)
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * C;
        double s = 0, ss = 0;
        for (int i = 0; i < C; i++) s += xr[i];
        double mu = s / C;
        for (int i = 0; i < C; i++) {
            double d = xr[i] - mu;
            ss += d * d;
        }
        float r = (float)(1.0 / sqrt(ss / C + eps)), m = (float)mu;
        float *o = out + (size_t)t * C;
        for (int i = 0; i < C; i++) o[i] = (xr[i] - m) * r * w[i] + b[i];
        if (mean) mean[t] = m;
        if (rstd) rstd[t] = r;
    }
}

/* Rows are independent for dx; dw and db are sums over rows, so a second
 * loop splits them by columns and each thread owns its sums (the same order
 * for any thread count). */
void layernorm_backward(float *dx, float *dw, float *db, const float *dout, const float *x,
                        const float *w, const float *mean, const float *rstd, int T, int C) {
    #pragma omp parallel if ((long)T * C > PAR_MIN)
    {
        #pragma omp for schedule(static)
        for (int t = 0; t < T; t++) {
            const float *xr = x + (size_t)t * C, *g = dout + (size_t)t * C;
            float m = mean[t], r = rstd[t];
            /* dxhat = g * w; dx = r * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) */
            double s1 = 0, s2 = 0;
            #pragma omp simd reduction(+ : s1, s2)
            for (int i = 0; i < C; i++) {
                float xh = (xr[i] - m) * r, dxh = g[i] * w[i];
                s1 += dxh;
                s2 += dxh * xh;
            }
            float a = (float)(s1 / C), c = (float)(s2 / C);
            float *d = dx + (size_t)t * C;
            for (int i = 0; i < C; i++) {
                float xh = (xr[i] - m) * r;
                d[i] += r * (g[i] * w[i] - a - xh * c);
            }
        }
        if (dw || db) {
            #pragma omp for schedule(static)
            for (int i0 = 0; i0 < C; i0 += 64) {
                int i1 = i0 + 64 < C ? i0 + 64 : C;
                for (int t = 0; t < T; t++) {
                    const float *xr = x + (size_t)t * C, *g = dout + (size_t)t * C;
                    float m = mean[t], r = rstd[t];
                    if (dw)
                        for (int i = i0; i < i1; i++) dw[i] += g[i] * ((xr[i] - m) * r);
                    if (db)
                        for (int i = i0; i < i1; i++) db[i] += g[i];
                }
            }
        }
    }
}

static const float GELU_K = 0.7978845608028654f; /* sqrt(2/pi) */

/* GELU is bound by tanh: the portable loops call libm's tanhf per element,
 * the AVX-512 ones compute tanh(y) = sign(y) (1 - 2 / (exp(2|y|) + 1)) with
 * simd_exp512 (absolute error ~1e-7, the same as tanhf's where it matters:
 * GELU multiplies it by x/2). Chunks of GELU_CHUNK per thread. */
enum { GELU_CHUNK = 1 << 14 };

static void gelu_forward_c(float *h, const float *u, long n) {
    for (long i = 0; i < n; i++) {
        float x = u[i];
        h[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + 0.044715f * x * x * x)));
    }
}

static void gelu_backward_c(float *du, const float *dh, const float *u, long n) {
    for (long i = 0; i < n; i++) {
        float x = u[i];
        float th = tanhf(GELU_K * (x + 0.044715f * x * x * x));
        float dth = GELU_K * (1.0f + 3.0f * 0.044715f * x * x) * (1.0f - th * th);
        du[i] = dh[i] * (0.5f * (1.0f + th) + 0.5f * x * dth);
    }
}

#ifdef HN_HAVE_AVX512
HN_AVX512 static inline __m512 gelu_tanh512(__m512 x) {
    __m512 y = _mm512_mul_ps(_mm512_set1_ps(GELU_K),
                             _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(0.044715f), x),
                                             _mm512_mul_ps(x, x), x));
    __m512 ay = _mm512_abs_ps(y);
    __m512 e = simd_exp512(_mm512_add_ps(ay, ay));
    __m512 t = _mm512_sub_ps(_mm512_set1_ps(1.0f),
                             _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
    /* copy y's sign onto t */
    return _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_castps_si512(t),
        _mm512_and_si512(_mm512_castps_si512(y), _mm512_set1_epi32((int)0x80000000u))));
}

HN_AVX512 static void gelu_forward_avx512(float *h, const float *u, long n) {
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
    for (long i = 0; i < n; i += 16) {
        __mmask16 m = simd_tail16((int)(n - i < 16 ? n - i : 16));
        __m512 x = _mm512_maskz_loadu_ps(m, u + i);
        __m512 th = gelu_tanh512(x);
        _mm512_mask_storeu_ps(h + i, m, _mm512_mul_ps(_mm512_mul_ps(half, x), _mm512_add_ps(one, th)));
    }
}

HN_AVX512 static void gelu_backward_avx512(float *du, const float *dh, const float *u, long n) {
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f),
                 k3 = _mm512_set1_ps(3.0f * 0.044715f), gk = _mm512_set1_ps(GELU_K);
    for (long i = 0; i < n; i += 16) {
        __mmask16 m = simd_tail16((int)(n - i < 16 ? n - i : 16));
        __m512 x = _mm512_maskz_loadu_ps(m, u + i);
        __m512 th = gelu_tanh512(x);
        __m512 dth = _mm512_mul_ps(_mm512_mul_ps(gk, _mm512_fmadd_ps(k3, _mm512_mul_ps(x, x), one)),
                                   _mm512_fnmadd_ps(th, th, one));
        __m512 d = _mm512_fmadd_ps(_mm512_mul_ps(half, x), dth, _mm512_mul_ps(half, _mm512_add_ps(one, th)));
        _mm512_mask_storeu_ps(du + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dh + i), d));
    }
}
#endif

void gelu_forward(float *h, const float *u, long N) {
    const long nc = (N + GELU_CHUNK - 1) / GELU_CHUNK;
    const int vec = simd_have_avx512();
    #pragma omp parallel for schedule(static) if (nc > 4)
    for (long c = 0; c < nc; c++) {
        long i = c * GELU_CHUNK, n = N - i < GELU_CHUNK ? N - i : GELU_CHUNK;
#ifdef HN_HAVE_AVX512
        if (vec) {
            gelu_forward_avx512(h + i, u + i, n);
            continue;
        }
#endif
        (void)vec;
        gelu_forward_c(h + i, u + i, n);
    }
}

void gelu_backward(float *du, const float *dh, const float *u, long N) {
    const long nc = (N + GELU_CHUNK - 1) / GELU_CHUNK;
    const int vec = simd_have_avx512();
    #pragma omp parallel for schedule(static) if (nc > 4)
    for (long c = 0; c < nc; c++) {
        long i = c * GELU_CHUNK, n = N - i < GELU_CHUNK ? N - i : GELU_CHUNK;
#ifdef HN_HAVE_AVX512
        if (vec) {
            gelu_backward_avx512(du + i, dh + i, u + i, n);
            continue;
        }
#endif
        (void)vec;
        gelu_backward_c(du + i, dh + i, u + i, n);
    }
}

void bias_forward(float *y, const float *b, int T, int C) {
    #pragma omp parallel for schedule(static) if ((long)T * C > PAR_MIN)
    for (int t = 0; t < T; t++) {
        float *r = y + (size_t)t * C;
        #pragma omp simd
        for (int i = 0; i < C; i++) r[i] += b[i];
    }
}

/* A sum over rows: split by columns (each thread owns its sums). */
void bias_backward(float *db, const float *dy, int T, int C) {
    #pragma omp parallel for schedule(static) if ((long)T * C > PAR_MIN)
    for (int i0 = 0; i0 < C; i0 += 64) {
        int i1 = i0 + 64 < C ? i0 + 64 : C;
        for (int t = 0; t < T; t++) {
            const float *r = dy + (size_t)t * C;
            for (int i = i0; i < i1; i++) db[i] += r[i];
        }
    }
}
