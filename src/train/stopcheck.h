/* stopcheck.h — after training, does the model stop by itself?
 * (docs/pitfalls.md #2). Greedy replies to a few prompts of the data, served
 * exactly as `hone serve` would (the template's serving prompt), counting
 * those that end with the end-of-turn token within a budget. */
#ifndef HN_STOPCHECK_H
#define HN_STOPCHECK_H

#include "base/err.h"
#include "model/model.h"
#include "train/finetune.h"

/* m: the fine-tuned model (adapter merged). path: chat JSONL whose first
 * max_prompts conversations ending in an assistant message are answered
 * (that message dropped) with at most budget new tokens each; stops adding
 * prompts after max_seconds. Fills out (done = true). */
hn_status ft_stop_check_run(const hn_model *m, const char *path, int max_prompts, int budget,
                            double max_seconds, ft_stop_check *out, hn_err *err);

#endif
