/* ops.c — CPU kernels for the transformer layers (attention lives in attention.c).
 * Loops are written so their inner dimension is contiguous and vectorizable;
 * threading is by OpenMP over independent rows/heads in few, large regions. */
#include "tensor/ops.h"

#include <math.h>
#include <string.h>

void rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int T, int C,
                     float eps) {
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * C;
        float *ot = out + (size_t)t * C;
        double ss = 0;
        for (int i = 0; i < C; i++) ss += (double)xt[i] * xt[i];
        float r = 1.0f / sqrtf((float)(ss / C) + eps);
        if (rstd) rstd[t] = r;
        for (int i = 0; i < C; i++) ot[i] = xt[i] * r * w[i];
    }
}

void rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                      const float *rstd, int T, int C) {
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * C, *dt = dout + (size_t)t * C;
        float *dxt = dx + (size_t)t * C;
        float r = rstd[t];
        /* out = x*r*w; dx = r*(dout*w) - r^3/C * x * sum(dout*w*x) */
        double dot = 0;
        for (int i = 0; i < C; i++) dot += (double)dt[i] * w[i] * xt[i];
        float c = (float)(dot * r * r * r / C);
        for (int i = 0; i < C; i++) dxt[i] += dt[i] * w[i] * r - c * xt[i];
        if (dw)
            for (int i = 0; i < C; i++) dw[i] += dt[i] * xt[i] * r;
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

void swiglu_forward(float *h, const float *g, const float *u, long N) {
    for (long i = 0; i < N; i++) h[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u,
                     long N) {
    for (long i = 0; i < N; i++) {
        float sig = 1.0f / (1.0f + expf(-g[i]));
        float silu = g[i] * sig;
        du[i] = dh[i] * silu;
        dg[i] = dh[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
    }
}

void xent_forward_backward(float *logits, float *loss, uint8_t *correct, const int32_t *target,
                           const float *scale, int N, int V) {
    #pragma omp parallel for schedule(static) if ((long)N * V > 1 << 16)
    for (int i = 0; i < N; i++) {
        float *l = logits + (size_t)i * V;
        float mx = l[0];
        int am = 0;
        for (int j = 1; j < V; j++)
            if (l[j] > mx) {
                mx = l[j];
                am = j;
            }
        double sum = 0;
        for (int j = 0; j < V; j++) sum += exp((double)(l[j] - mx));
        float lse = mx + (float)log(sum);
        int y = target[i];
        loss[i] = lse - l[y];
        if (correct) correct[i] = am == y;
        float sc = scale ? scale[i] : 1.0f;
        for (int j = 0; j < V; j++) l[j] = expf(l[j] - lse) * sc;
        l[y] -= sc;
    }
}

void adamw_update(float *p, const float *g, float *m, float *v, long n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int t) {
    const float bc1 = 1.0f - powf(beta1, (float)t), bc2 = 1.0f - powf(beta2, (float)t);
    const float step = lr / bc1, bc2_sqrt = sqrtf(bc2);
    #pragma omp parallel for simd schedule(static) if (n > 1 << 16)
    for (long i = 0; i < n; i++) {
        p[i] *= 1.0f - lr * weight_decay;
        m[i] = beta1 * m[i] + (1.0f - beta1) * g[i];
        v[i] = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
        p[i] -= step * m[i] / (sqrtf(v[i]) / bc2_sqrt + eps);
    }
}
