/* cmd_eval.c — `hone eval`: grade a model (optionally with a fine-tune
 * applied) on a chat JSONL whose last assistant messages are the reference
 * answers, optionally side by side with a baseline; prints the summary table
 * and writes JSON / HTML reports (src/eval, docs/eval.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "eval/eval.h"
#include "eval/report.h"
#include "model/lora.h"

static const char *usage =
    "usage: hone eval --data FILE [--model M] [--adapter DIR] [--baseline M|base]\n"
    "                 [options]\n"
    "\n"
    "  --data FILE              chat JSONL; the LAST message of each example is the\n"
    "                           assistant's reference answer\n"
    "  --model M                GGUF file, HF directory or model name such as\n"
    "                           stories260K (default: $HONE_MODEL or the bundled\n"
    "                           stories260K)\n"
    "  --adapter DIR            fine-tune to apply: a LoRA adapter or the final/ (or a\n"
    "                           checkpoint) directory of `hone finetune`\n"
    "  --baseline M|base        also evaluate this model and compare; `base` = --model\n"
    "                           without the adapter\n"
    "  --baseline-adapter DIR   fine-tune applied to the baseline (implies --baseline base\n"
    "                           when --baseline is not given)\n"
    "  --grader NAME            primary grader for the comparison: exact (default),\n"
    "                           contains, regex, json_valid, json_equal, similarity\n"
    "  --regex PAT              PCRE2 pattern for the regex grader (replies are searched)\n"
    "  --max-tokens N           new tokens per reply (default: reference tokens*2+16, <= 256)\n"
    "  --limit N                evaluate the first N examples only\n"
    "  --no-loss                skip the held-out loss on the references\n"
    "  --json FILE              write the full result (summary + per-example rows)\n"
    "  --template-var K=V       chat template variable, e.g. enable_thinking=false\n"
    "  --precision P            auto (default), f32 (exact), bf16 (faster matrix\n"
    "                           products) or q8_0 (weight products in Q8_0, llama.cpp's\n"
    "                           format); auto: q8_0 for a GGUF whose matrices are Q8_0,\n"
    "                           bf16 for models of hidden size >= 512 on a CPU with\n"
    "                           native bf16, else f32\n"
    "  --html FILE              write a self-contained HTML report\n"
    "  --quiet                  no progress on stderr\n";

typedef struct eval_args {
    const char *data, *model, *adapter, *baseline, *baseline_adapter;
    const char *regex, *json_path, *html_path;
    eval_grader grader;
    int max_tokens, limit;
    bool quiet, no_loss;
    cli_prec precision;
    char template_vars[2048]; /* --template-var, "" = none */
} eval_args;

static bool parse_count(const char *v, int *out) {
    char *end;
    long x = strtol(v, &end, 10);
    *out = (int)x;
    return *v && *end == 0 && x > 0 && x < 1 << 24;
}

/* One option at argv[*i]; returns false (message printed) on a bad one. */
static bool parse_one(int argc, char **argv, int *i, eval_args *a, bool *bad) {
    const char *v;
    hn_err err = {0};
    if (cli_opt(argc, argv, i, "--data", &a->data, bad)) return true;
    if (cli_opt(argc, argv, i, "--model", &a->model, bad)) return true;
    if (cli_opt(argc, argv, i, "--adapter", &a->adapter, bad)) return true;
    if (cli_opt(argc, argv, i, "--baseline-adapter", &a->baseline_adapter, bad)) return true;
    if (cli_opt(argc, argv, i, "--baseline", &a->baseline, bad)) return true;
    if (cli_opt(argc, argv, i, "--regex", &a->regex, bad)) return true;
    if (cli_opt(argc, argv, i, "--json", &a->json_path, bad)) return true;
    if (cli_opt(argc, argv, i, "--html", &a->html_path, bad)) return true;
    if (cli_opt(argc, argv, i, "--precision", &v, bad)) {
        *bad = !cli_precision("eval", v, false, &a->precision);
        return true;
    }
    if (cli_opt(argc, argv, i, "--template-var", &v, bad)) {
        *bad = !cli_template_var("eval", v, a->template_vars, sizeof a->template_vars);
        return true;
    }
    if (cli_opt(argc, argv, i, "--grader", &v, bad)) {
        if (!*bad && eval_grader_parse(v, &a->grader, &err) != HN_OK)
            *bad = fprintf(stderr, "hone eval: %s\n", err.msg) > 0;
        return true;
    }
    if (cli_opt(argc, argv, i, "--max-tokens", &v, bad)) {
        if (!*bad && !parse_count(v, &a->max_tokens))
            *bad = fprintf(stderr, "hone eval: --max-tokens needs a positive number\n") > 0;
        return true;
    }
    if (cli_opt(argc, argv, i, "--limit", &v, bad)) {
        if (!*bad && !parse_count(v, &a->limit))
            *bad = fprintf(stderr, "hone eval: --limit needs a positive number\n") > 0;
        return true;
    }
    if (cli_flag(argv, *i, "--quiet")) return a->quiet = true;
    if (cli_flag(argv, *i, "--no-loss")) return a->no_loss = true;
    return false;
}

static int parse_args(int argc, char **argv, eval_args *a) {
    bool bad = false;
    for (int i = 1; i < argc && !bad; i++)
        if (!parse_one(argc, argv, &i, a, &bad)) {
            fprintf(stderr, "hone eval: unknown option '%s'\n", argv[i]);
            bad = true;
        }
    if (!bad && !a->data) bad = fprintf(stderr, "hone eval: --data is required\n") > 0;
    if (!bad && a->grader == EVAL_REGEX && !a->regex)
        bad = fprintf(stderr, "hone eval: --grader regex needs --regex PATTERN\n") > 0;
    if (!bad && a->baseline_adapter && !a->baseline) a->baseline = "base";
    return bad ? 2 : 0;
}

/* Resolves --model and --baseline names to paths (buffers in *a's caller). */
static bool resolve_models(eval_args *a, char *model, char *baseline, size_t cap) {
    if (!cli_resolve_model(a->model, model, cap)) return false;
    a->model = model;
    if (!a->baseline || !strcmp(a->baseline, "base")) return true;
    if (!cli_resolve_model(a->baseline, baseline, cap)) return false;
    a->baseline = baseline;
    return true;
}

/* ---- running ---- */

typedef struct progress {
    bool quiet, tty;
    struct timespec t0;
} progress;

static void on_progress(void *ctx, const char *label, int done, int total) {
    progress *p = ctx;
    if (p->quiet) return;
    if (p->tty) {
        fprintf(stderr, "\r\033[K%s: %d/%d", label, done, total);
        if (done == total) fputc('\n', stderr);
        return;
    }
    if (done < total) return;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    fprintf(stderr, "%s: %d examples in %.1f s\n", label, total,
            (double)(t.tv_sec - p->t0.tv_sec) + (t.tv_nsec - p->t0.tv_nsec) * 1e-9);
}

/* Loads model_path (+ adapter) and evaluates it into run. */
static hn_status run_one(const char *label, const char *model_path, const char *adapter,
                         const eval_args *a, const eval_set *set, const eval_opts *o, progress *p,
                         eval_run *run, hn_err *err) {
    const char *tvars = a->template_vars;
    memset(run, 0, sizeof *run);
    snprintf(run->label, sizeof run->label, "%s", label);
    snprintf(run->model, sizeof run->model, "%s", model_path);
    snprintf(run->adapter, sizeof run->adapter, "%s", adapter ? adapter : "");
    hn_model *m;
    hn_status s = model_load(model_path, &m, err);
    if (s != HN_OK) return s;
    if (adapter) s = model_apply_finetune(m, adapter, err);
    if (s == HN_OK && !cli_precision_apply("eval", a->precision, m, a->quiet))
        s = hn_errf(err, HN_ENOMEM, "%s: cannot compute in q8_0", label);
    if (s == HN_OK && tvars && *tvars) { /* overrides what a fine-tune brought */
        free(m->chat_template_vars);
        if (!(m->chat_template_vars = strdup(tvars))) s = hn_errf(err, HN_ENOMEM, "out of memory");
    }
    clock_gettime(CLOCK_MONOTONIC, &p->t0);
    if (s == HN_OK) s = eval_run_model(m, set, o, on_progress, p, run, err);
    model_free(m);
    return s;
}

static hn_status write_reports(const eval_args *a, const eval_report *r, hn_err *err) {
    hn_buf text;
    hn_buf_init(&text);
    eval_report_text(r, &text);
    if (text.data) fputs(text.data, stdout);
    hn_buf_free(&text);
    hn_status s = HN_OK;
    if (a->json_path) s = eval_report_write_json(r, a->json_path, err);
    if (s == HN_OK && a->html_path) s = eval_report_write_html(r, a->html_path, err);
    return s;
}

static hn_status run_all(const eval_args *a, const eval_set *set, const eval_regex *re,
                         hn_err *err) {
    eval_opts o;
    eval_opts_default(&o);
    o.max_tokens = a->max_tokens;
    o.regex = re;
    o.loss = !a->no_loss;
    progress p = {a->quiet, isatty(2), {0}};
    eval_run base = {0}, model = {0};
    eval_compare cmp = {0};
    hn_status s = HN_OK;
    if (a->baseline) {
        const char *path = strcmp(a->baseline, "base") ? a->baseline : a->model;
        s = run_one("baseline", path, a->baseline_adapter, a, set, &o, &p, &base, err);
    }
    if (s == HN_OK) s = run_one("model", a->model, a->adapter, a, set, &o, &p, &model, err);
    if (s == HN_OK && a->baseline) s = eval_compare_runs(&base, &model, a->grader, &cmp, err);
    eval_report r = {set, &model, a->baseline ? &base : NULL, a->baseline ? &cmp : NULL,
                     a->grader, re ? eval_regex_pattern(re) : NULL, 20};
    if (s == HN_OK) s = write_reports(a, &r, err);
    eval_compare_free(&cmp);
    eval_run_free(&base);
    eval_run_free(&model);
    return s;
}

int cmd_eval(int argc, char **argv) {
    if (cli_want_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    eval_args a = {.model = cli_default_model(), .grader = EVAL_EXACT};
    if (parse_args(argc, argv, &a)) {
        fputs(usage, stderr);
        return 2;
    }
    char model[4096], baseline[4096];
    if (!resolve_models(&a, model, baseline, sizeof model)) return 1;
    hn_err err = {0};
    eval_regex *re = NULL;
    eval_set set = {0};
    hn_status s = a.regex ? eval_regex_compile(a.regex, &re, &err) : HN_OK;
    if (s == HN_OK) s = eval_set_load(a.data, a.limit, &set, &err);
    if (s == HN_OK) s = run_all(&a, &set, re, &err);
    if (s != HN_OK) fprintf(stderr, "hone eval: %s\n", err.msg);
    eval_set_free(&set);
    eval_regex_free(re);
    return s == HN_OK ? 0 : 1;
}
