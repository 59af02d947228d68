/* eval.c — loading an evaluation set and running one model over it: greedy
 * generation from the rendered prompt, grading, and the teacher-forced loss
 * on the reference through the training forward pass (llama_forward +
 * llama_loss_backward without gradients), so held-out loss here is the same
 * number training reports as validation loss. */
#include "eval/eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "chat/template.h"
#include "infer/generate.h"
#include "model/llama.h"

enum { EVAL_AUTO_MAX_TOKENS = 256 };

void eval_opts_default(eval_opts *o) {
    memset(o, 0, sizeof *o);
    o->loss = true;
}

/* ---- the set ---- */

void eval_set_free(eval_set *s) {
    for (int i = 0; i < s->n; i++) {
        chat_example_free(&s->examples[i]);
        free(s->prompts[i]);
    }
    free(s->examples);
    free(s->prompts);
    free(s->refs);
    memset(s, 0, sizeof *s);
}

/* HN_EINVAL naming the line unless ex can be evaluated: the reference must
 * be the last message, from the assistant, with text and no tool calls. */
static hn_status check_example(const char *path, const chat_example *ex, hn_err *err) {
    int last = ex->n_msgs - 1;
    const chat_message *m = &ex->msgs[last];
    if (m->role != CHAT_ASSISTANT)
        return hn_errf(err, HN_EINVAL,
                       "%s:%ld: messages[%d]: the last message is a '%s' message; eval needs "
                       "the assistant's reference answer last", path, ex->line, last,
                       chat_role_name(m->role));
    if (m->n_tool_calls > 0)
        return hn_errf(err, HN_EINVAL,
                       "%s:%ld: messages[%d]: the reference answer has tool_calls; eval grades "
                       "text answers only", path, ex->line, last);
    if (m->content_len == 0)
        return hn_errf(err, HN_EINVAL, "%s:%ld: messages[%d]: the reference answer is empty",
                       path, ex->line, last);
    if (last == 0)
        return hn_errf(err, HN_EINVAL,
                       "%s:%ld: the example has only the reference answer, no prompt", path,
                       ex->line);
    return HN_OK;
}

/* The message shown as "the prompt": the last one before the reference. */
static char *prompt_text(const chat_example *ex) {
    const chat_message *m = &ex->msgs[ex->n_msgs - 2];
    return strdup(m->content);
}

static hn_status take_examples(chat_dataset *ds, const char *path, int limit, eval_set *out,
                               hn_err *err) {
    int n = (int)ds->n_examples;
    if (limit > 0 && limit < n) n = limit;
    out->examples = calloc((size_t)n + 1, sizeof *out->examples);
    out->prompts = calloc((size_t)n + 1, sizeof *out->prompts);
    out->refs = calloc((size_t)n + 1, sizeof *out->refs);
    if (!out->examples || !out->prompts || !out->refs)
        return hn_errf(err, HN_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        hn_status s = check_example(path, &ds->examples[i], err);
        if (s != HN_OK) return s;
    }
    for (int i = 0; i < n; i++) {
        out->examples[i] = ds->examples[i]; /* move */
        memset(&ds->examples[i], 0, sizeof ds->examples[i]);
        out->n = i + 1;
        const chat_example *ex = &out->examples[i];
        out->refs[i] = ex->msgs[ex->n_msgs - 1].content;
        if (!(out->prompts[i] = prompt_text(ex))) return hn_errf(err, HN_ENOMEM, "out of memory");
    }
    return HN_OK;
}

hn_status eval_set_load(const char *path, int limit, eval_set *out, hn_err *err) {
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", path);
    chat_dataset_opts o;
    chat_dataset_opts_default(&o);
    o.display_name = path;
    o.min_examples = 0;
    chat_dataset ds;
    hn_status s = chat_dataset_load(path, &o, &ds, err);
    if (s == HN_OK && !chat_dataset_ok(&ds)) {
        const chat_problem *p = chat_dataset_first_error(&ds);
        s = hn_errf(err, HN_EINVAL, "%s%s", p ? p->text : "invalid file",
                    ds.n_errors > 1 ? " (`hone data check` lists every problem)" : "");
    }
    if (s == HN_OK && ds.n_examples == 0) s = hn_errf(err, HN_EINVAL, "%s: no examples", path);
    if (s == HN_OK) s = take_examples(&ds, path, limit, out, err);
    chat_dataset_free(&ds);
    if (s != HN_OK) eval_set_free(out);
    return s;
}

/* ---- one example ---- */

/* Per-run scratch: the template, render buffers and training activations. */
typedef struct runner {
    const hn_model *m;
    const eval_opts *o;
    chat_template *tmpl;
    chat_render r;
    llama_acts *acts;
    int acts_T;
    float *w;
    hn_buf text;
} runner;

static bool collect_text(void *ctx, int32_t id, const char *text, size_t len) {
    (void)id;
    hn_buf_append(ctx, text, len);
    return true;
}

/* Copies s replacing invalid UTF-8 sequences by U+FFFD. */
static char *utf8_sanitize(const char *s) {
    hn_buf b;
    hn_buf_init(&b);
    hn_buf_puts(&b, "");
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 && c >= 0xC2 ? 2 : (c & 0xF0) == 0xE0 ? 3
                  : (c & 0xF8) == 0xF0 && c <= 0xF4 ? 4 : 0;
        bool ok = len > 0;
        for (int k = 1; ok && k < len; k++) ok = (p[k] & 0xC0) == 0x80;
        if (ok && len == 3) ok = !(c == 0xE0 && p[1] < 0xA0) && !(c == 0xED && p[1] >= 0xA0);
        if (ok && len == 4) ok = !(c == 0xF0 && p[1] < 0x90) && !(c == 0xF4 && p[1] >= 0x90);
        if (ok) hn_buf_append(&b, p, (size_t)len);
        else hn_buf_puts(&b, "\xEF\xBF\xBD");
        p += ok ? len : 1;
    }
    if (b.oom) {
        hn_buf_free(&b);
        return NULL;
    }
    return hn_buf_take(&b);
}

static int auto_max_tokens(const runner *rn, const char *ref, hn_err *err, hn_status *st) {
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    *st = tok_encode(rn->m->tok, ref, strlen(ref), false, &ids, &n, &cap, err);
    free(ids);
    size_t k = n * 2 + 16;
    return k > EVAL_AUTO_MAX_TOKENS ? EVAL_AUTO_MAX_TOKENS : (int)k;
}

static hn_status generate_reply(runner *rn, const chat_example *ex, const char *ref, eval_row *row,
                                hn_err *err) {
    chat_example head = *ex;
    head.n_msgs--;
    hn_status s = chat_render_prompt(rn->tmpl, rn->m->tok, &head, &rn->r, err);
    if (s != HN_OK) return s;
    row->n_prompt = (int)rn->r.n;
    int ctx = rn->m->cfg.max_seq_len;
    if (rn->r.n >= (size_t)ctx) {
        char msg[160];
        snprintf(msg, sizeof msg, "prompt of %zu tokens does not fit the %d-token context",
                 rn->r.n, ctx);
        row->error = strdup(msg);
        row->reply = strdup("");
        return row->error && row->reply ? HN_OK : hn_errf(err, HN_ENOMEM, "out of memory");
    }
    gen_params gp;
    gen_params_default(&gp);
    gp.temperature = 0.0f;
    gp.stop_id = chat_template_eot(rn->tmpl, rn->m->tok);
    gp.max_tokens = rn->o->max_tokens;
    if (gp.max_tokens <= 0) gp.max_tokens = auto_max_tokens(rn, ref, err, &s);
    if (s != HN_OK) return s;
    hn_buf_clear(&rn->text);
    hn_buf_puts(&rn->text, "");
    gen_result res;
    s = gen_run(rn->m, rn->r.ids, (int)rn->r.n, &gp, collect_text, &rn->text, NULL, &res, err);
    if (s != HN_OK) return s;
    if (rn->text.oom) return hn_errf(err, HN_ENOMEM, "out of memory");
    row->eos = res.finish == GEN_STOP_EOS;
    row->n_generated = res.n_generated;
    row->gen_seconds = res.gen_seconds;
    row->reply = utf8_sanitize(chat_template_reply_text(rn->tmpl, rn->text.data));
    return row->reply ? HN_OK : hn_errf(err, HN_ENOMEM, "out of memory");
}

/* Makes sure the activations hold a (1, T) batch. */
static hn_status ensure_acts(runner *rn, int T, hn_err *err) {
    if (rn->acts && T <= rn->acts_T) return HN_OK;
    int want = rn->acts_T ? rn->acts_T : 64;
    while (want < T) want *= 2;
    if (want > rn->m->cfg.max_seq_len) want = rn->m->cfg.max_seq_len;
    llama_acts_free(rn->acts);
    rn->acts = NULL;
    free(rn->w);
    rn->w = malloc(sizeof(float) * (size_t)want);
    if (!rn->w) return hn_errf(err, HN_ENOMEM, "out of memory");
    hn_status s = llama_acts_create(rn->m, 1, want, 0, &rn->acts, err);
    rn->acts_T = s == HN_OK ? want : 0;
    return s;
}

/* Teacher-forced loss on the last assistant turn (answer + end-of-turn). */
static hn_status reference_loss(runner *rn, const chat_example *ex, eval_row *row, hn_err *err) {
    row->loss = NAN;
    hn_status s = chat_template_render(rn->tmpl, rn->m->tok, ex, (size_t)rn->m->cfg.max_seq_len,
                                       &rn->r, err);
    if (s != HN_OK || rn->r.n_turns == 0) return s;
    const chat_turn *turn = &rn->r.turns[rn->r.n_turns - 1];
    int T = (int)rn->r.n - 1;
    size_t end = turn->tok_end < rn->r.n ? turn->tok_end : rn->r.n;
    if (T < 1 || turn->tok_begin >= end) return HN_OK; /* reference cut off by the context */
    if ((s = ensure_acts(rn, T, err)) != HN_OK) return s;
    for (int i = 0; i < T; i++)
        rn->w[i] = (size_t)i + 1 >= turn->tok_begin && (size_t)i + 1 < end ? 1.0f : 0.0f;
    llama_acts_reshape(rn->acts, rn->m, 1, T);
    llama_acts_default_pos(rn->acts);
    llama_forward(rn->m, NULL, rn->acts, rn->r.ids);
    llama_loss_stats st;
    llama_loss_backward(rn->m, NULL, rn->acts, rn->r.ids, rn->r.ids + 1, rn->w, 1.0f, NULL, NULL,
                        &st);
    if (st.weight_sum > 0) row->loss = st.loss_sum / st.weight_sum;
    row->n_loss_tokens = (int)st.n_trained;
    return HN_OK;
}

static hn_status eval_one(runner *rn, const eval_set *set, int i, eval_row *row, hn_err *err) {
    const chat_example *ex = &set->examples[i];
    row->loss = NAN;
    hn_status s = generate_reply(rn, ex, set->refs[i], row, err);
    if (s == HN_OK && rn->o->loss) s = reference_loss(rn, ex, row, err);
    if (s != HN_OK) return hn_err_prefix(err, "%s:%ld", set->path, ex->line);
    eval_grade_all(row->reply, set->refs[i], rn->o->regex, row->scores);
    if (row->error)
        for (int g = 0; g < EVAL_N_GRADERS; g++)
            if (!isnan(row->scores[g])) row->scores[g] = 0.0;
    return HN_OK;
}

/* ---- the run ---- */

void eval_run_free(eval_run *run) {
    for (int i = 0; run->rows && i < run->n; i++) {
        free(run->rows[i].reply);
        free(run->rows[i].error);
    }
    free(run->rows);
    run->rows = NULL;
    run->n = 0;
}

static void summary_add_row(eval_summary *s, const eval_row *r, double *loss_sum) {
    for (int g = 0; g < EVAL_N_GRADERS; g++)
        if (!isnan(r->scores[g]))
            s->score[g] = (isnan(s->score[g]) ? 0 : s->score[g]) + r->scores[g];
    s->eos_rate += r->eos;
    if (!isnan(r->loss)) {
        *loss_sum += r->loss * r->n_loss_tokens;
        s->loss_tokens += r->n_loss_tokens;
    }
    s->generated_tokens += r->n_generated;
    s->gen_seconds += r->gen_seconds;
    s->n_errors += r->error != NULL;
}

void eval_summarize(eval_run *run) {
    eval_summary *s = &run->sum;
    memset(s, 0, sizeof *s);
    for (int g = 0; g < EVAL_N_GRADERS; g++) s->score[g] = NAN;
    double loss_sum = 0;
    s->n = run->n;
    for (int i = 0; i < run->n; i++) summary_add_row(s, &run->rows[i], &loss_sum);
    for (int g = 0; g < EVAL_N_GRADERS; g++)
        if (run->n) s->score[g] /= run->n;
    s->eos_rate = run->n ? s->eos_rate / run->n : NAN;
    s->mean_loss = s->loss_tokens ? loss_sum / (double)s->loss_tokens : NAN;
    s->tokens_per_second = s->gen_seconds > 0 ? (double)s->generated_tokens / s->gen_seconds : 0;
}

hn_status eval_run_model(const hn_model *m, const eval_set *set, const eval_opts *o,
                         eval_progress_fn progress, void *ctx, eval_run *run, hn_err *err) {
    run->rows = calloc((size_t)set->n + 1, sizeof *run->rows);
    run->n = 0;
    if (!run->rows) return hn_errf(err, HN_ENOMEM, "out of memory");
    runner rn = {.m = m, .o = o};
    chat_render_init(&rn.r);
    hn_buf_init(&rn.text);
    hn_status s = chat_template_for_model_vars(m->chat_template, m->chat_template_vars, &rn.tmpl, err);
    for (int i = 0; s == HN_OK && i < set->n; i++) {
        s = eval_one(&rn, set, i, &run->rows[i], err);
        run->n = i + 1;
        if (s == HN_OK && progress) progress(ctx, run->label, i + 1, set->n);
    }
    chat_render_free(&rn.r);
    chat_template_free(rn.tmpl);
    llama_acts_free(rn.acts);
    free(rn.w);
    hn_buf_free(&rn.text);
    eval_summarize(run);
    return s;
}
