/* finetune.c — the fine-tuning loop: data -> batches -> forward/backward ->
 * clipped AdamW with warmup + linear decay, per-step metrics (OpenAI's CSV),
 * validation, per-epoch checkpoints, exact resume.
 *
 * Determinism: the example order of epoch e is a permutation drawn from
 * (seed, e) alone, so a run resumed at step s replays the same batches. The
 * loss is normalised by the trained-token weight of the whole optimizer step
 * (all micro-batches), so gradient accumulation equals one big batch. */
#include "train/finetune.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/file.h"
#include "base/mem.h"
#include "base/rng.h"
#include "chat/hparams.h"
#include "tensor/ops.h"
#include "train/stopcheck.h"
#include "train/trainer.h"

void ft_config_default(ft_config *c) {
    memset(c, 0, sizeof *c);
    c->method = FT_AUTO;
    c->lora_rank = 8;
    c->grad_accum = 1;
    c->seed = 42;
}

/* ---- "auto" hyperparameters (documented in docs/training.md) ---- */

/* The rules live in chat/hparams.c, shared with `hone data check`, so the
 * plan it prints is what the trainer does. */
int ft_auto_epochs(int n) { return chat_auto_epochs(n > 0 ? (size_t)n : 0); }

int ft_auto_batch_size(int n) { return chat_auto_batch_size(n > 0 ? (size_t)n : 0); }

double ft_base_lr(ft_method m) { return m == FT_LORA ? 2e-3 : 2e-4; }

ft_method ft_auto_method(size_t n_params) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    double ram = pages > 0 && page > 0 ? (double)pages * page : 8e9;
    return 16.0 * n_params < ram / 4 ? FT_FULL : FT_LORA;
}

static void event(trainer *t, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void event(trainer *t, const char *level, const char *fmt, ...) {
    if (!t->cb || !t->cb->on_event) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    t->cb->on_event(t->cb->ctx, level, msg);
}

static void warn_cb(void *ctx, const char *msg) { event(ctx, "warn", "%s", msg); }

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- setup ---- */

static int context_len(const trainer *t) {
    return t->cfg.max_seq_len > 0 && t->cfg.max_seq_len < t->m->cfg.max_seq_len
               ? t->cfg.max_seq_len : t->m->cfg.max_seq_len;
}

static hn_status setup_data(trainer *t, hn_err *err) {
    int ctx = context_len(t);
    hn_status s = ft_seqs_load(t->m, t->cfg.train_path, ctx, 1, &t->train, warn_cb, t, err);
    if (s == HN_OK && t->cfg.valid_path)
        s = ft_seqs_load(t->m, t->cfg.valid_path, ctx, 1, &t->valid, warn_cb, t, err);
    if (s != HN_OK) return s;
    if (t->train.n == 0)
        return hn_errf(err, HN_EINVAL, "%s: no example with a trained token", t->cfg.train_path);
    if (t->train.n_truncated)
        event(t, "warn", "%d training examples were longer than %d tokens and were truncated",
              t->train.n_truncated, ctx);
    return HN_OK;
}

static hn_status setup_hparams(trainer *t, hn_err *err) {
    const ft_config *c = &t->cfg;
    int n = t->train.n;
    t->n_epochs = c->n_epochs > 0 ? c->n_epochs : ft_auto_epochs(n);
    t->batch_size = c->batch_size > 0 ? c->batch_size : ft_auto_batch_size(n);
    if (t->batch_size > n) t->batch_size = n;
    t->lr_mult = c->lr_multiplier > 0 ? c->lr_multiplier : chat_auto_lr_multiplier(t->batch_size);
    t->lr = ft_base_lr(c->method) * t->lr_mult;
    if (t->n_epochs > 50 || t->batch_size > 256)
        return hn_errf(err, HN_EINVAL, "n_epochs must be 1..50 and batch_size 1..256");
    t->weight_decay = 0.0f;
    t->clip_norm = 1.0f;
    t->steps_per_epoch = (n + t->batch_size - 1) / t->batch_size;
    t->total_steps = t->steps_per_epoch * t->n_epochs;
    t->warmup_steps = 0;
    int accum = c->grad_accum > 0 ? c->grad_accum : 1;
    t->micro_b = (t->batch_size + accum - 1) / accum;
    t->max_t = t->train.max_len > t->valid.max_len ? t->train.max_len : t->valid.max_len;
    t->max_t -= 1; /* inputs are all tokens but the last */
    if (t->max_t < 1) t->max_t = 1;
    /* Packing fills rows of the longest example's length (no more memory
     * than without packing); with an explicit --max-seq-len, rows of that
     * length, as many as the same token budget allows. */
    t->pack_len = t->max_t;
    t->pack_rows = t->micro_b;
    if (c->packing && c->max_seq_len > 0 && context_len(t) - 1 > t->max_t) {
        long budget = (long)t->micro_b * t->max_t;
        t->pack_len = context_len(t) - 1;
        t->pack_rows = budget / t->pack_len > 0 ? (int)(budget / t->pack_len) : 1;
    }
    if (c->lora_dropout < 0 || c->lora_dropout >= 1)
        return hn_errf(err, HN_EINVAL, "LoRA dropout %g is not in [0, 1)", c->lora_dropout);
    return HN_OK;
}

/* LoRA keeps embeddings and the output head frozen: when the base model
 * never trained its end-of-turn token (stories260K's EOS row equals 167
 * unused rows; Llama-3 base's <|eot_id|>), no adapter can make the model
 * predict it, so its rows are trained alongside (docs/training.md). */
static hn_status setup_tokens(trainer *t, hn_err *err) {
    ft_tokens *tk = &t->tokens;
    hn_status s = ft_tokens_choose(t->m, t->cfg.train_tokens, tk, err);
    if (s != HN_OK) return s;
    if (tk->n)
        event(t, "info", "Training the embedding and output rows of %s alongside the LoRA "
              "adapter: %s", tk->names, tk->why);
    bool eot_kept = false;
    for (int k = 0; k < tk->n; k++) eot_kept |= tk->ids[k] == tk->eot;
    if (tk->eot_untrained && !eot_kept)
        event(t, "warn", "The end-of-turn token '%s' looks untrained and --train-tokens keeps its "
              "rows frozen: the fine-tuned model will likely not learn to stop "
              "(use --train-tokens eot or --method full).", tok_piece(t->m->tok, tk->eot));
    return HN_OK;
}

static hn_status setup_params(trainer *t, hn_err *err) {
    const ft_config *c = &t->cfg;
    hn_rng rng;
    hn_rng_seed(&rng, c->seed ^ 0x10aULL);
    hn_status s;
    if (c->method == FT_LORA) {
        unsigned all;
        s = lora_parse_targets(c->lora_targets, &all, err);
        if (s != HN_OK) return s;
        unsigned have = lora_arch_targets(t->m->cfg.arch);
        if (all != LORA_ALL && (all & ~have)) {
            char names[160] = "";
            for (int k = 0; k < LORA_N_TARGETS; k++)
                if (have >> k & 1)
                    snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
                             names[0] ? ", " : "", lora_target_name(t->m->cfg.arch, k));
            return hn_errf(err, HN_EINVAL, "--lora-targets '%s': a %s model has only %s",
                           c->lora_targets, model_arch_name(t->m->cfg.arch), names);
        }
        int r = c->lora_rank > 0 ? c->lora_rank : 8;
        float alpha = c->lora_alpha > 0 ? c->lora_alpha : 2.0f * r;
        s = setup_tokens(t, err);
        const int32_t *ids = t->tokens.ids;
        int n = t->tokens.n;
        if (s == HN_OK) s = lora_create_ex(t->m, r, alpha, all, ids, n, &rng, &t->lora, err);
        if (s == HN_OK) s = lora_create_ex(t->m, r, alpha, all, ids, n, NULL, &t->lora_grad, err);
        if (s != HN_OK) return s;
        t->lora->dropout = c->lora_dropout;
        t->params = t->lora->slab;
        t->grads = t->lora_grad->slab;
        t->n_train = t->lora->n_params;
    } else {
        t->params = t->m->slab;
        t->n_train = t->m->n_params;
        t->grads = hn_calloc_huge(t->n_train * sizeof(float));
    }
    t->adam_m = hn_calloc_huge(t->n_train * sizeof(float));
    t->adam_v = hn_calloc_huge(t->n_train * sizeof(float));
    int B = c->packing ? t->pack_rows : t->micro_b, T = c->packing ? t->pack_len : t->max_t;
    size_t rows = (size_t)B * T;
    t->ids = calloc(rows, sizeof *t->ids);
    t->tgt = calloc(rows, sizeof *t->tgt);
    t->w = calloc(rows, sizeof *t->w);
    t->pack_row = calloc((size_t)t->batch_size, sizeof *t->pack_row);
    t->pack_off = calloc((size_t)t->batch_size, sizeof *t->pack_off);
    if (!t->grads || !t->adam_m || !t->adam_v || !t->ids || !t->tgt || !t->w || !t->pack_row ||
        !t->pack_off)
        return hn_errf(err, HN_ENOMEM, "out of memory for %zu trainable parameters", t->n_train);
    return llama_acts_create_ex(t->m, B, T, t->lora ? t->lora->rank : 0, c->recompute, &t->acts,
                                err);
}

/* ---- batches ---- */

static void epoch_order(trainer *t, int epoch) {
    if (t->order_epoch == epoch) return;
    int n = t->train.n;
    for (int i = 0; i < n; i++) t->order[i] = i;
    hn_rng rng;
    hn_rng_seed(&rng, t->cfg.seed * 1000003ULL + (uint64_t)epoch);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)hn_rng_below(&rng, (uint32_t)i + 1);
        int tmp = t->order[i];
        t->order[i] = t->order[j];
        t->order[j] = tmp;
    }
    t->order_epoch = epoch;
}

/* Fills ids/tgt/w for sequences seq[0..nb) padded to their longest; returns T. */
static int fill_batch(trainer *t, ft_seq *const *seq, int nb) {
    int T = 1;
    for (int b = 0; b < nb; b++)
        if (seq[b]->n - 1 > T) T = seq[b]->n - 1;
    int pad = tok_eos(t->m->tok) >= 0 ? tok_eos(t->m->tok) : 0;
    for (int b = 0; b < nb; b++)
        for (int i = 0; i < T; i++) {
            const ft_seq *s = seq[b];
            int k = b * T + i;
            bool in = i + 1 < s->n;
            t->ids[k] = i < s->n ? s->ids[i] : pad;
            t->tgt[k] = in ? s->ids[i + 1] : pad;
            t->w[k] = in && s->trained[i + 1] ? 1.0f : 0.0f;
        }
    return T;
}

/* Packing: places seq[0..n) in order into at most pack_rows rows of
 * pack_len input tokens (first fit; an example's inputs are its tokens but
 * the last, exactly as unpacked), reshapes the activations and fills
 * ids/tgt/w and the activations' pos (restarting at 0 per example) and seg
 * (one attention segment per example; row padding is its own segment with
 * weight 0). Returns how many examples were placed (>= 1). */
static int fill_packed(trainer *t, ft_seq *const *seq, int n) {
    int R = t->pack_rows, P = t->pack_len, rows = 0, placed = 0, T = 1;
    int used[256]; /* pack_rows <= micro_b <= batch_size <= 256 */
    for (; placed < n; placed++) {
        int len = seq[placed]->n - 1, r = 0;
        while (r < rows && used[r] + len > P) r++;
        if (r == rows) {
            if (rows == R) break;
            used[rows++] = 0;
        }
        t->pack_row[placed] = r;
        t->pack_off[placed] = used[r];
        used[r] += len;
        if (used[r] > T) T = used[r];
    }
    llama_acts *a = t->acts;
    llama_acts_reshape(a, t->m, rows, T); /* re-plans pos/seg too: fill after */
    int pad = tok_eos(t->m->tok) >= 0 ? tok_eos(t->m->tok) : 0;
    for (int r = 0; r < rows; r++)
        for (int i = used[r]; i < T; i++) {
            int k = r * T + i;
            t->ids[k] = t->tgt[k] = pad;
            t->w[k] = 0.0f;
            a->pos[k] = i - used[r];
            a->seg[k] = -1;
        }
    for (int e = 0; e < placed; e++) {
        const ft_seq *s = seq[e];
        for (int i = 0; i + 1 < s->n; i++) {
            int k = t->pack_row[e] * T + t->pack_off[e] + i;
            t->ids[k] = s->ids[i];
            t->tgt[k] = s->ids[i + 1];
            t->w[k] = s->trained[i + 1] ? 1.0f : 0.0f;
            a->pos[k] = i;
            a->seg[k] = e;
        }
    }
    return placed;
}

/* Runs sequences through the model in micro-batches; accumulates grads when
 * train is true. norm: 1 / trained weight of the whole group. */
static void run_group(trainer *t, ft_seq *const *seq, int n, bool train, llama_loss_stats *tot) {
    float norm = 0;
    for (int i = 0; i < n; i++) norm += (float)seq[i]->n_trained;
    norm = norm > 0 ? 1.0f / norm : 0.0f;
    memset(tot, 0, sizeof *tot);
    for (int off = 0; off < n;) {
        int nb;
        if (t->cfg.packing) {
            nb = fill_packed(t, seq + off, n - off);
        } else {
            nb = n - off < t->micro_b ? n - off : t->micro_b;
            int T = fill_batch(t, seq + off, nb);
            llama_acts_reshape(t->acts, t->m, nb, T);
            llama_acts_default_pos(t->acts);
        }
        /* LoRA dropout in training passes only; masks reproducible per step (resume) */
        t->acts->lora_dropout = train && t->lora ? t->cfg.lora_dropout : 0.0f;
        t->acts->dropout_seed = t->cfg.seed * 0x9e3779b97f4a7c15ULL + (uint64_t)t->step * 1000003u + (uint64_t)off;
        off += nb;
        llama_loss_stats st;
        llama_forward(t->m, t->lora, t->acts, t->ids);
        llama_loss_backward(t->m, t->lora, t->acts, t->ids, t->tgt, t->w, norm,
                            train && !t->lora ? t->grads : NULL,
                            train && t->lora ? t->lora_grad : NULL, &st);
        tot->loss_sum += st.loss_sum;
        tot->weight_sum += st.weight_sum;
        tot->n_trained += st.n_trained;
        tot->n_correct += st.n_correct;
    }
}

/* The factor that clips the gradient to clip_norm (1 when it is within);
 * applied inside the AdamW pass rather than as a pass of its own. */
static float grad_clip_scale(const trainer *t) {
    double norm = sqrt(ops_sum_squares(t->grads, (long)t->n_train));
    return t->clip_norm > 0 && norm > t->clip_norm ? (float)(t->clip_norm / (norm + 1e-6)) : 1.0f;
}

static double lr_at(const trainer *t, int step) {
    if (step < t->warmup_steps) return t->lr * (step + 1) / t->warmup_steps;
    double span = t->total_steps - t->warmup_steps;
    return span > 0 ? t->lr * (t->total_steps - step) / span : t->lr;
}

/* Mean loss / accuracy over valid sequences [from, from+n). */
static void eval_valid(trainer *t, int from, int n, double *loss, double *acc) {
    llama_loss_stats tot = {0};
    ft_seq *batch[256];
    for (int off = 0; off < n; off += t->micro_b) {
        int nb = n - off < t->micro_b ? n - off : t->micro_b;
        for (int i = 0; i < nb; i++) batch[i] = &t->valid.v[(from + off + i) % t->valid.n];
        llama_loss_stats st;
        run_group(t, batch, nb, false, &st);
        tot.loss_sum += st.loss_sum;
        tot.weight_sum += st.weight_sum;
        tot.n_trained += st.n_trained;
        tot.n_correct += st.n_correct;
    }
    *loss = tot.weight_sum > 0 ? tot.loss_sum / tot.weight_sum : NAN;
    *acc = tot.n_trained > 0 ? (double)tot.n_correct / tot.n_trained : NAN;
}

/* ---- metrics CSV ---- */

static void csv_cell(FILE *f, double v) {
    if (!isnan(v)) fprintf(f, "%.6f", v);
}

static void csv_append(trainer *t, const ft_metrics *mt) {
    FILE *f = fopen(t->csv_path, "a");
    if (!f) return;
    fprintf(f, "%d,", mt->step);
    csv_cell(f, mt->train_loss);
    fputc(',', f);
    csv_cell(f, mt->train_accuracy);
    fputc(',', f);
    csv_cell(f, !isnan(mt->full_valid_loss) ? mt->full_valid_loss : mt->valid_loss);
    fputc(',', f);
    csv_cell(f, !isnan(mt->full_valid_mean_token_accuracy) ? mt->full_valid_mean_token_accuracy
                                                           : mt->valid_mean_token_accuracy);
    fputc('\n', f);
    fclose(f);
}

/* Starts the CSV, or on resume keeps only the rows up to the resumed step. */
static hn_status csv_open(trainer *t, hn_err *err) {
    hn_path_join(t->csv_path, sizeof t->csv_path, t->cfg.out_dir, "metrics.csv");
    hn_buf keep;
    hn_buf_init(&keep);
    hn_buf_puts(&keep, "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n");
    char *old = NULL;
    if (t->step > 0 && hn_file_read(t->csv_path, 0, &old, NULL, NULL) == HN_OK) {
        char *save = NULL;
        for (char *line = strtok_r(old, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            int st = atoi(line);
            if (st >= 1 && st <= t->step) hn_buf_printf(&keep, "%s\n", line);
        }
    }
    free(old);
    const void *parts[] = {keep.data};
    size_t lens[] = {keep.len};
    hn_status s = hn_file_write_atomic(t->csv_path, parts, lens, 1, err);
    hn_buf_free(&keep);
    return s;
}

/* ---- the loop ---- */

static hn_status checkpoint(trainer *t, int epoch, const ft_metrics *mt, hn_err *err) {
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/checkpoints/step-%d", t->cfg.out_dir, t->step);
    hn_status s = ckpt_save(t, dir, err);
    if (s == HN_OK && t->cb && t->cb->on_checkpoint) t->cb->on_checkpoint(t->cb->ctx, t->step, epoch, dir, mt);
    return s;
}

static hn_status train_step(trainer *t, ft_metrics *mt) {
    int epoch = t->step / t->steps_per_epoch, in_epoch = t->step % t->steps_per_epoch;
    epoch_order(t, epoch);
    int first = in_epoch * t->batch_size;
    int n = t->train.n - first < t->batch_size ? t->train.n - first : t->batch_size;
    ft_seq *batch[256];
    long tokens = 0;
    for (int i = 0; i < n; i++) {
        batch[i] = &t->train.v[t->order[first + i]];
        tokens += batch[i]->n;
    }
    memset(t->grads, 0, t->n_train * sizeof(float));
    double t0 = now();
    llama_loss_stats st;
    run_group(t, batch, n, true, &st);
    adamw_update_scaled(t->params, t->grads, t->adam_m, t->adam_v, (long)t->n_train,
                        (float)lr_at(t, t->step), 0.9f, 0.999f, 1e-8f, t->weight_decay,
                        t->step + 1, grad_clip_scale(t));
    if (!t->lora) t->m->weights_version++; /* cached bf16 weight copies are stale */
    t->step++;
    t->trained_tokens += tokens;
    mt->step = t->step;
    mt->total_steps = t->total_steps;
    mt->epoch = epoch;
    mt->train_loss = st.weight_sum > 0 ? st.loss_sum / st.weight_sum : NAN;
    mt->train_accuracy = st.n_trained ? (double)st.n_correct / st.n_trained : NAN;
    mt->valid_loss = mt->valid_mean_token_accuracy = NAN;
    mt->full_valid_loss = mt->full_valid_mean_token_accuracy = NAN;
    mt->tokens_per_second = tokens / (now() - t0);
    mt->trained_tokens = t->trained_tokens;
    return HN_OK;
}

static hn_status train_loop(trainer *t, hn_err *err) {
    int eval_every = t->cfg.eval_every > 0 ? t->cfg.eval_every
                                           : (t->total_steps / 20 > 1 ? t->total_steps / 20 : 1);
    /* what a stop-time checkpoint reports: the last step's metrics */
    ft_metrics last = {.step = t->step, .total_steps = t->total_steps,
                       .epoch = t->step / t->steps_per_epoch, .train_loss = NAN,
                       .train_accuracy = NAN, .valid_loss = NAN,
                       .valid_mean_token_accuracy = NAN, .full_valid_loss = NAN,
                       .full_valid_mean_token_accuracy = NAN,
                       .trained_tokens = t->trained_tokens};
    while (t->step < t->total_steps) {
        bool ckpt_on_stop = false;
        if (t->cb && t->cb->should_stop && t->cb->should_stop(t->cb->ctx, &ckpt_on_stop)) {
            if (ckpt_on_stop) {
                hn_status s = checkpoint(t, t->step / t->steps_per_epoch, &last, err);
                if (s != HN_OK) return s;
            }
            return hn_errf(err, HN_ECANCELLED, "stopped at step %d", t->step);
        }
        ft_metrics mt;
        train_step(t, &mt);
        bool epoch_end = t->step % t->steps_per_epoch == 0;
        if (t->valid.n && epoch_end) {
            eval_valid(t, 0, t->valid.n, &mt.full_valid_loss, &mt.full_valid_mean_token_accuracy);
            t->last_full_valid_loss = mt.full_valid_loss;
        } else if (t->valid.n && t->step % eval_every == 0) {
            int nb = t->batch_size < t->valid.n ? t->batch_size : t->valid.n;
            eval_valid(t, t->valid_cursor, nb, &mt.valid_loss, &mt.valid_mean_token_accuracy);
            t->valid_cursor = (t->valid_cursor + nb) % t->valid.n;
        }
        t->last_train_loss = mt.train_loss;
        csv_append(t, &mt);
        if (t->cb && t->cb->on_metrics) t->cb->on_metrics(t->cb->ctx, &mt);
        last = mt;
        if (epoch_end) {
            hn_status s = checkpoint(t, mt.epoch, &mt, err);
            if (s != HN_OK) return s;
        }
    }
    return HN_OK;
}

static void trainer_free(trainer *t) {
    llama_acts_free(t->acts);
    lora_free(t->lora);
    lora_free(t->lora_grad);
    if (!t->lora && t->grads) free(t->grads);
    free(t->adam_m);
    free(t->adam_v);
    free(t->ids);
    free(t->tgt);
    free(t->w);
    free(t->pack_row);
    free(t->pack_off);
    free(t->order);
    ft_seqs_free(&t->train);
    ft_seqs_free(&t->valid);
    model_free(t->m);
}

/* The most tokens one trained answer spans (a run of trained targets). */
static int longest_answer(const ft_seqs *q) {
    int best = 0;
    for (int e = 0; e < q->n; e++)
        for (int i = 0, run = 0; i < q->v[e].n; i++) {
            run = q->v[e].trained[i] ? run + 1 : 0;
            if (run > best) best = run;
        }
    return best;
}

/* Does the fine-tuned model stop by itself (docs/pitfalls.md #2)? Runs last:
 * the adapter is merged into the base weights for plain inference. */
static hn_status stop_check(trainer *t, hn_err *err) {
    int budget = 2 * longest_answer(&t->train) + 16;
    const char *path = t->valid.n ? t->cfg.valid_path : t->cfg.train_path;
    if (t->lora) lora_merge(t->lora, t->m);
    hn_status s = ft_stop_check_run(t->m, path, 20, budget, 60.0, &t->stop, err);
    if (s != HN_OK) {
        hn_err_prefix(err, "stop check");
        return s;
    }
    const ft_stop_check *c = &t->stop;
    if (!c->n_checked) return HN_OK;
    const char *data = t->valid.n ? "validation" : "training";
    if (c->n_stopped * 10 >= c->n_checked * 8) {
        event(t, "info", "Stop check: %d of %d greedy replies to %s prompts ended with the "
              "end-of-turn token by themselves (budget %d tokens)", c->n_stopped, c->n_checked,
              data, c->budget);
        return HN_OK;
    }
    bool frozen_eot = t->lora && t->tokens.eot_untrained &&
                      lora_token_index(t->lora, t->tokens.eot) < 0;
    event(t, "warn", "Stop check: only %d of %d greedy replies to %s prompts ended with the "
          "end-of-turn token within %d tokens: the fine-tuned model may not stop by itself. %s",
          c->n_stopped, c->n_checked, data, c->budget,
          frozen_eot ? "Its end-of-turn row is untrained and frozen: use --train-tokens eot."
                     : "Train longer (more epochs) or check that answers end with end-of-turn.");
    return HN_OK;
}

/* The products' precision: --precision, else auto (bf16 on a wide model on a
 * CPU with native bf16). Said in an event so a run's log names it. */
static hn_status setup_precision(trainer *t, hn_err *err) {
    model_precision want;
    hn_status s = model_precision_parse(t->cfg.precision, &want, err);
    if (s == HN_OK) s = model_precision_apply(t->m, want, &t->precision, err);
    if (s != HN_OK) return s;
    event(t, "info", "Matrix products in %s%s", model_precision_name(t->precision),
          want != PREC_AUTO ? ""
          : t->precision == PREC_BF16 ? " (auto: this CPU computes bf16 natively; f32 master "
                                        "weights; --precision f32 for exact f32)"
                                      : " (auto)");
    return HN_OK;
}

static hn_status run(trainer *t, ft_result *res, hn_err *err) {
    hn_status s = hn_mkdirs(t->cfg.out_dir, err);
    if (s == HN_OK) s = model_load(t->cfg.model_path, &t->m, err);
    if (s == HN_OK && t->cfg.template_vars && *t->cfg.template_vars &&
        !(t->m->chat_template_vars = strdup(t->cfg.template_vars)))
        s = hn_errf(err, HN_ENOMEM, "out of memory");
    if (s == HN_OK && t->cfg.method == FT_AUTO) t->cfg.method = ft_auto_method(t->m->n_params);
    if (s == HN_OK) s = setup_precision(t, err);
    if (s == HN_OK) s = setup_data(t, err);
    if (s == HN_OK) s = setup_hparams(t, err);
    if (s == HN_OK) s = setup_params(t, err);
    if (s != HN_OK) return s;
    t->order = malloc(sizeof(int) * (size_t)t->train.n);
    t->order_epoch = -1;
    if (!t->order) return hn_errf(err, HN_ENOMEM, "out of memory");
    if (t->cfg.resume_dir && (s = ckpt_load(t, t->cfg.resume_dir, err)) != HN_OK) return s;
    if ((s = csv_open(t, err)) != HN_OK) return s;
    res->n_epochs = t->n_epochs;
    res->batch_size = t->batch_size;
    res->lr_multiplier = t->lr_mult;
    res->method = t->cfg.method;
    res->precision = model_precision_name(t->precision);
    event(t, "info", "Training %s on %d examples (%ld tokens, %ld trained): %d epochs, batch size %d, "
          "learning rate %.2g (%s), %d steps", t->cfg.method == FT_LORA ? "LoRA" : "all weights",
          t->train.n, t->train.total_tokens, t->train.trained_tokens, t->n_epochs, t->batch_size,
          t->lr, t->cfg.method == FT_LORA ? "LoRA" : "full", t->total_steps);
    if (t->step > 0) event(t, "info", "Resumed from step %d", t->step);
    if ((s = train_loop(t, err)) != HN_OK) return s;
    hn_path_join(res->final_dir, sizeof res->final_dir, t->cfg.out_dir, "final");
    if ((s = ckpt_save_model(t, res->final_dir, err)) != HN_OK) return s;
    res->n_train_tokens = t->tokens.n;
    res->steps = t->step;
    res->trained_tokens = t->trained_tokens;
    res->final_train_loss = t->last_train_loss;
    /* the last step ends the last epoch, which evaluated the whole file
     * (unless resumed from the final checkpoint: evaluate now) */
    res->final_valid_loss = t->last_full_valid_loss;
    if (t->valid.n && isnan(res->final_valid_loss)) {
        double va;
        eval_valid(t, 0, t->valid.n, &res->final_valid_loss, &va);
    }
    if ((s = stop_check(t, err)) != HN_OK) return s;
    res->stop = t->stop;
    return ckpt_save_info(t, res->final_dir, err);
}

hn_status ft_run(const ft_config *cfg, const ft_callbacks *cb, ft_result *res, hn_err *err) {
    trainer t;
    memset(&t, 0, sizeof t);
    memset(res, 0, sizeof *res);
    t.cfg = *cfg;
    t.cb = cb;
    t.last_full_valid_loss = t.last_train_loss = NAN;
    if (!cfg->model_path || !cfg->train_path || !cfg->out_dir)
        return hn_errf(err, HN_EINVAL, "fine-tuning needs a model, a training file and an output directory");
    hn_status s = run(&t, res, err);
    trainer_free(&t);
    return s;
}
