/* norm_act.c — LayerNorm, GELU-tanh and bias kernels (see norm_act.h).
 * Row statistics are accumulated in double: the golden tests compare with a
 * float64 reference and LayerNorm's mean subtraction is where f32 sums of
 * large-mean rows lose digits. */
#include "tensor/norm_act.h"

#include <math.h>
#include <stddef.h>

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

void layernorm_backward(float *dx, float *dw, float *db, const float *dout, const float *x,
                        const float *w, const float *mean, const float *rstd, int T, int C) {
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * C, *g = dout + (size_t)t * C;
        float m = mean[t], r = rstd[t];
        /* dxhat = g * w; dx = r * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) */
        double s1 = 0, s2 = 0;
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
            if (dw) dw[i] += g[i] * xh;
            if (db) db[i] += g[i];
        }
    }
}

static const float GELU_K = 0.7978845608028654f; /* sqrt(2/pi) */

void gelu_forward(float *h, const float *u, long N) {
    #pragma omp parallel for simd if (N > 65536)
    for (long i = 0; i < N; i++) {
        float x = u[i];
        h[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + 0.044715f * x * x * x)));
    }
}

void gelu_backward(float *du, const float *dh, const float *u, long N) {
    #pragma omp parallel for simd if (N > 65536)
    for (long i = 0; i < N; i++) {
        float x = u[i];
        float th = tanhf(GELU_K * (x + 0.044715f * x * x * x));
        float dth = GELU_K * (1.0f + 3.0f * 0.044715f * x * x) * (1.0f - th * th);
        du[i] = dh[i] * (0.5f * (1.0f + th) + 0.5f * x * dth);
    }
}

void bias_forward(float *y, const float *b, int T, int C) {
    for (int t = 0; t < T; t++) {
        float *r = y + (size_t)t * C;
        #pragma omp simd
        for (int i = 0; i < C; i++) r[i] += b[i];
    }
}

void bias_backward(float *db, const float *dy, int T, int C) {
    for (int t = 0; t < T; t++) {
        const float *r = dy + (size_t)t * C;
        #pragma omp simd
        for (int i = 0; i < C; i++) db[i] += r[i];
    }
}
