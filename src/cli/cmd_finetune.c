/* cmd_finetune.c — `hone finetune`: fine-tune a model on chat JSONL with a
 * progress bar on a terminal and plain log lines otherwise. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "train/finetune.h"

static const char *usage =
    "usage: hone finetune [--model PATH] --train FILE [--valid FILE] --out DIR [options]\n"
    "\n"
    "  --model PATH            GGUF file, HF directory or model name such as stories260K\n"
    "                          (default: bundled stories260K)\n"
    "  --train FILE            OpenAI chat-format JSONL ({\"messages\": [...]} per line)\n"
    "  --valid FILE            validation JSONL (loss/accuracy per epoch and every few steps)\n"
    "  --out DIR               metrics.csv, checkpoints/step-N/, final/\n"
    "  --method auto|lora|full auto (default): all weights when weights, gradients and\n"
    "                          optimizer state fit in a quarter of RAM, else LoRA adapters\n"
    "  --epochs N|auto         default auto (OpenAI's rule: 3, more for small files)\n"
    "  --batch-size N|auto     examples per step (default auto: ~0.2% of examples, >= 1)\n"
    "  --lr-multiplier X|auto  times the base rate (LoRA 2e-3, full 2e-4); default 1\n"
    "  --lora-rank R           default 8 (alpha = 2R unless --lora-alpha)\n"
    "  --lora-alpha A\n"
    "  --lora-dropout P        dropout on the adapters' inputs while training (default 0)\n"
    "  --lora-targets LIST     modules with adapters: q,k,v,o,gate,up,down or all (default)\n"
    "  --train-tokens LIST     LoRA: token rows trained with the adapter (embedding and\n"
    "                          output rows): auto (default: the end-of-turn token when\n"
    "                          its rows look untrained), eot, none, or a comma list of\n"
    "                          eot, token ids and token strings\n"
    CLI_TEMPLATE_VAR_HELP
    CLI_PRECISION_HELP
    "  --grad-accum K          split each batch into K micro-batches (same result, less memory)\n"
    "  --max-seq-len N         truncate examples (default: the model's context)\n"
    "  --packing               several examples per sequence (own attention mask and\n"
    "                          positions each): less padding, same loss; with\n"
    "                          --max-seq-len, rows of that many tokens\n"
    "  --gradient-checkpointing  keep one layer's activations and recompute the others in\n"
    "                          the backward pass: ~1/layers of the activation memory for\n"
    "                          one more forward pass (same gradients, bit for bit)\n"
    "  --eval-every N          steps between validation batches (default: ~20 per run)\n"
    "  --seed S                default 42; same seed and data -> identical run\n"
    "  --resume DIR            continue from a checkpoint directory of the same run\n"
    "  --quiet                 only errors and the final summary\n";

typedef struct progress {
    bool tty, quiet;
    double t0;
} progress;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void on_event(void *ctx, const char *level, const char *msg) {
    progress *p = ctx;
    if (p->quiet && strcmp(level, "error")) return;
    fprintf(stderr, "%s%s%s\n", p->tty ? "\r\033[K" : "", strcmp(level, "info") ? "warning: " : "",
            msg);
}

static void on_metrics(void *ctx, const ft_metrics *m) {
    progress *p = ctx;
    if (p->quiet) return;
    double el = now() - p->t0, eta = m->step ? el / m->step * (m->total_steps - m->step) : 0;
    char valid[96] = "";
    double vl = !isnan(m->full_valid_loss) ? m->full_valid_loss : m->valid_loss;
    if (!isnan(vl)) snprintf(valid, sizeof valid, " valid_loss %.4f", vl);
    if (p->tty) {
        int width = 24, fill = m->total_steps ? width * m->step / m->total_steps : width;
        fprintf(stderr, "\r\033[K[%.*s%*s] %d/%d loss %.4f acc %.2f%s %.0f tok/s ETA %.0fs",
                fill, "########################", width - fill, "", m->step, m->total_steps,
                m->train_loss, m->train_accuracy, valid, m->tokens_per_second, eta);
        if (m->step == m->total_steps) fputc('\n', stderr);
    } else {
        int every = m->total_steps / 20 > 1 ? m->total_steps / 20 : 1;
        bool quiet_step = m->step % every && m->step != 1 && m->step != m->total_steps &&
                          isnan(m->full_valid_loss);
        if (quiet_step) return;
        fprintf(stderr, "step %d/%d epoch %d train_loss %.4f train_accuracy %.3f%s tok/s %.0f\n",
                m->step, m->total_steps, m->epoch + 1, m->train_loss, m->train_accuracy, valid,
                m->tokens_per_second);
    }
}

static void on_checkpoint(void *ctx, int step, int epoch, const char *dir, const ft_metrics *m) {
    (void)m;
    progress *p = ctx;
    if (!p->quiet)
        fprintf(stderr, "%scheckpoint (epoch %d, step %d): %s\n", p->tty ? "\r\033[K" : "", epoch + 1,
                step, dir);
}

static bool parse_auto_int(const char *v, int *out) {
    if (!strcmp(v, "auto")) {
        *out = 0;
        return true;
    }
    char *end;
    long x = strtol(v, &end, 10);
    *out = (int)x;
    return *end == 0 && x > 0 && x < 1 << 20;
}

static int parse_args(int argc, char **argv, ft_config *c) {
    bool bad = false;
    const char *v;
    for (int i = 1; i < argc && !bad; i++) {
        if (cli_opt(argc, argv, &i, "--model", &c->model_path, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--train", &c->train_path, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--valid", &c->valid_path, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--out", &c->out_dir, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--resume", &c->resume_dir, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--method", &v, &bad)) {
            if (!strcmp(v, "lora")) c->method = FT_LORA;
            else if (!strcmp(v, "full")) c->method = FT_FULL;
            else if (!strcmp(v, "auto")) c->method = FT_AUTO;
            else bad = fprintf(stderr, "hone finetune: --method is lora, full or auto\n");
            continue;
        }
        if (cli_opt(argc, argv, &i, "--epochs", &v, &bad)) {
            if (!parse_auto_int(v, &c->n_epochs)) bad = fprintf(stderr, "hone finetune: bad --epochs\n");
            continue;
        }
        if (cli_opt(argc, argv, &i, "--batch-size", &v, &bad)) {
            if (!parse_auto_int(v, &c->batch_size)) bad = fprintf(stderr, "hone finetune: bad --batch-size\n");
            continue;
        }
        if (cli_opt(argc, argv, &i, "--lr-multiplier", &v, &bad)) {
            c->lr_multiplier = strcmp(v, "auto") ? atof(v) : 0;
            if (c->lr_multiplier < 0) bad = fprintf(stderr, "hone finetune: bad --lr-multiplier\n");
            continue;
        }
        if (cli_opt(argc, argv, &i, "--lora-rank", &v, &bad)) { c->lora_rank = atoi(v); continue; }
        if (cli_opt(argc, argv, &i, "--lora-alpha", &v, &bad)) { c->lora_alpha = (float)atof(v); continue; }
        if (cli_opt(argc, argv, &i, "--lora-dropout", &v, &bad)) { c->lora_dropout = (float)atof(v); continue; }
        if (cli_opt(argc, argv, &i, "--precision", &v, &bad)) {
            cli_prec prec;
            bad = !cli_precision("finetune", v, true, &prec);
            continue;
        }
        if (cli_opt(argc, argv, &i, "--lora-targets", &c->lora_targets, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--train-tokens", &c->train_tokens, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--template-var", &v, &bad)) {
            static char vars[2048];
            bad = !cli_template_var("finetune", v, vars, sizeof vars);
            c->template_vars = vars;
            continue;
        }
        if (cli_opt(argc, argv, &i, "--grad-accum", &v, &bad)) { c->grad_accum = atoi(v); continue; }
        if (cli_opt(argc, argv, &i, "--max-seq-len", &v, &bad)) { c->max_seq_len = atoi(v); continue; }
        if (cli_opt(argc, argv, &i, "--eval-every", &v, &bad)) { c->eval_every = atoi(v); continue; }
        if (cli_opt(argc, argv, &i, "--seed", &v, &bad)) { c->seed = strtoull(v, NULL, 10); continue; }
        if (cli_flag(argv, i, "--quiet")) { c->quiet = true; continue; }
        if (cli_flag(argv, i, "--packing")) { c->packing = true; continue; }
        if (cli_flag(argv, i, "--gradient-checkpointing")) { c->recompute = true; continue; }
        fprintf(stderr, "hone finetune: unknown option '%s'\n", argv[i]);
        bad = true;
    }
    if (!bad && (!c->train_path || !c->out_dir)) {
        fprintf(stderr, "hone finetune: --train and --out are required\n");
        bad = true;
    }
    return bad ? 2 : 0;
}

int cmd_finetune(int argc, char **argv) {
    if (cli_want_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    ft_config c;
    ft_config_default(&c);
    c.model_path = cli_default_model();
    if (parse_args(argc, argv, &c)) {
        fputs(usage, stderr);
        return 2;
    }
    char model[4096];
    if (!cli_resolve_model(c.model_path, model, sizeof model)) return 1;
    c.model_path = model;
    progress p = {isatty(2), c.quiet, now()};
    ft_callbacks cb = {&p, on_event, on_metrics, on_checkpoint, NULL};
    ft_result res;
    hn_err err = {0};
    hn_status s = ft_run(&c, &cb, &res, &err);
    if (s != HN_OK) {
        fprintf(stderr, "%shone finetune: %s\n", p.tty ? "\r\033[K" : "", err.msg);
        return 1;
    }
    printf("fine-tuned %s: %d steps, %d epochs, batch size %d, %lld trained tokens in %.1fs\n",
           res.method == FT_LORA ? "LoRA adapter" : "model", res.steps, res.n_epochs, res.batch_size,
           res.trained_tokens, now() - p.t0);
    if (!isnan(res.final_valid_loss)) printf("validation loss: %.4f\n", res.final_valid_loss);
    if (res.stop.done && res.stop.n_checked)
        printf("stop check: %d/%d replies ended with the end-of-turn token by themselves%s\n",
               res.stop.n_stopped, res.stop.n_checked,
               res.stop.n_stopped * 10 >= res.stop.n_checked * 8 ? "" : " (WARNING: below 80%)");
    printf("result: %s (use: hone generate --model %s --adapter %s)\n", res.final_dir, c.model_path,
           res.final_dir);
    return 0;
}
