/* cmd_export.c — `hone export`: merge a fine-tune into its base model and
 * write it as GGUF (llama.cpp) or a Hugging Face safetensors directory, then
 * run the quality guard (held-out loss of adapter-on-base vs the export); or
 * write a LoRA adapter alone as a llama.cpp GGUF LoRA adapter. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "base/file.h"
#include "cli/cli.h"
#include "export/export.h"
#include "model/lora.h"

static const char *usage =
    "usage: hone export [--model BASE] [--adapter DIR] --format gguf|safetensors --out PATH\n"
    "                   [options]\n"
    "       hone export [--model BASE] --adapter DIR --format gguf-adapter --out FILE.gguf\n"
    "\n"
    "  --model PATH        base model: GGUF file, HF directory or model name\n"
    "                      (default: $HONE_MODEL or the bundled stories260K)\n"
    "  --adapter DIR       fine-tune to merge: a LoRA adapter (merged in f32) or the\n"
    "                      final/ or checkpoint directory of a full fine-tune\n"
    "  --format F          gguf (one file, llama.cpp / Ollama) or safetensors (an HF\n"
    "                      directory: transformers, vLLM) (default gguf); gguf-adapter:\n"
    "                      the LoRA adapter alone, unmerged, as a llama.cpp GGUF LoRA\n"
    "                      adapter (llama-cli --lora FILE)\n"
    "  --dtype D           f32, f16, bf16 or q8_0 (GGUF only) (default f32)\n"
    "  --out PATH          the .gguf file or the output directory\n"
    "  --shard-mb N        safetensors: shard above N MB (default 2000)\n"
    "  --name NAME         model name written into the metadata\n"
    "  --valid FILE        quality guard: held-out loss on this chat JSONL file for\n"
    "                      adapter-on-base vs the exported model loaded back\n"
    "  --valid-limit N     use only the first N examples of --valid (default all)\n"
    "  --max-loss-diff P   warn when the exported loss is worse by more than P percent\n"
    "                      (and more than 0.005 nats; default 1)\n"
    "  --strict            exit 3 instead of only warning when the guard fails\n";

typedef struct export_args {
    const char *model, *adapter, *out, *valid;
    export_opts o;
    int valid_limit;
    double max_diff_pct;
    bool strict;
} export_args;

static int parse_args(int argc, char **argv, export_args *a) {
    const char *v;
    bool bad = false;
    for (int i = 1; i < argc && !bad; i++) {
        if (cli_opt(argc, argv, &i, "--model", &a->model, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--adapter", &a->adapter, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--out", &a->out, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--valid", &a->valid, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--name", &a->o.name, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--valid-limit", &v, &bad)) { a->valid_limit = atoi(v); continue; }
        if (cli_opt(argc, argv, &i, "--max-loss-diff", &v, &bad)) { a->max_diff_pct = atof(v); continue; }
        if (cli_opt(argc, argv, &i, "--shard-mb", &v, &bad)) {
            a->o.shard_bytes = strtoull(v, NULL, 10) * 1024ull * 1024ull;
            continue;
        }
        if (cli_opt(argc, argv, &i, "--format", &v, &bad)) {
            if (!export_format_parse(v, &a->o.format)) {
                fprintf(stderr, "hone export: unknown --format '%s' (gguf, safetensors or "
                        "gguf-adapter)\n", v);
                return 2;
            }
            continue;
        }
        if (cli_opt(argc, argv, &i, "--dtype", &v, &bad)) {
            if (!export_dtype_parse(v, &a->o.dtype)) {
                fprintf(stderr, "hone export: unknown --dtype '%s' (f32, f16, bf16, q8_0)\n", v);
                return 2;
            }
            continue;
        }
        if (cli_flag(argv, i, "--strict")) { a->strict = true; continue; }
        fprintf(stderr, "hone export: unknown option '%s'\n%s", argv[i], usage);
        return 2;
    }
    if (bad) return 2;
    if (!a->out) {
        fprintf(stderr, "hone export: --out is required\n%s", usage);
        return 2;
    }
    return 0;
}

static double path_mb(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) ? st.st_size / 1048576.0 : -1.0;
}

/* Prints the guard's numbers; returns 0, or 3 when it failed and --strict. */
static int report_guard(const export_args *a, const export_guard *g) {
    if (!g->ran) {
        printf("quality guard: skipped (no --valid FILE given)\n");
        return 0;
    }
    double pct = g->rel_diff * 100.0;
    printf("quality guard on %s (%d examples, %ld reference tokens):\n", a->valid, g->examples,
           g->tokens);
    char label[32];
    snprintf(label, sizeof label, "exported (%s)", export_dtype_name(a->o.dtype));
    printf("  held-out loss, %-16s %.4f\n", a->adapter ? "adapter-on-base" : "source model",
           g->loss_ref);
    printf("  held-out loss, %-16s %.4f  (%+.2f%%)\n", label, g->loss_export,
           g->loss_ref > 0 ? (g->loss_export - g->loss_ref) / g->loss_ref * 100.0 : 0.0);
    /* Only a worse loss counts, and not by less than 0.005 nats: near zero
     * (a solved task) relative differences are noise. */
    double worse = g->loss_export - g->loss_ref;
    if (worse <= 0.005 || pct <= a->max_diff_pct) {
        printf("  OK: not worse by more than %.2f%% (or 0.005)\n", a->max_diff_pct);
        return 0;
    }
    printf("  WARNING: the exported model's held-out loss is worse by %.2f%% (more than %.2f%%)%s\n",
           pct, a->max_diff_pct,
           a->o.dtype == EXPORT_Q8_0 ? "; q8_0 quantisation costs quality, try f16" : "");
    return a->strict ? 3 : 0;
}

/* --format gguf-adapter: the PEFT adapter in DIR, unmerged, as a GGUF adapter. */
static int run_export_adapter(const export_args *a, const hn_model *m, hn_err *err) {
    char cfg[4096];
    if (!a->adapter || !hn_path_join(cfg, sizeof cfg, a->adapter, "adapter_config.json") ||
        !hn_path_exists(cfg)) {
        hn_errf(err, HN_EINVAL, "--format gguf-adapter needs --adapter DIR with a LoRA adapter "
                "(adapter_config.json)%s", a->adapter ? "; a full fine-tune has none" : "");
        return 1;
    }
    lora_set *l;
    if (lora_load(m, a->adapter, &l, err) != HN_OK) return 1;
    hn_status s = export_gguf_adapter(m, l, &a->o, a->out, err);
    if (!s) printf("wrote %s (GGUF LoRA adapter, rank %d, alpha %g, %s, %.2f MB) for base %s\n",
                   a->out, l->rank, (double)l->alpha, export_dtype_name(a->o.dtype),
                   path_mb(a->out), m->cfg.name);
    lora_free(l);
    if (s) return 1;
    if (a->valid) printf("quality guard: skipped (an adapter file is not a model; export with "
                         "--format gguf to check the merged model)\n");
    return 0;
}

static int run_export(const export_args *a, hn_model *m, hn_err *err) {
    if (a->o.format == EXPORT_GGUF_ADAPTER) return run_export_adapter(a, m, err);
    if (a->adapter) {
        if (model_apply_finetune(m, a->adapter, err) != HN_OK) return 1;
        printf("merged %s into %s (f32)\n", a->adapter, m->cfg.name);
    }
    hn_status s = a->o.format == EXPORT_GGUF ? export_gguf(m, &a->o, a->out, err)
                                             : export_hf(m, &a->o, a->out, err);
    if (s) return 1;
    double mb = path_mb(a->out);
    if (mb >= 0) printf("wrote %s (%s, %s, %.2f MB)\n", a->out,
                        a->o.format == EXPORT_GGUF ? "gguf" : "safetensors",
                        export_dtype_name(a->o.dtype), mb);
    else printf("wrote %s/ (%s, %s)\n", a->out,
                a->o.format == EXPORT_GGUF ? "gguf" : "safetensors", export_dtype_name(a->o.dtype));
    fflush(stdout);
    export_guard g;
    if (export_guard_run(m, a->out, a->valid, a->valid_limit, &g, err) != HN_OK) return 1;
    return report_guard(a, &g);
}

int cmd_export(int argc, char **argv) {
    if (cli_want_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    export_args a = {.model = cli_default_model(), .max_diff_pct = 1.0};
    export_opts_default(&a.o);
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc;
    char resolved[4096];
    if (!cli_resolve_model(a.model, resolved, sizeof resolved)) return 1;
    a.model = resolved;
    hn_err err = {0};
    hn_model *m;
    if (model_load(a.model, &m, &err) != HN_OK) {
        fprintf(stderr, "hone export: %s\n", err.msg);
        return 1;
    }
    rc = run_export(&a, m, &err);
    if (rc == 1) fprintf(stderr, "hone export: %s\n", err.msg);
    model_free(m);
    return rc;
}
