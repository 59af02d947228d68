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

typedef enum model_arch { ARCH_LLAMA = 0, ARCH_GPT2, ARCH_QWEN2, ARCH_QWEN3 } model_arch;

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
    char name[128]; /* file or directory name */
} model_config;

/* Views into the parameter slab for one layer (HF names in comments). */
typedef struct layer_weights {
    float *attn_norm; /* input_layernorm (dim) */
    float *wq;        /* q_proj (n_heads*head_dim, dim) */
    float *wk;        /* k_proj (n_kv_heads*head_dim, dim) */
    float *wv;        /* v_proj (n_kv_heads*head_dim, dim) */
    float *wo;        /* o_proj (dim, n_heads*head_dim) */
    float *ffn_norm;  /* post_attention_layernorm (dim) */
    float *w_gate;    /* gate_proj (hidden, dim) */
    float *w_up;      /* up_proj (hidden, dim) */
    float *w_down;    /* down_proj (dim, hidden) */
} layer_weights;

typedef struct model_weights {
    float *tok_emb;    /* embed_tokens (vocab, dim) */
    layer_weights *layers;
    float *final_norm; /* norm (dim) */
    float *lm_head;    /* lm_head (vocab, dim); == tok_emb when tied */
} model_weights;

/* One named parameter tensor (HF name, shape, pointer into a slab). */
typedef struct model_param {
    char name[96];
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
    char path[1024];
} hn_model;

/* path: a .gguf file or an HF model directory. */
hn_status model_load(const char *path, hn_model **out, hn_err *err);
void model_free(hn_model *m);
/* A model of the given shape with the parameter table and an uninitialised
 * slab, and no tokenizer (m->tok == NULL): for random-init models (benchmarks,
 * tests). cfg->name, if set, names it. */
hn_status model_alloc(const model_config *cfg, hn_model **out, hn_err *err);
/* Loads only the tokenizer, context length and chat template of a model
 * (cheap: no weights are read). *chat_template may be NULL; caller frees it. */
hn_status model_load_tokenizer(const char *path, tok **out, int *max_seq_len,
                               char **chat_template, hn_err *err);
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
