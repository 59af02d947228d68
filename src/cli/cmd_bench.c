/* cmd_bench.c — `hone bench`: throughput of the training step (full and LoRA),
 * prompt prefill, KV-cached decode and the GEMM backend at a model's shapes,
 * on a random-init model of a fixed shape (Llama-110M by default, a
 * stories260K-like shape with --quick).
 *
 * Each case runs in a forked child, so its peak RSS (getrusage ru_maxrss) is
 * its own and not the maximum of everything before it. The parent never runs
 * OpenMP or a GEMM itself (libgomp and OpenBLAS pools are created in the
 * children). Every result is one JSON line on stdout; progress and a human
 * summary go to stderr. Timing: --warmup untimed then --iters timed
 * iterations; tokens/s uses the median. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/rng.h"
#include "cli/cli.h"
#include "model/llama.h"
#include "model/lora.h"
#include "model/model.h"
#include "tensor/gemm.h"
#include "tensor/gemm_q8.h"
#include "tensor/ops.h"

static const char *usage =
    "usage: hone bench [--quick] [--cases LIST] [--gemm BACKEND] [options]\n"
    "\n"
    "Random-init model; one JSON line per result on stdout, progress on stderr.\n"
    "\n"
    "  --quick             tiny stories260K-like model, small shapes (seconds)\n"
    "  --model NAME        llama-110m (default), gpt2-124m or tiny\n"
    "  --cases LIST        comma list of: train:full:BxT, train:lora:BxT, prefill:BxT,\n"
    "                      decode:N, gemm, attn:BxT (attention kernels alone, one\n"
    "                      layer; default: train:{full,lora}:4x256,\n"
    "                      train:{full,lora}:1x1024, prefill:1x512, decode:128, gemm)\n"
    "  --gemm BACKEND      ref | openblas | dnnl | dnnl_bf16 (default: $HONE_GEMM, else\n"
    "                      dnnl if built in, else openblas); for the gemm case also 'all'\n"
    "  --precision P       f32 (the backend above), bf16 (= --gemm dnnl_bf16) or q8_0:\n"
    "                      the model's weight products on Q8_0 copies (prefill, decode\n"
    "                      and the gemm case's x.W^T shapes; not the train cases)\n"
    "  --warmup N          untimed iterations (default 1)\n"
    "  --iters N           timed iterations, median reported (default 3)\n"
    "  --lora-rank R       LoRA rank on q,k,v,o,gate,up,down (default 16)\n"
    "  --recompute         train cases with activation recomputation\n"
    "\n"
    "Measure with OMP_WAIT_POLICY=PASSIVE (bench/run.sh sets it).\n";

typedef struct bench_opts {
    const char *model; /* "llama-110m" | "gpt2-124m" | "tiny" */
    int warmup, iters, lora_rank;
    bool recompute; /* train cases: activation recomputation */
    gemm_backend gemm;
    bool gemm_all;
    bool q8_0; /* --precision q8_0: weight products in Q8_0 (inference cases) */
} bench_opts;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- the random-init model ---- */

static void bench_config(const char *name, model_config *c) {
    memset(c, 0, sizeof *c);
    c->arch = ARCH_LLAMA;
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    if (!strcmp(name, "tiny")) { /* stories260K's shape */
        c->dim = 64, c->hidden_dim = 172, c->n_layers = 5, c->n_heads = 8, c->n_kv_heads = 4;
        c->vocab_size = 512, c->max_seq_len = 512;
    } else if (!strcmp(name, "gpt2-124m")) { /* ../shared/bench: GPT-2 small */
        c->arch = ARCH_GPT2;
        c->dim = 768, c->hidden_dim = 3072, c->n_layers = 12, c->n_heads = 12,
        c->n_kv_heads = 12;
        c->vocab_size = 50257, c->max_seq_len = 1024, c->tied_embeddings = true;
    } else { /* ../shared/bench: Llama-110M. Context 2048, not the peer's 1024, so
              * long-sequence cases (train:lora:1x2048) run; RoPE has no
              * position parameters, so the model is otherwise the same. */
        c->dim = 768, c->hidden_dim = 2048, c->n_layers = 12, c->n_heads = 12,
        c->n_kv_heads = 12;
        c->vocab_size = 32000, c->max_seq_len = 2048;
    }
    c->head_dim = c->dim / c->n_heads;
    snprintf(c->name, sizeof c->name, "%s", name);
}

/* Matrices uniform with std 0.02 (as the peer's normal(0, 0.02)), norm
 * weights 1, biases 0. */
static hn_status bench_model_create(const char *name, hn_model **out, hn_err *err) {
    model_config c;
    bench_config(name, &c);
    hn_status s = model_alloc(&c, out, err);
    if (s != HN_OK) return s;
    hn_model *m = *out;
    hn_rng rng;
    hn_rng_seed(&rng, 42);
    const float a = 0.02f * sqrtf(3.0f);
    for (int i = 0; i < m->n_param_tensors; i++) {
        model_param *p = &m->params[i];
        for (size_t j = 0; j < p->numel; j++)
            p->data[j] = p->n_dims > 1 ? (2.0f * hn_rng_uniform(&rng) - 1.0f) * a
                         : strstr(p->name, "bias") ? 0.0f : 1.0f;
    }
    return HN_OK;
}

/* Parameters that take part in matmuls (all but the input embedding — which
 * a tied model uses as its output head — and learned positions), for the
 * 6N / 4N / 2N FLOP estimates the peer script uses too. */
static double matmul_params(const hn_model *m) {
    double n = (double)m->n_params;
    if (!m->cfg.tied_embeddings) n -= (double)m->cfg.vocab_size * m->cfg.dim;
    if (m->w.pos_emb) n -= (double)m->cfg.max_seq_len * m->cfg.dim;
    return n;
}

/* The type the weight products read: the backend's, or q8_0. */
static const char *weights_name(bool q8_0) {
    return q8_0 ? "q8_0" : gemm_get_backend() == GEMM_DNNL_BF16 ? "bf16" : "f32";
}

static void print_common(const hn_model *m) {
    printf("\"model\":\"%s\",\"gemm\":\"%s\",\"weights\":\"%s\",\"params\":%zu,"
           "\"peak_rss_mb\":%.1f",
           m->cfg.name, gemm_backend_name(gemm_get_backend()), weights_name(m->q8_0), m->n_params,
           peak_rss_mb());
}

/* ---- training step ---- */

static int bench_train(const bench_opts *o, bool lora, int B, int T) {
    hn_err err = {0};
    hn_model *m = NULL;
    lora_set *lo = NULL, *lg = NULL;
    llama_acts *acts = NULL;
    float *grads = NULL, *am = NULL, *av = NULL, *w = NULL;
    int32_t *ids = NULL, *tgt = NULL;
    double *times = NULL, *tf = NULL, *tb = NULL, *to = NULL, *tc = NULL;
    int rc = 1;
    if (bench_model_create(o->model, &m, &err) != HN_OK) goto done;
    if (T > m->cfg.max_seq_len) {
        hn_errf(&err, HN_EINVAL, "seq %d over the model's context %d", T, m->cfg.max_seq_len);
        goto done;
    }
    float *params;
    size_t n_train;
    if (lora) {
        hn_rng rng;
        hn_rng_seed(&rng, 7);
        unsigned all = (1u << LORA_N_TARGETS) - 1;
        if (lora_create(m, o->lora_rank, (float)o->lora_rank, all, &rng, &lo, &err) != HN_OK ||
            lora_create(m, o->lora_rank, (float)o->lora_rank, all, NULL, &lg, &err) != HN_OK)
            goto done;
        params = lo->slab;
        grads = lg->slab;
        n_train = lo->n_params;
    } else {
        params = m->slab;
        n_train = m->n_params;
        grads = calloc(n_train, sizeof(float));
    }
    am = calloc(n_train, sizeof(float));
    av = calloc(n_train, sizeof(float));
    size_t N = (size_t)B * T;
    ids = malloc(N * sizeof *ids);
    tgt = malloc(N * sizeof *tgt);
    w = malloc(N * sizeof *w);
    int n_it = o->warmup + o->iters;
    times = calloc((size_t)n_it * 5, sizeof *times);
    if (!grads || !am || !av || !ids || !tgt || !w || !times) {
        hn_errf(&err, HN_ENOMEM, "out of memory");
        goto done;
    }
    tf = times + n_it, tb = tf + n_it, to = tb + n_it, tc = to + n_it;
    hn_rng rng;
    hn_rng_seed(&rng, 1);
    for (size_t i = 0; i < N; i++) {
        ids[i] = (int32_t)hn_rng_below(&rng, (uint32_t)m->cfg.vocab_size);
        w[i] = 1.0f;
    }
    for (size_t i = 0; i < N; i++)
        tgt[i] = (i + 1) % T ? ids[i + 1] : (int32_t)hn_rng_below(&rng, (uint32_t)m->cfg.vocab_size);
    if (llama_acts_create_ex(m, B, T, lora ? o->lora_rank : 0, o->recompute, &acts, &err) != HN_OK)
        goto done;
    llama_acts_default_pos(acts);
    double loss = 0;
    for (int it = 0; it < n_it; it++) {
        if (it == o->warmup) gemm_profile_reset(); /* HONE_PROFILE: timed iterations only */
        double c0 = cpu_s(), t0 = now_s();
        memset(grads, 0, n_train * sizeof(float));
        llama_forward(m, lo, acts, ids);
        double t1 = now_s();
        llama_loss_stats st;
        llama_loss_backward(m, lo, acts, ids, tgt, w, 1.0f / (float)N, lora ? NULL : grads, lg,
                            &st);
        double t2 = now_s();
        adamw_update(params, grads, am, av, (long)n_train, 1e-4f, 0.9f, 0.999f, 1e-8f,
                     lora ? 0.0f : 0.1f, it + 1);
        double t3 = now_s();
        loss = st.weight_sum > 0 ? st.loss_sum / st.weight_sum : NAN;
        fprintf(stderr, "  train %s %dx%d iter %d: loss %.4f, %.0f ms (fwd %.0f, loss+bwd %.0f, adamw %.0f)\n",
                lora ? "lora" : "full", B, T, it, loss, (t3 - t0) * 1e3, (t1 - t0) * 1e3,
                (t2 - t1) * 1e3, (t3 - t2) * 1e3);
        if (it >= o->warmup) {
            int k = it - o->warmup;
            times[k] = t3 - t0, tf[k] = t1 - t0, tb[k] = t2 - t1, to[k] = t3 - t2;
            tc[k] = cpu_s() - c0;
        }
    }
    gemm_profile_report(stderr);
    double med = median(times, o->iters), best = times[0];
    double fwd = median(tf, o->iters), bwd = median(tb, o->iters), opt = median(to, o->iters);
    double cpu = median(tc, o->iters);
    double tps = (double)N / med;
    double flops = (lora ? 4.0 : 6.0) * matmul_params(m) * tps;
    printf("{\"bench\":\"train_step\",\"method\":\"%s\",\"batch\":%d,\"seq\":%d,"
           "\"tokens_per_s\":%.2f,\"tokens_per_s_best\":%.2f,\"step_ms\":%.1f,\"fwd_ms\":%.1f,"
           "\"bwd_ms\":%.1f,\"adamw_ms\":%.1f,\"cpu_ms\":%.1f,\"model_gflops\":%.2f,\"loss\":%.4f,"
           "\"trainable\":%zu,\"recompute\":%s,",
           lora ? "lora" : "full", B, T, tps, (double)N / best, med * 1e3, fwd * 1e3, bwd * 1e3,
           opt * 1e3, cpu * 1e3, flops / 1e9, loss, n_train, o->recompute ? "true" : "false");
    print_common(m);
    printf("}\n");
    fprintf(stderr, "train %s %dx%d: %.1f tok/s (median %.0f ms), ~%.1f GFLOP/s, peak RSS %.0f MB\n",
            lora ? "lora" : "full", B, T, tps, med * 1e3, flops / 1e9, peak_rss_mb());
    rc = 0;
done:
    if (rc) fprintf(stderr, "hone bench: %s\n", err.msg);
    llama_acts_free(acts);
    if (!lora) free(grads);
    lora_free(lo);
    lora_free(lg);
    free(am), free(av), free(ids), free(tgt), free(w), free(times);
    model_free(m);
    return rc;
}

/* ---- inference: prefill and decode ---- */

/* The first index of the largest logit. 16 running maxima (the compiler
 * vectorises the loop; one comparison chain over 32000 logits took ~40 µs, 15%
 * of a Q8_0 decode step's time outside the weight products), then the first
 * index holding the maximum. Same answer as the plain scan. */
static int argmax(const float *x, int n) {
    float m[16];
    for (int j = 0; j < 16; j++) m[j] = -INFINITY;
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) m[j] = x[i + j] > m[j] ? x[i + j] : m[j];
    float best = -INFINITY;
    for (int j = 0; j < 16; j++) best = m[j] > best ? m[j] : best;
    for (; i < n; i++) best = x[i] > best ? x[i] : best;
    for (i = 0; i < n; i++)
        if (x[i] == best) return i;
    return 0;
}

static int bench_infer(const bench_opts *o, bool decode, int B, int T) {
    hn_err err = {0};
    hn_model *m = NULL;
    model_state *st = NULL;
    int32_t *ids = NULL;
    int rc = 1, n_it = o->warmup + o->iters;
    double times[64];
    if (n_it > 64) n_it = 64;
    if (B != 1) {
        hn_errf(&err, HN_EUNSUPPORTED, "inference benchmarks run one sequence (batch 1)");
        goto done;
    }
    if (bench_model_create(o->model, &m, &err) != HN_OK) goto done;
    if (o->q8_0 && model_set_q8_0(m, true, &err) != HN_OK) goto done;
    int need = decode ? T + 1 : T;
    if (need > m->cfg.max_seq_len) {
        hn_errf(&err, HN_EINVAL, "%d tokens over the model's context %d", need,
                m->cfg.max_seq_len);
        goto done;
    }
    ids = malloc((size_t)need * sizeof *ids);
    if (!ids || model_state_create(m, need, &st, &err) != HN_OK) goto done;
    hn_rng rng;
    hn_rng_seed(&rng, 3);
    for (int i = 0; i < need; i++) ids[i] = (int32_t)hn_rng_below(&rng, (uint32_t)m->cfg.vocab_size);
    const float *logits;
    for (int it = 0; it < n_it; it++) {
        if (it == o->warmup) gemm_profile_reset();
        model_state_reset(st);
        double t0 = now_s();
        if (!decode) {
            if (model_forward(m, st, ids, T, NULL, &logits, &err) != HN_OK) goto done;
        } else {
            if (model_forward(m, st, ids, 1, NULL, &logits, &err) != HN_OK) goto done;
            t0 = now_s();
            for (int i = 0; i < T; i++) {
                int32_t next = argmax(logits, m->cfg.vocab_size);
                if (model_forward(m, st, &next, 1, NULL, &logits, &err) != HN_OK) goto done;
            }
        }
        double dt = now_s() - t0;
        fprintf(stderr, "  %s %d iter %d: %.0f ms\n", decode ? "decode" : "prefill", T, it,
                dt * 1e3);
        if (it >= o->warmup) times[it - o->warmup] = dt;
    }
    gemm_profile_report(stderr);
    double med = median(times, n_it - o->warmup), tps = T / med;
    if (decode)
        printf("{\"bench\":\"decode\",\"batch\":1,\"tokens\":%d,\"tokens_per_s\":%.2f,"
               "\"ms_per_token\":%.2f,",
               T, tps, med * 1e3 / T);
    else
        printf("{\"bench\":\"prefill\",\"batch\":1,\"seq\":%d,\"tokens_per_s\":%.2f,"
               "\"model_gflops\":%.2f,",
               T, tps, 2.0 * matmul_params(m) * tps / 1e9);
    print_common(m);
    printf("}\n");
    fprintf(stderr, "%s %d (%s weights): %.1f tok/s, peak RSS %.0f MB\n",
            decode ? "decode" : "prefill", T, weights_name(m->q8_0), tps, peak_rss_mb());
    rc = 0;
done:
    if (rc) fprintf(stderr, "hone bench: %s\n", err.msg);
    model_state_free(st);
    free(ids);
    model_free(m);
    return rc;
}

/* ---- GEMM at the model's shapes ---- */

typedef struct gemm_shape {
    const char *what;
    bool ta, tb;
    int M, N, K;
} gemm_shape;

static int bench_gemm(const bench_opts *o) {
    model_config c;
    bench_config(o->model, &c);
    int D = c.dim, F = c.hidden_dim, V = c.vocab_size;
    int R = !strcmp(o->model, "tiny") ? 256 : 1024; /* rows of a 4 x 256 batch */
    const gemm_shape shapes[] = {
        {"xwt_qkvo", false, true, R, D, D},  {"xwt_gate_up", false, true, R, F, D},
        {"xwt_down", false, true, R, D, F},  {"xw_dx_gate_up", false, false, R, D, F},
        {"xw_dx_down", false, false, R, F, D}, {"dw_gate_up", true, false, F, D, R},
        {"dw_down", true, false, D, F, R},   {"xwt_lm_head_chunk", false, true, llama_loss_chunk_rows(V), V, D},
        {"xwt_lora_a", false, true, R, o->lora_rank, D}, {"gemv_decode_up", false, true, 1, F, D},
    };
    int ns = (int)(sizeof shapes / sizeof shapes[0]);
    size_t cap = 0;
    for (int s = 0; s < ns; s++) {
        size_t a = (size_t)shapes[s].M * shapes[s].K, b = (size_t)shapes[s].K * shapes[s].N,
               cc = (size_t)shapes[s].M * shapes[s].N;
        if (a > cap) cap = a;
        if (b > cap) cap = b;
        if (cc > cap) cap = cc;
    }
    float *A = malloc(cap * sizeof *A), *B = malloc(cap * sizeof *B), *C = malloc(cap * sizeof *C);
    if (!A || !B || !C) {
        fprintf(stderr, "hone bench: out of memory\n");
        free(A), free(B), free(C);
        return 1;
    }
    hn_rng rng;
    hn_rng_seed(&rng, 5);
    for (size_t i = 0; i < cap; i++) {
        A[i] = hn_rng_uniform(&rng) - 0.5f;
        B[i] = hn_rng_uniform(&rng) - 0.5f;
        C[i] = 0;
    }
    for (int b = 0; b < GEMM_N_BACKENDS; b++) {
        if (o->gemm_all ? !gemm_backend_available((gemm_backend)b) : b != (int)gemm_get_backend())
            continue;
        if (o->gemm_all && b == GEMM_REF) continue; /* the oracle, not a contender */
        gemm_set_backend((gemm_backend)b);
        for (int s = 0; s < ns; s++) {
            const gemm_shape *g = &shapes[s];
            int lda = g->ta ? g->M : g->K, ldb = g->tb ? g->K : g->N;
            double flop = 2.0 * g->M * g->N * g->K, times[64];
            /* enough repetitions for ~0.2 s per sample at 100 GFLOP/s */
            int reps = (int)fmin(1000, fmax(1, 2e10 / flop));
            int n_it = o->warmup + o->iters > 64 ? 64 : o->warmup + o->iters;
            for (int it = 0; it < n_it; it++) {
                double t0 = now_s();
                for (int r = 0; r < reps; r++)
                    gemm_f32(g->ta, g->tb, g->M, g->N, g->K, 1.0f, A, lda, B, ldb, 0.0f, C, g->N);
                if (it >= o->warmup) times[it - o->warmup] = (now_s() - t0) / reps;
            }
            double med = median(times, n_it - o->warmup);
            printf("{\"bench\":\"gemm\",\"model\":\"%s\",\"gemm\":\"%s\",\"weights\":\"%s\","
                   "\"op\":\"%s\",\"ta\":%d,\"tb\":%d,\"M\":%d,\"N\":%d,\"K\":%d,\"gflops\":%.2f,"
                   "\"us\":%.1f}\n",
                   o->model, gemm_backend_name((gemm_backend)b), weights_name(false), g->what, g->ta,
                   g->tb, g->M, g->N, g->K, flop / med / 1e9, med * 1e6);
            fprintf(stderr, "gemm %-9s %-18s %c%c M %5d N %5d K %5d: %7.1f GFLOP/s\n",
                    gemm_backend_name((gemm_backend)b), g->what, g->ta ? 'T' : 'N',
                    g->tb ? 'T' : 'N', g->M, g->N, g->K, flop / med / 1e9);
        }
    }
    free(A), free(B), free(C);
    return 0;
}

/* The x·Wᵀ shapes of the gemm case with W in Q8_0 (through gemm_xwt_w on a
 * marked weight, as the model runs them; the weight is quantized in the
 * warm-up). GFLOP/s counts 2·M·N·K as for f32. */
static int bench_gemm_q8(const bench_opts *o) {
    model_config c;
    bench_config(o->model, &c);
    int D = c.dim, F = c.hidden_dim, V = c.vocab_size;
    int R = !strcmp(o->model, "tiny") ? 256 : 1024;
    const gemm_shape shapes[] = {
        {"xwt_qkvo", false, true, R, D, D},         {"xwt_gate_up", false, true, R, F, D},
        {"xwt_down", false, true, R, D, F},         {"xwt_prefill_chunk_up", false, true, 64, F, D},
        {"gemv_decode_up", false, true, 1, F, D},   {"gemv_decode_down", false, true, 1, D, F},
        {"gemv_decode_lm_head", false, true, 1, V, D},
    };
    int ns = (int)(sizeof shapes / sizeof shapes[0]);
    size_t cap = (size_t)V * D > (size_t)R * F ? (size_t)V * D : (size_t)R * F;
    float *A = malloc(cap * sizeof *A), *B = malloc(cap * sizeof *B), *C = malloc(cap * sizeof *C);
    int rc = 1;
    if (!A || !B || !C || !gemm_q8_weights_add(B, cap)) {
        fprintf(stderr, "hone bench: out of memory\n");
        goto done;
    }
    hn_rng rng;
    hn_rng_seed(&rng, 5);
    for (size_t i = 0; i < cap; i++) {
        A[i] = hn_rng_uniform(&rng) - 0.5f;
        B[i] = hn_rng_uniform(&rng) - 0.5f;
    }
    for (int s = 0; s < ns; s++) {
        const gemm_shape *g = &shapes[s];
        if (g->K % GEMM_Q8_BLOCK) { /* such products stay on the f32 backend */
            fprintf(stderr, "gemm q8_0      %-20s K %d: not a multiple of 32, skipped\n", g->what,
                    g->K);
            continue;
        }
        double flop = 2.0 * g->M * g->N * g->K, times[64];
        int reps = (int)fmin(1000, fmax(1, 2e10 / flop));
        int n_it = o->warmup + o->iters > 64 ? 64 : o->warmup + o->iters;
        gemm_xwt_w(g->M, g->N, g->K, A, B, 1, C, false); /* quantizes this shape's B */
        for (int it = 0; it < n_it; it++) {
            double t0 = now_s();
            for (int r = 0; r < reps; r++) gemm_xwt_w(g->M, g->N, g->K, A, B, 1, C, false);
            if (it >= o->warmup) times[it - o->warmup] = (now_s() - t0) / reps;
        }
        double med = median(times, n_it - o->warmup);
        double gbs = ((double)g->N * g->K * (1.0 + 2.0 / 32)) / med / 1e9;
        printf("{\"bench\":\"gemm\",\"model\":\"%s\",\"gemm\":\"q8_0\",\"weights\":\"q8_0\","
               "\"kernel\":\"%s\",\"op\":\"%s\",\"ta\":0,\"tb\":1,\"M\":%d,\"N\":%d,\"K\":%d,"
               "\"gflops\":%.2f,\"weight_gb_per_s\":%.2f,\"us\":%.1f}\n",
               o->model, gemm_q8_kernel_name(), g->what, g->M, g->N, g->K, flop / med / 1e9, gbs,
               med * 1e6);
        fprintf(stderr, "gemm q8_0      %-20s M %5d N %5d K %5d: %7.1f GFLOP/s, weights %5.1f GB/s\n",
                g->what, g->M, g->N, g->K, flop / med / 1e9, gbs);
        gemm_weight_cache_clear(); /* the next shape reads B with another width */
    }
    rc = 0;
done:
    gemm_q8_weights_remove(B);
    free(A), free(B), free(C);
    return rc;
}

/* ---- attention kernels at the model's head shape ---- */

/* attention_forward + attention_backward over B sequences of T tokens (one
 * layer's worth): the tiled kernels (all B sequences in one call, as llama.c
 * calls them) and, for scale, the single-threaded oracle (one sequence at a
 * time, with its T x T probabilities; skipped when those would not fit in
 * 1 GiB). FLOPs: causal Q·Kᵀ and P·V forward (2 · T²/2 · hd · 2 per head),
 * twice that backward (the tiled backward's recomputation of Q·Kᵀ is not
 * counted). */
static int bench_attn(const bench_opts *o, int B, int T) {
    model_config c;
    bench_config(o->model, &c);
    int Hq = c.n_heads, Hkv = c.n_kv_heads, hd = c.head_dim;
    size_t nq = (size_t)B * T * Hq * hd, nk = (size_t)B * T * Hkv * hd, na = (size_t)Hq * T * T;
    size_t nws = attention_ws_floats(hd, 0);
    float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nk * 4), *out = malloc(nq * 4);
    float *dq = malloc(nq * 4), *dk = malloc(nk * 4), *dv = malloc(nk * 4), *dout = malloc(nq * 4);
    float *lse = malloc((size_t)B * Hq * T * 4), *ws = malloc(nws * 4);
    float *att = na <= (1u << 28) ? malloc(na * 4) : NULL;
    int rc = 1;
    if (!q || !k || !v || !out || !dq || !dk || !dv || !dout || !lse || !ws) {
        fprintf(stderr, "hone bench: out of memory\n");
        goto done;
    }
    hn_rng rng;
    hn_rng_seed(&rng, 9);
    for (size_t i = 0; i < nq; i++) q[i] = hn_rng_uniform(&rng) - 0.5f, dout[i] = q[i];
    for (size_t i = 0; i < nk; i++) k[i] = hn_rng_uniform(&rng) - 0.5f, v[i] = k[i];
    double flop_f = 2.0 * B * Hq * (double)T * (T + 1) / 2 * hd * 2, flop_b = 2 * flop_f;
    attn_shape sh = {B, T, T, 0, Hq, Hkv, hd, NULL};
    for (int impl = 0; impl < (att ? 2 : 1); impl++) {
        double tf[64], tb[64];
        int n_it = o->warmup + o->iters > 64 ? 64 : o->warmup + o->iters;
        for (int it = 0; it < n_it; it++) {
            double t0 = now_s(), t1;
            if (!impl) {
                attention_forward(&sh, out, lse, q, k, v, ws, nws);
                t1 = now_s();
                attention_backward(&sh, dq, dk, dv, dout, out, lse, q, k, v, ws, nws);
            } else {
                double fwd = 0;
                for (int b = 0; b < B; b++) {
                    size_t oq = (size_t)b * T * Hq * hd, ok = (size_t)b * T * Hkv * hd;
                    double s0 = now_s();
                    attention_forward_ref(out + oq, att, q + oq, k + ok, v + ok, T, T, 0, Hq, Hkv,
                                          hd, NULL);
                    fwd += now_s() - s0;
                    attention_backward_ref(dq + oq, dk + ok, dv + ok, dout + oq, att, q + oq,
                                           k + ok, v + ok, T, T, 0, Hq, Hkv, hd);
                }
                t1 = t0 + fwd;
            }
            if (it >= o->warmup) tf[it - o->warmup] = t1 - t0, tb[it - o->warmup] = now_s() - t1;
        }
        double mf = median(tf, n_it - o->warmup), mb = median(tb, n_it - o->warmup);
        const char *name = impl ? "ref" : "tiled";
        printf("{\"bench\":\"attention\",\"model\":\"%s\",\"impl\":\"%s\",\"batch\":%d,\"seq\":%d,"
               "\"heads\":%d,\"kv_heads\":%d,\"head_dim\":%d,\"fwd_ms\":%.2f,\"bwd_ms\":%.2f,"
               "\"fwd_gflops\":%.2f,\"bwd_gflops\":%.2f,\"peak_rss_mb\":%.1f}\n",
               o->model, name, B, T, Hq, Hkv, hd, mf * 1e3, mb * 1e3, flop_f / mf / 1e9,
               flop_b / mb / 1e9, peak_rss_mb());
        fprintf(stderr, "attention %-7s %dx%d: fwd %.1f ms (%.1f GFLOP/s), bwd %.1f ms (%.1f GFLOP/s)\n",
                name, B, T, mf * 1e3, flop_f / mf / 1e9, mb * 1e3, flop_b / mb / 1e9);
    }
    rc = 0;
done:
    free(q), free(k), free(v), free(out), free(dq), free(dk), free(dv), free(dout), free(lse);
    free(ws), free(att);
    return rc;
}

/* ---- cases, each in a child process ---- */

static int run_case(const bench_opts *o, const char *cs) {
    int B = 0, T = 0;
    char method[16];
    if (!o->gemm_all && o->gemm != GEMM_N_BACKENDS) {
        if (!gemm_backend_available(o->gemm)) {
            fprintf(stderr, "hone bench: GEMM backend '%s' is not built in\n",
                    gemm_backend_name(o->gemm));
            return 2;
        }
        gemm_set_backend(o->gemm);
    }
    if (!strcmp(cs, "gemm")) return o->q8_0 ? bench_gemm_q8(o) : bench_gemm(o);
    if (sscanf(cs, "train:%15[a-z]:%dx%d", method, &B, &T) == 3 && B > 0 && T > 0 &&
        (!strcmp(method, "full") || !strcmp(method, "lora"))) {
        if (o->q8_0) {
            fprintf(stderr, "hone bench: %s: q8_0 is an inference precision; use f32 or bf16 "
                            "for training\n", cs);
            return 2;
        }
        return bench_train(o, !strcmp(method, "lora"), B, T);
    }
    if (sscanf(cs, "attn:%dx%d", &B, &T) == 2 && B > 0 && T > 0) return bench_attn(o, B, T);
    if (sscanf(cs, "prefill:%dx%d", &B, &T) == 2 && B > 0 && T > 0) return bench_infer(o, false, B, T);
    if (sscanf(cs, "decode:%d", &T) == 1 && T > 0) return bench_infer(o, true, 1, T);
    fprintf(stderr, "hone bench: unknown case '%s'\n", cs);
    return 2;
}

static int run_forked(const bench_opts *o, const char *cs) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("hone bench: fork");
        return 1;
    }
    if (pid == 0) {
        int rc = run_case(o, cs);
        fflush(stdout);
        fflush(stderr);
        _exit(rc);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0) return 1;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    fprintf(stderr, "hone bench: case '%s' died (signal %d)\n", cs,
            WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return 1;
}

int cmd_bench(int argc, char **argv) {
    if (cli_want_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    bench_opts o = {.model = "llama-110m", .warmup = 1, .iters = 3, .lora_rank = 16};
    const char *cases = NULL, *gemm = getenv("HONE_GEMM"), *precision = NULL, *v;
    bool quick = false, bad = false;
    for (int i = 1; i < argc && !bad; i++) {
        if (cli_flag(argv, i, "--quick")) { quick = true; continue; }
        if (cli_opt(argc, argv, &i, "--model", &o.model, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--cases", &cases, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--gemm", &gemm, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--precision", &precision, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--warmup", &v, &bad)) { o.warmup = atoi(v); continue; }
        if (cli_opt(argc, argv, &i, "--iters", &v, &bad)) { o.iters = atoi(v); continue; }
        if (cli_opt(argc, argv, &i, "--lora-rank", &v, &bad)) { o.lora_rank = atoi(v); continue; }
        if (cli_flag(argv, i, "--recompute")) { o.recompute = true; continue; }
        fprintf(stderr, "hone bench: unknown option '%s'\n%s", argv[i], usage);
        return 2;
    }
    if (bad) return 2;
    if (quick && !strcmp(o.model, "llama-110m")) o.model = "tiny";
    if (strcmp(o.model, "tiny") && strcmp(o.model, "llama-110m") && strcmp(o.model, "gpt2-124m")) {
        fprintf(stderr, "hone bench: unknown model '%s' (llama-110m, gpt2-124m or tiny)\n",
                o.model);
        return 2;
    }
    if (o.warmup < 0 || o.iters < 1 || o.warmup + o.iters > 64 || o.lora_rank < 1) {
        fprintf(stderr, "hone bench: need --iters >= 1, --warmup >= 0 (64 in all), --lora-rank >= 1\n");
        return 2;
    }
    if (precision && !strcmp(precision, "bf16")) gemm = "dnnl_bf16";
    else if (precision && !strcmp(precision, "q8_0")) o.q8_0 = true;
    else if (precision && strcmp(precision, "f32")) {
        fprintf(stderr, "hone bench: --precision is f32, bf16 or q8_0, not '%s'\n", precision);
        return 2;
    }
    o.gemm_all = gemm && !strcmp(gemm, "all");
    o.gemm = GEMM_N_BACKENDS; /* the library's default, resolved in the child */
    if (gemm && !o.gemm_all) {
        o.gemm = gemm_backend_parse(gemm);
        if (o.gemm == GEMM_N_BACKENDS) {
            fprintf(stderr, "hone bench: unknown GEMM backend '%s'\n", gemm);
            return 2;
        }
    }
    /* the children select the backend (the parent runs no GEMM, no OpenMP) */
    if (!getenv("OMP_WAIT_POLICY"))
        fprintf(stderr, "hone bench: warning: OMP_WAIT_POLICY is not set; on small VMs "
                        "OMP_WAIT_POLICY=PASSIVE avoids spin-wait stalls\n");
    if (!cases)
        cases = !strcmp(o.model, "tiny")
                    ? "train:full:4x64,train:lora:4x64,train:full:1x256,train:lora:1x256,"
                      "prefill:1x64,decode:32,gemm"
                    : "train:full:4x256,train:lora:4x256,train:full:1x1024,train:lora:1x1024,"
                      "prefill:1x512,decode:128,gemm";
    char *list = strdup(cases), *save = NULL;
    int rc = 0;
    for (char *c = strtok_r(list, ",", &save); c; c = strtok_r(NULL, ",", &save)) {
        fprintf(stderr, "== %s (%s, gemm %s%s)\n", c, o.model,
                o.gemm_all ? "all" : gemm ? gemm : "default", o.q8_0 ? ", q8_0 weights" : "");
        int r = run_forked(&o, c);
        if (r && !rc) rc = r;
    }
    free(list);
    return rc;
}
