/* test_ops_grad.c — finite-difference checks of every backward pass on random
 * inputs: RMSNorm, RoPE, SwiGLU, attention (MHA, GQA, and a packed segment
 * mask), cross-entropy. (Whole models: test_model_grad.c.)
 *
 * Each check is L = sum(out * R) for a fixed random R (so dL/dout = R), the
 * analytic gradient from the _backward kernel, and a central difference
 * (L(x+eps) - L(x-eps)) / 2eps with L accumulated in double. The kernels are
 * f32, so the error measure is per tensor: max |analytic - numeric| /
 * max |numeric|, which must stay below a tolerance (a wrong term, sign or
 * index gives errors of order 1). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "model/llama.h"
#include "tensor/ops.h"
#include "test.h"

static hn_rng rng;

static void fill(float *x, size_t n, float lo, float hi) { test_fill(&rng, x, n, lo, hi); }

#define dot test_dot

#define fd_check test_fd_check

/* ---- RMSNorm ---- */

typedef struct rms_ctx {
    int T, C;
    float *x, *w, *out, *rstd, *R;
} rms_ctx;

static double rms_loss(void *p) {
    rms_ctx *c = p;
    rmsnorm_forward(c->out, c->rstd, c->x, c->w, c->T, c->C, 1e-5f);
    return dot(c->out, c->R, (size_t)c->T * c->C);
}

static void check_rmsnorm(void) {
    rms_ctx c = {.T = 3, .C = 8};
    size_t n = (size_t)c.T * c.C;
    c.x = malloc(n * 4), c.out = malloc(n * 4), c.R = malloc(n * 4), c.w = malloc(c.C * 4);
    c.rstd = malloc(c.T * 4);
    fill(c.x, n, -2, 2), fill(c.R, n, -1, 1), fill(c.w, c.C, 0.5f, 1.5f);
    float *dx = calloc(n, 4), *dw = calloc(c.C, 4);
    rms_loss(&c);
    rmsnorm_backward(dx, dw, c.R, c.x, c.w, c.rstd, c.T, c.C);
    fd_check("rmsnorm dx", c.x, dx, n, rms_loss, &c, 1e-2f, 1e-3);
    fd_check("rmsnorm dw", c.w, dw, c.C, rms_loss, &c, 1e-2f, 1e-3);
    free(c.x), free(c.out), free(c.R), free(c.w), free(c.rstd), free(dx), free(dw);
}

/* ---- RoPE ---- */

typedef struct rope_ctx {
    int T, H, hd;
    const int32_t *pos;
    float *x, *tmp, *R, *cs, *sn;
} rope_ctx;

static double rope_loss(void *p) {
    rope_ctx *c = p;
    size_t n = (size_t)c->T * c->H * c->hd;
    memcpy(c->tmp, c->x, n * 4);
    rope_forward(c->tmp, c->pos, c->T, c->H, c->hd, c->cs, c->sn);
    return dot(c->tmp, c->R, n);
}

static void check_rope(void) {
    static const int32_t pos[5] = {0, 1, 2, 0, 7}; /* restarts like a packed row */
    rope_ctx c = {.T = 5, .H = 2, .hd = 8, .pos = pos};
    size_t n = (size_t)c.T * c.H * c.hd;
    c.x = malloc(n * 4), c.tmp = malloc(n * 4), c.R = malloc(n * 4);
    c.cs = malloc(16 * 4 * 4), c.sn = malloc(16 * 4 * 4);
    rope_tables(c.cs, c.sn, 16, c.hd, 10000.0f);
    fill(c.x, n, -1, 1), fill(c.R, n, -1, 1);
    float *dx = malloc(n * 4);
    memcpy(dx, c.R, n * 4);
    rope_backward(dx, c.pos, c.T, c.H, c.hd, c.cs, c.sn);
    fd_check("rope dx", c.x, dx, n, rope_loss, &c, 1e-2f, 1e-3);
    free(c.x), free(c.tmp), free(c.R), free(c.cs), free(c.sn), free(dx);
}

/* ---- SwiGLU ---- */

typedef struct swiglu_ctx {
    long N;
    float *g, *u, *h, *R;
} swiglu_ctx;

static double swiglu_loss(void *p) {
    swiglu_ctx *c = p;
    swiglu_forward(c->h, c->g, c->u, c->N);
    return dot(c->h, c->R, (size_t)c->N);
}

static void check_swiglu(void) {
    swiglu_ctx c = {.N = 32};
    c.g = malloc(c.N * 4), c.u = malloc(c.N * 4), c.h = malloc(c.N * 4), c.R = malloc(c.N * 4);
    fill(c.g, c.N, -4, 4), fill(c.u, c.N, -2, 2), fill(c.R, c.N, -1, 1);
    float *dg = malloc(c.N * 4), *du = malloc(c.N * 4);
    swiglu_backward(dg, du, c.R, c.g, c.u, c.N);
    fd_check("swiglu dgate", c.g, dg, c.N, swiglu_loss, &c, 1e-2f, 1e-3);
    fd_check("swiglu dup", c.u, du, c.N, swiglu_loss, &c, 1e-2f, 1e-3);
    free(c.g), free(c.u), free(c.h), free(c.R), free(dg), free(du);
}

/* ---- attention ---- */

typedef struct att_ctx {
    attn_shape sh;
    float *q, *k, *v, *out, *lse, *R, *ws;
    size_t nws;
} att_ctx;

static double att_loss(void *p) {
    att_ctx *c = p;
    attention_forward(&c->sh, c->out, c->lse, c->q, c->k, c->v, c->ws, c->nws);
    return dot(c->out, c->R, (size_t)c->sh.T * c->sh.Hq * c->sh.hd);
}

static void check_attention(const char *name, int T, int Hq, int Hkv, int hd, const int32_t *seg) {
    att_ctx c = {.sh = {1, T, T, 0, Hq, Hkv, hd, seg}, .nws = attention_ws_floats(hd, 0)};
    size_t nq = (size_t)T * Hq * hd, nk = (size_t)T * Hkv * hd;
    c.q = malloc(nq * 4), c.k = malloc(nk * 4), c.v = malloc(nk * 4), c.out = malloc(nq * 4);
    c.R = malloc(nq * 4), c.lse = malloc((size_t)Hq * T * 4), c.ws = malloc(c.nws * 4);
    fill(c.q, nq, -1.5f, 1.5f), fill(c.k, nk, -1.5f, 1.5f), fill(c.v, nk, -1, 1);
    fill(c.R, nq, -1, 1);
    float *dq = malloc(nq * 4), *dk = malloc(nk * 4), *dv = malloc(nk * 4);
    att_loss(&c);
    attention_backward(&c.sh, dq, dk, dv, c.R, c.out, c.lse, c.q, c.k, c.v, c.ws, c.nws);
    char what[96];
    snprintf(what, sizeof what, "attention %s dq", name);
    fd_check(what, c.q, dq, nq, att_loss, &c, 1e-2f, 1e-3);
    snprintf(what, sizeof what, "attention %s dk", name);
    fd_check(what, c.k, dk, nk, att_loss, &c, 1e-2f, 1e-3);
    snprintf(what, sizeof what, "attention %s dv", name);
    fd_check(what, c.v, dv, nk, att_loss, &c, 1e-2f, 1e-3);
    /* a masked pair must carry zero weight, so nothing leaks across segments:
     * no gradient reaches a key or value from a later segment's queries */
    if (seg) {
        memset(c.R, 0, nq * 4); /* loss = the last segment's outputs only */
        for (int t = 0; t < T; t++)
            if (seg[t] == seg[T - 1]) fill(c.R + (size_t)t * Hq * hd, (size_t)Hq * hd, -1, 1);
        att_loss(&c);
        attention_backward(&c.sh, dq, dk, dv, c.R, c.out, c.lse, c.q, c.k, c.v, c.ws, c.nws);
        double leak = 0;
        for (int s = 0; s < T; s++)
            for (int i = 0; seg[s] != seg[T - 1] && i < Hkv * hd; i++)
                leak = fmax(leak, fmax(fabs(dk[(size_t)s * Hkv * hd + i]), fabs(dv[(size_t)s * Hkv * hd + i])));
        CHECK(leak == 0.0, "attention %s: gradient %g across segments", name, leak);
    }
    free(c.q), free(c.k), free(c.v), free(c.out), free(c.R), free(c.lse), free(c.ws);
    free(dq), free(dk), free(dv);
}

/* ---- cross-entropy ---- */

typedef struct xent_ctx {
    int N, V;
    float *logits, *tmp, *loss, *scale;
    int32_t *tgt;
} xent_ctx;

static double xent_loss(void *p) {
    xent_ctx *c = p;
    memcpy(c->tmp, c->logits, (size_t)c->N * c->V * 4);
    xent_forward_backward(c->tmp, c->loss, NULL, c->tgt, c->scale, c->N, c->V);
    return dot(c->loss, c->scale, (size_t)c->N);
}

static void check_xent(void) {
    xent_ctx c = {.N = 5, .V = 11};
    size_t n = (size_t)c.N * c.V;
    c.logits = malloc(n * 4), c.tmp = malloc(n * 4), c.loss = malloc(c.N * 4);
    c.scale = malloc(c.N * 4), c.tgt = malloc(c.N * 4);
    fill(c.logits, n, -3, 3), fill(c.scale, c.N, 0.1f, 1);
    for (int i = 0; i < c.N; i++) c.tgt[i] = (int32_t)hn_rng_below(&rng, (uint32_t)c.V);
    float *g = malloc(n * 4);
    memcpy(g, c.logits, n * 4);
    uint8_t ok[5];
    xent_forward_backward(g, c.loss, ok, c.tgt, c.scale, c.N, c.V);
    /* loss must be -log softmax[target] */
    for (int i = 0; i < c.N; i++) {
        const float *l = c.logits + (size_t)i * c.V;
        double mx = l[0], s = 0;
        for (int j = 1; j < c.V; j++) mx = fmax(mx, l[j]);
        for (int j = 0; j < c.V; j++) s += exp(l[j] - mx);
        double want = mx + log(s) - l[c.tgt[i]];
        CHECK(fabs(c.loss[i] - want) < 1e-5, "xent row %d: loss %g want %g", i, c.loss[i], want);
    }
    fd_check("cross-entropy dlogits", c.logits, g, n, xent_loss, &c, 1e-2f, 1e-3);
    free(c.logits), free(c.tmp), free(c.loss), free(c.scale), free(c.tgt), free(g);
}

int main(void) {
    hn_rng_seed(&rng, 1234);
    check_rmsnorm();
    check_rope();
    check_swiglu();
    check_attention("MHA", 6, 2, 2, 4, NULL);
    check_attention("GQA", 6, 4, 2, 4, NULL);
    static const int32_t seg[7] = {0, 0, 0, 1, 1, 2, 2};
    check_attention("GQA packed", 7, 4, 1, 4, seg);
    check_xent();
    return test_finish("test_ops_grad");
}
