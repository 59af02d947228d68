/* check.h — the pre-flight report of `hone data check`: per-file statistics
 * after rendering every example with the model's tokenizer and template
 * (messages, tokens and trained tokens per example, truncation, dropped
 * examples, duplicates, missing system/user messages, end-of-turn check),
 * train/valid overlap, and the training plan ("auto" hyperparameters resolved
 * by chat/hparams.h, trained tokens). Library code: it builds numbers and
 * JSON; src/cli/cmd_data.c prints. */
#ifndef HN_CHAT_CHECK_H
#define HN_CHAT_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/err.h"
#include "chat/dataset.h"
#include "chat/template.h"
#include "tokenizer/tok.h"

/* min / median / p90 / max (nearest-rank percentiles) and mean. */
typedef struct chat_dist {
    size_t min, median, p90, max;
    double mean;
} chat_dist;

/* A count and the first few line numbers it is about. */
#define CHAT_LINES_KEPT 8
typedef struct chat_lines {
    size_t count;
    long lines[CHAT_LINES_KEPT];
} chat_lines;

typedef struct chat_split_stats {
    size_t n_examples;        /* valid examples rendered */
    chat_dist msgs, tokens, trained; /* per example; tokens before truncation */
    chat_lines missing_system, missing_user;
    chat_lines truncated;     /* over max_seq_len: cut from the end */
    chat_lines lost_trained;  /* truncation removed some trained tokens */
    chat_lines dropped;       /* no trained token left: the trainer drops them */
    chat_lines duplicates;    /* identical to an earlier example of the file */
    chat_lines eot_errors;    /* end-of-turn token outside the mask (refused) */
    char eot_message[512];    /* the first end-of-turn error */
    size_t n_used;            /* examples left for training (not dropped) */
    size_t total_tokens;      /* tokens of used examples, after truncation */
    size_t total_trained;     /* trained tokens of used examples, after truncation */
} chat_split_stats;

typedef struct chat_check_opts {
    size_t max_seq_len;   /* truncation length; 0 = none */
    int n_epochs;         /* 0 = auto */
    int batch_size;       /* 0 = auto */
    double lr_multiplier; /* 0 = auto */
} chat_check_opts;

typedef struct chat_plan {
    size_t n_examples;  /* training examples used */
    int n_epochs, batch_size;
    double lr_multiplier;
    bool epochs_auto, batch_auto, lr_auto;
    long long steps;          /* n_epochs * ceil(n_examples / batch_size) */
    long long trained_tokens; /* total tokens of the used examples * n_epochs (OpenAI's count) */
    long long target_tokens;  /* tokens inside the loss mask * n_epochs */
} chat_plan;

typedef struct chat_check_report {
    char template_name[32];
    size_t max_seq_len;
    chat_split_stats train, valid;
    bool has_valid;
    chat_lines overlap; /* validation examples identical to a training example (valid lines) */
    chat_plan plan;
} chat_check_report;

/* Nearest-rank distribution of v[0..n) (sorts v). */
chat_dist chat_dist_of(size_t *v, size_t n);

/* Renders every example of ds and fills st. */
hn_status chat_check_split(const chat_template *t, const tok *tk, const chat_dataset *ds,
                           size_t max_seq_len, chat_split_stats *st, hn_err *err);

/* The whole report: both files, the overlap, the plan. valid may be NULL. */
hn_status chat_check_run(const chat_template *t, const tok *tk, const chat_dataset *train,
                         const chat_dataset *valid, const chat_check_opts *o,
                         chat_check_report *rep, hn_err *err);

/* The plan for n training examples under o (auto values resolved). */
chat_plan chat_check_plan(size_t n_examples, size_t total_tokens, size_t total_trained,
                          const chat_check_opts *o);

/* True when nothing in the datasets or the report is an error (warnings —
 * too_few_examples as a warning, truncation, dropped examples, duplicates,
 * overlap — do not count). */
bool chat_check_ok(const chat_check_report *rep, const chat_dataset *train,
                   const chat_dataset *valid);

/* Machine-readable report (new reference; caller json_decref). valid may be NULL. */
json_t *chat_check_report_json(const chat_check_report *rep, const chat_dataset *train,
                               const chat_dataset *valid);

/* Appends the rendered text of r with the trained tokens marked: between
 * "[[" and "]]", or in green (ANSI) when ansi. Control tokens are shown as
 * their pieces ("<s>", "</s>"). */
void chat_check_format_mask(const tok *tk, const chat_render *r, bool ansi, hn_buf *out);

#endif
