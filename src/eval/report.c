/* report.c — comparison of two runs, the text table and the JSON result.
 * The JSON layout (docs/eval.md) is: summary per run, the comparison, and
 * one row per example with the prompt, the reference and each run's reply,
 * scores, loss and stop reason. NAN numbers become null. */
#include "eval/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "eval/report_internal.h"

/* ---- comparison ---- */

const char *eval_outcome_name(eval_outcome o) {
    return o == EVAL_WIN ? "win" : o == EVAL_LOSS ? "loss" : "tie";
}

hn_status eval_compare_runs(const eval_run *baseline, const eval_run *model, eval_grader g,
                            eval_compare *out, hn_err *err) {
    memset(out, 0, sizeof *out);
    out->grader = g;
    if (baseline->n != model->n)
        return hn_errf(err, HN_EINVAL, "cannot compare runs over %d and %d examples",
                       baseline->n, model->n);
    out->outcome = calloc((size_t)model->n + 1, sizeof *out->outcome);
    if (!out->outcome) return hn_errf(err, HN_ENOMEM, "out of memory");
    out->n = model->n;
    for (int i = 0; i < model->n; i++) {
        double a = model->rows[i].scores[g], b = baseline->rows[i].scores[g];
        eval_outcome o = isnan(a) || isnan(b) || fabs(a - b) < 1e-9 ? EVAL_TIE
                         : a > b                                  ? EVAL_WIN
                                                                  : EVAL_LOSS;
        out->outcome[i] = o;
        out->wins += o == EVAL_WIN;
        out->losses += o == EVAL_LOSS;
        out->ties += o == EVAL_TIE;
    }
    return HN_OK;
}

void eval_compare_free(eval_compare *c) {
    free(c->outcome);
    memset(c, 0, sizeof *c);
}

/* ---- shared helpers ---- */

void report_describe_run(const eval_run *run, hn_buf *out) {
    hn_buf_puts(out, run->model);
    if (run->adapter[0]) hn_buf_printf(out, " + %s", run->adapter);
}

void report_format_score(eval_grader g, double v, char *out, size_t cap) {
    if (isnan(v)) snprintf(out, cap, "-");
    else if (g == EVAL_SIMILARITY) snprintf(out, cap, "%.3f", v);
    else snprintf(out, cap, "%.1f%%", 100.0 * v);
}

const char *report_metric_name(int k) {
    static const char *const extra[] = {"eos rate", "mean loss", "tokens/s", "errors"};
    if (k == EVAL_SIMILARITY) return "similarity (mean)";
    return k < EVAL_N_GRADERS ? eval_grader_name((eval_grader)k) : extra[k - EVAL_N_GRADERS];
}

void report_format_metric(const eval_summary *s, int k, char *out, size_t cap) {
    if (k < EVAL_N_GRADERS) report_format_score((eval_grader)k, s->score[k], out, cap);
    else if (k == EVAL_N_GRADERS) report_format_score(EVAL_EXACT, s->eos_rate, out, cap);
    else if (k == EVAL_N_GRADERS + 1 && isnan(s->mean_loss)) snprintf(out, cap, "-");
    else if (k == EVAL_N_GRADERS + 1) snprintf(out, cap, "%.4f", s->mean_loss);
    else if (k == EVAL_N_GRADERS + 2) snprintf(out, cap, "%.0f", s->tokens_per_second);
    else snprintf(out, cap, "%d", s->n_errors);
}

void report_excerpt(const char *s, int max_cp, hn_buf *out) {
    int cp = 0;
    for (const char *p = s; *p; p++) {
        bool lead = ((unsigned char)*p & 0xC0) != 0x80;
        if (lead && cp++ == max_cp) {
            hn_buf_puts(out, "\xE2\x80\xA6");
            return;
        }
        hn_buf_putc(out, *p == '\n' || *p == '\r' || *p == '\t' ? ' ' : *p);
    }
}

/* ---- text ---- */

static void text_summary(const eval_report *r, hn_buf *o) {
    const eval_run *runs[2] = {r->baseline, r->model};
    int first = r->baseline ? 0 : 1;
    hn_buf_printf(o, "eval: %s, %d examples, primary grader: %s\n", r->set->path, r->set->n,
                  eval_grader_name(r->grader));
    for (int k = first; k < 2; k++) {
        hn_buf_printf(o, "  %-9s ", k ? "model:" : "baseline:");
        report_describe_run(runs[k], o);
        hn_buf_putc(o, '\n');
    }
    if (r->regex) hn_buf_printf(o, "  regex:    %s\n", r->regex);
    hn_buf_printf(o, "\n  %-20s", "");
    for (int k = first; k < 2; k++) hn_buf_printf(o, " %12s", k ? "model" : "baseline");
    hn_buf_putc(o, '\n');
    for (int m = 0; m < REPORT_N_METRICS; m++) {
        if (m == EVAL_REGEX && !r->regex) continue;
        bool primary = m == (int)r->grader;
        hn_buf_printf(o, "  %-20s", report_metric_name(m));
        for (int k = first; k < 2; k++) {
            char v[32];
            report_format_metric(&runs[k]->sum, m, v, sizeof v);
            hn_buf_printf(o, " %12s", v);
        }
        hn_buf_puts(o, primary ? "   <- primary\n" : "\n");
    }
}

static void text_changed_row(const eval_report *r, int i, hn_buf *o) {
    const eval_run *b = r->baseline, *m = r->model;
    hn_buf_printf(o, "  #%d (line %ld) %s\n", i + 1, r->set->examples[i].line,
                  eval_outcome_name(r->cmp->outcome[i]));
    const char *labels[4] = {"prompt:", "reference:", "baseline:", "model:"};
    const char *texts[4] = {r->set->prompts[i], r->set->refs[i], b->rows[i].reply,
                            m->rows[i].reply};
    for (int k = 0; k < 4; k++) {
        hn_buf_printf(o, "      %-11s ", labels[k]);
        report_excerpt(texts[k], 72, o);
        hn_buf_putc(o, '\n');
    }
}

static void text_comparison(const eval_report *r, hn_buf *o) {
    const eval_compare *c = r->cmp;
    hn_buf_printf(o, "\ncomparison on %s (model vs baseline): %d wins, %d losses, %d ties\n",
                  eval_grader_name(c->grader), c->wins, c->losses, c->ties);
    int changed = c->wins + c->losses, limit = r->max_listed > 0 ? r->max_listed : 20, shown = 0;
    if (!changed) return;
    hn_buf_printf(o, "\nchanged examples (%d):\n", changed);
    for (int i = 0; i < c->n && shown < limit; i++)
        if (c->outcome[i] != EVAL_TIE) {
            text_changed_row(r, i, o);
            shown++;
        }
    if (changed > shown)
        hn_buf_printf(o, "  ... %d more (all rows are in --json and --html)\n", changed - shown);
}

/* Examples that got no reply (e.g. a prompt longer than the context). */
static void text_errors(const eval_report *r, const eval_run *run, hn_buf *o) {
    if (!run || !run->sum.n_errors) return;
    hn_buf_printf(o, "\n%s: %d examples without a reply (scored 0):\n",
                  run->label[0] ? run->label : "model", run->sum.n_errors);
    for (int i = 0, shown = 0; i < run->n && shown < 5; i++)
        if (run->rows[i].error) {
            hn_buf_printf(o, "  #%d (line %ld): %s\n", i + 1, r->set->examples[i].line,
                          run->rows[i].error);
            shown++;
        }
}

void eval_report_text(const eval_report *r, hn_buf *out) {
    text_summary(r, out);
    text_errors(r, r->baseline, out);
    text_errors(r, r->model, out);
    if (r->baseline && r->cmp) text_comparison(r, out);
}

/* ---- JSON ---- */

static json_t *num(double v) { return isnan(v) || isinf(v) ? json_null() : json_real(v); }

static json_t *scores_json(const double *scores) {
    json_t *o = json_object();
    for (int g = 0; o && g < EVAL_N_GRADERS; g++)
        json_object_set_new(o, eval_grader_name((eval_grader)g), num(scores[g]));
    return o;
}

static json_t *summary_json(const eval_run *run) {
    const eval_summary *s = &run->sum;
    return json_pack("{s:s, s:s?, s:i, s:o, s:o, s:o, s:I, s:I, s:o, s:o, s:i}",
                     "model", run->model, "adapter", run->adapter[0] ? run->adapter : NULL,
                     "n", s->n, "scores", scores_json(s->score), "eos_rate", num(s->eos_rate),
                     "mean_loss", num(s->mean_loss), "loss_tokens", (json_int_t)s->loss_tokens,
                     "generated_tokens", (json_int_t)s->generated_tokens,
                     "gen_seconds", num(s->gen_seconds), "tokens_per_second",
                     num(s->tokens_per_second), "errors", s->n_errors);
}

static json_t *row_json(const eval_row *row) {
    return json_pack("{s:s, s:s?, s:b, s:s, s:i, s:i, s:o, s:i, s:o}", "reply", row->reply,
                     "error", row->error, "eos", row->eos,
                     "finish", row->error ? "error" : row->eos ? "eos" : "length",
                     "prompt_tokens", row->n_prompt, "generated_tokens", row->n_generated,
                     "loss", num(row->loss), "loss_tokens", row->n_loss_tokens, "scores",
                     scores_json(row->scores));
}

static json_t *example_json(const eval_report *r, int i) {
    json_t *e = json_pack("{s:i, s:I, s:s, s:s, s:o}", "index", i, "line",
                          (json_int_t)r->set->examples[i].line, "prompt", r->set->prompts[i],
                          "reference", r->set->refs[i], "model", row_json(&r->model->rows[i]));
    if (e && r->baseline) json_object_set_new(e, "baseline", row_json(&r->baseline->rows[i]));
    if (e && r->cmp)
        json_object_set_new(e, "outcome", json_string(eval_outcome_name(r->cmp->outcome[i])));
    return e;
}

static json_t *compare_json(const eval_compare *c) {
    json_t *changed = json_array();
    for (int i = 0; changed && i < c->n; i++)
        if (c->outcome[i] != EVAL_TIE) json_array_append_new(changed, json_integer(i));
    return json_pack("{s:s, s:i, s:i, s:i, s:o}", "grader", eval_grader_name(c->grader), "wins",
                     c->wins, "losses", c->losses, "ties", c->ties, "changed", changed);
}

json_t *eval_report_json(const eval_report *r) {
    json_t *examples = json_array();
    for (int i = 0; examples && i < r->model->n; i++)
        if (json_array_append_new(examples, example_json(r, i))) {
            json_decref(examples);
            return NULL;
        }
    json_t *o = json_pack("{s:s, s:i, s:s, s:s?, s:o, s:o}", "data", r->set->path, "n",
                          r->set->n, "grader", eval_grader_name(r->grader), "regex", r->regex,
                          "model", summary_json(r->model), "examples", examples);
    if (o && r->baseline) json_object_set_new(o, "baseline", summary_json(r->baseline));
    if (o && r->cmp) json_object_set_new(o, "comparison", compare_json(r->cmp));
    return o;
}

static hn_status write_text_file(const char *path, const char *data, size_t len, hn_err *err) {
    const void *parts[1] = {data};
    size_t lens[1] = {len};
    hn_status s = hn_file_write_atomic(path, parts, lens, 1, err);
    return s == HN_OK ? s : hn_err_prefix(err, "writing %s", path);
}

hn_status eval_report_write_json(const eval_report *r, const char *path, hn_err *err) {
    json_t *j = eval_report_json(r);
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(8)) : NULL;
    json_decref(j);
    if (!text) return hn_errf(err, HN_ENOMEM, "out of memory building the JSON report");
    hn_buf b;
    hn_buf_init(&b);
    hn_buf_puts(&b, text);
    hn_buf_putc(&b, '\n');
    free(text);
    hn_status s = b.oom ? hn_errf(err, HN_ENOMEM, "out of memory")
                        : write_text_file(path, b.data, b.len, err);
    hn_buf_free(&b);
    return s;
}

hn_status eval_report_write_html(const eval_report *r, const char *path, hn_err *err) {
    hn_buf b;
    hn_buf_init(&b);
    eval_report_html(r, &b);
    hn_status s = b.oom ? hn_errf(err, HN_ENOMEM, "out of memory")
                        : write_text_file(path, b.data, b.len, err);
    hn_buf_free(&b);
    return s;
}
