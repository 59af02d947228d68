/* test_ops_vec.c — the vectorised and threaded paths of the elementwise and
 * row kernels (SwiGLU, cross-entropy, RMSNorm, RoPE) against straight
 * double-precision loops written here, at sizes big enough to take the
 * parallel paths and with lengths that leave vector tails; AdamW (with its
 * fused gradient scale) and the gradient's sum of squares likewise; GPT-2's
 * GELU, LayerNorm and bias kernels. test_ops_grad
 * checks the same kernels' gradients by finite differences at small sizes.
 * Tolerances: 1e-5 relative per element (against 1% of the tensor's largest
 * value where values cancel to ~0, and against the largest for RMSNorm's dw,
 * a float sum over rows); loss and probabilities to 1e-6. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "tensor/norm_act.h"
#include "tensor/ops.h"
#include "test.h"

static hn_rng rng;

static float *rnd(size_t n, float amp) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (hn_rng_uniform(&rng) * 2.0f - 1.0f) * amp;
    return p;
}

/* max |x - ref| / max(|ref|, floor · max |ref| of the tensor): relative where
 * values are large, against the tensor's scale where they cancel to ~0 */
static double err_rel(const float *x, const double *ref, size_t n, double floor) {
    double e = 0, mx = 0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(ref[i]));
    for (size_t i = 0; i < n; i++) {
        double d = fabs(x[i] - ref[i]) / fmax(fabs(ref[i]), floor * mx);
        e = isnan(d) ? INFINITY : fmax(e, d);
    }
    return e;
}

static void check_swiglu(long n) {
    float *g = rnd(n, 12.0f), *u = rnd(n, 2.0f), *dh = rnd(n, 1.0f);
    float *h = malloc(n * 4), *dg = malloc(n * 4), *du = malloc(n * 4);
    double *rh = malloc(n * 8), *rdg = malloc(n * 8), *rdu = malloc(n * 8);
    for (long i = 0; i < n; i++) {
        double sig = 1.0 / (1.0 + exp(-(double)g[i]));
        rh[i] = g[i] * sig * u[i];
        rdu[i] = dh[i] * g[i] * sig;
        rdg[i] = dh[i] * u[i] * sig * (1.0 + g[i] * (1.0 - sig));
    }
    swiglu_forward(h, g, u, n);
    swiglu_backward(dg, du, dh, g, u, n);
    double e1 = err_rel(h, rh, n, 0.01), e2 = err_rel(dg, rdg, n, 0.01), e3 = err_rel(du, rdu, n, 0.01);
    CHECK(e1 < 1e-5 && e2 < 1e-5 && e3 < 1e-5, "swiglu n=%ld: h %.2e dg %.2e du %.2e", n, e1, e2, e3);
    free(g), free(u), free(dh), free(h), free(dg), free(du), free(rh), free(rdg), free(rdu);
}

static void check_xent(int N, int V) {
    float *l = rnd((size_t)N * V, 8.0f), *scale = malloc(N * 4), *loss = malloc(N * 4);
    int32_t *tgt = malloc(N * 4);
    uint8_t *ok = malloc(N);
    double *rg = malloc((size_t)N * V * 8), *rloss = malloc(N * 8);
    int *ram = malloc(N * sizeof(int));
    for (int i = 0; i < N; i++) {
        tgt[i] = (int32_t)hn_rng_below(&rng, (uint32_t)V);
        scale[i] = 0.5f + i % 3;
        if (i % 4 == 1) l[(size_t)i * V + tgt[i]] = 50.0f; /* some rows predict right */
        const float *r = l + (size_t)i * V;
        double mx = r[0], sum = 0;
        ram[i] = 0;
        for (int j = 1; j < V; j++)
            if (r[j] > mx) mx = r[j], ram[i] = j;
        for (int j = 0; j < V; j++) sum += exp(r[j] - mx);
        double lse = mx + log(sum);
        rloss[i] = lse - r[tgt[i]];
        for (int j = 0; j < V; j++) rg[(size_t)i * V + j] = exp(r[j] - lse) * scale[i];
        rg[(size_t)i * V + tgt[i]] -= scale[i];
    }
    xent_forward_backward(l, loss, ok, tgt, scale, N, V);
    double el = 0;
    int bad_ok = 0;
    for (int i = 0; i < N; i++) {
        el = fmax(el, fabs(loss[i] - rloss[i]) / fmax(rloss[i], 1e-3));
        bad_ok += ok[i] != (ram[i] == tgt[i]);
    }
    /* gradient entries are probabilities: compare against the row's scale */
    double eg = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < V; j++)
            eg = fmax(eg, fabs(l[(size_t)i * V + j] - rg[(size_t)i * V + j]) / scale[i]);
    CHECK(el < 1e-6 && eg < 1e-6 && bad_ok == 0, "xent N=%d V=%d: loss %.2e grad %.2e, %d argmax wrong",
          N, V, el, eg, bad_ok);
    free(l), free(scale), free(loss), free(tgt), free(ok), free(rg), free(rloss), free(ram);
}

static void check_rmsnorm(int T, int C) {
    float *x = rnd((size_t)T * C, 3.0f), *w = rnd(C, 1.5f), *dout = rnd((size_t)T * C, 1.0f);
    float *out = malloc((size_t)T * C * 4), *rstd = malloc(T * 4);
    float *dx = calloc((size_t)T * C, 4), *dw = calloc(C, 4);
    double *rout = malloc((size_t)T * C * 8), *rdx = malloc((size_t)T * C * 8), *rdw = calloc(C, 8);
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * C, *dt = dout + (size_t)t * C;
        double ss = 0, dot = 0;
        for (int i = 0; i < C; i++) ss += (double)xt[i] * xt[i];
        double r = 1.0 / sqrt(ss / C + 1e-5);
        for (int i = 0; i < C; i++) {
            rout[(size_t)t * C + i] = xt[i] * r * w[i];
            dot += (double)dt[i] * w[i] * xt[i];
        }
        for (int i = 0; i < C; i++) {
            rdx[(size_t)t * C + i] = dt[i] * w[i] * r - dot * r * r * r / C * xt[i];
            rdw[i] += dt[i] * xt[i] * r;
        }
    }
    rmsnorm_forward(out, rstd, x, w, T, C, 1e-5f);
    rmsnorm_backward(dx, dw, dout, x, w, rstd, T, C);
    double e1 = err_rel(out, rout, (size_t)T * C, 0.01), e2 = err_rel(dx, rdx, (size_t)T * C, 0.01),
           e3 = err_rel(dw, rdw, C, 1.0); /* float sums over T rows */
    CHECK(e1 < 1e-5 && e2 < 1e-5 && e3 < 1e-5, "rmsnorm T=%d C=%d: out %.2e dx %.2e dw %.2e", T, C,
          e1, e2, e3);
    free(x), free(w), free(dout), free(out), free(rstd), free(dx), free(dw), free(rout), free(rdx),
        free(rdw);
}

/* GELU-tanh forward/backward (GPT-2) against double tanh. */
static void check_gelu(long n) {
    float *u = rnd(n, 6.0f), *dh = rnd(n, 1.0f), *h = malloc(n * 4), *du = malloc(n * 4);
    double *rh = malloc(n * 8), *rdu = malloc(n * 8);
    const double k = sqrt(2.0 / M_PI);
    for (long i = 0; i < n; i++) {
        double x = u[i], th = tanh(k * (x + 0.044715 * x * x * x));
        rh[i] = 0.5 * x * (1 + th);
        rdu[i] = dh[i] * (0.5 * (1 + th) + 0.5 * x * k * (1 + 3 * 0.044715 * x * x) * (1 - th * th));
    }
    gelu_forward(h, u, n);
    gelu_backward(du, dh, u, n);
    double e1 = err_rel(h, rh, n, 0.01), e2 = err_rel(du, rdu, n, 0.01);
    /* du: 1 - th^2 cancels where tanh saturates; the libm tanhf loop in
     * float has the same 4.8e-5 here */
    CHECK(e1 < 1e-5 && e2 < 1e-4, "gelu n=%ld: h %.2e du %.2e", n, e1, e2);
    free(u), free(dh), free(h), free(du), free(rh), free(rdu);
}

/* LayerNorm forward/backward and the bias kernels (GPT-2) against double loops. */
static void check_layernorm(int T, int C) {
    size_t n = (size_t)T * C;
    float *x = rnd(n, 3.0f), *w = rnd(C, 1.5f), *b = rnd(C, 0.5f), *dout = rnd(n, 1.0f);
    float *out = malloc(n * 4), *mean = malloc(T * 4), *rstd = malloc(T * 4);
    float *dx = calloc(n, 4), *dw = calloc(C, 4), *db = calloc(C, 4), *db2 = calloc(C, 4);
    double *rout = malloc(n * 8), *rdx = malloc(n * 8), *rdw = calloc(C, 8), *rdb = calloc(C, 8);
    for (size_t i = 0; i < n; i++) x[i] += 2.0f; /* a large mean, as residual streams have */
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * C, *g = dout + (size_t)t * C;
        double mu = 0, var = 0, s1 = 0, s2 = 0;
        for (int i = 0; i < C; i++) mu += xt[i];
        mu /= C;
        for (int i = 0; i < C; i++) var += (xt[i] - mu) * (xt[i] - mu);
        double r = 1.0 / sqrt(var / C + 1e-5);
        for (int i = 0; i < C; i++) {
            double xh = (xt[i] - mu) * r;
            rout[(size_t)t * C + i] = xh * w[i] + b[i];
            s1 += (double)g[i] * w[i];
            s2 += (double)g[i] * w[i] * xh;
            rdw[i] += g[i] * xh;
            rdb[i] += g[i];
        }
        for (int i = 0; i < C; i++) {
            double xh = (xt[i] - mu) * r;
            rdx[(size_t)t * C + i] = r * (g[i] * w[i] - s1 / C - xh * s2 / C);
        }
    }
    layernorm_forward(out, mean, rstd, x, w, b, T, C, 1e-5f);
    layernorm_backward(dx, dw, db, dout, x, w, mean, rstd, T, C);
    bias_backward(db2, dout, T, C);
    double e1 = err_rel(out, rout, n, 0.01), e2 = err_rel(dx, rdx, n, 0.01),
           e3 = err_rel(dw, rdw, C, 1.0), e4 = err_rel(db, rdb, C, 1.0), e5 = err_rel(db2, rdb, C, 1.0);
    CHECK(e1 < 1e-5 && e2 < 1e-4 && e3 < 1e-5 && e4 < 1e-5 && e5 < 1e-5,
          "layernorm T=%d C=%d: out %.2e dx %.2e dw %.2e db %.2e bias_backward %.2e", T, C, e1, e2,
          e3, e4, e5);
    memcpy(out, dout, n * 4);
    bias_forward(out, b, T, C);
    double e6 = 0;
    for (size_t i = 0; i < n; i++) e6 = fmax(e6, fabs(out[i] - (dout[i] + b[i % C])));
    CHECK(e6 == 0, "bias_forward T=%d C=%d: %.2e", T, C, e6);
    free(x), free(w), free(b), free(dout), free(out), free(mean), free(rstd), free(dx), free(dw);
    free(db), free(db2), free(rout), free(rdx), free(rdw), free(rdb);
}

static void check_rope(int T, int H, int hd) {
    size_t n = (size_t)T * H * hd;
    int32_t *pos = malloc(T * 4);
    for (int t = 0; t < T; t++) pos[t] = (t * 7) % 300;
    float *cs = malloc(300 * hd / 2 * 4), *sn = malloc(300 * hd / 2 * 4);
    rope_tables(cs, sn, 300, hd, 10000.0f);
    float *x = rnd(n, 1.0f), *y = malloc(n * 4);
    memcpy(y, x, n * 4);
    rope_forward(y, pos, T, H, hd, cs, sn);
    rope_backward(y, pos, T, H, hd, cs, sn); /* the inverse rotation */
    double e = 0;
    for (size_t i = 0; i < n; i++) e = fmax(e, fabs(y[i] - x[i]));
    CHECK(e < 1e-5, "rope T=%d round trip %.2e", T, e);
    free(pos), free(cs), free(sn), free(x), free(y);
}

/* AdamW with a fused gradient scale, against PyTorch's formula in double
 * (two steps, so the bias corrections and moments carry over), and the
 * threaded sum of squares; 1 and 2 threads give the same bytes. */
static void check_adamw(long n) {
    float *p0 = rnd(n, 1.0f), *g = rnd(n, 3.0f), *p = malloc(n * 4), *m = calloc(n, 4),
          *v = calloc(n, 4), *p1 = malloc(n * 4), *m1 = calloc(n, 4), *v1 = calloc(n, 4);
    double *rp = malloc(n * 8), *rm = calloc(n, 8), *rv = calloc(n, 8);
    const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1, gs = 0.37;
    memcpy(p, p0, n * 4), memcpy(p1, p0, n * 4);
    for (long i = 0; i < n; i++) rp[i] = p0[i];
    for (int t = 1; t <= 2; t++) {
        omp_set_num_threads(2);
        adamw_update_scaled(p, g, m, v, n, (float)lr, (float)b1, (float)b2, (float)eps, (float)wd, t,
                            (float)gs);
        omp_set_num_threads(1);
        adamw_update_scaled(p1, g, m1, v1, n, (float)lr, (float)b1, (float)b2, (float)eps,
                            (float)wd, t, (float)gs);
        for (long i = 0; i < n; i++) {
            double gi = g[i] * gs;
            rp[i] *= 1 - lr * wd;
            rm[i] = b1 * rm[i] + (1 - b1) * gi;
            rv[i] = b2 * rv[i] + (1 - b2) * gi * gi;
            rp[i] -= lr / (1 - pow(b1, t)) * rm[i] / (sqrt(rv[i]) / sqrt(1 - pow(b2, t)) + eps);
        }
    }
    omp_set_num_threads(2);
    double e = err_rel(p, rp, n, 0.01);
    CHECK(e < 1e-5, "adamw n=%ld: %.2e", n, e);
    CHECK(!memcmp(p, p1, n * 4) && !memcmp(m, m1, n * 4) && !memcmp(v, v1, n * 4),
          "adamw n=%ld: 1 and 2 threads differ", n);
    double ss = 0;
    for (long i = 0; i < n; i++) ss += (double)g[i] * g[i];
    double s2 = ops_sum_squares(g, n);
    omp_set_num_threads(1);
    double s1 = ops_sum_squares(g, n);
    omp_set_num_threads(2);
    CHECK(fabs(s2 - ss) <= 1e-12 * ss && s1 == s2, "sum of squares n=%ld: %.17g vs %.17g (1 thread %.17g)",
          n, s2, ss, s1);
    free(p0), free(g), free(p), free(m), free(v), free(p1), free(m1), free(v1);
    free(rp), free(rm), free(rv);
}

int main(void) {
    hn_rng_seed(&rng, 99);
    check_adamw(37);
    check_adamw(3L * 65536 + 17);
    check_swiglu(37);
    check_swiglu(1024L * 2048 + 5);
    check_xent(3, 37);
    check_xent(64, 32000);
    check_rmsnorm(3, 20);
    check_rmsnorm(1024, 768);
    check_rope(1024, 12, 64);
    check_gelu(37);
    check_gelu(1024L * 3072 + 3);
    check_layernorm(3, 20);
    check_layernorm(1024, 768);
    return test_finish("test_ops_vec");
}
