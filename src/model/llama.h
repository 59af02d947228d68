/* llama.h — the decoder-only transformer forward and backward passes (Llama,
 * Qwen2, Qwen3, GPT-2: model_traits says how a block differs) over a batch
 * of B sequences of T tokens, with optional LoRA adapters. Activations live in
 * an llama_acts planned once per (B, T) shape; nothing is allocated per step.
 * The same block forward serves inference (B = 1, keys/values written into a
 * KV cache) and training (keys/values kept as activations). */
#ifndef HN_LLAMA_H
#define HN_LLAMA_H

#include <stdint.h>

#include "model/lora.h"
#include "model/model.h"

typedef struct layer_acts {
    float *xn1, *rstd1, *mean1; /* (N, D), (N), (N) (mean: LayerNorm only) */
    float *q, *k, *v;   /* (N, qd), (N, kvd), (N, kvd) — after q/k-norm and RoPE */
    float *qraw, *kraw; /* (N, qd), (N, kvd) projections before q/k-norm (Qwen3) */
    float *rstdq, *rstdk; /* (N*Hq), (N*Hkv) q/k-norm statistics (Qwen3) */
    float *qkv;         /* (N, qd+2kvd) fused projection output (GPT-2), scratch */
    float *lse;         /* (B, Hq, T) log-sum-exp of each query row's scaled scores:
                         * the backward recomputes the probabilities from it */
    float *ao;          /* (N, qd) attention output before o_proj */
    float *xmid;        /* (N, D) residual after attention */
    float *xn2, *rstd2, *mean2; /* (N, D), (N), (N) */
    float *g, *u, *h;   /* (N, F) gate, up, silu(gate)*up — or up, gelu(up) */
    float *lora_tmp[LORA_N_TARGETS]; /* (N, r) x @ A^T per target, or NULL */
    /* LoRA dropout (training): one keep-bit per element of each adapted input,
     * drawn in the forward pass and reused by the backward pass */
    uint8_t *lora_mask[LORA_N_TARGETS];
    float *lora_xd, *lora_dxd; /* (N, max in) scratch shared by all layers */
    float drop_p;              /* 0 = off (inference, evaluation) */
    uint64_t drop_seed;
    int layer;
} layer_acts;

typedef struct llama_acts {
    int B, T, N;        /* N = B*T rows */
    int lora_rank;
    int loss_chunk;     /* rows per chunk of the loss (llama_loss_chunk_rows) */
    /* LoRA dropout for the next llama_forward/llama_loss_backward pair: the
     * trainer sets p (> 0) and a seed per micro-batch for training passes and
     * p = 0 for evaluation. Masks are a function of (seed, layer, target, row). */
    float lora_dropout;
    uint64_t dropout_seed;
    /* activation recomputation (gradient checkpointing): all layers share one
     * layer's activation buffers; the backward pass reruns each block's forward
     * from its saved input (res) first. ~1/L of the activation memory for one
     * more forward pass. */
    bool recompute;
    float *res;         /* (L+1, N, D): input of each layer; res + L*N*D = final residual */
    layer_acts *layers; /* [L] */
    float *xnf, *rstdf, *meanf; /* (N, D), (N), (N) final norm */
    int32_t *pos;       /* (N) positions */
    int32_t *seg;       /* (N) segment ids for packing, or all zero */
    /* backward scratch */
    float *dres, *dxn, *dq, *dk, *dv, *dao, *dh, *dg, *du, *dtmp;
    float *dqraw, *dkraw, *dqkv; /* q/k-norm and fused-projection gradients */
    float *chunk_x, *chunk_logits; /* (CH, D), (CH, V) for the chunked loss */
    int32_t *chunk_rows, *chunk_tgt;
    float *chunk_scale, *chunk_loss;
    uint8_t *chunk_ok;
    float *att_ws;      /* attention scratch, all layers (attention_ws_floats) */
    size_t att_ws_n;
    float *slab;
    size_t slab_floats;
} llama_acts;

/* Rows of the chunked loss: as many as keep the (rows, vocab) logits near
 * 32 MB (larger chunks make the lm_head products faster), 16..256. */
enum { LLAMA_LOSS_CHUNK = 64, LLAMA_LOSS_CHUNK_MAX = 256, LLAMA_LOSS_CHUNK_FLOATS = 1 << 23 };
int llama_loss_chunk_rows(int vocab_size);

hn_status llama_acts_create(const hn_model *m, int B, int T, int lora_rank, llama_acts **out,
                            hn_err *err);
/* The same with activation recomputation on or off (see llama_acts.recompute). */
hn_status llama_acts_create_ex(const hn_model *m, int B, int T, int lora_rank, bool recompute,
                               llama_acts **out, hn_err *err);
void llama_acts_free(llama_acts *a);
/* Re-plans the buffers for a smaller (B, T) inside the same allocation
 * (B*T must not exceed the created shape's). */
void llama_acts_reshape(llama_acts *a, const hn_model *m, int B, int T);

/* Views of a parameter-shaped slab (gradients, optimizer moments). */
void model_weights_view(const hn_model *m, float *slab, model_weights *w, layer_weights *layers);

/* Training forward: ids (B, T); pos/seg in acts must be filled (llama_acts_default_pos
 * sets pos = 0..T-1 per row and seg = 0). */
void llama_acts_default_pos(llama_acts *a);
void llama_forward(const hn_model *m, const lora_set *lo, llama_acts *a, const int32_t *ids);

typedef struct llama_loss_stats {
    double loss_sum;     /* sum over trained targets of weight * xent */
    double weight_sum;   /* sum of weights */
    long n_trained;      /* targets with weight > 0 */
    long n_correct;      /* argmax == target among them */
} llama_loss_stats;

/* Loss over targets (B, T) with weights (B, T) (0 = not trained), and the
 * backward pass. norm multiplies every weight's gradient (1/sum of weights of
 * the whole accumulated batch). grads (parameter-shaped slab, accumulated) or
 * NULL for frozen base weights; lora_grads (lora-shaped set, accumulated) or
 * NULL. With both NULL only the loss is computed (evaluation). Trainable
 * token rows of lo add their deltas to the embedding rows (llama_forward)
 * and to the logit columns of their ids, and get their grads in lora_grads. */
void llama_loss_backward(const hn_model *m, const lora_set *lo, llama_acts *a,
                         const int32_t *ids, const int32_t *targets, const float *weights,
                         float norm, float *grads, lora_set *lora_grads,
                         llama_loss_stats *st);

/* Logits for every row after llama_forward: out (N, V), base lm_head only
 * (no trainable token rows). */
void llama_logits(const hn_model *m, llama_acts *a, float *out);

/* A model with random weights (seeded) and no tokenizer, built in memory for
 * tests: cfg gives every shape (max_seq_len bounds the RoPE table). Free with
 * model_free. (random.c) */
hn_status model_create_random(const model_config *cfg, uint64_t seed, hn_model **out,
                              hn_err *err);

#endif
