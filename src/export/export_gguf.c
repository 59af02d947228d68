/* export_gguf.c — hn_model -> GGUF v3 as llama.cpp expects each architecture
 * (llama, qwen2, qwen3, gpt2): <arch>.* hyper-parameters, token_embd / blk.N.* /
 * output_norm / output tensor names (model_param_gguf_name), llama's q/k rows
 * permuted back to adjacent-pair order, GPT-2's Conv1D weights transposed, norm
 * vectors kept F32, matrices in the requested dtype (Q8_0 falls back to F16
 * for rows that are not a multiple of 32, as llama.cpp's converter does).
 * Also a LoRA adapter alone in llama.cpp's GGUF adapter layout (the same
 * names with .lora_a / .lora_b, B rows of q/k permuted like the base's). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/num.h"
#include "export/export.h"

/* Converted tensor buffers, kept alive until the writer has written them. */
typedef struct buf_list {
    void **p;
    int n, cap;
} buf_list;

static void *keep(buf_list *l, void *p) {
    if (!p) return NULL;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        void **np = realloc(l->p, (size_t)cap * sizeof *np);
        if (!np) {
            free(p);
            return NULL;
        }
        l->p = np;
        l->cap = cap;
    }
    l->p[l->n++] = p;
    return p;
}

static void buf_list_free(buf_list *l) {
    for (int i = 0; i < l->n; i++) free(l->p[i]);
    free(l->p);
}

void export_permute_heads(float *dst, const float *src, int n_heads, int hd, int cols) {
    size_t row = (size_t)cols, head = (size_t)hd * row;
    for (int h = 0; h < n_heads; h++) {
        const float *s = src + h * head;
        float *d = dst + h * head;
        for (int j = 0; j < hd / 2; j++) {
            memcpy(d + (size_t)(2 * j) * row, s + (size_t)j * row, row * sizeof(float));
            memcpy(d + (size_t)(2 * j + 1) * row, s + (size_t)(hd / 2 + j) * row,
                   row * sizeof(float));
        }
    }
}

static gguf_ttype matrix_type(export_dtype d, int64_t cols) {
    switch (d) {
    case EXPORT_F16: return GGUF_T_F16;
    case EXPORT_BF16: return GGUF_T_BF16;
    case EXPORT_Q8_0: return cols % 32 ? GGUF_T_F16 : GGUF_T_Q8_0;
    default: return GGUF_T_F32;
    }
}

/* n floats -> a malloc'd buffer of type t (*nbytes set); NULL when out of memory. */
static void *convert(const float *src, size_t n, gguf_ttype t, uint64_t *nbytes) {
    if (!gguf_ttype_nbytes(t, n, nbytes)) return NULL;
    void *out = malloc(*nbytes ? *nbytes : 1);
    if (!out) return NULL;
    if (t == GGUF_T_F32) memcpy(out, src, n * sizeof(float));
    else if (t == GGUF_T_Q8_0) gguf_quantize_q8_0(src, out, n);
    else {
        uint16_t *h = out;
        for (size_t i = 0; i < n; i++)
            h[i] = t == GGUF_T_F16 ? hn_f32_to_f16(src[i]) : hn_f32_to_bf16(src[i]);
    }
    return out;
}

/* Adds one tensor: rows x cols (cols 0 = vector, always F32). */
static hn_status add(gguf_writer *w, buf_list *bl, const char *name, const float *src,
                     int64_t rows, int64_t cols, export_dtype d, hn_err *err) {
    gguf_ttype t = cols ? matrix_type(d, cols) : GGUF_T_F32;
    uint64_t ne[2] = {(uint64_t)(cols ? cols : rows), (uint64_t)(cols ? rows : 1)};
    size_t n = (size_t)rows * (size_t)(cols ? cols : 1);
    uint64_t nbytes;
    void *data = keep(bl, convert(src, n, t, &nbytes));
    if (!data) return hn_errf(err, HN_ENOMEM, "out of memory converting %s", name);
    return gguf_writer_add_tensor(w, name, t, cols ? 2 : 1, ne, data, nbytes, err);
}

/* q/k: permuted into a temporary f32 copy, then added. */
static hn_status add_qk(gguf_writer *w, buf_list *bl, const char *name, const float *src,
                        int n_heads, int hd, int cols, export_dtype d, hn_err *err) {
    size_t n = (size_t)n_heads * hd * cols;
    float *tmp = malloc(n * sizeof(float));
    if (!tmp) return hn_errf(err, HN_ENOMEM, "out of memory");
    export_permute_heads(tmp, src, n_heads, hd, cols);
    hn_status s = add(w, bl, name, tmp, (int64_t)n_heads * hd, cols, d, err);
    free(tmp);
    return s;
}

/* One parameter under its llama.cpp name, in llama.cpp's layout. */
static hn_status add_param(gguf_writer *w, buf_list *bl, const hn_model *m, const model_param *p,
                           export_dtype d, hn_err *err) {
    char name[96];
    gguf_layout lay;
    if (!model_param_gguf_name(m, p, name, sizeof name, &lay))
        return hn_errf(err, HN_EUNSUPPORTED, "no GGUF name for tensor %s", p->name);
    if (lay == GGUF_LAYOUT_SAME || p->n_dims == 1)
        return add(w, bl, name, p->data, p->shape[0], p->n_dims == 1 ? 0 : p->shape[1], d, err);
    const model_config *c = &m->cfg;
    if (lay != GGUF_LAYOUT_TRANSPOSE)
        return add_qk(w, bl, name, p->data, lay == GGUF_LAYOUT_PERMUTE_Q ? c->n_heads : c->n_kv_heads,
                      c->head_dim, (int)p->shape[1], d, err);
    float *tmp = malloc(p->numel * sizeof(float)); /* Conv1D (in, out) -> (out, in) */
    if (!tmp) return hn_errf(err, HN_ENOMEM, "out of memory");
    model_transpose(tmp, p->data, p->shape[0], p->shape[1]);
    hn_status s = add(w, bl, name, tmp, p->shape[1], p->shape[0], d, err);
    free(tmp);
    return s;
}

static hn_status add_tensors(gguf_writer *w, buf_list *bl, const hn_model *m, export_dtype d,
                             hn_err *err) {
    hn_status s = HN_OK;
    for (int i = 0; !s && i < m->n_param_tensors; i++) s = add_param(w, bl, m, &m->params[i], d, err);
    /* llama3 RoPE scaling travels as per-frequency divisors, as llama.cpp's converter writes it */
    if (!s && m->rope_freqs)
        s = add(w, bl, "rope_freqs.weight", m->rope_freqs, m->cfg.head_dim / 2, 0, d, err);
    return s;
}

/* llama.cpp's LLAMA_FTYPE values. */
static uint32_t file_type(export_dtype d) {
    static const uint32_t ft[] = {0, 1, 32, 7};
    return ft[d];
}

static void set_u32(gguf_writer *w, const char *arch, const char *key, int v) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    gguf_writer_set_u32(w, k, (uint32_t)v);
}

static void set_f32(gguf_writer *w, const char *arch, const char *key, float v) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    gguf_writer_set_f32(w, k, v);
}

static void set_hparams(gguf_writer *w, const hn_model *m, const export_opts *o) {
    const model_config *c = &m->cfg;
    const char *a = model_arch_name(c->arch);
    model_traits tr = model_arch_traits(c->arch);
    gguf_writer_set_str(w, "general.architecture", a);
    gguf_writer_set_str(w, "general.name", o->name ? o->name : c->name);
    gguf_writer_set_u32(w, "general.file_type", file_type(o->dtype));
    if (o->dtype == EXPORT_Q8_0) gguf_writer_set_u32(w, "general.quantization_version", 2);
    set_u32(w, a, "context_length", c->max_seq_len);
    set_u32(w, a, "embedding_length", c->dim);
    set_u32(w, a, "block_count", c->n_layers);
    set_u32(w, a, "feed_forward_length", c->hidden_dim);
    set_u32(w, a, "attention.head_count", c->n_heads);
    set_u32(w, a, "attention.head_count_kv", c->n_kv_heads);
    if (tr.layernorm) set_f32(w, a, "attention.layer_norm_epsilon", c->norm_eps);
    else set_f32(w, a, "attention.layer_norm_rms_epsilon", c->norm_eps);
    if (tr.rope) {
        set_f32(w, a, "rope.freq_base", c->rope_theta);
        set_u32(w, a, "rope.dimension_count", c->head_dim);
    }
    if (c->head_dim * c->n_heads != c->dim) {
        set_u32(w, a, "attention.key_length", c->head_dim);
        set_u32(w, a, "attention.value_length", c->head_dim);
    }
    set_u32(w, a, "vocab_size", c->vocab_size);
}

static hn_status write_file(gguf_writer *w, buf_list *bl, const char *path, hn_status s,
                            hn_err *err) {
    if (!s) s = gguf_writer_write(w, path, err);
    gguf_writer_free(w);
    buf_list_free(bl);
    return s;
}

hn_status export_gguf(const hn_model *m, const export_opts *o, const char *path, hn_err *err) {
    if (!m->tok) return hn_errf(err, HN_EINVAL, "GGUF export needs a model with a tokenizer");
    gguf_writer *w = gguf_writer_create();
    if (!w) return hn_errf(err, HN_ENOMEM, "out of memory");
    buf_list bl = {0};
    set_hparams(w, m, o);
    hn_status s = export_gguf_tokenizer(w, m, err);
    if (!s) s = add_tensors(w, &bl, m, o->dtype, err);
    return write_file(w, &bl, path, s, err);
}

/* ---- LoRA adapter alone ---- */

/* GGUF names of the LoRA targets' base tensors, in enum lora_target order. */
static const char *const target_gguf[LORA_N_TARGETS] = {
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down", "attn_qkv"};

/* A (r, in) is written as is (ggml [in, r]); B (out, r) (ggml [r, out]) gets
 * the q/k row permutation, since B's rows are the base weight's output rows:
 * P(W + s*B*A) = P(W) + s*(P(B))*A. */
static hn_status add_pair(gguf_writer *w, buf_list *bl, const hn_model *m, const lora_set *l,
                          int layer, int t, export_dtype d, hn_err *err) {
    const lora_pair *lp = &l->pairs[layer][t];
    const model_config *c = &m->cfg;
    char name[96];
    snprintf(name, sizeof name, "blk.%d.%s.weight.lora_a", layer, target_gguf[t]);
    hn_status s = add(w, bl, name, lp->A, l->rank, lp->in, d, err);
    snprintf(name, sizeof name, "blk.%d.%s.weight.lora_b", layer, target_gguf[t]);
    /* only llama's GGUF q/k rows are permuted (qwen keeps HF order); a Conv1D
     * base is transposed in GGUF, so B A is already its (out, in) delta */
    if (!s && c->arch == ARCH_LLAMA && (t == LORA_Q || t == LORA_K))
        s = add_qk(w, bl, name, lp->B, t == LORA_Q ? c->n_heads : c->n_kv_heads, c->head_dim,
                   l->rank, d, err);
    else if (!s)
        s = add(w, bl, name, lp->B, lp->out, l->rank, d, err);
    return s;
}

static void set_adapter_meta(gguf_writer *w, const hn_model *m, const lora_set *l,
                             const export_opts *o) {
    gguf_writer_set_str(w, "general.architecture", model_arch_name(m->cfg.arch));
    gguf_writer_set_str(w, "general.type", "adapter");
    gguf_writer_set_str(w, "general.name", o->name ? o->name : m->cfg.name);
    gguf_writer_set_u32(w, "general.file_type", file_type(o->dtype));
    if (o->dtype == EXPORT_Q8_0) gguf_writer_set_u32(w, "general.quantization_version", 2);
    gguf_writer_set_u32(w, "general.base_model.count", 1);
    gguf_writer_set_str(w, "general.base_model.0.name", m->cfg.name);
    gguf_writer_set_str(w, "adapter.type", "lora");
    gguf_writer_set_f32(w, "adapter.lora.alpha", l->alpha);
    /* the same identity hone's PEFT adapters carry (adapter_config.json) */
    char hash[32];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)model_weights_hash(m));
    gguf_writer_set_str(w, "hone.base_weights_hash", hash);
}

hn_status export_gguf_adapter(const hn_model *m, const lora_set *l, const export_opts *o,
                              const char *path, hn_err *err) {
    if (l->n_layers != m->cfg.n_layers)
        return hn_errf(err, HN_EINVAL, "adapter has %d layers, the base model %d", l->n_layers,
                       m->cfg.n_layers);
    /* llama.cpp adapters hold lora_a/lora_b pairs; its token_embd support
     * (a low-rank pair, no lm_head rows of their own) is not a PEFT token
     * row, and a silently dropped row would be pitfall #6 (an adapter that
     * does not apply): refuse rather than write an adapter that never stops. */
    if (l->n_tok)
        return hn_errf(err, HN_EUNSUPPORTED, "this adapter also trains %d token row%s (e.g. the "
                       "end-of-turn token, trainable_token_indices), which a llama.cpp GGUF "
                       "adapter cannot carry: export the merged model instead (--format gguf "
                       "--adapter DIR), or fine-tune with --train-tokens none",
                       l->n_tok, l->n_tok == 1 ? "" : "s");
    gguf_writer *w = gguf_writer_create();
    if (!w) return hn_errf(err, HN_ENOMEM, "out of memory");
    buf_list bl = {0};
    set_adapter_meta(w, m, l, o);
    hn_status s = HN_OK;
    for (int layer = 0; !s && layer < l->n_layers; layer++)
        for (int t = 0; !s && t < LORA_N_TARGETS; t++)
            if (l->pairs[layer][t].A) s = add_pair(w, &bl, m, l, layer, t, o->dtype, err);
    return write_file(w, &bl, path, s, err);
}
