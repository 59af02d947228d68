/* seqs.h — training sequences: a rendered example as token ids plus a
 * per-token "trained" flag (flag[i] = 1: token i is a target), built from a
 * chat dataset with the model's template, and batching of them. */
#ifndef HN_SEQS_H
#define HN_SEQS_H

#include <stdint.h>

#include "base/err.h"
#include "model/model.h"

typedef struct ft_seq {
    int32_t *ids;
    uint8_t *trained;
    int n;          /* tokens */
    int n_trained;
    long line;      /* source line in the JSONL file */
} ft_seq;

typedef struct ft_seqs {
    ft_seq *v;
    int n;
    long total_tokens, trained_tokens;
    int n_truncated, n_dropped; /* over the context; left without a trained token */
    int max_len;
} ft_seqs;

typedef void (*ft_warn_fn)(void *ctx, const char *msg);

/* Loads a chat JSONL file, validates it (the same validator as upload and
 * `data check`), renders every example with the model's template and
 * truncates to max_len tokens. Examples that keep no trained token are
 * dropped, each reported through warn. */
hn_status ft_seqs_load(const hn_model *m, const char *path, int max_len, int min_examples,
                       ft_seqs *out, ft_warn_fn warn, void *ctx, hn_err *err);
void ft_seqs_free(ft_seqs *s);

#endif
