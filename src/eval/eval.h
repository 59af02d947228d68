/* eval.h — graded evaluation of a model on a chat JSONL file whose LAST
 * message of every example is the assistant's reference answer.
 *
 * For each example the conversation before the reference is rendered with
 * the model's chat template (the one training uses) plus the generation
 * prompt, the model answers greedily, and every grader (eval/grade.h) scores
 * the reply against the reference. Independently, the reference is
 * teacher-forced through the training forward pass to give the held-out
 * loss on the reference tokens (answer + end-of-turn).
 *
 * Ownership: an eval_set owns its examples; an eval_run owns its rows and
 * their strings. A run refers to its set by index only (row i = example i). */
#ifndef HN_EVAL_H
#define HN_EVAL_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "chat/dataset.h"
#include "eval/grade.h"
#include "model/model.h"

/* The examples to evaluate: validated with the shared dataset validator. */
typedef struct eval_set {
    char path[1024];
    chat_example *examples; /* owned */
    int n;
    char **prompts;         /* the last non-assistant message before the reference */
    const char **refs;      /* the reference answer (points into examples) */
} eval_set;

/* Loads and validates path; keeps the first `limit` examples (0 = all).
 * Refuses (HN_EINVAL, "file.jsonl:7: ...") an invalid line, or an example
 * whose last message is not a non-empty assistant answer. */
hn_status eval_set_load(const char *path, int limit, eval_set *out, hn_err *err);
void eval_set_free(eval_set *s);

typedef struct eval_opts {
    int max_tokens;         /* 0 = per example: reference tokens * 2 + 16, at most 256 */
    const eval_regex *regex; /* pattern for the regex grader, or NULL */
    bool loss;              /* compute the held-out loss (default true) */
} eval_opts;

void eval_opts_default(eval_opts *o);

/* One example's outcome for one model. */
typedef struct eval_row {
    char *reply;            /* reply text (valid UTF-8; invalid bytes -> U+FFFD) */
    char *error;            /* NULL, or why no reply was generated (e.g. too long) */
    bool eos;               /* generation stopped at the end-of-turn token by itself */
    int n_prompt, n_generated;
    double gen_seconds;
    double loss;            /* mean cross-entropy over the reference tokens; NAN if none */
    int n_loss_tokens;
    double scores[EVAL_N_GRADERS]; /* NAN = grader not applied */
} eval_row;

typedef struct eval_summary {
    int n;
    double score[EVAL_N_GRADERS]; /* mean score per grader (pass rate; NAN if not applied) */
    double eos_rate;
    double mean_loss;             /* token-weighted over all reference tokens; NAN if none */
    long loss_tokens;
    long generated_tokens;
    double gen_seconds;
    double tokens_per_second;     /* generated tokens / decode time */
    int n_errors;                 /* examples with no reply (row.error) */
} eval_summary;

typedef struct eval_run {
    char label[64];         /* "model", "baseline" */
    char model[1024];       /* model path */
    char adapter[1024];     /* fine-tune dir applied, "" if none */
    eval_row *rows;         /* [set->n] */
    int n;
    eval_summary sum;
} eval_run;

/* Called after each example (done = 1..total). */
typedef void (*eval_progress_fn)(void *ctx, const char *label, int done, int total);

/* Evaluates m over the whole set. Fills run->rows and run->sum; run->label,
 * ->model and ->adapter are left as the caller set them. A prompt that does
 * not fit the context is an example-level error (row.error, score 0), not a
 * failure of the run. The caller frees run with eval_run_free. */
hn_status eval_run_model(const hn_model *m, const eval_set *set, const eval_opts *o,
                         eval_progress_fn progress, void *ctx, eval_run *run, hn_err *err);
void eval_run_free(eval_run *run);
/* Recomputes run->sum from the rows. */
void eval_summarize(eval_run *run);

#endif
