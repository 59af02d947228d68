/* llama.c — Llama forward/backward (RMSNorm, RoPE, GQA attention, SwiGLU,
 * tied or untied classifier), LoRA on the linear layers, the chunked
 * cross-entropy loss, and KV-cached inference. Each block's forward is beside
 * its backward; shapes are in comments (N = B*T rows, D = dim, F = hidden). */
#include "model/llama.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/gemm.h"
#include "tensor/ops.h"

/* ---- planning ---- */

typedef struct plan {
    size_t n;
    float *base;
} plan;

/* Two passes over the same code: first counts (base == NULL), then assigns. */
static float *take(plan *p, size_t n) {
    float *r = p->base ? p->base + p->n : NULL;
    p->n += (n + 15) & ~(size_t)15; /* 64-byte alignment of every buffer */
    return r;
}

static void plan_acts(const hn_model *m, llama_acts *a, plan *p) {
    const model_config *c = &m->cfg;
    size_t N = (size_t)a->N, D = c->dim, F = c->hidden_dim, V = c->vocab_size;
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    size_t r = (size_t)a->lora_rank, CH = LLAMA_LOSS_CHUNK;
    a->res = take(p, (size_t)(c->n_layers + 1) * N * D);
    for (int l = 0; l < c->n_layers; l++) {
        layer_acts *la = &a->layers[l];
        la->xn1 = take(p, N * D);
        la->rstd1 = take(p, N);
        la->q = take(p, N * qd);
        la->k = take(p, N * kvd);
        la->v = take(p, N * kvd);
        la->att = take(p, (size_t)a->B * c->n_heads * a->T * a->T);
        la->ao = take(p, N * qd);
        la->xmid = take(p, N * D);
        la->xn2 = take(p, N * D);
        la->rstd2 = take(p, N);
        la->g = take(p, N * F);
        la->u = take(p, N * F);
        la->h = take(p, N * F);
        for (int t = 0; t < LORA_N_TARGETS; t++) la->lora_tmp[t] = r ? take(p, N * r) : NULL;
    }
    a->xnf = take(p, N * D);
    a->rstdf = take(p, N);
    size_t wide = qd > F ? qd : F;
    a->dres = take(p, N * D);
    a->dxn = take(p, N * D);
    a->dq = take(p, N * qd);
    a->dk = take(p, N * kvd);
    a->dv = take(p, N * kvd);
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
}

hn_status llama_acts_create(const hn_model *m, int B, int T, int lora_rank, llama_acts **out,
                            hn_err *err) {
    llama_acts *a = calloc(1, sizeof *a);
    if (!a) return hn_errf(err, HN_ENOMEM, "out of memory");
    a->B = B;
    a->T = T;
    a->N = B * T;
    a->lora_rank = lora_rank;
    a->layers = calloc((size_t)m->cfg.n_layers, sizeof *a->layers);
    plan p = {0, NULL};
    if (a->layers) plan_acts(m, a, &p);
    a->slab = a->layers ? aligned_alloc(64, p.n * sizeof(float)) : NULL;
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
    w->final_norm = V(src->final_norm);
    w->lm_head = V(src->lm_head);
    w->layers = layers;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const layer_weights *s = &src->layers[l];
        layer_weights *d = &layers[l];
        d->attn_norm = V(s->attn_norm);
        d->wq = V(s->wq);
        d->wk = V(s->wk);
        d->wv = V(s->wv);
        d->wo = V(s->wo);
        d->ffn_norm = V(s->ffn_norm);
        d->w_gate = V(s->w_gate);
        d->w_up = V(s->w_up);
        d->w_down = V(s->w_down);
    }
    #undef V
}

/* ---- linear layer with optional LoRA: y (+)= x W^T + scale * (x A^T) B^T ---- */

static void linear_forward(float *y, const float *x, int N, const float *W, int out, int in,
                           const lora_set *lo, const lora_pair *lp, float *tmp, bool acc) {
    gemm_xwt(N, out, in, x, W, y, acc);
    if (!lp || !lp->A) return;
    int r = lo->rank;
    gemm_xwt(N, r, in, x, lp->A, tmp, false);
    gemm_f32(false, true, N, out, r, lo->scale, tmp, r, lp->B, r, 1.0f, y, out);
}

/* dx += dy W (+ LoRA path); dW += dy^T x when dW; LoRA grads into g. */
static void linear_backward(float *dx, float *dW, const float *dy, const float *x, int N,
                            const float *W, int out, int in, const lora_set *lo,
                            const lora_pair *lp, const float *tmp, lora_pair *g, float *dtmp) {
    if (dW) gemm_dw(N, out, in, dy, x, dW, true);
    gemm_xw(N, out, in, dy, W, dx, true);
    if (!lp || !lp->A) return;
    int r = lo->rank;
    if (g) gemm_f32(true, false, out, r, N, lo->scale, dy, out, tmp, r, 1.0f, g->B, r);
    gemm_f32(false, false, N, r, out, lo->scale, dy, out, lp->B, r, 0.0f, dtmp, r);
    if (g) gemm_dw(N, r, in, dtmp, x, g->A, true);
    gemm_xw(N, r, in, dtmp, lp->A, dx, true);
}

static const lora_pair *pair_of(const lora_set *lo, int l, int t) {
    return lo ? &lo->pairs[l][t] : NULL;
}

/* ---- one transformer block ----
 * x_in (N, D) -> x_out (N, D). Keys/values: for training kc/vc are la->k/la->v
 * (N rows, pos0 = 0, sequence b at rows b*T); for inference (B = 1) they are
 * the layer's cache and the T new rows are written at pos0. */
static void block_forward(const hn_model *m, const lora_set *lo, int l, layer_acts *la,
                          const float *x_in, float *x_out, int B, int T, int pos0,
                          const int32_t *pos, const int32_t *seg, float *kc, float *vc,
                          const float *rope_cos, const float *rope_sin) {
    const model_config *c = &m->cfg;
    const layer_weights *w = &m->w.layers[l];
    int N = B * T, D = c->dim, F = c->hidden_dim, Hq = c->n_heads, Hkv = c->n_kv_heads;
    int hd = c->head_dim, qd = Hq * hd, kvd = Hkv * hd;
    float *knew = kc + (size_t)pos0 * kvd, *vnew = vc + (size_t)pos0 * kvd;
    float **tmp = la->lora_tmp;

    rmsnorm_forward(la->xn1, la->rstd1, x_in, w->attn_norm, N, D, c->norm_eps);
    linear_forward(la->q, la->xn1, N, w->wq, qd, D, lo, pair_of(lo, l, LORA_Q), tmp[LORA_Q], false);
    linear_forward(knew, la->xn1, N, w->wk, kvd, D, lo, pair_of(lo, l, LORA_K), tmp[LORA_K], false);
    linear_forward(vnew, la->xn1, N, w->wv, kvd, D, lo, pair_of(lo, l, LORA_V), tmp[LORA_V], false);
    rope_forward(la->q, pos, N, Hq, hd, rope_cos, rope_sin);
    rope_forward(knew, pos, N, Hkv, hd, rope_cos, rope_sin);
    for (int b = 0; b < B; b++) {
        size_t kvoff = B > 1 ? (size_t)b * T * kvd : 0;
        attention_forward(la->ao + (size_t)b * T * qd, la->att + (size_t)b * Hq * T * (pos0 + T),
                          la->q + (size_t)b * T * qd, kc + kvoff, vc + kvoff, T, pos0 + T, pos0,
                          Hq, Hkv, hd, seg ? seg + (size_t)b * T : NULL);
    }
    memcpy(la->xmid, x_in, sizeof(float) * N * D);
    linear_forward(la->xmid, la->ao, N, w->wo, D, qd, lo, pair_of(lo, l, LORA_O), tmp[LORA_O], true);

    rmsnorm_forward(la->xn2, la->rstd2, la->xmid, w->ffn_norm, N, D, c->norm_eps);
    linear_forward(la->g, la->xn2, N, w->w_gate, F, D, lo, pair_of(lo, l, LORA_GATE), tmp[LORA_GATE], false);
    linear_forward(la->u, la->xn2, N, w->w_up, F, D, lo, pair_of(lo, l, LORA_UP), tmp[LORA_UP], false);
    swiglu_forward(la->h, la->g, la->u, (long)N * F);
    memcpy(x_out, la->xmid, sizeof(float) * N * D);
    linear_forward(x_out, la->h, N, w->w_down, D, F, lo, pair_of(lo, l, LORA_DOWN), tmp[LORA_DOWN], true);
}

/* dres: on entry d(loss)/d(x_out), on return d(loss)/d(x_in). */
static void block_backward(const hn_model *m, const lora_set *lo, int l, llama_acts *a,
                           const float *x_in, layer_weights *gw, lora_set *lg,
                           const float *rope_cos, const float *rope_sin) {
    const model_config *c = &m->cfg;
    const layer_weights *w = &m->w.layers[l];
    layer_acts *la = &a->layers[l];
    int B = a->B, T = a->T, N = a->N, D = c->dim, F = c->hidden_dim;
    int Hq = c->n_heads, Hkv = c->n_kv_heads, hd = c->head_dim, qd = Hq * hd, kvd = Hkv * hd;
    float **tmp = la->lora_tmp;
    lora_pair *gp[LORA_N_TARGETS] = {0};
    for (int t = 0; lg && t < LORA_N_TARGETS; t++) gp[t] = &lg->pairs[l][t];
    #define GW(f) (gw ? gw->f : NULL)

    /* MLP: x_out = xmid + down(swiglu(gate(xn2), up(xn2))) */
    memset(a->dh, 0, sizeof(float) * N * F);
    linear_backward(a->dh, GW(w_down), a->dres, la->h, N, w->w_down, D, F, lo,
                    pair_of(lo, l, LORA_DOWN), tmp[LORA_DOWN], gp[LORA_DOWN], a->dtmp);
    swiglu_backward(a->dg, a->du, a->dh, la->g, la->u, (long)N * F);
    memset(a->dxn, 0, sizeof(float) * N * D);
    linear_backward(a->dxn, GW(w_gate), a->dg, la->xn2, N, w->w_gate, F, D, lo,
                    pair_of(lo, l, LORA_GATE), tmp[LORA_GATE], gp[LORA_GATE], a->dtmp);
    linear_backward(a->dxn, GW(w_up), a->du, la->xn2, N, w->w_up, F, D, lo,
                    pair_of(lo, l, LORA_UP), tmp[LORA_UP], gp[LORA_UP], a->dtmp);
    rmsnorm_backward(a->dres, GW(ffn_norm), a->dxn, la->xmid, w->ffn_norm, la->rstd2, N, D);

    /* attention: xmid = x_in + o(attn(q, k, v)) */
    memset(a->dao, 0, sizeof(float) * N * qd);
    linear_backward(a->dao, GW(wo), a->dres, la->ao, N, w->wo, D, qd, lo, pair_of(lo, l, LORA_O),
                    tmp[LORA_O], gp[LORA_O], a->dtmp);
    for (int b = 0; b < B; b++)
        attention_backward(a->dq + (size_t)b * T * qd, a->dk + (size_t)b * T * kvd,
                           a->dv + (size_t)b * T * kvd, a->dao + (size_t)b * T * qd,
                           la->att + (size_t)b * Hq * T * T, la->q + (size_t)b * T * qd,
                           la->k + (size_t)b * T * kvd, la->v + (size_t)b * T * kvd, T, Hq, Hkv, hd);
    rope_backward(a->dq, a->pos, N, Hq, hd, rope_cos, rope_sin);
    rope_backward(a->dk, a->pos, N, Hkv, hd, rope_cos, rope_sin);
    memset(a->dxn, 0, sizeof(float) * N * D);
    linear_backward(a->dxn, GW(wq), a->dq, la->xn1, N, w->wq, qd, D, lo, pair_of(lo, l, LORA_Q),
                    tmp[LORA_Q], gp[LORA_Q], a->dtmp);
    linear_backward(a->dxn, GW(wk), a->dk, la->xn1, N, w->wk, kvd, D, lo, pair_of(lo, l, LORA_K),
                    tmp[LORA_K], gp[LORA_K], a->dtmp);
    linear_backward(a->dxn, GW(wv), a->dv, la->xn1, N, w->wv, kvd, D, lo, pair_of(lo, l, LORA_V),
                    tmp[LORA_V], gp[LORA_V], a->dtmp);
    rmsnorm_backward(a->dres, GW(attn_norm), a->dxn, x_in, w->attn_norm, la->rstd1, N, D);
    #undef GW
}

/* ---- rope tables are per model; cached lazily (read-only after creation) ---- */

typedef struct rope_cache {
    int hd;
    float theta;
    int max_pos;
    float *cos_t, *sin_t;
} rope_cache;

static _Thread_local rope_cache g_rope;

static void rope_get(const hn_model *m, int need, const float **c, const float **s) {
    int max_pos = m->cfg.max_seq_len > need ? m->cfg.max_seq_len : need;
    if (g_rope.hd != m->cfg.head_dim || g_rope.theta != m->cfg.rope_theta ||
        g_rope.max_pos < max_pos) {
        free(g_rope.cos_t);
        free(g_rope.sin_t);
        size_t n = (size_t)max_pos * (m->cfg.head_dim / 2);
        g_rope.cos_t = malloc(n * sizeof(float));
        g_rope.sin_t = malloc(n * sizeof(float));
        rope_tables(g_rope.cos_t, g_rope.sin_t, max_pos, m->cfg.head_dim, m->cfg.rope_theta);
        g_rope.hd = m->cfg.head_dim;
        g_rope.theta = m->cfg.rope_theta;
        g_rope.max_pos = max_pos;
    }
    *c = g_rope.cos_t;
    *s = g_rope.sin_t;
}

/* ---- training forward / loss / backward ---- */

void llama_forward(const hn_model *m, const lora_set *lo, llama_acts *a, const int32_t *ids) {
    const model_config *c = &m->cfg;
    int N = a->N, D = c->dim;
    const float *rc, *rs;
    rope_get(m, a->T, &rc, &rs);
    for (int i = 0; i < N; i++)
        memcpy(a->res + (size_t)i * D, m->w.tok_emb + (size_t)ids[i] * D, sizeof(float) * D);
    for (int l = 0; l < c->n_layers; l++) {
        layer_acts *la = &a->layers[l];
        block_forward(m, lo, l, la, a->res + (size_t)l * N * D, a->res + (size_t)(l + 1) * N * D,
                      a->B, a->T, 0, a->pos, a->seg, la->k, la->v, rc, rs);
    }
    rmsnorm_forward(a->xnf, a->rstdf, a->res + (size_t)c->n_layers * N * D, m->w.final_norm, N, D,
                    c->norm_eps);
}

void llama_logits(const hn_model *m, llama_acts *a, float *out) {
    gemm_xwt(a->N, m->cfg.vocab_size, m->cfg.dim, a->xnf, m->w.lm_head, out, false);
}

/* Loss over one chunk of gathered rows; writes d(xnf) rows and dlm_head. */
static void loss_chunk(const hn_model *m, llama_acts *a, int n, float *dlm_head, bool need_dx,
                       llama_loss_stats *st, const float *weights) {
    int D = m->cfg.dim, V = m->cfg.vocab_size;
    for (int i = 0; i < n; i++)
        memcpy(a->chunk_x + (size_t)i * D, a->xnf + (size_t)a->chunk_rows[i] * D, sizeof(float) * D);
    gemm_xwt(n, V, D, a->chunk_x, m->w.lm_head, a->chunk_logits, false);
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
    /* d(xnf) rows: dlogits @ lm_head, written into the gathered rows of dxn */
    gemm_xw(n, V, D, a->chunk_logits, m->w.lm_head, a->chunk_x, false);
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
        if (n == LLAMA_LOSS_CHUNK || (i == N && n > 0)) {
            loss_chunk(m, a, n, grads ? gw.lm_head : NULL, backward, st, weights);
            n = 0;
        }
    }
    if (!backward) return;
    const float *rc, *rs;
    rope_get(m, a->T, &rc, &rs);
    memset(a->dres, 0, sizeof(float) * N * D);
    rmsnorm_backward(a->dres, grads ? gw.final_norm : NULL, a->dxn, a->res + (size_t)L * N * D,
                     m->w.final_norm, a->rstdf, N, D);
    for (int l = L - 1; l >= 0; l--)
        block_backward(m, lo, l, a, a->res + (size_t)l * N * D, grads ? &glayers[l] : NULL,
                       lora_grads, rc, rs);
    if (grads)
        for (int i = 0; i < N; i++) {
            float *dst = gw.tok_emb + (size_t)ids[i] * D;
            const float *src = a->dres + (size_t)i * D;
            for (int j = 0; j < D; j++) dst[j] += src[j];
        }
    free(glayers);
}

/* ---- inference with a KV cache ---- */

enum { INFER_CHUNK = 64 };

struct model_state {
    int max_seq, pos;
    float *kcache, *vcache; /* (L, max_seq, kvd) */
    layer_acts la;
    float *x, *x2;          /* (CH, D) residual ping-pong */
    int32_t *posv;
    float *logits;          /* (CH, V) */
    float *slab;
};

hn_status model_state_create(const hn_model *m, int max_seq, model_state **out, hn_err *err) {
    const model_config *c = &m->cfg;
    if (max_seq <= 0 || max_seq > c->max_seq_len) max_seq = c->max_seq_len;
    model_state *s = calloc(1, sizeof *s);
    if (!s) return hn_errf(err, HN_ENOMEM, "out of memory");
    size_t CH = INFER_CHUNK, D = c->dim, F = c->hidden_dim, V = c->vocab_size;
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    size_t L = c->n_layers, S = max_seq;
    size_t sizes[] = {L * S * kvd, L * S * kvd, CH * D, CH, CH * qd, CH * c->n_heads * S,
                      CH * qd, CH * D, CH * D, CH, CH * F, CH * F, CH * F, CH * D, CH * D,
                      CH, CH * V};
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) total += sizes[i];
    s->slab = calloc(total, sizeof(float));
    if (!s->slab) {
        free(s);
        return hn_errf(err, HN_ENOMEM, "out of memory for a %d-token KV cache", max_seq);
    }
    float *p = s->slab;
    float **dst[] = {&s->kcache, &s->vcache, &s->la.xn1, &s->la.rstd1, &s->la.q, &s->la.att,
                     &s->la.ao, &s->la.xmid, &s->la.xn2, &s->la.rstd2, &s->la.g, &s->la.u,
                     &s->la.h, &s->x, &s->x2, (float **)&s->posv, &s->logits};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        *dst[i] = p;
        p += sizes[i];
    }
    s->max_seq = max_seq;
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
    for (int t = 0; t < T; t++) {
        memcpy(s->x + (size_t)t * D, m->w.tok_emb + (size_t)ids[t] * D, sizeof(float) * D);
        s->posv[t] = s->pos + t;
    }
    float *x = s->x, *y = s->x2;
    for (int l = 0; l < c->n_layers; l++) {
        block_forward(m, NULL, l, &s->la, x, y, 1, T, s->pos, s->posv, NULL,
                      s->kcache + l * layer_cache, s->vcache + l * layer_cache, rc, rs);
        float *t = x;
        x = y;
        y = t;
    }
    rmsnorm_forward(y, NULL, x, m->w.final_norm, T, D, c->norm_eps);
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
            gemm_xwt(T, V, D, s->x, m->w.lm_head, all_logits + (size_t)done * V, false);
        done += T;
        if (done == n) gemm_xwt(1, V, D, s->x + (size_t)(T - 1) * D, m->w.lm_head, s->logits, false);
    }
    if (last_logits) *last_logits = s->logits;
    return HN_OK;
}
