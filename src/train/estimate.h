/* estimate.h — how long a fine-tuning run will take and how much memory it
 * needs on this machine, for LoRA and for full fine-tuning, before any
 * compute is spent (`hone data check`).
 *
 * Time is measured, not modelled: the model is loaded and its real training
 * step (llama_forward + llama_loss_backward + gradient norm + AdamW over the
 * trainable slab) runs a few times after a warm-up at a representative batch
 * shape taken from the data statistics, as does the validation forward pass.
 * Wall time = seconds/step x steps + validation passes + checkpoint writes +
 * model load. The measurements are cached per model file + shape + method +
 * thread count in $XDG_CACHE_HOME/hone/estimates.json (~/.cache/...), so a
 * second check is instant; a cache that cannot be read or written is ignored.
 *
 * Peak memory is the sum of what the trainer allocates: f32 weights, the
 * trainable parameters' gradients and two AdamW moments (plus the LoRA
 * parameters), the activations planned for the longest example, and the
 * process with its tokenizer and data (measured resident set). The method
 * docs are in docs/data.md ("Time and memory estimate"). */
#ifndef HN_TRAIN_ESTIMATE_H
#define HN_TRAIN_ESTIMATE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "base/err.h"
#include "chat/check.h"
#include "train/finetune.h"

/* The run to estimate (what the trainer will do with its defaults). */
typedef struct ft_estimate_in {
    int batch_size;          /* examples per optimizer step (grad_accum 1) */
    int n_epochs;
    long long steps;         /* optimizer steps in total */
    int steps_per_epoch;
    int train_len;           /* representative padded input tokens per training row */
    int valid_len;           /* same for validation rows (0 = no validation file) */
    int max_len;             /* longest input row (activation plan) */
    double trained_frac;     /* share of a row's targets inside the loss mask */
    size_t n_valid;          /* validation examples */
    int lora_rank;           /* 0 = the trainer's default (8) */
    double data_seconds;     /* tokenizing the files (measured by the caller), or 0 */
    size_t base_rss;         /* resident bytes of process + tokenizer + data; 0 = measure now */
    bool no_cache;           /* measure even if cached (the result is still stored) */
} ft_estimate_in;

/* Peak memory, bytes, by part. */
typedef struct ft_estimate_mem {
    size_t weights;       /* f32 model weights */
    size_t trainable;     /* LoRA parameters (0 for full: they are the weights) */
    size_t grads;         /* gradient of the trainable parameters */
    size_t adam;          /* two AdamW moments */
    size_t activations;   /* llama_acts slab + batch buffers at the largest shape */
    size_t runtime;       /* process, tokenizer and data (resident before the weights) */
    size_t total;
} ft_estimate_mem;

typedef struct ft_estimate_method {
    ft_method method;
    bool measured;          /* false: not benchmarked (see note); times are 0 */
    bool cached;            /* measurements came from the cache */
    int bench_steps;        /* timed training steps */
    double step_seconds;    /* per optimizer step */
    double eval_seconds;    /* per validation micro-batch */
    double train_seconds, valid_seconds, checkpoint_seconds, setup_seconds;
    double total_seconds;
    ft_estimate_mem mem;
    char note[256];         /* why not measured, or "" */
} ft_estimate_method;

typedef struct ft_estimate {
    ft_estimate_method lora, full;
    ft_method auto_method;  /* what FT_AUTO resolves to (ft_auto_method) */
    size_t n_params, lora_params;
    int threads;
    ft_estimate_in in;      /* as used (defaults filled) */
    double load_seconds;    /* model load, measured or cached */
    char cache_path[1024];  /* "" when no cache location is known */
    bool cache_written;
} ft_estimate;

/* The run the trainer would do for a data check report (batch size capped to
 * the examples, representative lengths from the token distributions).
 * Returns false when there is nothing to train. */
bool ft_estimate_in_from_check(const chat_check_report *rep, ft_estimate_in *in);

/* Padded row length for batches of b examples drawn from a distribution:
 * the expected longest of b, read off the quantiles (exposed for tests). */
double ft_estimate_padded_len(const chat_dist *d, int b);

/* Loads the model (unless everything is cached), benchmarks both methods
 * and fills out. Full fine-tuning is not benchmarked when it would not fit
 * in physical memory (note says so). */
hn_status ft_estimate_run(const char *model_path, const ft_estimate_in *in, ft_estimate *out,
                          hn_err *err);

/* The cache file: $XDG_CACHE_HOME/hone/estimates.json or
 * $HOME/.cache/hone/estimates.json; false if neither is set. */
bool ft_estimate_cache_path(char *out, size_t cap);

/* The estimate as JSON (new reference; caller json_decref). */
json_t *ft_estimate_json(const ft_estimate *e);

#endif
