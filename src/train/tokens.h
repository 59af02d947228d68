/* tokens.h — which token rows a LoRA fine-tune trains besides its adapters
 * (docs/pitfalls.md #2): LoRA keeps embeddings and the output head frozen,
 * so a base model that never trained its end-of-turn token could never learn
 * to stop. By default the template's end-of-turn token is trained when its
 * row looks untrained; --train-tokens chooses explicitly. */
#ifndef HN_TRAIN_TOKENS_H
#define HN_TRAIN_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "model/model.h"

enum { FT_MAX_TOKENS = 64 };

typedef struct ft_tokens {
    int32_t ids[FT_MAX_TOKENS];
    int n;
    int eot;             /* the template's end-of-turn id, -1 if none */
    bool eot_untrained;  /* its row looks untrained */
    char names[256];     /* "'</s>' (id 2), ..." ("" if none) */
    char why[400];       /* why these rows */
} ft_tokens;

/* spec: NULL or "auto" (the end-of-turn token when its row looks untrained),
 * "eot" (always), "none", or a comma list of "eot", token ids and token
 * strings (exact pieces such as "</s>" or "<|eot_id|>"). */
hn_status ft_tokens_choose(const hn_model *m, const char *spec, ft_tokens *out, hn_err *err);

/* Whether token id's rows look untrained: its output (or input) row equals
 * >= 8 other rows, or its norm is below a tenth of the median row norm.
 * why (may be NULL) says which. */
bool ft_token_untrained(const hn_model *m, int id, char *why, size_t cap);

#endif
