/* generate.h — text generation: sampling (greedy, temperature, top-k, top-p
 * with a seeded RNG) and the decode loop over a model_state's KV cache. */
#ifndef HN_GENERATE_H
#define HN_GENERATE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/rng.h"
#include "model/model.h"

typedef struct gen_params {
    int max_tokens;    /* new tokens at most; <= 0 means until the context is full */
    float temperature; /* 0 = greedy */
    float top_p;       /* 1 = off */
    int top_k;         /* 0 = off */
    uint64_t seed;
    bool stop_at_eos;  /* default true: stop at the tokenizer's EOS and at stop_id */
    int32_t stop_id;   /* another token that ends a reply (a chat template's
                          end-of-turn, e.g. <|eot_id|>), -1 = none (default) */
} gen_params;

void gen_params_default(gen_params *p);

typedef enum gen_finish { GEN_STOP_EOS = 0, GEN_STOP_LENGTH, GEN_STOP_CALLBACK } gen_finish;

/* Called for every generated token with the bytes it adds to the text (a
 * byte-fallback token adds one raw byte, so a multi-byte character can arrive
 * over several calls); text is NUL-terminated. Return false to stop. */
typedef bool (*gen_token_fn)(void *ctx, int32_t id, const char *text, size_t len);

typedef struct gen_result {
    int n_prompt;
    int n_generated;
    gen_finish finish;
    double prompt_seconds, gen_seconds;
} gen_result;

/* Picks the next token from logits (modified in place). */
int32_t gen_sample(float *logits, int vocab, const gen_params *p, hn_rng *rng);

/* Runs prompt ids through the model, then samples until EOS, max_tokens, the
 * context end or the callback says stop. Generated ids are appended to *out
 * (malloc'd, may be NULL if not wanted). */
hn_status gen_run(const hn_model *m, const int32_t *prompt, int n_prompt,
                  const gen_params *p, gen_token_fn cb, void *ctx, int32_t **out,
                  gen_result *res, hn_err *err);

#endif
