/* model.h — transformer checkpoints: configuration, weights and the forward
 * pass shared by training, evaluation and inference.
 *
 * A model is loaded from a GGUF file or a Hugging Face directory
 * (config.json + safetensors + tokenizer.json). Weights are held as f32 in one
 * contiguous slab in the HF layout (q/k rows in rotate-half order: GGUF's
 * adjacent-pair rows are permuted at load time so one RoPE kernel serves both). */
#ifndef HN_MODEL_H
#define HN_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "tokenizer/tok.h"

typedef enum model_arch { ARCH_LLAMA = 0, ARCH_GPT2, ARCH_QWEN2, ARCH_QWEN3, ARCH_N } model_arch;

/* "llama", "gpt2", "qwen2", "qwen3" (also the GGUF general.architecture). */
const char *model_arch_name(model_arch a);

/* What distinguishes the families inside the one block implementation. */
typedef struct model_traits {
    bool layernorm;  /* LayerNorm with bias (GPT-2) instead of RMSNorm */
    bool gelu;       /* GELU-tanh MLP (up, down) instead of SwiGLU (gate, up, down) */
    bool rope;       /* rotary positions; else learned position embeddings */
    bool fused_qkv;  /* one q|k|v projection (GPT-2 c_attn) */
    bool conv1d;     /* linear weights stored [in, out] (HF Conv1D) */
    bool qkv_bias;   /* bias on q, k, v (Qwen2; GPT-2's fused one) */
    bool out_bias;   /* bias on o_proj and the MLP (GPT-2) */
    bool qk_norm;    /* per-head RMSNorm of q and k before RoPE (Qwen3) */
} model_traits;

model_traits model_arch_traits(model_arch a);

/* rope_scaling (HF config) — only the "llama3" type changes the frequencies. */
typedef struct rope_scaling {
    bool llama3;
    float factor, low_freq_factor, high_freq_factor;
    int original_max_pos;
} rope_scaling;

typedef struct model_config {
    model_arch arch;
    int dim;        /* hidden size */
    int hidden_dim; /* FFN size */
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;
    int vocab_size;
    int max_seq_len;
    float norm_eps;
    float rope_theta;
    bool tied_embeddings;
    rope_scaling rope_scale;
    char name[128]; /* file or directory name */
} model_config;

/* Views into the parameter slab for one layer (Llama/Qwen HF names; GPT-2's
 * in brackets). A field is NULL when the architecture has no such tensor.
 * Linear weights are (out, in) except with traits.conv1d, where they are
 * stored (in, out) as HF's Conv1D does. The X-list lets code walk all fields. */
#define LAYER_WEIGHT_FIELDS(X)                                                   \
    X(attn_norm)   /* input_layernorm (dim) [ln_1.weight] */                     \
    X(attn_norm_b) /* [ln_1.bias] */                                             \
    X(wq)          /* q_proj (n_heads*head_dim, dim) */                          \
    X(wk)          /* k_proj (n_kv_heads*head_dim, dim) */                       \
    X(wv)          /* v_proj (n_kv_heads*head_dim, dim) */                       \
    X(bq) X(bk) X(bv) /* q/k/v_proj.bias (Qwen2) */                              \
    X(wqkv)        /* [attn.c_attn.weight (dim, 3*dim)] */                       \
    X(bqkv)        /* [attn.c_attn.bias] */                                      \
    X(q_norm) X(k_norm) /* self_attn.q_norm/k_norm (head_dim) (Qwen3) */         \
    X(wo)          /* o_proj (dim, n_heads*head_dim) [attn.c_proj] */            \
    X(bo)          /* [attn.c_proj.bias] */                                      \
    X(ffn_norm)    /* post_attention_layernorm (dim) [ln_2.weight] */            \
    X(ffn_norm_b)  /* [ln_2.bias] */                                             \
    X(w_gate)      /* gate_proj (hidden, dim) */                                 \
    X(w_up)        /* up_proj (hidden, dim) [mlp.c_fc (dim, hidden)] */          \
    X(b_up)        /* [mlp.c_fc.bias] */                                         \
    X(w_down)      /* down_proj (dim, hidden) [mlp.c_proj (hidden, dim)] */      \
    X(b_down)      /* [mlp.c_proj.bias] */

typedef struct layer_weights {
#define HN_LW_FIELD(f) float *f;
    LAYER_WEIGHT_FIELDS(HN_LW_FIELD)
#undef HN_LW_FIELD
} layer_weights;

typedef struct model_weights {
    float *tok_emb;      /* embed_tokens (vocab, dim) [wte] */
    float *pos_emb;      /* [wpe (max_seq_len, dim)], NULL with RoPE */
    layer_weights *layers;
    float *final_norm;   /* norm (dim) [ln_f.weight] */
    float *final_norm_b; /* [ln_f.bias] */
    float *lm_head;      /* lm_head (vocab, dim); == tok_emb when tied */
} model_weights;

/* One named parameter tensor (HF name, shape, pointer into a slab). */
typedef struct model_param {
    char name[96];
    float **view; /* the model_weights field that points at data (internal) */
    int n_dims;
    int64_t shape[2];
    size_t numel;
    float *data;
} model_param;

typedef struct hn_model {
    model_config cfg;
    tok *tok;
    model_weights w;
    float *slab;        /* all parameters, contiguous */
    size_t n_params;    /* floats in slab */
    model_param *params; /* named views in HF order */
    int n_param_tensors;
    char *chat_template; /* Jinja source or NULL (default template) */
    uint64_t weights_version; /* bumped whenever the weights are written after loading
                                 (optimizer steps, merges): GEMM caches of bf16
                                 weight copies are keyed by it (gemm_xwt_w) */
    char *chat_template_vars; /* JSON object of template variables (e.g. enable_thinking)
                                 the model was fine-tuned with, or NULL */
    float *rope_freqs;   /* (head_dim/2) divisors of the RoPE frequencies (llama3
                            scaling, GGUF rope_freqs.weight), or NULL */
    bool gguf_q8_0;      /* loaded from a GGUF whose matrices are mostly Q8_0 (by
                            elements): inference front ends default to q8_0 */
    bool q8_0;           /* the weight products run on Q8_0 copies (model_set_q8_0) */
    char path[1024];
} hn_model;

/* ---- the parameter table (params.c) ---- */

/* Builds m->params and m->w for m->cfg and allocates the (uninitialised) slab. */
hn_status model_build_params(hn_model *m, hn_err *err);

/* How a tensor's GGUF data relates to hone's (HF) layout. */
typedef enum gguf_layout {
    GGUF_LAYOUT_SAME = 0,
    GGUF_LAYOUT_PERMUTE_Q, /* llama q_proj: rows in adjacent-pair RoPE order per head */
    GGUF_LAYOUT_PERMUTE_K, /* llama k_proj: the same with n_kv_heads */
    GGUF_LAYOUT_TRANSPOSE  /* HF Conv1D (in, out) vs GGUF (out, in) */
} gguf_layout;

/* llama.cpp's name for a parameter ("blk.0.attn_q.weight") and its layout;
 * false if the tensor has no GGUF counterpart. */
bool model_param_gguf_name(const hn_model *m, const model_param *p, char *out, size_t cap,
                           gguf_layout *layout);
/* Fills m->rope_freqs from cfg.rope_scale (llama3); no-op without scaling. */
hn_status model_rope_freqs_init(hn_model *m, hn_err *err);
/* GGUF adjacent-pair q/k rows -> HF rotate-half rows (dst != src). */
void model_unpermute_heads(float *dst, const float *src, int n_heads, int hd, int cols);
/* dst (cols, rows) = src (rows, cols)^T. */
void model_transpose(float *dst, const float *src, int64_t rows, int64_t cols);

/* path: a .gguf file or an HF model directory. */
hn_status model_load(const char *path, hn_model **out, hn_err *err);
/* model_load's flags: a directory without tokenizer files loads with
 * m->tok == NULL (weights-only checkpoints in tests and inspection). */
enum { MODEL_LOAD_TOKENIZER_OPTIONAL = 1 };
hn_status model_load_ex(const char *path, unsigned flags, hn_model **out, hn_err *err);
void model_free(hn_model *m);
/* Inference in Q8_0 (on) or back to the GEMM backend (off): with it on, every
 * x·Wᵀ of a weight matrix whose width is a multiple of 32 (projections, MLP,
 * lm_head) runs on a cached Q8_0 copy of W (tensor/gemm_q8.h: made on first
 * use, ~1.06 bytes per weight beside the f32 master copy, remade when
 * weights_version changes); other products stay on the backend. For
 * inference only: gradients would not match the forward pass. Fails only
 * when too many models are in Q8_0 at once (64). */
hn_status model_set_q8_0(hn_model *m, bool on, hn_err *err);
/* A model of the given shape with the parameter table and an uninitialised
 * slab, and no tokenizer (m->tok == NULL): for random-init models (benchmarks,
 * tests). cfg->name, if set, names it. */
hn_status model_alloc(const model_config *cfg, hn_model **out, hn_err *err);
/* Loads only the tokenizer, context length and chat template of a model
 * (cheap: no weights are read). *chat_template may be NULL; caller frees it. */
hn_status model_load_tokenizer(const char *path, tok **out, int *max_seq_len,
                               char **chat_template, hn_err *err);
/* The chat_template of dir/tokenizer_config.json (malloc'd), NULL if none. */
char *model_hf_chat_template(const char *dir);
const model_param *model_find_param(const hn_model *m, const char *hf_name);
/* A 64-bit hash of the weights (every tensor but lm_head, so a tied HF copy
 * and an untied GGUF copy of the same model agree). Adapters record it so
 * that loading one on a different base is refused. */
uint64_t model_weights_hash(const hn_model *m);

/* Inference state: KV cache and activation buffers for one sequence. */
typedef struct model_state model_state;
hn_status model_state_create(const hn_model *m, int max_seq, model_state **out, hn_err *err);
void model_state_free(model_state *s);
void model_state_reset(model_state *s);
int model_state_pos(const model_state *s);
/* Feeds n tokens at the current position (batched prompt processing) and
 * returns a pointer to the logits (vocab floats) of the last one, valid until
 * the next call. If all_logits is non-NULL, it receives n*vocab floats. */
hn_status model_forward(const hn_model *m, model_state *s, const int32_t *ids, int n,
                        float *all_logits, const float **last_logits, hn_err *err);

#endif
