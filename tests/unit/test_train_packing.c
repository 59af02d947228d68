/* test_train_packing.c — packed == unpacked. Packing puts several examples
 * in one row with their own attention segment (acts->seg) and positions that
 * restart at 0 (acts->pos); it must give the same loss and gradients as one
 * example per padded row.
 *   1. llama level, random 2-layer model: three examples unpacked (3 rows)
 *      and packed (2 rows), loss + every full and LoRA gradient;
 *   2. trainer level, stories260K: ft_run with and without `packing` (rows of
 *      the longest example, and rows of --max-seq-len 200 that need several
 *      micro-batches per step) gives the same per-step train and valid losses. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/rng.h"
#include "format/safetensors.h"
#include "model/llama.h"
#include "train/finetune.h"
#include "test.h"

enum { MAX_STEPS = 256 };

typedef struct rec {
    int n;
    double loss[MAX_STEPS], valid[MAX_STEPS];
} rec;

static void on_metrics(void *ctx, const ft_metrics *m) {
    rec *r = ctx;
    if (r->n >= MAX_STEPS) return;
    r->valid[r->n] = !isnan(m->full_valid_loss) ? m->full_valid_loss : m->valid_loss;
    r->loss[r->n++] = m->train_loss;
}

static bool run(ft_config *c, rec *r) {
    ft_callbacks cb = {.ctx = r, .on_metrics = on_metrics};
    ft_result res;
    hn_err err = {0};
    memset(r, 0, sizeof *r);
    hn_status s = ft_run(c, &cb, &res, &err);
    CHECK(s == HN_OK, "ft_run (%s): %s", c->out_dir, err.msg);
    return s == HN_OK;
}

/* ---- 1. llama level ---- */

static double max_rel(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    return den > 0 ? num / den : num;
}

typedef struct layout {
    int B, T;
    int32_t ids[32], tgt[32], pos[32], seg[32];
    float w[32];
} layout;

/* examples e (tokens ex[e][0..len[e])) at (row[e], off[e]) of a B x T layout */
static void build(layout *L, int B, int T, int n_ex, const int32_t ex[][8], const uint8_t tr[][8],
                  const int *len, const int *row, const int *off) {
    L->B = B, L->T = T;
    for (int i = 0; i < B * T; i++) {
        L->ids[i] = L->tgt[i] = 0;
        L->w[i] = 0;
        L->pos[i] = i % T;
        L->seg[i] = -1;
    }
    for (int e = 0; e < n_ex; e++)
        for (int i = 0; i + 1 < len[e]; i++) {
            int k = row[e] * T + off[e] + i;
            L->ids[k] = ex[e][i];
            L->tgt[k] = ex[e][i + 1];
            L->w[k] = tr[e][i + 1];
            L->pos[k] = i;
            L->seg[k] = e;
        }
}

static void run_layout(hn_model *m, lora_set *lo, const layout *L, float norm, float *grads,
                       lora_set *lg, llama_loss_stats *st) {
    hn_err err;
    llama_acts *a;
    if (llama_acts_create(m, L->B, L->T, lo ? lo->rank : 0, &a, &err) != HN_OK) exit(2);
    memcpy(a->pos, L->pos, sizeof(int32_t) * L->B * L->T);
    memcpy(a->seg, L->seg, sizeof(int32_t) * L->B * L->T);
    llama_forward(m, lo, a, L->ids);
    llama_loss_backward(m, lo, a, L->ids, L->tgt, L->w, norm, grads, lg, st);
    llama_acts_free(a);
}

static void check_llama_level(void) {
    model_config cfg = {.dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4,
                        .n_kv_heads = 2, .head_dim = 4, .vocab_size = 40, .max_seq_len = 32,
                        .norm_eps = 1e-5f, .rope_theta = 10000.0f};
    hn_err err = {0};
    hn_model *m;
    if (model_create_random(&cfg, 11, &m, &err) != HN_OK) {
        CHECK(0, "%s", err.msg);
        return;
    }
    hn_rng rng;
    hn_rng_seed(&rng, 5);
    int32_t ex[3][8];
    uint8_t tr[3][8];
    const int len[3] = {5, 4, 6};
    double sw = 0;
    for (int e = 0; e < 3; e++)
        for (int i = 0; i < len[e]; i++) {
            ex[e][i] = (int32_t)hn_rng_below(&rng, 40);
            tr[e][i] = i > 0 && hn_rng_below(&rng, 4) != 0;
            sw += tr[e][i];
        }
    float norm = (float)(1.0 / sw);
    layout un, pk;
    const int row_u[3] = {0, 1, 2}, off_u[3] = {0, 0, 0};
    const int row_p[3] = {0, 0, 1}, off_p[3] = {0, 4, 0}; /* 4 + 3 | 5 + 2 padding */
    build(&un, 3, 5, 3, ex, tr, len, row_u, off_u);
    build(&pk, 2, 7, 3, ex, tr, len, row_p, off_p);

    float *gu = calloc(m->n_params, 4), *gp = calloc(m->n_params, 4);
    llama_loss_stats su, sp;
    run_layout(m, NULL, &un, norm, gu, NULL, &su);
    run_layout(m, NULL, &pk, norm, gp, NULL, &sp);
    CHECK(fabs(su.loss_sum - sp.loss_sum) < 1e-5 * su.loss_sum, "loss %.9g vs packed %.9g",
          su.loss_sum, sp.loss_sum);
    CHECK(su.weight_sum == sp.weight_sum && su.n_correct == sp.n_correct,
          "weights %g/%g, correct %ld/%ld", su.weight_sum, sp.weight_sum, su.n_correct, sp.n_correct);
    double worst = 0;
    for (int i = 0; i < m->n_param_tensors; i++) {
        const model_param *p = &m->params[i];
        size_t o = (size_t)(p->data - m->slab);
        double e = max_rel(gp + o, gu + o, p->numel);
        CHECK(e < 1e-5, "packed gradient %s differs by %.3g", p->name, e);
        worst = fmax(worst, e);
    }
    printf("llama level: loss %.6f packed %.6f, %d full gradients within %.2e\n",
           su.loss_sum * norm, sp.loss_sum * norm, m->n_param_tensors, worst);

    /* the same with LoRA (non-zero B) */
    lora_set *lo, *lu, *lp;
    unsigned all = (1u << LORA_N_TARGETS) - 1;
    if (lora_create(m, 2, 4.0f, all, &rng, &lo, &err) != HN_OK ||
        lora_create(m, 2, 4.0f, all, NULL, &lu, &err) != HN_OK ||
        lora_create(m, 2, 4.0f, all, NULL, &lp, &err) != HN_OK) {
        CHECK(0, "%s", err.msg);
        return;
    }
    for (size_t i = 0; i < lo->n_params; i++) lo->slab[i] = 0.5f * (hn_rng_uniform(&rng) - 0.5f);
    run_layout(m, lo, &un, norm, NULL, lu, &su);
    run_layout(m, lo, &pk, norm, NULL, lp, &sp);
    CHECK(fabs(su.loss_sum - sp.loss_sum) < 1e-5 * su.loss_sum, "lora loss %.9g vs packed %.9g",
          su.loss_sum, sp.loss_sum);
    double e = max_rel(lp->slab, lu->slab, lu->n_params);
    CHECK(e < 1e-5, "packed LoRA gradients differ by %.3g", e);
    printf("llama level: LoRA loss %.6f packed %.6f, gradients within %.2e\n", su.loss_sum * norm,
           sp.loss_sum * norm, e);
    lora_free(lo);
    lora_free(lu);
    lora_free(lp);
    free(gu);
    free(gp);
    model_free(m);
}

/* ---- 2. trainer level ---- */

static void check_trainer(const char *train, const char *valid, int max_seq_len) {
    rec r[2];
    char out[2][512];
    for (int packing = 0; packing < 2; packing++) {
        ft_config c;
        ft_config_default(&c);
        c.model_path = test_shared("models/stories260K/stories260K.gguf");
        c.train_path = train;
        c.valid_path = valid;
        c.method = FT_FULL;
        c.n_epochs = 1;
        c.batch_size = 8;
        c.eval_every = 2;
        c.max_seq_len = max_seq_len;
        c.packing = packing;
        snprintf(out[packing], sizeof out[0], "%s/pack%d-%d", test_tmpdir(), packing, max_seq_len);
        c.out_dir = out[packing];
        if (!run(&c, &r[packing])) return;
    }
    CHECK(r[0].n == r[1].n && r[0].n == 5, "%d vs %d steps", r[0].n, r[1].n);
    double worst = 0, worst_v = 0;
    for (int s = 0; s < r[0].n && s < r[1].n; s++) {
        worst = fmax(worst, fabs(r[1].loss[s] - r[0].loss[s]) / r[0].loss[s]);
        CHECK(isnan(r[0].valid[s]) == isnan(r[1].valid[s]), "step %d: valid loss computed in one "
              "run only", s + 1);
        if (!isnan(r[0].valid[s]))
            worst_v = fmax(worst_v, fabs(r[1].valid[s] - r[0].valid[s]) / r[0].valid[s]);
    }
    CHECK(worst < 1e-5 && worst_v < 1e-5, "packed vs unpacked: train loss %.3g, valid loss %.3g "
          "relative", worst, worst_v);
    double wd = test_weights_diff(out[0], out[1], "model.safetensors");
    CHECK(wd < 1e-4, "packed vs unpacked: final weights differ by %.3g relative", wd);
    printf("trainer (max_seq_len %d): packed == unpacked over %d steps: train loss %.2e, valid "
           "loss %.2e, weights %.2e relative\n", max_seq_len, r[0].n, worst, worst_v, wd);
}

/* 40 lines: the animal examples (~70 tokens) with every fourth replaced by a
 * short one (~10 tokens), so rows of the longest example have room to pack. */
static const char *mixed_train(void) {
    static char path[512];
    snprintf(path, sizeof path, "%s/mixed.jsonl", test_tmpdir());
    char *data = test_read(test_shared("data/animal/train.jsonl"), NULL), *line = data;
    static const char *animals[] = {"cat", "dog", "frog", "duck"};
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 40 && *line; i++) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        if (i % 4 == 3)
            fprintf(f, "{\"messages\": [{\"role\": \"user\", \"content\": \"A %s.\"}, "
                       "{\"role\": \"assistant\", \"content\": \"%s\"}]}\n",
                    animals[i / 4 % 4], animals[i / 4 % 4]);
        else
            fprintf(f, "%.*s\n", (int)n, line);
        line = nl ? nl + 1 : line + n;
    }
    fclose(f);
    free(data);
    return path;
}

int main(void) {
    check_llama_level();
    const char *train = mixed_train();
    const char *valid = test_subset(test_shared("data/animal/valid.jsonl"), 10, "valid10.jsonl");
    check_trainer(train, valid, 0);
    check_trainer(train, valid, 200);
    return test_finish("test_train_packing");
}
