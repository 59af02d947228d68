/* lora.h — LoRA adapters: low-rank updates W + (alpha/r) * B @ A on the
 * linear layers of a model, with A (r, in) and B (out, r) in one slab in PEFT
 * order, and the PEFT on-disk layout (adapter_model.safetensors +
 * adapter_config.json). The base weights are never modified by training.
 *
 * A set may also train a few token rows (PEFT's trainable_token_indices):
 * for each chosen id, a delta added to its embedding row and, for an untied
 * model, another added to its lm_head row (tied: the one delta serves both,
 * as the tied weight would). The deltas start at zero and live at the end of
 * the slab, so the optimizer, clipping and checkpoints treat them like A/B. */
#ifndef HN_LORA_H
#define HN_LORA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/rng.h"
#include "model/model.h"

/* The linear layers an adapter can target. GPT-2 has QKV (c_attn), O
 * (attn.c_proj), UP (mlp.c_fc) and DOWN (mlp.c_proj); the others Q..DOWN. */
enum lora_target {
    LORA_Q = 0, LORA_K, LORA_V, LORA_O, LORA_GATE, LORA_UP, LORA_DOWN, LORA_QKV, LORA_N_TARGETS
};
#define LORA_ALL ((1u << LORA_N_TARGETS) - 1)

/* The targets an architecture has (a mask of enum lora_target). */
unsigned lora_arch_targets(model_arch a);

typedef struct lora_pair {
    float *A;  /* (r, in) */
    float *B;  /* (out, r) */
    int in, out;
} lora_pair;

typedef struct lora_set {
    int rank;
    float alpha, scale; /* scale = alpha / rank */
    float dropout;      /* lora_dropout the adapter was trained with (recorded only) */
    unsigned targets;    /* bit mask of enum lora_target */
    int n_layers;
    lora_pair (*pairs)[LORA_N_TARGETS]; /* [n_layers][target]; A == NULL if not targeted */
    int n_tok;          /* trainable token rows (0: none) */
    int32_t *tok_ids;   /* [n_tok] */
    float *tok_emb;     /* (n_tok, dim) embedding-row deltas (tied: also lm_head) */
    float *tok_head;    /* (n_tok, dim) lm_head-row deltas (untied models), else NULL */
    float *slab;
    size_t n_params;
} lora_set;

/* The module name in the architecture ("q_proj", "c_attn", "attn.c_proj"). */
const char *lora_target_name(model_arch a, int target);
/* Parses "q,k,v,o,gate,up,down" or "all" (HF names like q_proj accepted too;
 * for GPT-2 qkv/c_attn, c_fc, c_proj = attn.c_proj and mlp.c_proj). "all"
 * gives LORA_ALL, which lora_create narrows to what the model has. */
hn_status lora_parse_targets(const char *s, unsigned *mask, hn_err *err);

/* A: kaiming-uniform like PEFT (bound = 1/sqrt(in)); B: zeros. targets is
 * narrowed to lora_arch_targets; nothing left is an error. */
hn_status lora_create(const hn_model *m, int rank, float alpha, unsigned targets, hn_rng *rng,
                      lora_set **out, hn_err *err);
/* The same with trainable token rows tok_ids[0..n_tok) (distinct, in range);
 * their deltas start at zero. */
hn_status lora_create_ex(const hn_model *m, int rank, float alpha, unsigned targets,
                         const int32_t *tok_ids, int n_tok, hn_rng *rng, lora_set **out,
                         hn_err *err);
/* Index of id among l's trainable token rows, -1 if it is not one. */
int lora_token_index(const lora_set *l, int id);
void lora_free(lora_set *l);
/* "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" style name
 * ("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight" for GPT-2). */
void lora_tensor_name(model_arch a, char *out, size_t cap, int layer, int target, bool is_b);
/* Writes dir/adapter_model.safetensors and dir/adapter_config.json. Token
 * rows are written as PEFT does: "...embed_tokens.token_adapter.trainable_tokens_delta"
 * ("transformer.wte" for GPT-2) and, untied, "lm_head.token_adapter...", each
 * (n_tok, dim) holding the NEW rows (base row + delta: PEFT's "delta" tensor
 * replaces rows), with trainable_token_indices in the config (a list when
 * tied, {"embed_tokens": ids, "lm_head": ids} when untied). m must be the
 * base model; lora_load subtracts its rows again. */
hn_status lora_save(const lora_set *l, const hn_model *m, const char *dir, hn_err *err);
hn_status lora_load(const hn_model *m, const char *dir, lora_set **out, hn_err *err);
/* W += scale * B @ A for every pair, and token rows += their deltas
 * (inference with an adapter). */
void lora_merge(const lora_set *l, hn_model *m);

/* Applies a fine-tune directory to m: merges a PEFT adapter, or loads a full
 * fine-tune's model.safetensors over the base weights. */
hn_status model_apply_finetune(hn_model *m, const char *dir, hn_err *err);

#endif
