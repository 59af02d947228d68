/* llama.c — decoder forward/backward for Llama, Qwen2/3 and GPT-2 (RMSNorm or
 * LayerNorm, RoPE or learned positions, q/k-norm, biases, fused or separate
 * q/k/v, SwiGLU or GELU, GQA attention, tied or untied classifier), LoRA on
 * the linear layers, the chunked
 * cross-entropy loss, and KV-cached inference. Each block's forward is beside
 * its backward; shapes are in comments (N = B*T rows, D = dim, F = hidden). */
#include "model/llama.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "tensor/gemm.h"
#include "tensor/norm_act.h"
#include "tensor/ops.h"

/* ---- planning ---- */

typedef struct plan {
    size_t n;
    float *base;
} plan;

/* Two passes over the same code: first counts (base == NULL), then assigns. */
static float *take(plan *p, size_t n) {
    if (!n) return NULL;
    float *r = p->base ? p->base + p->n : NULL;
    p->n += (n + 15) & ~(size_t)15; /* 64-byte alignment of every buffer */
    return r;
}

/* One block's activations for N rows; kv: keep k/v and the attention rows'
 * log-sum-exp here (training) rather than k/v in a KV cache (inference). */
static void plan_layer(const hn_model *m, layer_acts *la, plan *p, size_t N, int r, bool kv) {
    const model_config *c = &m->cfg;
    model_traits tr = model_arch_traits(c->arch);
    size_t D = c->dim, F = c->hidden_dim, Hq = c->n_heads, Hkv = c->n_kv_heads;
    size_t qd = Hq * c->head_dim, kvd = Hkv * c->head_dim;
    la->xn1 = take(p, N * D);
    la->rstd1 = take(p, N);
    la->mean1 = take(p, tr.layernorm ? N : 0);
    la->q = take(p, N * qd);
    la->k = take(p, kv ? N * kvd : 0);
    la->v = take(p, kv ? N * kvd : 0);
    la->qraw = take(p, tr.qk_norm ? N * qd : 0);
    la->kraw = take(p, tr.qk_norm ? N * kvd : 0);
    la->rstdq = take(p, tr.qk_norm ? N * Hq : 0);
    la->rstdk = take(p, tr.qk_norm ? N * Hkv : 0);
    la->qkv = take(p, tr.fused_qkv ? N * (qd + 2 * kvd) : 0);
    la->lse = take(p, kv ? N * Hq : 0);
    la->ao = take(p, N * qd);
    la->xmid = take(p, N * D);
    la->xn2 = take(p, N * D);
    la->rstd2 = take(p, N);
    la->mean2 = take(p, tr.layernorm ? N : 0);
    la->g = take(p, tr.gelu ? 0 : N * F);
    la->u = take(p, N * F);
    la->h = take(p, N * F);
    for (int t = 0; t < LORA_N_TARGETS; t++) la->lora_tmp[t] = take(p, N * (size_t)r);
    size_t qd_ = Hq * c->head_dim;
    const size_t in[LORA_N_TARGETS] = {D, D, D, qd_, D, D, F, D};
    for (int t = 0; t < LORA_N_TARGETS; t++) /* bits, in whole floats */
        la->lora_mask[t] = (uint8_t *)take(p, r ? (N * in[t] / 8 + 4) / 4 : 0);
}

int llama_loss_chunk_rows(int vocab_size) {
    int rows = LLAMA_LOSS_CHUNK_FLOATS / (vocab_size > 0 ? vocab_size : 1);
    return rows < 16 ? 16 : rows > LLAMA_LOSS_CHUNK_MAX ? LLAMA_LOSS_CHUNK_MAX : rows;
}

static void plan_acts(const hn_model *m, llama_acts *a, plan *p) {
    const model_config *c = &m->cfg;
    model_traits tr = model_arch_traits(c->arch);
    size_t N = (size_t)a->N, D = c->dim, F = c->hidden_dim, V = c->vocab_size;
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    a->loss_chunk = llama_loss_chunk_rows(c->vocab_size);
    size_t r = (size_t)a->lora_rank, CH = (size_t)a->loss_chunk;
    a->res = take(p, (size_t)(c->n_layers + 1) * N * D);
    for (int l = 0; l < c->n_layers; l++) {
        if (a->recompute && l > 0) a->layers[l] = a->layers[0]; /* one set of buffers */
        else plan_layer(m, &a->layers[l], p, N, (int)r, true);
    }
    size_t max_in = D > F ? D : F;
    if (qd > max_in) max_in = qd;
    float *xd = take(p, r ? N * max_in : 0), *dxd = take(p, r ? N * max_in : 0);
    for (int l = 0; l < c->n_layers; l++) {
        a->layers[l].lora_xd = xd;
        a->layers[l].lora_dxd = dxd;
        a->layers[l].layer = l;
    }
    a->xnf = take(p, N * D);
    a->rstdf = take(p, N);
    a->meanf = take(p, tr.layernorm ? N : 0);
    size_t wide = qd > F ? qd : F;
    a->dres = take(p, N * D);
    a->dxn = take(p, N * D);
    a->dq = take(p, N * qd);
    a->dk = take(p, N * kvd);
    a->dv = take(p, N * kvd);
    a->dqraw = take(p, tr.qk_norm ? N * qd : 0);
    a->dkraw = take(p, tr.qk_norm ? N * kvd : 0);
    a->dqkv = take(p, tr.fused_qkv ? N * (qd + 2 * kvd) : 0);
    a->dao = take(p, N * wide);
    a->dh = take(p, N * F);
    a->dg = take(p, N * F);
    a->du = take(p, N * F);
    a->dtmp = take(p, N * (r ? r : 1));
    a->chunk_x = take(p, CH * D);
    a->chunk_logits = take(p, CH * V);
    a->chunk_scale = take(p, CH);
    a->chunk_loss = take(p, CH);
    a->pos = (int32_t *)take(p, N);
    a->seg = (int32_t *)take(p, N);
    a->chunk_rows = (int32_t *)take(p, CH);
    a->chunk_tgt = (int32_t *)take(p, CH);
    a->chunk_ok = (uint8_t *)take(p, CH);
    a->att_ws = take(p, a->att_ws_n);
}

hn_status llama_acts_create(const hn_model *m, int B, int T, int lora_rank, llama_acts **out,
                            hn_err *err) {
    return llama_acts_create_ex(m, B, T, lora_rank, false, out, err);
}

hn_status llama_acts_create_ex(const hn_model *m, int B, int T, int lora_rank, bool recompute,
                               llama_acts **out, hn_err *err) {
    llama_acts *a = calloc(1, sizeof *a);
    if (!a) return hn_errf(err, HN_ENOMEM, "out of memory");
    a->recompute = recompute;
    a->B = B;
    a->T = T;
    a->N = B * T;
    a->lora_rank = lora_rank;
    /* sized once: a re-plan (reshape) must not grow it if the thread count changed */
    a->att_ws_n = attention_ws_floats(m->cfg.head_dim, 0);
    a->layers = calloc((size_t)m->cfg.n_layers, sizeof *a->layers);
    plan p = {0, NULL};
    if (a->layers) plan_acts(m, a, &p);
    a->slab = a->layers ? hn_alloc_huge(p.n * sizeof(float)) : NULL;
    if (!a->slab) {
        free(a->layers);
        free(a);
        return hn_errf(err, HN_ENOMEM, "out of memory for activations (%d x %d tokens)", B, T);
    }
    memset(a->slab, 0, p.n * sizeof(float));
    a->slab_floats = p.n;
    p = (plan){0, a->slab};
    plan_acts(m, a, &p);
    llama_acts_default_pos(a);
    *out = a;
    return HN_OK;
}

void llama_acts_reshape(llama_acts *a, const hn_model *m, int B, int T) {
    if (a->B == B && a->T == T) return;
    a->B = B;
    a->T = T;
    a->N = B * T;
    plan p = {0, a->slab};
    plan_acts(m, a, &p);
}

void llama_acts_free(llama_acts *a) {
    if (!a) return;
    free(a->slab);
    free(a->layers);
    free(a);
}

void llama_acts_default_pos(llama_acts *a) {
    for (int i = 0; i < a->N; i++) {
        a->pos[i] = i % a->T;
        a->seg[i] = 0;
    }
}

void model_weights_view(const hn_model *m, float *slab, model_weights *w, layer_weights *layers) {
    const model_weights *src = &m->w;
    #define V(p) ((p) ? slab + ((p) - m->slab) : NULL)
    w->tok_emb = V(src->tok_emb);
    w->pos_emb = V(src->pos_emb);
    w->final_norm = V(src->final_norm);
    w->final_norm_b = V(src->final_norm_b);
    w->lm_head = V(src->lm_head);
    w->layers = layers;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const layer_weights *s = &src->layers[l];
        layer_weights *d = &layers[l];
        #define HN_LW_VIEW(f) d->f = V(s->f);
        LAYER_WEIGHT_FIELDS(HN_LW_VIEW)
        #undef HN_LW_VIEW
    }
    #undef V
}

/* ---- linear layer: y (+)= x W^T + b + scale * (x A^T) B^T ----
 * W is (out, in), or (in, out) for a Conv1D model (conv). */
typedef struct linear {
    const float *W, *b;
    int out, in;
    bool conv;
    const lora_set *lo;
    const lora_pair *lp; /* NULL or A == NULL: no adapter */
    float *tmp;          /* (N, r) saved x A^T */
    /* LoRA dropout on the adapter's input (PEFT's lora_dropout), or p == 0 */
    float p;
    uint64_t seed;
    uint8_t *mask;       /* keep-bits, written by the forward pass */
    float *xd, *dxd;     /* (N, in) scratch */
    uint64_t wver;       /* m->weights_version: W's bf16 copy may be cached */
} linear;

static linear lin(const hn_model *m, const lora_set *lo, layer_acts *la, int l, int target,
                  const float *W, const float *b, int out, int in) {
    bool drop = lo && la->drop_p > 0 && la->lora_mask[target];
    return (linear){W, b, out, in, model_arch_traits(m->cfg.arch).conv1d, lo,
                    lo ? &lo->pairs[l][target] : NULL, la->lora_tmp[target],
                    drop ? la->drop_p : 0.0f,
                    la->drop_seed ^ ((uint64_t)(l * LORA_N_TARGETS + target) << 40),
                    la->lora_mask[target], la->lora_xd, la->lora_dxd, m->weights_version};
}

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Draws the keep-bits (probability 1-p) of an (N, in) input, row by row from
 * counter-based streams, so a mask depends only on (seed, row). */
static void dropout_mask(const linear *L, int N) {
    uint32_t thr = (uint32_t)((double)L->p * 4294967296.0);
    #pragma omp parallel for if ((long)N * L->in > 65536)
    for (int i = 0; i < N; i++) {
        uint64_t s = mix64(L->seed ^ (uint64_t)i * 0x9e3779b97f4a7c15ULL);
        size_t bit0 = (size_t)i * L->in;
        for (int j = 0; j < L->in; j++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t b = bit0 + (size_t)j;
            uint8_t keep = (uint32_t)(s >> 32) >= thr;
            if (keep) L->mask[b >> 3] |= (uint8_t)(1u << (b & 7));
            else L->mask[b >> 3] &= (uint8_t)~(1u << (b & 7));
        }
    }
}

/* out = src masked and scaled by 1/(1-p) (inverted dropout, as PyTorch);
 * accumulate: out += instead of =. */
static void dropout_apply(const linear *L, float *out, const float *src, int N, bool accumulate) {
    float k = 1.0f / (1.0f - L->p);
    size_t n = (size_t)N * L->in;
    for (size_t b = 0; b < n; b++) {
        float v = (L->mask[b >> 3] >> (b & 7) & 1) ? src[b] * k : 0.0f;
        out[b] = accumulate ? out[b] + v : v;
    }
}

static void linear_forward(const linear *L, float *y, const float *x, int N, bool acc) {
    /* a Conv1D weight is (in, out): y = x W, the shape gemm_xw_w computes */
    if (L->conv) gemm_xw_w(N, L->in, L->out, x, L->W, L->wver, y, acc);
    else gemm_xwt_w(N, L->out, L->in, x, L->W, L->wver, y, acc);
    if (L->b) bias_forward(y, L->b, N, L->out);
    if (!L->lp || !L->lp->A) return;
    int r = L->lo->rank;
    if (L->p > 0) { /* the adapter sees a dropped-out copy of x */
        dropout_mask(L, N);
        dropout_apply(L, L->xd, x, N, false);
        x = L->xd;
    }
    gemm_xwt(N, r, L->in, x, L->lp->A, L->tmp, false);
    gemm_f32(false, true, N, L->out, r, L->lo->scale, L->tmp, r, L->lp->B, r, 1.0f, y, L->out);
}

/* dx += dy W (+ LoRA path); dW += dy^T x and db += colsum(dy) when given;
 * LoRA grads into g. */
static void linear_backward(const linear *L, float *dx, float *dW, float *db, const float *dy,
                            const float *x, int N, lora_pair *g, float *dtmp) {
    int out = L->out, in = L->in;
    if (dW && L->conv) gemm_f32(true, false, in, out, N, 1.0f, x, in, dy, out, 1.0f, dW, out);
    else if (dW) gemm_dw(N, out, in, dy, x, dW, true);
    if (db) bias_backward(db, dy, N, out);
    if (L->conv) gemm_xwt_w(N, in, out, dy, L->W, L->wver, dx, true);
    else gemm_xw_w(N, out, in, dy, L->W, L->wver, dx, true);
    if (!L->lp || !L->lp->A) return;
    int r = L->lo->rank;
    if (g) gemm_f32(true, false, out, r, N, L->lo->scale, dy, out, L->tmp, r, 1.0f, g->B, r);
    gemm_f32(false, false, N, r, out, L->lo->scale, dy, out, L->lp->B, r, 0.0f, dtmp, r);
    if (L->p > 0) { /* through the forward pass's mask */
        dropout_apply(L, L->xd, x, N, false);
        if (g) gemm_dw(N, r, in, dtmp, L->xd, g->A, true);
        gemm_xw(N, r, in, dtmp, L->lp->A, L->dxd, false);
        dropout_apply(L, dx, L->dxd, N, true);
        return;
    }
    if (g) gemm_dw(N, r, in, dtmp, x, g->A, true);
    gemm_xw(N, r, in, dtmp, L->lp->A, dx, true);
}

/* ---- norms: RMSNorm, or LayerNorm with bias (GPT-2) ---- */

static void norm_forward(const hn_model *m, float *out, float *mean, float *rstd, const float *x,
                         const float *w, const float *b, int N) {
    const model_config *c = &m->cfg;
    if (b) layernorm_forward(out, mean, rstd, x, w, b, N, c->dim, c->norm_eps);
    else rmsnorm_forward(out, rstd, x, w, N, c->dim, c->norm_eps);
}

static void norm_backward(const hn_model *m, float *dx, float *dw, float *db, const float *dout,
                          const float *x, const float *w, bool layernorm, const float *mean,
                          const float *rstd, int N) {
    if (layernorm) layernorm_backward(dx, dw, db, dout, x, w, mean, rstd, N, m->cfg.dim);
    else rmsnorm_backward(dx, dw, dout, x, w, rstd, N, m->cfg.dim);
}

/* ---- q, k, v projections ----
 * Writes la->q (N, qd) and knew/vnew (N, kvd), before RoPE. */
static void qkv_forward(const hn_model *m, const lora_set *lo, int l, layer_acts *la, int N,
                        float *knew, float *vnew) {
    const model_config *c = &m->cfg;
    model_traits tr = model_arch_traits(c->arch);
    const layer_weights *w = &m->w.layers[l];
    int D = c->dim, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    if (tr.fused_qkv) {
        int W3 = qd + 2 * kvd;
        linear L = lin(m, lo, la, l, LORA_QKV, w->wqkv, w->bqkv, W3, D);
        linear_forward(&L, la->qkv, la->xn1, N, false);
        for (int i = 0; i < N; i++) {
            const float *row = la->qkv + (size_t)i * W3;
            memcpy(la->q + (size_t)i * qd, row, sizeof(float) * qd);
            memcpy(knew + (size_t)i * kvd, row + qd, sizeof(float) * kvd);
            memcpy(vnew + (size_t)i * kvd, row + qd + kvd, sizeof(float) * kvd);
        }
        return;
    }
    linear Lq = lin(m, lo, la, l, LORA_Q, w->wq, w->bq, qd, D);
    linear Lk = lin(m, lo, la, l, LORA_K, w->wk, w->bk, kvd, D);
    linear Lv = lin(m, lo, la, l, LORA_V, w->wv, w->bv, kvd, D);
    linear_forward(&Lq, tr.qk_norm ? la->qraw : la->q, la->xn1, N, false);
    linear_forward(&Lk, tr.qk_norm ? la->kraw : knew, la->xn1, N, false);
    linear_forward(&Lv, vnew, la->xn1, N, false);
    if (tr.qk_norm) { /* per-head RMSNorm: rows of head_dim */
        rmsnorm_forward(la->q, la->rstdq, la->qraw, w->q_norm, N * c->n_heads, hd, c->norm_eps);
        rmsnorm_forward(knew, la->rstdk, la->kraw, w->k_norm, N * c->n_kv_heads, hd, c->norm_eps);
    }
}

/* a->dq, a->dk, a->dv (before RoPE) -> dxn += d(xn1); weight grads. */
static void qkv_backward(const hn_model *m, const lora_set *lo, int l, llama_acts *a,
                         layer_weights *gw, lora_pair **gp) {
    const model_config *c = &m->cfg;
    model_traits tr = model_arch_traits(c->arch);
    const layer_weights *w = &m->w.layers[l];
    layer_acts *la = &a->layers[l];
    int N = a->N, D = c->dim, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    #define GW(f) (gw ? gw->f : NULL)
    if (tr.fused_qkv) {
        int W3 = qd + 2 * kvd;
        for (int i = 0; i < N; i++) {
            float *row = a->dqkv + (size_t)i * W3;
            memcpy(row, a->dq + (size_t)i * qd, sizeof(float) * qd);
            memcpy(row + qd, a->dk + (size_t)i * kvd, sizeof(float) * kvd);
            memcpy(row + qd + kvd, a->dv + (size_t)i * kvd, sizeof(float) * kvd);
        }
        linear L = lin(m, lo, la, l, LORA_QKV, w->wqkv, w->bqkv, W3, D);
        linear_backward(&L, a->dxn, GW(wqkv), GW(bqkv), a->dqkv, la->xn1, N, gp[LORA_QKV], a->dtmp);
        return;
    }
    float *dq = a->dq, *dk = a->dk;
    if (tr.qk_norm) {
        memset(a->dqraw, 0, sizeof(float) * N * qd);
        memset(a->dkraw, 0, sizeof(float) * N * kvd);
        rmsnorm_backward(a->dqraw, GW(q_norm), a->dq, la->qraw, w->q_norm, la->rstdq,
                         N * c->n_heads, hd);
        rmsnorm_backward(a->dkraw, GW(k_norm), a->dk, la->kraw, w->k_norm, la->rstdk,
                         N * c->n_kv_heads, hd);
        dq = a->dqraw;
        dk = a->dkraw;
    }
    linear Lq = lin(m, lo, la, l, LORA_Q, w->wq, w->bq, qd, D);
    linear Lk = lin(m, lo, la, l, LORA_K, w->wk, w->bk, kvd, D);
    linear Lv = lin(m, lo, la, l, LORA_V, w->wv, w->bv, kvd, D);
    linear_backward(&Lq, a->dxn, GW(wq), GW(bq), dq, la->xn1, N, gp[LORA_Q], a->dtmp);
    linear_backward(&Lk, a->dxn, GW(wk), GW(bk), dk, la->xn1, N, gp[LORA_K], a->dtmp);
    linear_backward(&Lv, a->dxn, GW(wv), GW(bv), a->dv, la->xn1, N, gp[LORA_V], a->dtmp);
    #undef GW
}

/* ---- MLP: SwiGLU (gate, up, down) or GELU (up, down) ---- */

/* x_out = xmid + down(act(xn2)) */
static void mlp_forward(const hn_model *m, const lora_set *lo, int l, layer_acts *la, int N,
                        float *x_out) {
    const model_config *c = &m->cfg;
    const layer_weights *w = &m->w.layers[l];
    int D = c->dim, F = c->hidden_dim;
    linear Lu = lin(m, lo, la, l, LORA_UP, w->w_up, w->b_up, F, D);
    linear Ld = lin(m, lo, la, l, LORA_DOWN, w->w_down, w->b_down, D, F);
    linear_forward(&Lu, la->u, la->xn2, N, false);
    if (model_arch_traits(c->arch).gelu) {
        gelu_forward(la->h, la->u, (long)N * F);
    } else {
        linear Lg = lin(m, lo, la, l, LORA_GATE, w->w_gate, NULL, F, D);
        linear_forward(&Lg, la->g, la->xn2, N, false);
        swiglu_forward(la->h, la->g, la->u, (long)N * F);
    }
    memcpy(x_out, la->xmid, sizeof(float) * N * D);
    linear_forward(&Ld, x_out, la->h, N, true);
}

/* a->dres = d(x_out) -> a->dxn = d(xn2) (set); weight grads. */
static void mlp_backward(const hn_model *m, const lora_set *lo, int l, llama_acts *a,
                         layer_weights *gw, lora_pair **gp) {
    const model_config *c = &m->cfg;
    const layer_weights *w = &m->w.layers[l];
    layer_acts *la = &a->layers[l];
    int N = a->N, D = c->dim, F = c->hidden_dim;
    #define GW(f) (gw ? gw->f : NULL)
    linear Lu = lin(m, lo, la, l, LORA_UP, w->w_up, w->b_up, F, D);
    linear Ld = lin(m, lo, la, l, LORA_DOWN, w->w_down, w->b_down, D, F);
    memset(a->dh, 0, sizeof(float) * N * F);
    linear_backward(&Ld, a->dh, GW(w_down), GW(b_down), a->dres, la->h, N, gp[LORA_DOWN], a->dtmp);
    memset(a->dxn, 0, sizeof(float) * N * D);
    if (model_arch_traits(c->arch).gelu) {
        gelu_backward(a->du, a->dh, la->u, (long)N * F);
    } else {
        swiglu_backward(a->dg, a->du, a->dh, la->g, la->u, (long)N * F);
        linear Lg = lin(m, lo, la, l, LORA_GATE, w->w_gate, NULL, F, D);
        linear_backward(&Lg, a->dxn, GW(w_gate), NULL, a->dg, la->xn2, N, gp[LORA_GATE], a->dtmp);
    }
    linear_backward(&Lu, a->dxn, GW(w_up), GW(b_up), a->du, la->xn2, N, gp[LORA_UP], a->dtmp);
    #undef GW
}

/* ---- one transformer block ----
 * x_in (N, D) -> x_out (N, D). Keys/values: for training kc/vc are la->k/la->v
 * (N rows, pos0 = 0, sequence b at rows b*T); for inference (B = 1) they are
 * the layer's cache and the T new rows are written at pos0. */
static void block_forward(const hn_model *m, const lora_set *lo, int l, layer_acts *la,
                          const float *x_in, float *x_out, int B, int T, int pos0,
                          const int32_t *pos, const int32_t *seg, float *kc, float *vc,
                          const float *rope_cos, const float *rope_sin, float *ws, size_t ws_n) {
    const model_config *c = &m->cfg;
    const layer_weights *w = &m->w.layers[l];
    int N = B * T, D = c->dim, Hq = c->n_heads, Hkv = c->n_kv_heads;
    int hd = c->head_dim, qd = Hq * hd, kvd = Hkv * hd;
    float *knew = kc + (size_t)pos0 * kvd, *vnew = vc + (size_t)pos0 * kvd;

    norm_forward(m, la->xn1, la->mean1, la->rstd1, x_in, w->attn_norm, w->attn_norm_b, N);
    qkv_forward(m, lo, l, la, N, knew, vnew);
    if (rope_cos) {
        rope_forward(la->q, pos, N, Hq, hd, rope_cos, rope_sin);
        rope_forward(knew, pos, N, Hkv, hd, rope_cos, rope_sin);
    }
    /* all B sequences in one call (one parallel region; inference: B = 1 and
     * k/v are the cache rows 0..pos0+T-1). Cannot fail: ws is planned with
     * attention_ws_floats and the shape is the model's. */
    attn_shape as = {B, T, pos0 + T, pos0, Hq, Hkv, hd, seg};
    (void)attention_forward(&as, la->ao, la->lse, la->q, kc, vc, ws, ws_n);
    memcpy(la->xmid, x_in, sizeof(float) * N * D);
    linear Lo = lin(m, lo, la, l, LORA_O, w->wo, w->bo, D, qd);
    linear_forward(&Lo, la->xmid, la->ao, N, true);

    norm_forward(m, la->xn2, la->mean2, la->rstd2, la->xmid, w->ffn_norm, w->ffn_norm_b, N);
    mlp_forward(m, lo, l, la, N, x_out);
}

/* dres: on entry d(loss)/d(x_out), on return d(loss)/d(x_in). */
static void block_backward(const hn_model *m, const lora_set *lo, int l, llama_acts *a,
                           const float *x_in, layer_weights *gw, lora_set *lg,
                           const float *rope_cos, const float *rope_sin) {
    const model_config *c = &m->cfg;
    bool ln = model_arch_traits(c->arch).layernorm;
    const layer_weights *w = &m->w.layers[l];
    layer_acts *la = &a->layers[l];
    int B = a->B, T = a->T, N = a->N, D = c->dim;
    int Hq = c->n_heads, Hkv = c->n_kv_heads, hd = c->head_dim, qd = Hq * hd;
    lora_pair *gp[LORA_N_TARGETS] = {0};
    for (int t = 0; lg && t < LORA_N_TARGETS; t++) gp[t] = &lg->pairs[l][t];
    #define GW(f) (gw ? gw->f : NULL)

    mlp_backward(m, lo, l, a, gw, gp);
    norm_backward(m, a->dres, GW(ffn_norm), GW(ffn_norm_b), a->dxn, la->xmid, w->ffn_norm, ln,
                  la->mean2, la->rstd2, N);

    /* attention: xmid = x_in + o(attn(q, k, v)) */
    memset(a->dao, 0, sizeof(float) * N * qd);
    linear Lo = lin(m, lo, la, l, LORA_O, w->wo, w->bo, D, qd);
    linear_backward(&Lo, a->dao, GW(wo), GW(bo), a->dres, la->ao, N, gp[LORA_O], a->dtmp);
    attn_shape as = {B, T, T, 0, Hq, Hkv, hd, a->seg}; /* recomputes P from lse: no T x T saved */
    (void)attention_backward(&as, a->dq, a->dk, a->dv, a->dao, la->ao, la->lse, la->q, la->k, la->v,
                             a->att_ws, a->att_ws_n);
    if (rope_cos) {
        rope_backward(a->dq, a->pos, N, Hq, hd, rope_cos, rope_sin);
        rope_backward(a->dk, a->pos, N, Hkv, hd, rope_cos, rope_sin);
    }
    memset(a->dxn, 0, sizeof(float) * N * D);
    qkv_backward(m, lo, l, a, gw, gp);
    norm_backward(m, a->dres, GW(attn_norm), GW(attn_norm_b), a->dxn, x_in, w->attn_norm, ln,
                  la->mean1, la->rstd1, N);
    #undef GW
}

/* ---- rope tables are per model; cached lazily (read-only after creation) ---- */

typedef struct rope_cache {
    int hd;
    float theta;
    int max_pos;
    uint64_t freqs_key; /* hash of m->rope_freqs (0: none) */
    float *cos_t, *sin_t;
} rope_cache;

static _Thread_local rope_cache g_rope;

static uint64_t freqs_key(const hn_model *m) {
    if (!m->rope_freqs) return 0;
    uint64_t h = 1469598103934665603ULL;
    const uint32_t *w = (const uint32_t *)m->rope_freqs;
    for (int i = 0; i < m->cfg.head_dim / 2; i++) h = (h ^ w[i]) * 1099511628211ULL;
    return h | 1;
}

/* Frequency divisors (llama3 scaling): angle = pos * theta^(-2i/hd) / div_i. */
static void rope_tables_scaled(float *cos_t, float *sin_t, int max_pos, int hd, float theta,
                               const float *div) {
    int half = hd / 2;
    for (int i = 0; i < half; i++) {
        double f = pow(theta, -2.0 * i / hd) / div[i];
        for (int p = 0; p < max_pos; p++) {
            cos_t[(size_t)p * half + i] = (float)cos(p * f);
            sin_t[(size_t)p * half + i] = (float)sin(p * f);
        }
    }
}

/* NULL tables for models without RoPE (learned positions). */
static void rope_get(const hn_model *m, int need, const float **c, const float **s) {
    *c = *s = NULL;
    if (!model_arch_traits(m->cfg.arch).rope) return;
    int max_pos = m->cfg.max_seq_len > need ? m->cfg.max_seq_len : need;
    uint64_t key = freqs_key(m);
    if (g_rope.hd != m->cfg.head_dim || g_rope.theta != m->cfg.rope_theta ||
        g_rope.max_pos < max_pos || g_rope.freqs_key != key) {
        free(g_rope.cos_t);
        free(g_rope.sin_t);
        size_t n = (size_t)max_pos * (m->cfg.head_dim / 2);
        g_rope.cos_t = malloc(n * sizeof(float));
        g_rope.sin_t = malloc(n * sizeof(float));
        if (m->rope_freqs)
            rope_tables_scaled(g_rope.cos_t, g_rope.sin_t, max_pos, m->cfg.head_dim,
                               m->cfg.rope_theta, m->rope_freqs);
        else
            rope_tables(g_rope.cos_t, g_rope.sin_t, max_pos, m->cfg.head_dim, m->cfg.rope_theta);
        g_rope.hd = m->cfg.head_dim;
        g_rope.theta = m->cfg.rope_theta;
        g_rope.max_pos = max_pos;
        g_rope.freqs_key = key;
    }
    *c = g_rope.cos_t;
    *s = g_rope.sin_t;
}

/* ---- embeddings: token rows (+ learned position rows) ---- */

/* lo: trainable token rows add their deltas (NULL at inference, where an
 * adapter is merged). */
static void embed_forward(const hn_model *m, const lora_set *lo, float *x, const int32_t *ids,
                          const int32_t *pos, int N) {
    int D = m->cfg.dim;
    for (int i = 0; i < N; i++) {
        float *dst = x + (size_t)i * D;
        memcpy(dst, m->w.tok_emb + (size_t)ids[i] * D, sizeof(float) * D);
        int k = lo && lo->n_tok ? lora_token_index(lo, ids[i]) : -1;
        for (int j = 0; k >= 0 && j < D; j++) dst[j] += lo->tok_emb[(size_t)k * D + j];
        if (!m->w.pos_emb) continue;
        const float *pe = m->w.pos_emb + (size_t)pos[i] * D;
        for (int j = 0; j < D; j++) dst[j] += pe[j];
    }
}

static void embed_backward(const hn_model *m, const model_weights *gw, const float *dx,
                           const int32_t *ids, const int32_t *pos, int N) {
    int D = m->cfg.dim;
    for (int i = 0; i < N; i++) {
        const float *src = dx + (size_t)i * D;
        float *dt = gw->tok_emb + (size_t)ids[i] * D;
        for (int j = 0; j < D; j++) dt[j] += src[j];
        if (!gw->pos_emb) continue;
        float *dp = gw->pos_emb + (size_t)pos[i] * D;
        for (int j = 0; j < D; j++) dp[j] += src[j];
    }
}

/* Embedding-row delta grads: the rows of dx at the trainable ids. */
static void embed_backward_tokens(const hn_model *m, const lora_set *lo, lora_set *lg,
                                  const float *dx, const int32_t *ids, int N) {
    int D = m->cfg.dim;
    for (int i = 0; i < N; i++) {
        int k = lora_token_index(lo, ids[i]);
        if (k < 0) continue;
        float *g = lg->tok_emb + (size_t)k * D;
        const float *src = dx + (size_t)i * D;
        for (int j = 0; j < D; j++) g[j] += src[j];
    }
}

/* ---- training forward / loss / backward ---- */

void llama_forward(const hn_model *m, const lora_set *lo, llama_acts *a, const int32_t *ids) {
    const model_config *c = &m->cfg;
    int N = a->N, D = c->dim;
    const float *rc, *rs;
    rope_get(m, a->T, &rc, &rs);
    embed_forward(m, lo, a->res, ids, a->pos, N);
    for (int l = 0; l < c->n_layers; l++) {
        layer_acts *la = &a->layers[l];
        la->drop_p = lo ? a->lora_dropout : 0.0f;
        la->drop_seed = mix64(a->dropout_seed);
        block_forward(m, lo, l, la, a->res + (size_t)l * N * D, a->res + (size_t)(l + 1) * N * D,
                      a->B, a->T, 0, a->pos, a->seg, la->k, la->v, rc, rs, a->att_ws,
                      a->att_ws_n);
    }
    norm_forward(m, a->xnf, a->meanf, a->rstdf, a->res + (size_t)c->n_layers * N * D,
                 m->w.final_norm, m->w.final_norm_b, N);
}

void llama_logits(const hn_model *m, llama_acts *a, float *out) {
    gemm_xwt_w(a->N, m->cfg.vocab_size, m->cfg.dim, a->xnf, m->w.lm_head, m->weights_version, out,
               false);
}

/* The lm_head-row deltas of trainable tokens (the embedding deltas when tied). */
static const float *head_deltas(const lora_set *lo) {
    return lo && lo->n_tok ? (lo->tok_head ? lo->tok_head : lo->tok_emb) : NULL;
}

/* logits[i, id_k] += x_i . delta_k for the n gathered rows: a few columns,
 * not a V-sized pass. */
static void head_tokens_forward(const hn_model *m, const lora_set *lo, const float *x,
                                float *logits, int n) {
    const float *hd = head_deltas(lo);
    int D = m->cfg.dim, V = m->cfg.vocab_size;
    for (int k = 0; hd && k < lo->n_tok; k++)
        for (int i = 0; i < n; i++) {
            const float *xi = x + (size_t)i * D, *d = hd + (size_t)k * D;
            float acc = 0;
            for (int j = 0; j < D; j++) acc += xi[j] * d[j];
            logits[(size_t)i * V + lo->tok_ids[k]] += acc;
        }
}

/* With dlogits in logits: g_k += sum_i dlogits[i, id_k] x_i (when lg), and
 * dx_i += dlogits[i, id_k] delta_k (when dx). */
static void head_tokens_backward(const hn_model *m, const lora_set *lo, lora_set *lg,
                                 const float *x, const float *dlogits, float *dx, int n) {
    const float *hd = head_deltas(lo);
    float *g = lg && lg->n_tok ? (lg->tok_head ? lg->tok_head : lg->tok_emb) : NULL;
    int D = m->cfg.dim, V = m->cfg.vocab_size;
    for (int k = 0; hd && k < lo->n_tok; k++)
        for (int i = 0; i < n; i++) {
            float dl = dlogits[(size_t)i * V + lo->tok_ids[k]];
            for (int j = 0; g && j < D; j++) g[(size_t)k * D + j] += dl * x[(size_t)i * D + j];
            for (int j = 0; dx && j < D; j++) dx[(size_t)i * D + j] += dl * hd[(size_t)k * D + j];
        }
}

/* Loss over one chunk of gathered rows; writes d(xnf) rows, dlm_head and the
 * token-row delta grads of lg. */
static void loss_chunk(const hn_model *m, const lora_set *lo, lora_set *lg, llama_acts *a, int n,
                       float *dlm_head, bool need_dx, llama_loss_stats *st,
                       const float *weights) {
    int D = m->cfg.dim, V = m->cfg.vocab_size;
    for (int i = 0; i < n; i++)
        memcpy(a->chunk_x + (size_t)i * D, a->xnf + (size_t)a->chunk_rows[i] * D, sizeof(float) * D);
    gemm_xwt_w(n, V, D, a->chunk_x, m->w.lm_head, m->weights_version, a->chunk_logits, false);
    head_tokens_forward(m, lo, a->chunk_x, a->chunk_logits, n);
    xent_forward_backward(a->chunk_logits, a->chunk_loss, a->chunk_ok, a->chunk_tgt,
                          a->chunk_scale, n, V);
    for (int i = 0; i < n; i++) {
        double w = weights[a->chunk_rows[i]];
        st->loss_sum += w * a->chunk_loss[i];
        st->weight_sum += w;
        st->n_trained++;
        st->n_correct += a->chunk_ok[i];
    }
    if (dlm_head) gemm_dw(n, V, D, a->chunk_logits, a->chunk_x, dlm_head, true);
    if (!need_dx) return;
    head_tokens_backward(m, lo, lg, a->chunk_x, a->chunk_logits, NULL, n);
    /* d(xnf) rows: dlogits @ (lm_head + deltas), written into the gathered rows of dxn */
    gemm_xw_w(n, V, D, a->chunk_logits, m->w.lm_head, m->weights_version, a->chunk_x, false);
    head_tokens_backward(m, lo, NULL, NULL, a->chunk_logits, a->chunk_x, n);
    for (int i = 0; i < n; i++)
        memcpy(a->dxn + (size_t)a->chunk_rows[i] * D, a->chunk_x + (size_t)i * D, sizeof(float) * D);
}

void llama_loss_backward(const hn_model *m, const lora_set *lo, llama_acts *a,
                         const int32_t *ids, const int32_t *targets, const float *weights,
                         float norm, float *grads, lora_set *lora_grads,
                         llama_loss_stats *st) {
    const model_config *c = &m->cfg;
    int N = a->N, D = c->dim, L = c->n_layers;
    bool backward = grads || lora_grads;
    model_weights gw;
    layer_weights *glayers = NULL;
    if (grads) {
        glayers = malloc(sizeof *glayers * (size_t)L); /* small, once per call */
        model_weights_view(m, grads, &gw, glayers);
    }
    memset(st, 0, sizeof *st);
    if (backward) memset(a->dxn, 0, sizeof(float) * N * D);
    int n = 0;
    for (int i = 0; i <= N; i++) {
        if (i < N && weights[i] > 0.0f) {
            a->chunk_rows[n] = i;
            a->chunk_tgt[n] = targets[i];
            a->chunk_scale[n] = weights[i] * norm;
            n++;
        }
        if (n == a->loss_chunk || (i == N && n > 0)) {
            loss_chunk(m, lo, lora_grads, a, n, grads ? gw.lm_head : NULL, backward, st, weights);
            n = 0;
        }
    }
    if (!backward) return;
    const float *rc, *rs;
    rope_get(m, a->T, &rc, &rs);
    memset(a->dres, 0, sizeof(float) * N * D);
    norm_backward(m, a->dres, grads ? gw.final_norm : NULL, grads ? gw.final_norm_b : NULL,
                  a->dxn, a->res + (size_t)L * N * D, m->w.final_norm,
                  model_arch_traits(c->arch).layernorm, a->meanf, a->rstdf, N);
    for (int l = L - 1; l >= 0; l--) {
        /* the shared buffers hold the last layer's forward; rerun the others */
        if (a->recompute && l < L - 1)
            block_forward(m, lo, l, &a->layers[l], a->res + (size_t)l * N * D,
                          a->res + (size_t)(l + 1) * N * D, a->B, a->T, 0, a->pos, a->seg,
                          a->layers[l].k, a->layers[l].v, rc, rs, a->att_ws, a->att_ws_n);
        block_backward(m, lo, l, a, a->res + (size_t)l * N * D, grads ? &glayers[l] : NULL,
                       lora_grads, rc, rs);
    }
    if (grads) embed_backward(m, &gw, a->dres, ids, a->pos, N);
    if (lora_grads && lo && lo->n_tok) embed_backward_tokens(m, lo, lora_grads, a->dres, ids, N);
    free(glayers);
}

/* ---- inference with a KV cache ---- */

enum { INFER_CHUNK = 64 };

struct model_state {
    int max_seq, pos;
    float *kcache, *vcache; /* (L, max_seq, kvd) */
    layer_acts la;
    float *att_ws;          /* attention scratch (attention_ws_floats) */
    size_t att_ws_n;
    float *x, *x2;          /* (CH, D) residual ping-pong */
    int32_t *posv;
    float *logits;          /* (CH, V) */
    float *slab;
};

static void plan_state(const hn_model *m, model_state *s, plan *p) {
    const model_config *c = &m->cfg;
    size_t CH = INFER_CHUNK, D = c->dim, S = s->max_seq;
    size_t kvd = (size_t)c->n_kv_heads * c->head_dim;
    s->kcache = take(p, (size_t)c->n_layers * S * kvd);
    s->vcache = take(p, (size_t)c->n_layers * S * kvd);
    plan_layer(m, &s->la, p, CH, 0, false);
    s->att_ws = take(p, s->att_ws_n);
    s->x = take(p, CH * D);
    s->x2 = take(p, CH * D);
    s->posv = (int32_t *)take(p, CH);
    s->logits = take(p, CH * (size_t)c->vocab_size);
}

hn_status model_state_create(const hn_model *m, int max_seq, model_state **out, hn_err *err) {
    const model_config *c = &m->cfg;
    if (max_seq <= 0 || max_seq > c->max_seq_len) max_seq = c->max_seq_len;
    model_state *s = calloc(1, sizeof *s);
    if (!s) return hn_errf(err, HN_ENOMEM, "out of memory");
    s->max_seq = max_seq;
    s->att_ws_n = attention_ws_floats(c->head_dim, 0);
    plan p = {0, NULL};
    plan_state(m, s, &p);
    s->slab = hn_alloc_huge(p.n * sizeof(float));
    if (!s->slab) {
        free(s);
        return hn_errf(err, HN_ENOMEM, "out of memory for a %d-token KV cache", max_seq);
    }
    memset(s->slab, 0, p.n * sizeof(float));
    p = (plan){0, s->slab};
    plan_state(m, s, &p);
    *out = s;
    return HN_OK;
}

void model_state_free(model_state *s) {
    if (!s) return;
    free(s->slab);
    free(s);
}

void model_state_reset(model_state *s) { s->pos = 0; }

int model_state_pos(const model_state *s) { return s->pos; }

static void forward_chunk(const hn_model *m, model_state *s, const int32_t *ids, int T) {
    const model_config *c = &m->cfg;
    int D = c->dim, kvd = c->n_kv_heads * c->head_dim;
    size_t layer_cache = (size_t)s->max_seq * kvd;
    const float *rc, *rs;
    rope_get(m, s->max_seq, &rc, &rs);
    for (int t = 0; t < T; t++) s->posv[t] = s->pos + t;
    embed_forward(m, NULL, s->x, ids, s->posv, T);
    float *x = s->x, *y = s->x2;
    for (int l = 0; l < c->n_layers; l++) {
        block_forward(m, NULL, l, &s->la, x, y, 1, T, s->pos, s->posv, NULL,
                      s->kcache + l * layer_cache, s->vcache + l * layer_cache, rc, rs, s->att_ws,
                      s->att_ws_n);
        float *t = x;
        x = y;
        y = t;
    }
    norm_forward(m, y, NULL, NULL, x, m->w.final_norm, m->w.final_norm_b, T);
    s->pos += T;
    memcpy(s->x, y, sizeof(float) * T * D); /* final normed rows in s->x */
}

hn_status model_forward(const hn_model *m, model_state *s, const int32_t *ids, int n,
                        float *all_logits, const float **last_logits, hn_err *err) {
    const model_config *c = &m->cfg;
    if (n <= 0) return hn_errf(err, HN_EINVAL, "model_forward: no tokens");
    if (s->pos + n > s->max_seq)
        return hn_errf(err, HN_EINVAL, "context full: %d + %d tokens exceed %d", s->pos, n,
                       s->max_seq);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return hn_errf(err, HN_EINVAL, "token id %d out of range", ids[i]);
    int V = c->vocab_size, D = c->dim;
    for (int done = 0; done < n;) {
        int T = n - done < INFER_CHUNK ? n - done : INFER_CHUNK;
        forward_chunk(m, s, ids + done, T);
        if (all_logits)
            gemm_xwt_w(T, V, D, s->x, m->w.lm_head, m->weights_version,
                       all_logits + (size_t)done * V, false);
        done += T;
        if (done == n)
            gemm_xwt_w(1, V, D, s->x + (size_t)(T - 1) * D, m->w.lm_head, m->weights_version,
                       s->logits, false);
    }
    if (last_logits) *last_logits = s->logits;
    return HN_OK;
}
