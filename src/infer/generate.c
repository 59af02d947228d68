/* generate.c — sampling and the decode loop. Greedy is exact argmax (ties go
 * to the lowest id, as llama.cpp and llama2.c do); temperature/top-k/top-p
 * draw from a PCG32 seeded by the caller, so the same seed gives the same text. */
#include "infer/generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void gen_params_default(gen_params *p) {
    memset(p, 0, sizeof *p);
    p->max_tokens = 256;
    p->temperature = 1.0f;
    p->top_p = 1.0f;
    p->top_k = 0;
    p->seed = 42;
    p->stop_at_eos = true;
    p->stop_id = -1;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

typedef struct cand {
    float p;
    int id;
} cand;

static int cmp_cand(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->id - y->id;
}

int32_t gen_sample(float *logits, int vocab, const gen_params *p, hn_rng *rng) {
    if (p->temperature <= 0.0f) return argmax(logits, vocab);
    float mx = logits[argmax(logits, vocab)];
    cand *c = malloc(sizeof *c * (size_t)vocab);
    if (!c) return argmax(logits, vocab);
    double sum = 0;
    for (int i = 0; i < vocab; i++) {
        c[i].p = expf((logits[i] - mx) / p->temperature);
        c[i].id = i;
        sum += c[i].p;
    }
    int n = vocab;
    bool truncate = (p->top_k > 0 && p->top_k < vocab) || (p->top_p > 0.0f && p->top_p < 1.0f);
    if (truncate) {
        qsort(c, (size_t)vocab, sizeof *c, cmp_cand);
        if (p->top_k > 0 && p->top_k < n) n = p->top_k;
        if (p->top_p > 0.0f && p->top_p < 1.0f) {
            double kept = 0, total = 0;
            for (int i = 0; i < n; i++) total += c[i].p;
            for (int i = 0; i < n; i++) {
                kept += c[i].p;
                if (kept >= p->top_p * total) {
                    n = i + 1;
                    break;
                }
            }
        }
        sum = 0;
        for (int i = 0; i < n; i++) sum += c[i].p;
    }
    double r = hn_rng_uniform(rng) * sum, acc = 0;
    int id = c[n - 1].id;
    for (int i = 0; i < n; i++) {
        acc += c[i].p;
        if (r < acc) {
            id = c[i].id;
            break;
        }
    }
    free(c);
    return id;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static bool push_id(int32_t **out, int *n, int *cap, int32_t id) {
    if (!out) return true;
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 64;
        int32_t *p = realloc(*out, sizeof(int32_t) * (size_t)nc);
        if (!p) return false;
        *out = p;
        *cap = nc;
    }
    (*out)[(*n)++] = id;
    return true;
}

hn_status gen_run(const hn_model *m, const int32_t *prompt, int n_prompt, const gen_params *p,
                  gen_token_fn cb, void *ctx, int32_t **out, gen_result *res, hn_err *err) {
    memset(res, 0, sizeof *res);
    if (out) *out = NULL;
    if (n_prompt <= 0) return hn_errf(err, HN_EINVAL, "empty prompt (no tokens)");
    int ctx_len = m->cfg.max_seq_len;
    if (n_prompt >= ctx_len)
        return hn_errf(err, HN_EINVAL, "prompt of %d tokens does not fit the %d-token context",
                       n_prompt, ctx_len);
    int limit = ctx_len - n_prompt;
    if (p->max_tokens > 0 && p->max_tokens < limit) limit = p->max_tokens;
    model_state *s;
    hn_status st = model_state_create(m, n_prompt + limit, &s, err);
    if (st != HN_OK) return st;
    hn_rng rng;
    hn_rng_seed(&rng, p->seed);
    const float *lg;
    float *logits = malloc(sizeof(float) * (size_t)m->cfg.vocab_size);
    hn_buf piece;
    hn_buf_init(&piece);
    double t0 = now();
    st = logits ? model_forward(m, s, prompt, n_prompt, NULL, &lg, err)
                : hn_errf(err, HN_ENOMEM, "out of memory");
    res->n_prompt = n_prompt;
    res->prompt_seconds = now() - t0;
    res->finish = GEN_STOP_LENGTH;
    int n_out = 0, cap = 0, prev = prompt[n_prompt - 1];
    t0 = now();
    while (st == HN_OK && res->n_generated < limit) {
        memcpy(logits, lg, sizeof(float) * (size_t)m->cfg.vocab_size);
        int32_t id = gen_sample(logits, m->cfg.vocab_size, p, &rng);
        if (p->stop_at_eos && (id == tok_eos(m->tok) || id == p->stop_id)) {
            res->finish = GEN_STOP_EOS;
            break;
        }
        res->n_generated++;
        if (!push_id(out, &n_out, &cap, id)) {
            st = hn_errf(err, HN_ENOMEM, "out of memory");
            break;
        }
        hn_buf_clear(&piece);
        tok_decode_piece(m->tok, prev, id, &piece);
        prev = id;
        if (cb && !cb(ctx, id, piece.data ? piece.data : "", piece.len)) {
            res->finish = GEN_STOP_CALLBACK;
            break;
        }
        if (res->n_generated < limit) st = model_forward(m, s, &id, 1, NULL, &lg, err);
    }
    res->gen_seconds = now() - t0;
    hn_buf_free(&piece);
    free(logits);
    model_state_free(s);
    return st;
}
