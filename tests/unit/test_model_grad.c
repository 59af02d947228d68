/* test_model_grad.c — finite-difference checks of whole tiny random models of
 * every architecture (Llama tied/untied with GQA, Qwen2 with q/k/v biases,
 * Qwen3 with q/k-norm and head_dim != dim/heads, GPT-2 with LayerNorm, GELU,
 * fused Conv1D q/k/v and learned positions), each with one packed row: every
 * full fine-tuning gradient, every LoRA gradient and the gradients of
 * trainable token rows (embedding and, untied, lm_head deltas; zero deltas
 * leave the loss bit-identical); and of the LayerNorm, GELU and bias kernels
 * those architectures add. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "model/llama.h"
#include "tensor/norm_act.h"
#include "test.h"

static hn_rng rng;

static void fill(float *x, size_t n, float lo, float hi) { test_fill(&rng, x, n, lo, hi); }

#define dot test_dot

/* ---- kernels: L = sum(out * R) ---- */

typedef struct kern_ctx {
    int T, C;
    float *x, *w, *b, *out, *R;
} kern_ctx;

static double ln_loss(void *p) {
    kern_ctx *c = p;
    layernorm_forward(c->out, NULL, NULL, c->x, c->w, c->b, c->T, c->C, 1e-5f);
    return dot(c->out, c->R, (size_t)c->T * c->C);
}

static double gelu_loss(void *p) {
    kern_ctx *c = p;
    gelu_forward(c->out, c->x, (long)c->T * c->C);
    return dot(c->out, c->R, (size_t)c->T * c->C);
}

static void check_kernels(void) {
    kern_ctx c = {.T = 5, .C = 12};
    size_t n = (size_t)c.T * c.C;
    float *buf = calloc(n * 6 + 3 * c.C, sizeof(float));
    c.x = buf, c.out = buf + n, c.R = buf + 2 * n;
    float *dx = buf + 3 * n, *mean = buf + 4 * n, *rstd = buf + 5 * n;
    c.w = buf + 6 * n, c.b = c.w + c.C;
    float *dw = c.b + c.C, *db = calloc(c.C, sizeof(float));
    fill(c.x, n, -2, 3), fill(c.R, n, -1, 1), fill(c.w, c.C, 0.5f, 1.5f), fill(c.b, c.C, -1, 1);
    layernorm_forward(c.out, mean, rstd, c.x, c.w, c.b, c.T, c.C, 1e-5f);
    layernorm_backward(dx, dw, db, c.R, c.x, c.w, mean, rstd, c.T, c.C);
    test_fd_check("layernorm dx", c.x, dx, n, ln_loss, &c, 1e-2f, 1e-3);
    test_fd_check("layernorm dw", c.w, dw, c.C, ln_loss, &c, 1e-2f, 1e-3);
    test_fd_check("layernorm db", c.b, db, c.C, ln_loss, &c, 1e-2f, 1e-3);
    fill(c.x, n, -4, 4);
    gelu_backward(dx, c.R, c.x, (long)n);
    test_fd_check("gelu du", c.x, dx, n, gelu_loss, &c, 1e-3f, 1e-3);
    /* bias: y += b, so dL/db = column sums of R */
    memset(db, 0, c.C * sizeof(float));
    bias_backward(db, c.R, c.T, c.C);
    double worst = 0;
    for (int j = 0; j < c.C; j++) {
        double s = 0;
        for (int t = 0; t < c.T; t++) s += c.R[t * c.C + j];
        worst = fmax(worst, fabs(s - db[j]));
    }
    CHECK(worst < 1e-5, "bias_backward off by %g", worst);
    free(buf);
    free(db);
}

/* ---- whole models ---- */


typedef struct model_ctx {
    hn_model *m;
    lora_set *lo;
    llama_acts *a;
    int32_t *ids, *tgt;
    float *w, norm;
} model_ctx;

static void set_rows(llama_acts *a) {
    /* row 0 packs two examples (positions restart, own segment); row 1 is one */
    for (int b = 0; b < a->B; b++)
        for (int t = 0; t < a->T; t++) {
            int i = b * a->T + t, half = a->T / 2;
            a->seg[i] = b == 0 && t >= half ? 1 : 0;
            a->pos[i] = b == 0 && t >= half ? t - half : t;
        }
}

static double model_loss(void *p) {
    model_ctx *c = p;
    llama_loss_stats st;
    llama_forward(c->m, c->lo, c->a, c->ids);
    llama_loss_backward(c->m, c->lo, c->a, c->ids, c->tgt, c->w, c->norm, NULL, NULL, &st);
    return st.loss_sum * c->norm;
}

/* Token rows that occur as inputs and as targets, three of them distinct. */
static int pick_tokens(const model_ctx *c, int32_t *tok) {
    int n = 0;
    const int32_t cand[] = {c->ids[1], c->tgt[2], c->ids[9], c->tgt[11], c->ids[3]};
    for (size_t i = 0; i < sizeof cand / sizeof *cand && n < 3; i++) {
        bool dup = false;
        for (int j = 0; j < n; j++) dup |= tok[j] == cand[i];
        if (!dup) tok[n++] = cand[i];
    }
    return n;
}

/* plain: a LoRA set with trained A/B and no token rows. */
static void check_tokens(const char *name, model_ctx *c, lora_set *plain) {
    int32_t tok[3];
    int n = pick_tokens(c, tok);
    hn_rng saved = rng; /* the other checks keep their random draws */
    lora_set *lo = NULL, *lg = NULL;
    hn_err err = {0};
    CHECK(lora_create_ex(c->m, plain->rank, plain->alpha, plain->targets, tok, n, NULL, &lo,
                         &err) == HN_OK, "%s", err.msg);
    CHECK(lora_create_ex(c->m, plain->rank, plain->alpha, plain->targets, tok, n, NULL, &lg,
                         &err) == HN_OK, "%s", err.msg);
    if (!lo || !lg) return;
    bool tied = lo->tok_head == NULL;
    CHECK(tied == c->m->cfg.tied_embeddings, "%s: tied %d", name, tied);
    /* the A/B pairs come first in the slab, in the same layout */
    memcpy(lo->slab, plain->slab, plain->n_params * sizeof(float));
    c->lo = plain;
    double want = model_loss(c);
    c->lo = lo;
    double got = model_loss(c);
    CHECK(want == got, "%s: zero token deltas change the loss %.17g -> %.17g", name, want, got);
    size_t nd = (size_t)n * c->m->cfg.dim;
    fill(lo->tok_emb, nd, -0.5f, 0.5f);
    if (lo->tok_head) fill(lo->tok_head, nd, -0.5f, 0.5f);
    llama_loss_stats st;
    llama_forward(c->m, lo, c->a, c->ids);
    llama_loss_backward(c->m, lo, c->a, c->ids, c->tgt, c->w, c->norm, NULL, lg, &st);
    double worst = test_fd_check("token rows embedding", lo->tok_emb, lg->tok_emb, nd, model_loss,
                                 c, 2e-3f, 5e-3);
    if (lo->tok_head)
        worst = fmax(worst, test_fd_check("token rows lm_head", lo->tok_head, lg->tok_head, nd,
                                          model_loss, c, 2e-3f, 5e-3));
    /* and the A/B grads still agree with the token rows in the forward */
    /* and the LoRA grads still agree with token rows in the forward */
    worst = fmax(worst, test_fd_check("lora down B with token rows", lo->pairs[1][LORA_DOWN].B,
                                      lg->pairs[1][LORA_DOWN].B,
                                      (size_t)lo->rank * c->m->cfg.dim, model_loss, c, 2e-3f, 5e-3));
    printf("model %s: %d trainable token rows (%s), worst relative error %.2e\n", name, n,
           tied ? "tied" : "untied", worst);
    c->lo = plain;
    rng = saved;
    lora_free(lo);
    lora_free(lg);
}

/* Every LoRA gradient (with the acts' current dropout) against finite differences. */
static void lora_fd(const char *name, model_arch arch, model_ctx *c, lora_set *lg, int rank,
                    float p) {
    llama_loss_stats st;
    memset(lg->slab, 0, lg->n_params * sizeof(float));
    llama_forward(c->m, c->lo, c->a, c->ids);
    llama_loss_backward(c->m, c->lo, c->a, c->ids, c->tgt, c->w, c->norm, NULL, lg, &st);
    double worst = 0;
    int count = 0;
    for (int l = 0; l < c->m->cfg.n_layers; l++)
        for (int t = 0; t < LORA_N_TARGETS; t++)
            for (int ab = 0; ab < 2 && c->lo->pairs[l][t].A; ab++) {
                lora_pair *lp = &c->lo->pairs[l][t], *gp = &lg->pairs[l][t];
                size_t n = (size_t)rank * (ab ? lp->out : lp->in);
                char what[160];
                snprintf(what, sizeof what, "%s lora (dropout %.1f) layer %d %s %c", name, p, l,
                         lora_target_name(arch, t), "AB"[ab]);
                worst = fmax(worst, test_fd_check(what, ab ? lp->B : lp->A, ab ? gp->B : gp->A, n,
                                                  model_loss, c, 2e-3f, 5e-3));
                count++;
            }
    printf("model %s: %d LoRA gradients (dropout %.1f), worst relative error %.2e\n", name, count,
           p, worst);
}

/* Full and LoRA (with dropout) gradients of one pass over c's batch. */
static void grads_of(model_ctx *c, llama_acts *a, float *full, lora_set *lg) {
    llama_loss_stats st;
    memset(lg->slab, 0, lg->n_params * sizeof(float));
    memset(full, 0, c->m->n_params * sizeof(float));
    llama_forward(c->m, NULL, a, c->ids);
    llama_loss_backward(c->m, NULL, a, c->ids, c->tgt, c->w, c->norm, full, NULL, &st);
    a->lora_dropout = 0.3f, a->dropout_seed = 5;
    llama_forward(c->m, c->lo, a, c->ids);
    llama_loss_backward(c->m, c->lo, a, c->ids, c->tgt, c->w, c->norm, NULL, lg, &st);
    a->lora_dropout = 0.0f;
}

/* Activation recomputation gives the same gradients (the recomputed forward
 * is the same computation): bit for bit. */
static void check_recompute(const char *name, model_ctx *c, lora_set *lg) {
    hn_err err = {0};
    llama_acts *r;
    CHECK(llama_acts_create_ex(c->m, c->a->B, c->a->T, c->lo->rank, true, &r, &err) == HN_OK,
          "%s", err.msg);
    if (!r) return;
    memcpy(r->pos, c->a->pos, sizeof(int32_t) * (size_t)c->a->N);
    memcpy(r->seg, c->a->seg, sizeof(int32_t) * (size_t)c->a->N);
    float *g1 = calloc(c->m->n_params, 4), *g2 = calloc(c->m->n_params, 4);
    float *l1 = malloc(lg->n_params * 4);
    grads_of(c, c->a, g1, lg);
    memcpy(l1, lg->slab, lg->n_params * 4);
    grads_of(c, r, g2, lg);
    CHECK(!memcmp(g1, g2, c->m->n_params * 4), "%s: recomputed full gradients differ", name);
    CHECK(!memcmp(l1, lg->slab, lg->n_params * 4), "%s: recomputed LoRA gradients differ", name);
    CHECK(r->slab_floats < c->a->slab_floats, "%s: recomputation saves no memory", name);
    free(g1), free(g2), free(l1);
    llama_acts_free(r);
}

static void check_model(const char *name, model_arch arch, bool tied, int Hq, int Hkv, int hd) {
    model_config cfg = {.arch = arch, .dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = Hq,
                        .n_kv_heads = Hkv, .head_dim = hd, .vocab_size = 40, .max_seq_len = 32,
                        .norm_eps = 1e-5f, .rope_theta = 10000.0f, .tied_embeddings = tied};
    hn_err err = {0};
    model_ctx c = {0};
    CHECK(model_create_random(&cfg, 7, &c.m, &err) == HN_OK, "%s", err.msg);
    if (!c.m) return;
    const int B = 2, T = 8, N = B * T, rank = 4;
    CHECK(llama_acts_create(c.m, B, T, rank, &c.a, &err) == HN_OK, "%s", err.msg);
    set_rows(c.a);
    c.ids = malloc(N * 4), c.tgt = malloc(N * 4), c.w = malloc(N * 4);
    double sw = 0;
    for (int i = 0; i < N; i++) {
        c.ids[i] = (int32_t)hn_rng_below(&rng, (uint32_t)cfg.vocab_size);
        c.tgt[i] = (int32_t)hn_rng_below(&rng, (uint32_t)cfg.vocab_size);
        c.w[i] = i % 5 == 0 ? 0.0f : i % 7 == 0 ? 0.5f : 1.0f;
        sw += c.w[i];
    }
    c.norm = (float)(1.0 / sw);

    /* full fine-tuning: every parameter tensor */
    float *grads = calloc(c.m->n_params, 4);
    llama_loss_stats st;
    llama_forward(c.m, NULL, c.a, c.ids);
    llama_loss_backward(c.m, NULL, c.a, c.ids, c.tgt, c.w, c.norm, grads, NULL, &st);
    double worst = 0;
    for (int i = 0; i < c.m->n_param_tensors; i++) {
        model_param *p = &c.m->params[i];
        char what[160];
        snprintf(what, sizeof what, "%s full %s", name, p->name);
        worst = fmax(worst, test_fd_check(what, p->data, grads + (p->data - c.m->slab), p->numel,
                                     model_loss, &c, 2e-3f, 5e-3));
    }
    printf("model %s: %d full gradients, worst relative error %.2e\n", name,
           c.m->n_param_tensors, worst);
    free(grads);

    /* LoRA on all targets, with non-zero B so dA is exercised */
    lora_set *lg = NULL;
    unsigned all = LORA_ALL;
    CHECK(lora_create(c.m, rank, 8.0f, all, &rng, &c.lo, &err) == HN_OK, "%s", err.msg);
    CHECK(lora_create(c.m, rank, 8.0f, all, NULL, &lg, &err) == HN_OK, "%s", err.msg);
    if (c.lo && lg) {
        for (int l = 0; l < cfg.n_layers; l++)
            for (int t = 0; t < LORA_N_TARGETS; t++) {
                lora_pair *lp = &c.lo->pairs[l][t];
                if (lp->A) fill(lp->B, (size_t)lp->out * rank, -0.3f, 0.3f);
            }
        lora_fd(name, arch, &c, lg, rank, 0.0f);
        /* LoRA dropout: a fixed mask (same seed every pass) is a fixed function */
        double plain = model_loss(&c);
        c.a->lora_dropout = 0.3f;
        c.a->dropout_seed = 77;
        CHECK(fabs(model_loss(&c) - plain) > 1e-6, "%s: LoRA dropout changes nothing", name);
        lora_fd(name, arch, &c, lg, rank, 0.3f);
        c.a->lora_dropout = 0.0f;
        CHECK(model_loss(&c) == plain, "%s: dropout off is not the plain loss", name);
    }
    if (c.lo && lg) check_recompute(name, &c, lg);
    check_tokens(name, &c, c.lo);
    lora_free(c.lo);
    lora_free(lg);
    llama_acts_free(c.a);
    model_free(c.m);
    free(c.ids), free(c.tgt), free(c.w);
}

int main(void) {
    hn_rng_seed(&rng, 1234);
    check_kernels();
    check_model("llama untied GQA", ARCH_LLAMA, false, 4, 2, 4);
    check_model("llama tied MHA", ARCH_LLAMA, true, 2, 2, 4);
    check_model("qwen2 untied GQA", ARCH_QWEN2, false, 4, 2, 4);
    check_model("qwen3 tied GQA", ARCH_QWEN3, true, 4, 2, 4);
    check_model("qwen3 head_dim 8", ARCH_QWEN3, false, 4, 2, 8);
    check_model("gpt2", ARCH_GPT2, true, 4, 4, 4);
    return test_finish("test_model_grad");
}
