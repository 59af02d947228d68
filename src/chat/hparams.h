/* hparams.h — resolution of "auto" hyperparameters (n_epochs, batch_size,
 * learning_rate_multiplier) from the number of training examples. Shared by
 * `hone data check` (the plan it prints) and the trainer (what it does), so
 * both always agree. The rules, mirroring OpenAI where known, are in
 * docs/data.md ("Auto hyperparameters"). */
#ifndef HN_CHAT_HPARAMS_H
#define HN_CHAT_HPARAMS_H

#include <stddef.h>

/* OpenAI cookbook: 3 epochs; if 3n < 100 -> min(25, 100 / n); if 3n > 25000 ->
 * max(1, 25000 / n). (10 examples -> 10 epochs.) n = 0 -> 1. */
int chat_auto_epochs(size_t n_examples);
/* 0.2 % of the examples (rounded down), clamped to [1, 256]; never more than
 * n_examples. */
int chat_auto_batch_size(size_t n_examples);
/* 1.0: the multiplier scales the trainer's per-method base learning rate,
 * which is already tuned for hone's small batches (batch_size is a parameter
 * so a batch-dependent rule can come later without an API change). */
double chat_auto_lr_multiplier(int batch_size);

#endif
