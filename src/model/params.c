/* params.c — the parameter table of each architecture: every tensor's
 * Hugging Face name and shape, in one f32 slab, with the model_weights field
 * that views it; and the GGUF (llama.cpp) name and layout of each tensor.
 *
 * The table order is the checkpoint order and feeds model_weights_hash, so
 * the Llama order must never change (adapters record that hash). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "model/model.h"

const char *model_arch_name(model_arch a) {
    static const char *names[] = {"llama", "gpt2", "qwen2", "qwen3"};
    return a >= ARCH_LLAMA && a <= ARCH_QWEN3 ? names[a] : "?";
}

model_traits model_arch_traits(model_arch a) {
    model_traits t = {.rope = true};
    if (a == ARCH_GPT2)
        t = (model_traits){.layernorm = true, .gelu = true, .fused_qkv = true, .conv1d = true,
                           .qkv_bias = true, .out_bias = true};
    if (a == ARCH_QWEN2) t.qkv_bias = true;
    if (a == ARCH_QWEN3) t.qk_norm = true;
    return t;
}

static void add_param(hn_model *m, const char *name, int64_t d0, int64_t d1, float **view) {
    model_param *p = &m->params[m->n_param_tensors++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->n_dims = d1 ? 2 : 1;
    p->shape[0] = d0;
    p->shape[1] = d1;
    p->numel = (size_t)d0 * (size_t)(d1 ? d1 : 1);
    p->view = view;
}

/* Llama, Qwen2, Qwen3: model.layers.N.* */
static void llama_layer(hn_model *m, int l) {
    const model_config *c = &m->cfg;
    model_traits tr = model_arch_traits(c->arch);
    int64_t D = c->dim, F = c->hidden_dim, hd = c->head_dim;
    int64_t qd = (int64_t)c->n_heads * hd, kvd = (int64_t)c->n_kv_heads * hd;
    layer_weights *w = &m->w.layers[l];
    char n[96];
#define P(suffix, d0, d1, field)                                                   \
    (snprintf(n, sizeof n, "model.layers.%d." suffix, l), add_param(m, n, d0, d1, &w->field))
    P("input_layernorm.weight", D, 0, attn_norm);
    P("self_attn.q_proj.weight", qd, D, wq);
    if (tr.qkv_bias) P("self_attn.q_proj.bias", qd, 0, bq);
    P("self_attn.k_proj.weight", kvd, D, wk);
    if (tr.qkv_bias) P("self_attn.k_proj.bias", kvd, 0, bk);
    P("self_attn.v_proj.weight", kvd, D, wv);
    if (tr.qkv_bias) P("self_attn.v_proj.bias", kvd, 0, bv);
    if (tr.qk_norm) {
        P("self_attn.q_norm.weight", hd, 0, q_norm);
        P("self_attn.k_norm.weight", hd, 0, k_norm);
    }
    P("self_attn.o_proj.weight", D, qd, wo);
    P("post_attention_layernorm.weight", D, 0, ffn_norm);
    P("mlp.gate_proj.weight", F, D, w_gate);
    P("mlp.up_proj.weight", F, D, w_up);
    P("mlp.down_proj.weight", D, F, w_down);
#undef P
}

/* GPT-2: transformer.h.N.*, Conv1D weights stored (in, out). */
static void gpt2_layer(hn_model *m, int l) {
    const model_config *c = &m->cfg;
    int64_t D = c->dim, F = c->hidden_dim, qkv = (int64_t)(c->n_heads + 2 * c->n_kv_heads) * c->head_dim;
    layer_weights *w = &m->w.layers[l];
    char n[96];
#define P(suffix, d0, d1, field)                                                   \
    (snprintf(n, sizeof n, "transformer.h.%d." suffix, l), add_param(m, n, d0, d1, &w->field))
    P("ln_1.weight", D, 0, attn_norm);
    P("ln_1.bias", D, 0, attn_norm_b);
    P("attn.c_attn.weight", D, qkv, wqkv);
    P("attn.c_attn.bias", qkv, 0, bqkv);
    P("attn.c_proj.weight", D, D, wo);
    P("attn.c_proj.bias", D, 0, bo);
    P("ln_2.weight", D, 0, ffn_norm);
    P("ln_2.bias", D, 0, ffn_norm_b);
    P("mlp.c_fc.weight", D, F, w_up);
    P("mlp.c_fc.bias", F, 0, b_up);
    P("mlp.c_proj.weight", F, D, w_down);
    P("mlp.c_proj.bias", D, 0, b_down);
#undef P
}

static void add_all(hn_model *m) {
    const model_config *c = &m->cfg;
    bool gpt2 = c->arch == ARCH_GPT2;
    if (gpt2) {
        add_param(m, "transformer.wte.weight", c->vocab_size, c->dim, &m->w.tok_emb);
        add_param(m, "transformer.wpe.weight", c->max_seq_len, c->dim, &m->w.pos_emb);
    } else {
        add_param(m, "model.embed_tokens.weight", c->vocab_size, c->dim, &m->w.tok_emb);
    }
    for (int l = 0; l < c->n_layers; l++) (gpt2 ? gpt2_layer : llama_layer)(m, l);
    if (gpt2) {
        add_param(m, "transformer.ln_f.weight", c->dim, 0, &m->w.final_norm);
        add_param(m, "transformer.ln_f.bias", c->dim, 0, &m->w.final_norm_b);
    } else {
        add_param(m, "model.norm.weight", c->dim, 0, &m->w.final_norm);
    }
    if (!c->tied_embeddings) add_param(m, "lm_head.weight", c->vocab_size, c->dim, &m->w.lm_head);
}

enum { MAX_TENSORS_PER_LAYER = 20 };

hn_status model_build_params(hn_model *m, hn_err *err) {
    int L = m->cfg.n_layers;
    m->params = calloc((size_t)L * MAX_TENSORS_PER_LAYER + 8, sizeof *m->params);
    m->w.layers = calloc((size_t)L, sizeof *m->w.layers);
    if (!m->params || !m->w.layers) return hn_errf(err, HN_ENOMEM, "out of memory");
    add_all(m);
    size_t total = 0;
    for (int i = 0; i < m->n_param_tensors; i++) total += m->params[i].numel;
    m->slab = hn_alloc_huge(total * sizeof(float));
    if (!m->slab) return hn_errf(err, HN_ENOMEM, "out of memory for %zu parameters", total);
    m->n_params = total;
    float *p = m->slab;
    for (int i = 0; i < m->n_param_tensors; i++) {
        m->params[i].data = p;
        *m->params[i].view = p;
        p += m->params[i].numel;
    }
    if (m->cfg.tied_embeddings) m->w.lm_head = m->w.tok_emb;
    return HN_OK;
}

/* ---- GGUF names (llama.cpp's tensor names for each architecture) ---- */

typedef struct gguf_map {
    const char *hf, *gguf;
} gguf_map;

static const gguf_map layer_map[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},   {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.weight", "attn_k.weight"},   {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.weight", "attn_v.weight"},   {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"ln_1.weight", "attn_norm.weight"},            {"ln_1.bias", "attn_norm.bias"},
    {"attn.c_attn.weight", "attn_qkv.weight"},      {"attn.c_attn.bias", "attn_qkv.bias"},
    {"attn.c_proj.weight", "attn_output.weight"},   {"attn.c_proj.bias", "attn_output.bias"},
    {"ln_2.weight", "ffn_norm.weight"},             {"ln_2.bias", "ffn_norm.bias"},
    {"mlp.c_fc.weight", "ffn_up.weight"},           {"mlp.c_fc.bias", "ffn_up.bias"},
    {"mlp.c_proj.weight", "ffn_down.weight"},       {"mlp.c_proj.bias", "ffn_down.bias"},
};

static const gguf_map global_map[] = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"transformer.wte.weight", "token_embd.weight"},
    {"transformer.wpe.weight", "position_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"transformer.ln_f.weight", "output_norm.weight"},
    {"transformer.ln_f.bias", "output_norm.bias"},
    {"lm_head.weight", "output.weight"},
};

static gguf_layout layout_of(const hn_model *m, const char *hf_suffix) {
    if (m->cfg.arch == ARCH_GPT2 && strstr(hf_suffix, ".weight") &&
        !strncmp(hf_suffix, "attn.", 5))
        return GGUF_LAYOUT_TRANSPOSE;
    if (m->cfg.arch == ARCH_GPT2 && !strncmp(hf_suffix, "mlp.", 4) && strstr(hf_suffix, ".weight"))
        return GGUF_LAYOUT_TRANSPOSE;
    /* llama.cpp's llama graph uses adjacent-pair RoPE: its converter permutes
     * q/k rows; qwen2/qwen3 use NEOX (rotate-half) RoPE and keep HF order. */
    if (m->cfg.arch == ARCH_LLAMA && !strcmp(hf_suffix, "self_attn.q_proj.weight"))
        return GGUF_LAYOUT_PERMUTE_Q;
    if (m->cfg.arch == ARCH_LLAMA && !strcmp(hf_suffix, "self_attn.k_proj.weight"))
        return GGUF_LAYOUT_PERMUTE_K;
    return GGUF_LAYOUT_SAME;
}

bool model_param_gguf_name(const hn_model *m, const model_param *p, char *out, size_t cap,
                           gguf_layout *layout) {
    *layout = GGUF_LAYOUT_SAME;
    for (size_t i = 0; i < sizeof global_map / sizeof *global_map; i++)
        if (!strcmp(p->name, global_map[i].hf)) {
            snprintf(out, cap, "%s", global_map[i].gguf);
            return true;
        }
    int l, off = 0;
    if (sscanf(p->name, "model.layers.%d.%n", &l, &off) < 1 || !off)
        if (sscanf(p->name, "transformer.h.%d.%n", &l, &off) < 1 || !off) return false;
    const char *suffix = p->name + off;
    for (size_t i = 0; i < sizeof layer_map / sizeof *layer_map; i++)
        if (!strcmp(suffix, layer_map[i].hf)) {
            snprintf(out, cap, "blk.%d.%s", l, layer_map[i].gguf);
            *layout = layout_of(m, suffix);
            return true;
        }
    return false;
}

/* GGUF stores q/k rows per head in adjacent-pair order; HF's rotate-half order
 * has row j <- 2j and row hd/2+j <- 2j+1 within each head. */
void model_unpermute_heads(float *dst, const float *src, int n_heads, int hd, int cols) {
    for (int h = 0; h < n_heads; h++) {
        const float *s = src + (size_t)h * hd * cols;
        float *d = dst + (size_t)h * hd * cols;
        for (int j = 0; j < hd / 2; j++) {
            memcpy(d + (size_t)j * cols, s + (size_t)(2 * j) * cols, cols * sizeof(float));
            memcpy(d + (size_t)(hd / 2 + j) * cols, s + (size_t)(2 * j + 1) * cols,
                   cols * sizeof(float));
        }
    }
}

void model_transpose(float *dst, const float *src, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c];
}
