/* cmd_data.c — `hone data check FILE`: validates a chat JSONL training file
 * (and optionally a validation file) with the same library calls as upload
 * validation and job creation, renders every example with the model's
 * tokenizer and chat template, and prints the pre-flight report (human text,
 * or JSON with --json). --show-mask N prints the example on line N with its
 * trained tokens marked. The plan ends with the time and memory estimate for
 * this machine (train/estimate.h: a short benchmark of the training step,
 * cached). Exit: 0 valid, 1 problems found, 2 could not check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chat/check.h"
#include "chat/dataset.h"
#include "chat/template.h"
#include "cli/cli.h"
#include "model/model.h"
#include "train/estimate.h"

static const char *usage =
    "usage: hone data check FILE [options]\n"
    "\n"
    "Validates an OpenAI chat-format JSONL training file and prints a pre-flight\n"
    "report: format problems, token statistics, truncation, duplicates and the\n"
    "training plan with \"auto\" hyperparameters resolved.\n"
    "\n"
    "  --model M              GGUF file, HF directory or model name (stories260K)\n"
    "                         whose tokenizer, chat template and training step are\n"
    "                         used (default: $HONE_MODEL or stories260K)\n"
    "  --valid FILE           also check a validation file and its overlap with FILE\n"
    "  --json                 machine-readable report on stdout\n"
    "  --show-mask N          print the example on line N with trained tokens marked\n"
    "  --template-var K=V     chat template variable, e.g. enable_thinking=false\n"
    "  --max-seq-len N        truncation length (default: the model's context)\n"
    "  --n-epochs N, --batch-size N, --learning-rate-multiplier X\n"
    "                         plan with these instead of \"auto\"\n"
    "  --lora-rank N          LoRA rank of the estimate (default 8)\n"
    "  --no-estimate          skip the time/memory estimate (no model weights loaded)\n"
    "  --remeasure            re-run the estimate's benchmark even if it is cached\n"
    "\n"
    "Exit status: 0 valid, 1 problems found, 2 usage error or unreadable input.\n";

typedef struct data_args {
    const char *file, *model, *valid;
    bool json, no_estimate, remeasure;
    long show_mask; /* line number, 0 = none */
    int lora_rank;  /* 0 = default */
    char model_path[4096];
    chat_check_opts opts;
    bool has_max_seq;
    char template_vars[2048]; /* --template-var, "" = none */
} data_args;

static bool parse_long(const char *s, long min, long *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < min) return false;
    *out = v;
    return true;
}

/* Returns 0 on success, 2 on a usage error (message printed). */
static int parse_args(int argc, char **argv, data_args *a) {
    memset(a, 0, sizeof *a);
    bool bad = false;
    for (int i = 2; i < argc && !bad; i++) {
        const char *v = NULL;
        long n;
        if (cli_opt(argc, argv, &i, "--model", &a->model, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--valid", &a->valid, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--template-var", &v, &bad)) {
            bad = !cli_template_var("data check", v, a->template_vars, sizeof a->template_vars);
            continue;
        }
        if (cli_flag(argv, i, "--json")) {
            a->json = true;
        } else if (cli_flag(argv, i, "--no-estimate")) {
            a->no_estimate = true;
        } else if (cli_flag(argv, i, "--remeasure")) {
            a->remeasure = true;
        } else if (cli_opt(argc, argv, &i, "--lora-rank", &v, &bad)) {
            if (!bad && !(bad = !parse_long(v, 1, &n) || n > 1024)) a->lora_rank = (int)n;
            else fprintf(stderr, "hone data check: --lora-rank needs 1..1024\n");
        } else if (cli_opt(argc, argv, &i, "--show-mask", &v, &bad)) {
            if (!bad && !(bad = !parse_long(v, 1, &a->show_mask)))
                continue;
            fprintf(stderr, "hone data check: --show-mask needs a line number >= 1\n");
        } else if (cli_opt(argc, argv, &i, "--max-seq-len", &v, &bad)) {
            if (!bad && !(bad = !parse_long(v, 2, &n))) a->opts.max_seq_len = (size_t)n, a->has_max_seq = true;
            else fprintf(stderr, "hone data check: --max-seq-len needs a number >= 2\n");
        } else if (cli_opt(argc, argv, &i, "--n-epochs", &v, &bad)) {
            if (!bad && !(bad = !parse_long(v, 1, &n) || n > 50)) a->opts.n_epochs = (int)n;
            else fprintf(stderr, "hone data check: --n-epochs needs 1..50\n");
        } else if (cli_opt(argc, argv, &i, "--batch-size", &v, &bad)) {
            if (!bad && !(bad = !parse_long(v, 1, &n) || n > 256)) a->opts.batch_size = (int)n;
            else fprintf(stderr, "hone data check: --batch-size needs 1..256\n");
        } else if (cli_opt(argc, argv, &i, "--learning-rate-multiplier", &v, &bad)) {
            char *end;
            double x = bad ? 0 : strtod(v, &end);
            if (!bad && !(bad = !*v || *end || !(x > 0))) a->opts.lr_multiplier = x;
            else fprintf(stderr, "hone data check: --learning-rate-multiplier needs a number > 0\n");
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "hone data check: unknown option '%s'\n", argv[i]);
            bad = true;
        } else if (!a->file) {
            a->file = argv[i];
        } else {
            fprintf(stderr, "hone data check: unexpected argument '%s'\n", argv[i]);
            bad = true;
        }
    }
    if (!bad && !a->file) fprintf(stderr, "hone data check: FILE is required\n"), bad = true;
    if (bad) fprintf(stderr, "\n%s", usage);
    if (!a->model) a->model = cli_default_model();
    if (!bad && !cli_resolve_model(a->model, a->model_path, sizeof a->model_path)) return 2;
    a->model = a->model_path;
    return bad ? 2 : 0;
}

/* ---- human report ------------------------------------------------------ */

static void print_lines(const char *what, const chat_lines *l) {
    if (!l->count) return;
    printf("  %zu %s: line%s", l->count, what, l->count > 1 ? "s" : "");
    size_t kept = l->count < CHAT_LINES_KEPT ? l->count : CHAT_LINES_KEPT;
    for (size_t i = 0; i < kept; i++) printf("%s %ld", i ? "," : "", l->lines[i]);
    printf("%s\n", l->count > kept ? ", ..." : "");
}

static void print_problems(const chat_dataset *ds) {
    if (!ds->n_errors && !ds->n_warnings) {
        printf("format: ok, %zu examples in %zu lines, no problems\n", ds->n_examples, ds->n_lines);
        return;
    }
    printf("format: %zu error(s), %zu warning(s); %zu valid examples, %zu invalid lines of %zu\n",
           ds->n_errors, ds->n_warnings, ds->n_examples, ds->n_invalid, ds->n_lines);
    for (int k = 0; k < CHAT_P_COUNT; k++)
        if (ds->counts[k]) printf("  %-34s %zu\n", chat_problem_kind_name((chat_problem_kind)k), ds->counts[k]);
    size_t show = ds->n_problems < 10 ? ds->n_problems : 10;
    for (size_t i = 0; i < show; i++)
        printf("  %s%s\n", ds->problems[i].warning ? "warning: " : "", ds->problems[i].text);
    size_t total = ds->n_errors + ds->n_warnings;
    if (total > show) printf("  ... and %zu more (--json lists the first %zu)\n", total - show, ds->n_problems);
}

static void print_dist(const char *name, const chat_dist *d) {
    printf("  %-24s %6zu %6zu %6zu %6zu %8.1f\n", name, d->min, d->median, d->p90, d->max, d->mean);
}

static void print_split(const char *title, const chat_dataset *ds, const chat_split_stats *st,
                        size_t max_seq) {
    printf("\n== %s: %s\n", title, ds->name);
    print_problems(ds);
    if (!st->n_examples) return;
    printf("\n  %-24s %6s %6s %6s %6s %8s\n", "per example", "min", "median", "p90", "max", "mean");
    print_dist("messages", &st->msgs);
    print_dist("tokens", &st->tokens);
    print_dist("trained tokens", &st->trained);
    printf("\n");
    char over[96];
    snprintf(over, sizeof over, "examples over the %zu-token context (truncated from the end)", max_seq);
    print_lines("examples without a system message", &st->missing_system);
    print_lines("examples without a user message", &st->missing_user);
    print_lines(over, &st->truncated);
    print_lines("examples lose trained tokens to truncation", &st->lost_trained);
    print_lines("examples have no trained token left and will be dropped", &st->dropped);
    print_lines("exact duplicates of an earlier example", &st->duplicates);
    print_lines("examples whose end-of-turn token is not trained (refused)", &st->eot_errors);
    if (st->eot_errors.count) printf("    %s\n", st->eot_message);
    printf("  %zu examples used: %zu tokens, %zu trained\n", st->n_used, st->total_tokens,
           st->total_trained);
}

static void print_plan(const chat_plan *p) {
    printf("\n== plan\n");
    printf("  %-26s %zu\n", "training examples", p->n_examples);
    printf("  %-26s %d%s\n", "n_epochs", p->n_epochs, p->epochs_auto ? " (auto)" : "");
    printf("  %-26s %d%s\n", "batch_size", p->batch_size, p->batch_auto ? " (auto)" : "");
    printf("  %-26s %g%s\n", "learning_rate_multiplier", p->lr_multiplier, p->lr_auto ? " (auto)" : "");
    printf("  %-26s %lld\n", "steps", p->steps);
    printf("  %-26s %lld (tokens x epochs; %lld in the loss mask)\n", "trained_tokens",
           p->trained_tokens, p->target_tokens);
}

/* ---- time and memory estimate ---------------------------------------------- */

/* The outcome of the estimate step: ran (est valid), skipped, or failed. */
typedef struct estimate_result {
    bool ran, skipped;
    char error[1024];
    ft_estimate est;
} estimate_result;

static void fmt_seconds(double s, char *out, size_t cap) {
    if (s < 60) snprintf(out, cap, "%.1f s", s);
    else if (s < 3600) snprintf(out, cap, "%dm %02ds", (int)(s / 60), (int)s % 60);
    else snprintf(out, cap, "%dh %02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

static void fmt_bytes(double b, char *out, size_t cap) {
    if (b < 1e6) snprintf(out, cap, "%.0f kB", b / 1e3);
    else if (b < 1e9) snprintf(out, cap, "%.1f MB", b / 1e6);
    else snprintf(out, cap, "%.2f GB", b / 1e9);
}

static void print_method(const ft_estimate *e, const ft_estimate_method *m) {
    char t[32] = "-", step[32] = "-", mem[32];
    if (m->measured) {
        fmt_seconds(m->total_seconds, t, sizeof t);
        snprintf(step, sizeof step, "%.1f ms", m->step_seconds * 1e3);
    }
    fmt_bytes((double)m->mem.total, mem, sizeof mem);
    printf("  %-6s %12s %12s %12s%s\n", m->method == FT_LORA ? "lora" : "full", t, step, mem,
           e->auto_method == m->method ? "   <- auto" : "");
}

static void print_breakdown(const ft_estimate_method *m) {
    char w[32], tr[32], g[32], ad[32], ac[32], rt[32];
    fmt_bytes((double)m->mem.weights, w, sizeof w);
    fmt_bytes((double)m->mem.trainable, tr, sizeof tr);
    fmt_bytes((double)m->mem.grads, g, sizeof g);
    fmt_bytes((double)m->mem.adam, ad, sizeof ad);
    fmt_bytes((double)m->mem.activations, ac, sizeof ac);
    fmt_bytes((double)m->mem.runtime, rt, sizeof rt);
    printf("  %s memory: weights %s%s%s, gradients %s, AdamW moments %s, activations %s, "
           "process+tokenizer+data %s\n", m->method == FT_LORA ? "lora" : "full", w,
           m->method == FT_LORA ? ", adapter " : "", m->method == FT_LORA ? tr : "", g, ad, ac, rt);
    if (m->note[0]) printf("  %s: %s\n", m->method == FT_LORA ? "lora" : "full", m->note);
}

static void print_estimate(const estimate_result *r) {
    printf("\n== time and memory estimate for this machine\n");
    if (r->skipped) {
        printf("  (skipped)\n");
        return;
    }
    if (!r->ran) {
        printf("  not available: %s\n", r->error);
        return;
    }
    const ft_estimate *e = &r->est;
    printf("  training step measured at %d x %d tokens (lora %d, full %d timed steps), "
           "%d threads%s\n", e->in.batch_size, e->in.train_len, e->lora.bench_steps,
           e->full.bench_steps, e->threads, e->lora.cached ? " (cached)" : "");
    printf("\n  %-6s %12s %12s %12s\n", "method", "wall time", "per step", "peak memory");
    print_method(e, &e->lora);
    print_method(e, &e->full);
    printf("\n");
    print_breakdown(&e->lora);
    print_breakdown(&e->full);
}

static void run_estimate(const data_args *a, const chat_check_report *rep, double data_seconds,
                         estimate_result *r) {
    memset(r, 0, sizeof *r);
    ft_estimate_in in;
    if (a->no_estimate) {
        r->skipped = true;
        return;
    }
    if (!ft_estimate_in_from_check(rep, &in)) {
        snprintf(r->error, sizeof r->error, "no training example to estimate");
        return;
    }
    in.lora_rank = a->lora_rank;
    in.data_seconds = data_seconds;
    in.no_cache = a->remeasure;
    if (isatty(STDERR_FILENO)) fprintf(stderr, "measuring the training step of %s...\r", a->model);
    hn_err err = {0};
    if (ft_estimate_run(a->model, &in, &r->est, &err) == HN_OK) r->ran = true;
    else snprintf(r->error, sizeof r->error, "%s", err.msg);
    if (isatty(STDERR_FILENO)) fprintf(stderr, "\033[K");
}

static json_t *estimate_json(const estimate_result *r) {
    if (r->ran) return ft_estimate_json(&r->est);
    return json_pack("{s:n,s:n,s:s}", "seconds", "memory_bytes", "note",
                     r->skipped ? "skipped (--no-estimate)" : r->error);
}

static void print_report(const data_args *a, const chat_check_report *rep,
                         const chat_dataset *train, const chat_dataset *valid,
                         const estimate_result *est) {
    printf("hone data check: model %s, template %s, max %zu tokens per example\n", a->model,
           rep->template_name, rep->max_seq_len);
    print_split("training file", train, &rep->train, rep->max_seq_len);
    if (valid) {
        print_split("validation file", valid, &rep->valid, rep->max_seq_len);
        if (rep->overlap.count) printf("\n");
        print_lines("validation examples also in the training file", &rep->overlap);
    }
    print_plan(&rep->plan);
    print_estimate(est);
    bool ok = chat_check_ok(rep, train, valid);
    printf("\n%s\n", ok ? "result: ok" : "result: problems found (see above)");
}

/* ---- --show-mask ------------------------------------------------------- */

static int show_mask(const data_args *a, const chat_template *t, const tok *tk,
                     const chat_dataset *ds, size_t max_seq) {
    const chat_example *ex = NULL;
    for (size_t i = 0; i < ds->n_examples && !ex; i++)
        if (ds->examples[i].line == a->show_mask) ex = &ds->examples[i];
    if (!ex) {
        fprintf(stderr, "hone data check: line %ld of %s is not a valid example\n", a->show_mask,
                ds->name);
        return 2;
    }
    chat_render r;
    chat_render_init(&r);
    hn_err err = {0};
    if (chat_template_render(t, tk, ex, max_seq, &r, &err) != HN_OK) {
        fprintf(stderr, "hone data check: %s:%ld: %s\n", ds->name, ex->line, err.msg);
        chat_render_free(&r);
        return 2;
    }
    bool ansi = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
    hn_buf out;
    hn_buf_init(&out);
    chat_check_format_mask(tk, &r, ansi, &out);
    printf("%s:%ld (%s; trained tokens %s):\n%s\n", ds->name, ex->line, chat_template_name(t),
           ansi ? "in green" : "between [[ ]]", out.data ? out.data : "");
    printf("tokens %zu, trained %zu", r.n, r.n_trained);
    if (r.truncated) printf(" (truncated from %zu tokens, %zu trained)", r.n_full, r.n_trained_full);
    printf("\n");
    hn_buf_free(&out);
    chat_render_free(&r);
    return 0;
}

/* ---- command ------------------------------------------------------------ */

static int load_file(const char *path, int min_examples, chat_dataset *ds) {
    chat_dataset_opts o;
    chat_dataset_opts_default(&o);
    o.min_examples = min_examples;
    o.min_examples_is_error = false; /* a warning here; jobs refuse it */
    hn_err err = {0};
    if (chat_dataset_load(path, &o, ds, &err) != HN_OK) {
        fprintf(stderr, "hone data check: %s\n", err.msg);
        return 2;
    }
    return 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The report (and estimate) of loaded files, printed; returns the exit code. */
static int report(const data_args *a, const chat_template *t, const tok *tk,
                  const chat_dataset *train, const chat_dataset *valid, const chat_check_opts *o) {
    chat_check_report rep;
    hn_err err = {0};
    double t0 = now();
    if (chat_check_run(t, tk, train, valid, o, &rep, &err) != HN_OK) {
        fprintf(stderr, "hone data check: %s\n", err.msg);
        return 2;
    }
    estimate_result *est = malloc(sizeof *est);
    if (!est) {
        fprintf(stderr, "hone data check: out of memory\n");
        return 2;
    }
    run_estimate(a, &rep, now() - t0, est);
    if (a->json) {
        json_t *j = chat_check_report_json(&rep, train, valid);
        json_t *plan = json_object_get(j, "plan");
        if (plan) json_object_set_new(plan, "estimate", estimate_json(est));
        if (j) json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("\n");
        json_decref(j);
    } else {
        print_report(a, &rep, train, valid, est);
    }
    free(est);
    return chat_check_ok(&rep, train, valid) ? 0 : 1;
}

static int run_check(const data_args *a, const chat_template *t, const tok *tk, int ctx) {
    chat_dataset train, valid;
    int rc = load_file(a->file, 10, &train);
    if (!rc && a->valid) rc = load_file(a->valid, 0, &valid);
    if (rc) {
        chat_dataset_free(&train);
        return rc;
    }
    chat_check_opts o = a->opts;
    if (!a->has_max_seq) o.max_seq_len = ctx > 0 ? (size_t)ctx : 0;
    if (a->show_mask) {
        rc = show_mask(a, t, tk, &train, o.max_seq_len);
    } else {
        rc = report(a, t, tk, &train, a->valid ? &valid : NULL, &o);
    }
    chat_dataset_free(&train);
    if (a->valid) chat_dataset_free(&valid);
    return rc;
}

static int data_check(int argc, char **argv) {
    data_args a;
    if (parse_args(argc, argv, &a)) return 2;
    tok *tk = NULL;
    int ctx = 0;
    char *jinja = NULL;
    hn_err err = {0};
    if (model_load_tokenizer(a.model, &tk, &ctx, &jinja, &err) != HN_OK) {
        fprintf(stderr, "hone data check: model %s: %s\n", a.model, err.msg);
        return 2;
    }
    chat_template *t = NULL;
    int rc = 2;
    if (chat_template_for_model_vars(jinja, *a.template_vars ? a.template_vars : NULL, &t, &err) != HN_OK)
        fprintf(stderr, "hone data check: model %s: %s\n", a.model, err.msg);
    else
        rc = run_check(&a, t, tk, ctx);
    chat_template_free(t);
    free(jinja);
    tok_free(tk);
    return rc;
}

int cmd_data(int argc, char **argv) {
    if (argc < 2 || cli_want_help(argc, argv)) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "check")) return data_check(argc, argv);
    fprintf(stderr, "hone data: unknown subcommand '%s' (expected: check)\n\n%s", argv[1], usage);
    return 2;
}
