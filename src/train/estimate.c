/* estimate.c — the time and memory estimate of a fine-tuning run: a short
 * benchmark of the real training step and validation pass per method, the
 * arithmetic that turns it into wall time, and the memory sum. The cache
 * file and the JSON form are in estimate_cache.c. */
#include "train/estimate.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/rng.h"
#include "model/llama.h"
#include "model/precision.h"
#include "tensor/ops.h"
#include "train/estimate_internal.h"

/* Bytes per second assumed for checkpoint writes (fsync'd safetensors). */
#define EST_WRITE_BPS 500e6
/* Timed steps: at least EST_MIN_STEPS and EST_MIN_SECONDS, at most
 * EST_MAX_STEPS, and never past EST_MAX_SECONDS once one step is timed. */
#define EST_MIN_STEPS 3
#define EST_MAX_STEPS 50
#define EST_MIN_SECONDS 0.5
#define EST_MAX_SECONDS 20.0

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

size_t est_resident_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (!f) return 0;
    if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return (size_t)res * (size_t)(page > 0 ? page : 4096);
}

static double physical_bytes(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (double)pages * page : 8e9;
}

/* ---- the inputs ---------------------------------------------------------- */

double ft_estimate_padded_len(const chat_dist *d, int b) {
    if (b <= 1) return d->mean;
    /* expected longest of b draws ~ the b/(b+1) quantile */
    double q = (double)b / (b + 1.0);
    double xs[4] = {0.0, 0.5, 0.9, 1.0};
    double ys[4] = {(double)d->min, (double)d->median, (double)d->p90, (double)d->max};
    for (int i = 1; i < 4; i++)
        if (q <= xs[i]) return ys[i - 1] + (ys[i] - ys[i - 1]) * (q - xs[i - 1]) / (xs[i] - xs[i - 1]);
    return ys[3];
}

/* Input tokens of a row from a token count: capped to the context, minus the
 * last token (inputs predict the next one); at least 1. */
static int input_len(double tokens, size_t max_seq) {
    if (max_seq > 0 && tokens > (double)max_seq) tokens = (double)max_seq;
    int n = (int)lround(tokens) - 1;
    return n > 0 ? n : 1;
}

bool ft_estimate_in_from_check(const chat_check_report *rep, ft_estimate_in *in) {
    memset(in, 0, sizeof *in);
    const chat_plan *p = &rep->plan;
    if (!p->n_examples || p->batch_size < 1 || p->n_epochs < 1) return false;
    int n = (int)p->n_examples, B = p->batch_size > n ? n : p->batch_size;
    in->batch_size = B;
    in->n_epochs = p->n_epochs;
    in->steps_per_epoch = (n + B - 1) / B;
    in->steps = (long long)in->steps_per_epoch * in->n_epochs;
    const chat_split_stats *tr = &rep->train, *va = &rep->valid;
    in->train_len = input_len(ft_estimate_padded_len(&tr->tokens, B), rep->max_seq_len);
    size_t longest = tr->tokens.max;
    if (rep->has_valid && va->n_used) {
        in->n_valid = va->n_used;
        in->valid_len = input_len(ft_estimate_padded_len(&va->tokens, B), rep->max_seq_len);
        if (va->tokens.max > longest) longest = va->tokens.max;
    }
    in->max_len = input_len((double)longest, rep->max_seq_len);
    if (in->max_len < in->train_len) in->max_len = in->train_len;
    in->trained_frac = tr->total_tokens ? (double)tr->total_trained / (double)tr->total_tokens : 0.1;
    return true;
}

/* ---- the benchmark --------------------------------------------------------- */

typedef struct bench {
    hn_model *m;
    lora_set *lora, *lora_grad;
    float *params, *grads, *adam_m, *adam_v;
    size_t n_train;
    llama_acts *acts;
    int32_t *ids, *tgt;
    float *w;
    float norm;
    int step;
} bench;

static void bench_free(bench *b) {
    llama_acts_free(b->acts);
    lora_free(b->lora);
    lora_free(b->lora_grad);
    if (!b->lora) free(b->grads);
    free(b->adam_m);
    free(b->adam_v);
    free(b->ids);
    free(b->tgt);
    free(b->w);
}

/* Trainable parameters, gradients and moments as the trainer allocates them. */
static hn_status bench_params(bench *b, ft_method method, int rank, hn_err *err) {
    hn_status s = HN_OK;
    if (method == FT_LORA) {
        unsigned all = (1u << LORA_N_TARGETS) - 1;
        hn_rng rng;
        hn_rng_seed(&rng, 7);
        s = lora_create(b->m, rank, 2.0f * rank, all, &rng, &b->lora, err);
        if (s == HN_OK) s = lora_create(b->m, rank, 2.0f * rank, all, NULL, &b->lora_grad, err);
        if (s != HN_OK) return s;
        b->params = b->lora->slab;
        b->grads = b->lora_grad->slab;
        b->n_train = b->lora->n_params;
    } else {
        b->params = b->m->slab;
        b->n_train = b->m->n_params;
        b->grads = calloc(b->n_train, sizeof(float));
    }
    b->adam_m = calloc(b->n_train, sizeof(float));
    b->adam_v = calloc(b->n_train, sizeof(float));
    if (!b->grads || !b->adam_m || !b->adam_v)
        return hn_errf(err, HN_ENOMEM, "estimate: out of memory for %zu trainable parameters",
                       b->n_train);
    return HN_OK;
}

/* Activations for the largest shape (as the trainer plans them) and the
 * batch buffers. */
static hn_status bench_acts(bench *b, const ft_estimate_in *in, int rank, hn_err *err) {
    size_t rows = (size_t)in->batch_size * (size_t)in->max_len;
    b->ids = calloc(rows, sizeof *b->ids);
    b->tgt = calloc(rows, sizeof *b->tgt);
    b->w = calloc(rows, sizeof *b->w);
    if (!b->ids || !b->tgt || !b->w) return hn_errf(err, HN_ENOMEM, "estimate: out of memory");
    return llama_acts_create(b->m, in->batch_size, in->max_len, b->lora ? rank : 0, &b->acts, err);
}

/* A (B, T) batch of random tokens whose last trained_frac of each row is
 * inside the loss mask (chat data trains the answers at the end). */
static void bench_fill(bench *b, int B, int T, double trained_frac) {
    llama_acts_reshape(b->acts, b->m, B, T);
    llama_acts_default_pos(b->acts);
    hn_rng rng;
    hn_rng_seed(&rng, 11);
    uint32_t V = (uint32_t)b->m->cfg.vocab_size;
    int k = (int)lround(trained_frac * T);
    if (k < 1) k = 1;
    if (k > T) k = T;
    for (int r = 0; r < B; r++)
        for (int i = 0; i < T; i++) {
            size_t j = (size_t)r * T + i;
            b->ids[j] = (int32_t)hn_rng_below(&rng, V);
            b->tgt[j] = (int32_t)hn_rng_below(&rng, V);
            b->w[j] = i >= T - k ? 1.0f : 0.0f;
        }
    b->norm = 1.0f / (float)(B * k);
}

static void train_step(bench *b) {
    memset(b->grads, 0, b->n_train * sizeof(float));
    llama_loss_stats st;
    llama_forward(b->m, b->lora, b->acts, b->ids);
    llama_loss_backward(b->m, b->lora, b->acts, b->ids, b->tgt, b->w, b->norm,
                        b->lora ? NULL : b->grads, b->lora ? b->lora_grad : NULL, &st);
    double ss = 0;
    for (size_t i = 0; i < b->n_train; i++) ss += (double)b->grads[i] * b->grads[i];
    float sc = ss > 1.0 ? (float)(1.0 / sqrt(ss)) : 1.0f;
    for (size_t i = 0; sc < 1.0f && i < b->n_train; i++) b->grads[i] *= sc;
    adamw_update(b->params, b->grads, b->adam_m, b->adam_v, (long)b->n_train, 1e-6f, 0.9f,
                 0.999f, 1e-8f, 0.0f, ++b->step);
}

static void eval_step(bench *b) {
    llama_loss_stats st;
    llama_forward(b->m, b->lora, b->acts, b->ids);
    llama_loss_backward(b->m, b->lora, b->acts, b->ids, b->tgt, b->w, b->norm, NULL, NULL, &st);
}

/* Mean seconds per call of fn after one warm-up call. */
static double time_calls(void (*fn)(bench *), bench *b, int *n_out) {
    fn(b);
    double t0 = now(), t = 0;
    int n = 0;
    for (;;) {
        fn(b);
        n++;
        t = now() - t0;
        if (n >= EST_MAX_STEPS || t >= EST_MAX_SECONDS) break;
        if (n >= EST_MIN_STEPS && t >= EST_MIN_SECONDS) break;
    }
    if (n_out) *n_out = n;
    return t / n;
}

/* Benchmarks one method on the loaded model into rec. */
static hn_status bench_method(hn_model *m, ft_method method, const ft_estimate_in *in,
                              est_record *rec, hn_err *err) {
    bench b = {.m = m};
    hn_status s = bench_params(&b, method, in->lora_rank, err);
    if (s == HN_OK) s = bench_acts(&b, in, in->lora_rank, err);
    if (s == HN_OK) {
        size_t rows = (size_t)in->batch_size * (size_t)in->max_len;
        rec->activations = b.acts->slab_floats * sizeof(float) + rows * 12;
        rec->lora_params = b.lora ? b.lora->n_params : rec->lora_params;
        bench_fill(&b, in->batch_size, in->train_len, in->trained_frac);
        rec->step_seconds = time_calls(train_step, &b, &rec->bench_steps);
        if (in->n_valid) {
            bench_fill(&b, in->batch_size, in->valid_len, in->trained_frac);
            rec->eval_seconds = time_calls(eval_step, &b, NULL);
        }
    }
    bench_free(&b);
    return s;
}

/* ---- the arithmetic -------------------------------------------------------- */

/* Validation micro-batches the trainer runs: the whole file at every epoch
 * end, and one batch every eval_every steps in between. */
static long long valid_batches(const ft_estimate_in *in) {
    if (!in->n_valid) return 0;
    long long B = in->batch_size, per_pass = ((long long)in->n_valid + B - 1) / B;
    long long every = in->steps / 20 > 1 ? in->steps / 20 : 1, n = in->n_epochs * per_pass;
    for (long long s = every; s <= in->steps; s += every)
        if (s % in->steps_per_epoch) n++;
    return n;
}

static void fill_memory(const ft_estimate *e, const est_record *rec, ft_estimate_method *mm) {
    ft_estimate_mem *mem = &mm->mem;
    size_t n = e->n_params, nl = e->lora_params;
    mem->weights = n * sizeof(float);
    mem->trainable = mm->method == FT_LORA ? nl * sizeof(float) : 0;
    mem->grads = (mm->method == FT_LORA ? nl : n) * sizeof(float);
    mem->adam = 2 * mem->grads;
    mem->activations = rec->activations;
    mem->runtime = e->in.base_rss;
    mem->total = mem->weights + mem->trainable + mem->grads + mem->adam + mem->activations +
                 mem->runtime;
}

static void fill_time(const ft_estimate *e, const est_record *rec, ft_estimate_method *mm) {
    const ft_estimate_in *in = &e->in;
    mm->step_seconds = rec->step_seconds;
    mm->eval_seconds = rec->eval_seconds;
    mm->bench_steps = rec->bench_steps;
    mm->train_seconds = rec->step_seconds * (double)in->steps;
    mm->valid_seconds = rec->eval_seconds * (double)valid_batches(in);
    size_t n_train = mm->method == FT_LORA ? e->lora_params : e->n_params;
    double ckpt = 3.0 * n_train * sizeof(float) * in->n_epochs + (double)n_train * sizeof(float);
    mm->checkpoint_seconds = ckpt / EST_WRITE_BPS;
    mm->setup_seconds = e->load_seconds + in->data_seconds;
    mm->total_seconds = mm->train_seconds + mm->valid_seconds + mm->checkpoint_seconds +
                        mm->setup_seconds;
}

/* ---- the run --------------------------------------------------------------- */

static void defaults(const ft_estimate_in *in, ft_estimate *out) {
    memset(out, 0, sizeof *out);
    out->in = *in;
    if (out->in.lora_rank <= 0) out->in.lora_rank = 8;
    if (out->in.batch_size < 1) out->in.batch_size = 1;
    if (out->in.train_len < 1) out->in.train_len = 1;
    if (out->in.max_len < out->in.train_len) out->in.max_len = out->in.train_len;
    if (out->in.valid_len < 1) out->in.valid_len = out->in.train_len;
    if (out->in.valid_len > out->in.max_len) out->in.max_len = out->in.valid_len;
    if (out->in.steps_per_epoch < 1) out->in.steps_per_epoch = 1;
    if (!out->in.base_rss) out->in.base_rss = est_resident_bytes();
    out->threads = omp_get_max_threads();
    out->lora.method = FT_LORA;
    out->full.method = FT_FULL;
    out->cache_written = false;
    if (!ft_estimate_cache_path(out->cache_path, sizeof out->cache_path)) out->cache_path[0] = 0;
}

/* Full fine-tuning needs weights + grads + 2 moments (16 bytes/parameter):
 * not benchmarked when that is more than 90% of physical memory. */
static bool full_fits(size_t n_params, char *note, size_t cap) {
    double need = 16.0 * (double)n_params, ram = physical_bytes();
    if (need <= 0.9 * ram) return true;
    snprintf(note, cap, "not measured: full fine-tuning needs %.1f GB for weights, gradients and "
             "AdamW moments; this machine has %.1f GB", need / 1e9, ram / 1e9);
    return false;
}

/* Loads the model and benchmarks the methods without a cached record. */
static hn_status measure(const char *model_path, ft_estimate *e, est_record rec[2],
                         bool have[2], hn_err *err) {
    double t0 = now();
    hn_model *m = NULL;
    hn_status s = model_load(model_path, &m, err);
    if (s == HN_OK) s = model_precision_apply(m, PREC_AUTO, NULL, err); /* as the trainer */
    if (s != HN_OK) {
        model_free(m);
        return s;
    }
    e->load_seconds = now() - t0;
    e->n_params = m->n_params;
    for (int k = 0; k < 2 && s == HN_OK; k++) {
        if (have[k]) continue;
        ft_estimate_method *mm = k ? &e->full : &e->lora;
        if (k == 1 && !full_fits(m->n_params, mm->note, sizeof mm->note)) continue;
        rec[k] = (est_record){.load_seconds = e->load_seconds, .n_params = m->n_params,
                              .lora_params = rec[0].lora_params};
        s = bench_method(m, k ? FT_FULL : FT_LORA, &e->in, &rec[k], err);
        if (s == HN_OK) have[k] = true, mm->measured = true;
    }
    model_free(m);
    return s;
}

static void finish(ft_estimate *e, est_record rec[2], const bool have[2]) {
    for (int k = 0; k < 2; k++) {
        ft_estimate_method *mm = k ? &e->full : &e->lora;
        est_record r = have[k] ? rec[k] : rec[!k]; /* memory of a skipped method */
        r.activations = have[k] ? r.activations : rec[!k].activations;
        fill_memory(e, &r, mm);
        if (have[k]) fill_time(e, &rec[k], mm);
    }
    e->auto_method = ft_auto_method(e->n_params);
}

hn_status ft_estimate_run(const char *model_path, const ft_estimate_in *in, ft_estimate *out,
                          hn_err *err) {
    defaults(in, out);
    char id[1400];
    if (!est_model_id(model_path, id, sizeof id))
        return hn_errf(err, HN_ENOTFOUND, "%s: no such model file or directory", model_path);
    est_record rec[2];
    memset(rec, 0, sizeof rec);
    bool have[2] = {false, false};
    for (int k = 0; k < 2 && !out->in.no_cache; k++) {
        have[k] = est_cache_get(out, id, k ? FT_FULL : FT_LORA, &rec[k]);
        (k ? &out->full : &out->lora)->cached = (k ? &out->full : &out->lora)->measured = have[k];
    }
    if (have[0]) {
        out->n_params = rec[0].n_params;
        out->lora_params = rec[0].lora_params;
        out->load_seconds = rec[0].load_seconds;
    }
    bool full_skippable = have[0] && !full_fits(out->n_params, out->full.note, sizeof out->full.note);
    if (!have[0] || (!have[1] && !full_skippable)) {
        hn_status s = measure(model_path, out, rec, have, err);
        if (s != HN_OK) return s;
        out->lora_params = rec[0].lora_params;
        for (int k = 0; k < 2; k++)
            if (have[k] && !(k ? out->full.cached : out->lora.cached))
                out->cache_written |= est_cache_put(out, id, k ? FT_FULL : FT_LORA, &rec[k]);
    }
    finish(out, rec, have);
    return HN_OK;
}
