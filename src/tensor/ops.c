/* ops.c — CPU kernels for the transformer layers (attention lives in attention.c).
 * Loops are written so their inner dimension is contiguous and vectorizable;
 * threading is by OpenMP over independent rows/elements, one region per call,
 * skipped for small inputs. SwiGLU and cross-entropy, which are bound by exp,
 * have AVX-512 paths with simd_exp512 (simd.h); the portable loops use libm.
 * Every output element is computed by one thread in a fixed order, so results
 * do not depend on the thread count. */
#include "tensor/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/simd.h"

enum { PAR_MIN = 1 << 15 }; /* elements below which a parallel region costs more than it saves */

void rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int T, int C,
                     float eps) {
    #pragma omp parallel for schedule(static) if ((long)T * C > PAR_MIN)
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * C;
        float *ot = out + (size_t)t * C;
        double ss = 0;
        #pragma omp simd reduction(+ : ss)
        for (int i = 0; i < C; i++) ss += (double)xt[i] * xt[i];
        float r = 1.0f / sqrtf((float)(ss / C) + eps);
        if (rstd) rstd[t] = r;
        for (int i = 0; i < C; i++) ot[i] = xt[i] * r * w[i];
    }
}

void rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                      const float *rstd, int T, int C) {
    #pragma omp parallel if ((long)T * C > PAR_MIN)
    {
        #pragma omp for schedule(static)
        for (int t = 0; t < T; t++) {
            const float *xt = x + (size_t)t * C, *dt = dout + (size_t)t * C;
            float *dxt = dx + (size_t)t * C;
            float r = rstd[t];
            /* out = x*r*w; dx = r*(dout*w) - r^3/C * x * sum(dout*w*x) */
            double dot = 0;
            #pragma omp simd reduction(+ : dot)
            for (int i = 0; i < C; i++) dot += (double)dt[i] * w[i] * xt[i];
            float c = (float)(dot * r * r * r / C);
            for (int i = 0; i < C; i++) dxt[i] += dt[i] * w[i] * r - c * xt[i];
        }
        /* dw is a sum over rows: split by columns so each thread owns its sums */
        if (dw) {
            #pragma omp for schedule(static)
            for (int i0 = 0; i0 < C; i0 += 64) {
                int i1 = i0 + 64 < C ? i0 + 64 : C;
                for (int t = 0; t < T; t++) {
                    const float *xt = x + (size_t)t * C, *dt = dout + (size_t)t * C;
                    float r = rstd[t];
                    for (int i = i0; i < i1; i++) dw[i] += dt[i] * xt[i] * r;
                }
            }
        }
    }
}

void rope_tables(float *cos_t, float *sin_t, int max_pos, int hd, float theta) {
    int half = hd / 2;
    for (int i = 0; i < half; i++) {
        double freq = pow((double)theta, -2.0 * i / hd);
        for (int p = 0; p < max_pos; p++) {
            double a = p * freq;
            cos_t[(size_t)p * half + i] = (float)cos(a);
            sin_t[(size_t)p * half + i] = (float)sin(a);
        }
    }
}

static void rope_apply(float *x, const int32_t *pos, int T, int n_heads, int hd,
                       const float *cos_t, const float *sin_t, float sign) {
    int half = hd / 2;
    #pragma omp parallel for schedule(static) if ((long)T * n_heads * hd > PAR_MIN)
    for (int t = 0; t < T; t++) {
        const float *c = cos_t + (size_t)pos[t] * half, *s = sin_t + (size_t)pos[t] * half;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (size_t)t * n_heads * hd + (size_t)h * hd;
            for (int i = 0; i < half; i++) {
                float x0 = v[i], x1 = v[i + half], sn = sign * s[i];
                v[i] = x0 * c[i] - x1 * sn;
                v[i + half] = x1 * c[i] + x0 * sn;
            }
        }
    }
}

void rope_forward(float *x, const int32_t *pos, int T, int n_heads, int hd, const float *cos_t,
                  const float *sin_t) {
    rope_apply(x, pos, T, n_heads, hd, cos_t, sin_t, 1.0f);
}

void rope_backward(float *dx, const int32_t *pos, int T, int n_heads, int hd,
                   const float *cos_t, const float *sin_t) {
    /* the rotation is orthogonal: its transpose is the rotation by -angle */
    rope_apply(dx, pos, T, n_heads, hd, cos_t, sin_t, -1.0f);
}

#ifdef HN_HAVE_AVX512
HN_AVX512 static void swiglu_forward_avx512(float *h, const float *g, const float *u, long n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (long i = 0; i < n; i += 16) {
        __mmask16 m = simd_tail16((int)(n - i < 16 ? n - i : 16));
        __m512 gv = _mm512_maskz_loadu_ps(m, g + i), uv = _mm512_maskz_loadu_ps(m, u + i);
        __m512 den = _mm512_add_ps(one, simd_exp512(_mm512_sub_ps(_mm512_setzero_ps(), gv)));
        _mm512_mask_storeu_ps(h + i, m, _mm512_mul_ps(_mm512_div_ps(gv, den), uv));
    }
}

HN_AVX512 static void swiglu_backward_avx512(float *dg, float *du, const float *dh, const float *g,
                                             const float *u, long n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (long i = 0; i < n; i += 16) {
        __mmask16 m = simd_tail16((int)(n - i < 16 ? n - i : 16));
        __m512 gv = _mm512_maskz_loadu_ps(m, g + i), uv = _mm512_maskz_loadu_ps(m, u + i);
        __m512 dv = _mm512_maskz_loadu_ps(m, dh + i);
        __m512 sig = _mm512_div_ps(one, _mm512_add_ps(one, simd_exp512(_mm512_sub_ps(_mm512_setzero_ps(), gv))));
        _mm512_mask_storeu_ps(du + i, m, _mm512_mul_ps(dv, _mm512_mul_ps(gv, sig)));
        __m512 t = _mm512_fmadd_ps(gv, _mm512_sub_ps(one, sig), one); /* 1 + g(1 - sig) */
        _mm512_mask_storeu_ps(dg + i, m, _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(dv, uv), sig), t));
    }
}

/* One row of the loss: returns lse, sets *argmax (first maximum). */
HN_AVX512 static float xent_row_stats_avx512(const float *l, int V, int *argmax) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 mv = ninf;
    for (int j = 0; j < V; j += 16)
        mv = _mm512_max_ps(mv, _mm512_mask_loadu_ps(ninf, simd_tail16(V - j), l + j));
    float mx = _mm512_reduce_max_ps(mv);
    *argmax = 0;
    for (int j = 0; j < V; j += 16) {
        __mmask16 m = simd_tail16(V - j);
        __mmask16 eq = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, l + j),
                                               _mm512_set1_ps(mx), _CMP_EQ_OQ);
        if (eq) {
            *argmax = j + __builtin_ctz(eq);
            break;
        }
    }
    /* sum of exp in double, as the portable loop: the loss needs lse to ~1e-7 */
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    const __m512 vmx = _mm512_set1_ps(mx);
    for (int j = 0; j < V; j += 16) {
        __mmask16 m = simd_tail16(V - j);
        __m512 e = _mm512_maskz_mov_ps(m, simd_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, l + j), vmx)));
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
    }
    return mx + (float)log(_mm512_reduce_add_pd(_mm512_add_pd(s0, s1)));
}

HN_AVX512 static void xent_row_grad_avx512(float *l, int V, float lse, float sc) {
    const __m512 vl = _mm512_set1_ps(lse), vs = _mm512_set1_ps(sc);
    for (int j = 0; j < V; j += 16) {
        __mmask16 m = simd_tail16(V - j);
        __m512 x = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, l + j), vl);
        _mm512_mask_storeu_ps(l + j, m, _mm512_mul_ps(simd_exp512(x), vs));
    }
}
#endif

/* Elementwise kernels run in chunks of this many elements (a multiple of 16). */
enum { EW_CHUNK = 1 << 13 };

void swiglu_forward(float *h, const float *g, const float *u, long N) {
    const int vec = simd_have_avx512();
    #pragma omp parallel for schedule(static) if (N > PAR_MIN)
    for (long c = 0; c < N; c += EW_CHUNK) {
        long n = N - c < EW_CHUNK ? N - c : EW_CHUNK;
#ifdef HN_HAVE_AVX512
        if (vec) {
            swiglu_forward_avx512(h + c, g + c, u + c, n);
            continue;
        }
#endif
        (void)vec;
        for (long i = c; i < c + n; i++) h[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}

void swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u,
                     long N) {
    const int vec = simd_have_avx512();
    #pragma omp parallel for schedule(static) if (N > PAR_MIN)
    for (long c = 0; c < N; c += EW_CHUNK) {
        long n = N - c < EW_CHUNK ? N - c : EW_CHUNK;
#ifdef HN_HAVE_AVX512
        if (vec) {
            swiglu_backward_avx512(dg + c, du + c, dh + c, g + c, u + c, n);
            continue;
        }
#endif
        (void)vec;
        for (long i = c; i < c + n; i++) {
            float sig = 1.0f / (1.0f + expf(-g[i]));
            float silu = g[i] * sig;
            du[i] = dh[i] * silu;
            dg[i] = dh[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
        }
    }
}

static float xent_row_stats_c(const float *l, int V, int *argmax) {
    float mx = l[0];
    int am = 0;
    for (int j = 1; j < V; j++)
        if (l[j] > mx) {
            mx = l[j];
            am = j;
        }
    *argmax = am;
    double sum = 0;
    for (int j = 0; j < V; j++) sum += exp((double)(l[j] - mx));
    return mx + (float)log(sum);
}

void xent_forward_backward(float *logits, float *loss, uint8_t *correct, const int32_t *target,
                           const float *scale, int N, int V) {
    const int vec = simd_have_avx512();
    (void)vec;
    #pragma omp parallel for schedule(static) if ((long)N * V > 1 << 16)
    for (int i = 0; i < N; i++) {
        float *l = logits + (size_t)i * V;
        int am, y = target[i];
        float sc = scale ? scale[i] : 1.0f, lse;
#ifdef HN_HAVE_AVX512
        if (vec) lse = xent_row_stats_avx512(l, V, &am);
        else
#endif
            lse = xent_row_stats_c(l, V, &am);
        loss[i] = lse - l[y];
        if (correct) correct[i] = am == y;
#ifdef HN_HAVE_AVX512
        if (vec) xent_row_grad_avx512(l, V, lse, sc);
        else
#endif
            for (int j = 0; j < V; j++) l[j] = expf(l[j] - lse) * sc;
        l[y] -= sc;
    }
}

/* ---- AdamW and the gradient norm: one memory-bound pass each ----
 * Both work in fixed chunks so every element (and every partial sum) is
 * computed the same way whatever the thread count. */

enum { OPT_CHUNK = 1 << 16 };

typedef struct adamw_k {
    float decay, b1, b1c, b2, b2c, step, bc2_sqrt, eps, gscale;
} adamw_k;

static void adamw_chunk_c(float *p, const float *g, float *m, float *v, long n, const adamw_k *k) {
    for (long i = 0; i < n; i++) {
        float gi = g[i] * k->gscale;
        p[i] *= k->decay;
        m[i] = k->b1 * m[i] + k->b1c * gi;
        v[i] = k->b2 * v[i] + k->b2c * gi * gi;
        p[i] -= k->step * m[i] / (sqrtf(v[i]) / k->bc2_sqrt + k->eps);
    }
}

#ifdef HN_HAVE_AVX512
HN_AVX512 static void adamw_chunk_avx512(float *p, const float *g, float *m, float *v, long n,
                                         const adamw_k *k) {
    const __m512 decay = _mm512_set1_ps(k->decay), b1 = _mm512_set1_ps(k->b1),
                 b1c = _mm512_set1_ps(k->b1c), b2 = _mm512_set1_ps(k->b2),
                 b2c = _mm512_set1_ps(k->b2c), step = _mm512_set1_ps(k->step),
                 bc2 = _mm512_set1_ps(k->bc2_sqrt), eps = _mm512_set1_ps(k->eps),
                 gs = _mm512_set1_ps(k->gscale);
    for (long i = 0; i < n; i += 16) {
        __mmask16 mk = simd_tail16((int)(n - i < 16 ? n - i : 16));
        __m512 gi = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, g + i), gs);
        __m512 pi = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, p + i), decay);
        __m512 mi = _mm512_add_ps(_mm512_mul_ps(b1, _mm512_maskz_loadu_ps(mk, m + i)),
                                  _mm512_mul_ps(b1c, gi));
        __m512 vi = _mm512_add_ps(_mm512_mul_ps(b2, _mm512_maskz_loadu_ps(mk, v + i)),
                                  _mm512_mul_ps(_mm512_mul_ps(b2c, gi), gi));
        __m512 den = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), bc2), eps);
        pi = _mm512_sub_ps(pi, _mm512_div_ps(_mm512_mul_ps(step, mi), den));
        _mm512_mask_storeu_ps(m + i, mk, mi);
        _mm512_mask_storeu_ps(v + i, mk, vi);
        _mm512_mask_storeu_ps(p + i, mk, pi);
    }
}
#endif

void adamw_update_scaled(float *p, const float *g, float *m, float *v, long n, float lr,
                         float beta1, float beta2, float eps, float weight_decay, int t,
                         float gscale) {
    const float bc1 = 1.0f - powf(beta1, (float)t), bc2 = 1.0f - powf(beta2, (float)t);
    const adamw_k k = {1.0f - lr * weight_decay, beta1, 1.0f - beta1, beta2, 1.0f - beta2,
                       lr / bc1, sqrtf(bc2), eps, gscale};
    const long nc = (n + OPT_CHUNK - 1) / OPT_CHUNK;
    const int vec = simd_have_avx512();
    #pragma omp parallel for schedule(static) if (nc > 1)
    for (long c = 0; c < nc; c++) {
        long i = c * OPT_CHUNK, len = n - i < OPT_CHUNK ? n - i : OPT_CHUNK;
#ifdef HN_HAVE_AVX512
        if (vec) {
            adamw_chunk_avx512(p + i, g + i, m + i, v + i, len, &k);
            continue;
        }
#endif
        (void)vec;
        adamw_chunk_c(p + i, g + i, m + i, v + i, len, &k);
    }
}

void adamw_update(float *p, const float *g, float *m, float *v, long n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int t) {
    adamw_update_scaled(p, g, m, v, n, lr, beta1, beta2, eps, weight_decay, t, 1.0f);
}

static double sumsq_chunk(const float *x, long n) {
    double s[8] = {0};
    long i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += (double)x[i + j] * x[i + j];
    for (; i < n; i++) s[i & 7] += (double)x[i] * x[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

double ops_sum_squares(const float *x, long n) {
    const long nc = (n + OPT_CHUNK - 1) / OPT_CHUNK;
    double total = 0;
    if (nc <= 1) return n > 0 ? sumsq_chunk(x, n) : 0.0;
    double *part = malloc(sizeof(double) * (size_t)nc);
    if (!part) { /* no memory for the partials: one serial pass, same chunking */
        for (long c = 0; c < nc; c++)
            total += sumsq_chunk(x + c * OPT_CHUNK, n - c * OPT_CHUNK < OPT_CHUNK ? n - c * OPT_CHUNK : OPT_CHUNK);
        return total;
    }
    #pragma omp parallel for schedule(static)
    for (long c = 0; c < nc; c++) {
        long i = c * OPT_CHUNK;
        part[c] = sumsq_chunk(x + i, n - i < OPT_CHUNK ? n - i : OPT_CHUNK);
    }
    for (long c = 0; c < nc; c++) total += part[c];
    free(part);
    return total;
}
