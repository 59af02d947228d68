/* finetune.h — the fine-tuning job as a library call: model + chat JSONL in,
 * adapter or weights + metrics out. Used by `hone finetune` and by the worker. */
#ifndef HN_FINETUNE_H
#define HN_FINETUNE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"

/* FT_AUTO: full fine-tuning when weights + gradients + AdamW moments (16
 * bytes per parameter) fit in a quarter of physical memory, else LoRA. */
typedef enum ft_method { FT_LORA = 0, FT_FULL = 1, FT_AUTO = 2 } ft_method;

typedef struct ft_config {
    const char *model_path;  /* GGUF file or HF dir */
    const char *train_path;  /* chat JSONL */
    const char *valid_path;  /* optional */
    const char *out_dir;     /* metrics.csv, checkpoints/, final/ */
    const char *resume_dir;  /* optional checkpoint dir to resume from */
    ft_method method;        /* default FT_AUTO */
    int n_epochs;            /* 0 = auto */
    int batch_size;          /* 0 = auto */
    double lr_multiplier;    /* 0 = auto */
    int lora_rank;           /* default 8 */
    float lora_alpha;        /* 0 (default) = 2 * rank */
    float lora_dropout;      /* default 0 */
    const char *lora_targets; /* "q,k,v,o,gate,up,down" subset; NULL = all */
    const char *template_vars; /* JSON object of chat template variables, or NULL;
                                  kept in final/hone_finetune.json */
    const char *train_tokens; /* LoRA: token rows trained too: NULL/"auto" (the end-of-turn
                                 token if its row looks untrained), "eot", "none", or a
                                 comma list of "eot", ids and token strings */
    int grad_accum;          /* micro-batches per step, default 1 */
    int max_seq_len;         /* 0 = model context */
    int eval_every;          /* steps between small validation batches, 0 = auto */
    bool recompute;          /* activation recomputation (gradient checkpointing) */
    const char *precision;   /* "auto" (NULL), "f32" or "bf16": the matrix products
                                (model/precision.h); master weights stay f32 */
    bool packing;            /* several examples per row, each with its own attention
                                segment and positions from 0 (docs/training.md) */
    uint64_t seed;
    bool quiet;
} ft_config;

void ft_config_default(ft_config *c);

/* Per-step metrics (OpenAI's metrics CSV columns); NaN = not computed. */
typedef struct ft_metrics {
    int step, total_steps, epoch;
    double train_loss, train_accuracy;
    double valid_loss, valid_mean_token_accuracy;
    double full_valid_loss, full_valid_mean_token_accuracy;
    double tokens_per_second;
    long long trained_tokens;
} ft_metrics;

typedef struct ft_callbacks {
    void *ctx;
    /* level: "info" | "warn" | "error"; messages are OpenAI-style sentences. */
    void (*on_event)(void *ctx, const char *level, const char *msg);
    void (*on_metrics)(void *ctx, const ft_metrics *m);
    /* A checkpoint directory was written (atomically) for step/epoch; m is
     * never NULL (the last step's metrics for a checkpoint taken on stop). */
    void (*on_checkpoint)(void *ctx, int step, int epoch, const char *dir,
                          const ft_metrics *m);
    /* Polled between steps; true = stop now (cancel/pause); a checkpoint is
     * written before returning HN_ECANCELLED when checkpoint_on_stop. */
    bool (*should_stop)(void *ctx, bool *checkpoint_on_stop);
} ft_callbacks;

/* The post-training stop check (docs/training.md): greedy replies to up to
 * 20 validation (else training) prompts, budget tokens each. */
typedef struct ft_stop_check {
    bool done;
    int n_checked, n_stopped; /* replies, and those ending with end-of-turn by themselves */
    int budget;               /* 2 x the longest trained answer + 16 */
    double seconds;
} ft_stop_check;

typedef struct ft_result {
    long long trained_tokens;
    int steps;
    int n_epochs, batch_size;
    ft_method method;        /* resolved */
    const char *precision;   /* resolved: "f32" or "bf16" */
    double lr_multiplier;
    double final_train_loss, final_valid_loss;
    int n_train_tokens;      /* LoRA: trainable token rows */
    ft_stop_check stop;
    char final_dir[1024]; /* out_dir/final */
} ft_result;

/* "auto" rules (docs/training.md): OpenAI's n_epochs heuristic, batch size
 * ~0.2% of the examples in 1..256, base learning rate per method. */
int ft_auto_epochs(int n_examples);
int ft_auto_batch_size(int n_examples);
double ft_base_lr(ft_method m);
ft_method ft_auto_method(size_t n_params);

hn_status ft_run(const ft_config *cfg, const ft_callbacks *cb, ft_result *res, hn_err *err);

#endif
