/* model.c — loading checkpoints into hn_model: configuration from GGUF
 * metadata or config.json, weights converted to one f32 slab in HF layout
 * (GGUF q/k rows un-permuted from adjacent-pair to rotate-half order), the
 * tokenizer and the chat template. */
#include "model/model.h"

#include <jansson.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "format/gguf.h"
#include "format/safetensors.h"
#include "tensor/gemm.h"
#include "tensor/gemm_q8.h"

static hn_status check_config(const model_config *c, const char *path, hn_err *err);
static hn_status gguf_load_into(const gguf_file *f, const char *name, float *dst, int64_t rows,
                                int64_t cols, hn_err *err);

hn_status model_alloc(const model_config *cfg, hn_model **out, hn_err *err) {
    *out = NULL;
    hn_status s = check_config(cfg, cfg->name[0] ? cfg->name : "model", err);
    if (s != HN_OK) return s;
    hn_model *m = calloc(1, sizeof *m);
    if (!m) return hn_errf(err, HN_ENOMEM, "out of memory");
    m->cfg = *cfg;
    s = model_build_params(m, err);
    if (s == HN_OK) s = model_rope_freqs_init(m, err);
    if (s != HN_OK) {
        model_free(m);
        return s;
    }
    snprintf(m->path, sizeof m->path, "%s", cfg->name);
    *out = m;
    return HN_OK;
}

uint64_t model_weights_hash(const hn_model *m) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over 32-bit words */
    for (int i = 0; i < m->n_param_tensors; i++) {
        const model_param *p = &m->params[i];
        if (!strcmp(p->name, "lm_head.weight")) continue;
        const uint32_t *w = (const uint32_t *)p->data;
        for (size_t k = 0; k < p->numel; k++) h = (h ^ w[k]) * 1099511628211ULL;
    }
    return h;
}

const model_param *model_find_param(const hn_model *m, const char *name) {
    for (int i = 0; i < m->n_param_tensors; i++)
        if (!strcmp(m->params[i].name, name)) return &m->params[i];
    return NULL;
}

static hn_status check_config(const model_config *c, const char *path, hn_err *err) {
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
        c->n_kv_heads <= 0 || c->head_dim <= 0 || c->vocab_size <= 0 || c->max_seq_len <= 0)
        return hn_errf(err, HN_EFORMAT, "%s: incomplete model config (dim %d, layers %d, heads %d)",
                       path, c->dim, c->n_layers, c->n_heads);
    if (c->dim > 65536 || c->hidden_dim > 262144 || c->n_layers > 1024 || c->n_heads > 1024 ||
        c->vocab_size > 4000000 || c->head_dim > 1024 || c->max_seq_len > 1 << 20)
        return hn_errf(err, HN_EFORMAT, "%s: model config out of range", path);
    if (c->n_heads % c->n_kv_heads)
        return hn_errf(err, HN_EFORMAT, "%s: %d attention heads not a multiple of %d kv heads",
                       path, c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2) return hn_errf(err, HN_EFORMAT, "%s: odd head_dim %d", path, c->head_dim);
    if (c->arch == ARCH_GPT2 && (c->n_kv_heads != c->n_heads || c->head_dim * c->n_heads != c->dim))
        return hn_errf(err, HN_EFORMAT, "%s: GPT-2 needs head_dim * heads == hidden size", path);
    return HN_OK;
}

/* ---- GGUF ---- */

static int64_t gguf_int_or(const gguf_file *f, const char *arch, const char *key, int64_t dflt) {
    char k[160];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    int64_t v;
    return gguf_get_int(f, k, &v, NULL) == HN_OK ? v : dflt;
}

static double gguf_float_or(const gguf_file *f, const char *arch, const char *key, double dflt) {
    char k[160];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    double v;
    return gguf_get_float(f, k, &v, NULL) == HN_OK ? v : dflt;
}

static hn_status gguf_read_rope_scaling(const gguf_file *f, const char *arch, model_config *c,
                                        hn_err *err) {
    char k[160];
    snprintf(k, sizeof k, "%s.rope.scaling.type", arch);
    gguf_str t;
    if (gguf_get_str(f, k, &t, NULL) != HN_OK) return HN_OK;
    if ((t.len == 4 && !memcmp(t.p, "none", 4)) ||
        gguf_float_or(f, arch, "rope.scaling.factor", 1.0) == 1.0)
        return HN_OK;
    (void)c;
    return hn_errf(err, HN_EUNSUPPORTED, "%s: RoPE scaling '%.*s' is not supported (llama3 "
                   "frequency factors are)", gguf_path(f), (int)(t.len > 32 ? 32 : t.len), t.p);
}

/* Llama 3.1+ GGUFs carry the llama3 RoPE scaling as per-frequency divisors. */
static hn_status gguf_load_rope_freqs(hn_model *m, const gguf_file *f, hn_err *err) {
    if (!gguf_find_tensor(f, "rope_freqs.weight")) return HN_OK;
    m->rope_freqs = malloc(sizeof(float) * (size_t)(m->cfg.head_dim / 2));
    if (!m->rope_freqs) return hn_errf(err, HN_ENOMEM, "out of memory");
    return gguf_load_into(f, "rope_freqs.weight", m->rope_freqs, m->cfg.head_dim / 2, 0, err);
}

static hn_status gguf_read_config(const gguf_file *f, model_config *c, hn_err *err) {
    gguf_str a;
    if (gguf_get_str(f, "general.architecture", &a, err) != HN_OK)
        return hn_errf(err, HN_EFORMAT, "%s: missing general.architecture", gguf_path(f));
    char arch[64];
    snprintf(arch, sizeof arch, "%.*s", (int)(a.len < 63 ? a.len : 63), a.p);
    c->arch = ARCH_N;
    for (int i = 0; i < ARCH_N; i++)
        if (!strcmp(arch, model_arch_name((model_arch)i))) c->arch = (model_arch)i;
    if (c->arch == ARCH_N)
        return hn_errf(err, HN_EUNSUPPORTED, "%s: architecture '%s' is not supported (llama, "
                       "qwen2, qwen3 and gpt2 are)", gguf_path(f), arch);
    bool gpt2 = c->arch == ARCH_GPT2;
    c->dim = (int)gguf_int_or(f, arch, "embedding_length", 0);
    c->hidden_dim = (int)gguf_int_or(f, arch, "feed_forward_length", gpt2 ? 4 * c->dim : 0);
    c->n_layers = (int)gguf_int_or(f, arch, "block_count", 0);
    c->n_heads = (int)gguf_int_or(f, arch, "attention.head_count", 0);
    c->n_kv_heads = (int)gguf_int_or(f, arch, "attention.head_count_kv", c->n_heads);
    c->head_dim = (int)gguf_int_or(f, arch, "attention.key_length",
                                   c->n_heads ? c->dim / c->n_heads : 0);
    c->max_seq_len = (int)gguf_int_or(f, arch, "context_length", 2048);
    c->norm_eps = (float)gguf_float_or(f, arch, gpt2 ? "attention.layer_norm_epsilon"
                                                     : "attention.layer_norm_rms_epsilon",
                                       gpt2 ? 1e-5 : 1e-6);
    c->rope_theta = (float)gguf_float_or(f, arch, "rope.freq_base", 10000.0);
    const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    if (!emb || emb->n_dims != 2)
        return hn_errf(err, HN_EFORMAT, "%s: missing tensor token_embd.weight", gguf_path(f));
    c->vocab_size = (int)emb->ne[1];
    c->tied_embeddings = gguf_find_tensor(f, "output.weight") == NULL;
    return gguf_read_rope_scaling(f, arch, c, err);
}

/* Loads one tensor into dst, checking its shape (rows, cols; cols 0 = vector). */
static hn_status gguf_load_into(const gguf_file *f, const char *name, float *dst, int64_t rows,
                                int64_t cols, hn_err *err) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) return hn_errf(err, HN_EFORMAT, "%s: missing tensor '%s'", gguf_path(f), name);
    int64_t want0 = cols ? cols : rows, want1 = cols ? rows : 1;
    uint64_t got1 = t->n_dims > 1 ? t->ne[1] : 1;
    if ((int64_t)t->ne[0] != want0 || (int64_t)got1 != want1 || t->n_dims > 2)
        return hn_errf(err, HN_EFORMAT, "%s: tensor '%s' has shape [%llu, %llu], expected [%lld, %lld]",
                       gguf_path(f), name, (unsigned long long)t->ne[0], (unsigned long long)got1,
                       (long long)want0, (long long)want1);
    return gguf_tensor_to_f32(f, t, dst, err);
}

/* One parameter from its GGUF tensor, converted to hone's (HF) layout. */
static hn_status gguf_load_param(const hn_model *m, const gguf_file *f, const model_param *p,
                                 float *tmp, hn_err *err) {
    char name[96];
    gguf_layout lay;
    if (!model_param_gguf_name(m, p, name, sizeof name, &lay))
        return hn_errf(err, HN_ESTATE, "no GGUF name for %s", p->name);
    if (lay == GGUF_LAYOUT_SAME) return gguf_load_into(f, name, p->data, p->shape[0], p->shape[1], err);
    bool tr = lay == GGUF_LAYOUT_TRANSPOSE;
    int64_t rows = tr ? p->shape[1] : p->shape[0], cols = tr ? p->shape[0] : p->shape[1];
    hn_status s = gguf_load_into(f, name, tmp, rows, cols, err);
    if (s != HN_OK) return s;
    const model_config *c = &m->cfg;
    if (tr) model_transpose(p->data, tmp, rows, cols);
    else
        model_unpermute_heads(p->data, tmp, lay == GGUF_LAYOUT_PERMUTE_Q ? c->n_heads : c->n_kv_heads,
                              c->head_dim, (int)cols);
    return HN_OK;
}

static hn_status gguf_load_weights(hn_model *m, const gguf_file *f, hn_err *err) {
    size_t biggest = 0;
    for (int i = 0; i < m->n_param_tensors; i++)
        if (m->params[i].numel > biggest && m->params[i].n_dims == 2) biggest = m->params[i].numel;
    float *tmp = malloc((biggest ? biggest : 1) * sizeof(float));
    if (!tmp) return hn_errf(err, HN_ENOMEM, "out of memory");
    hn_status s = HN_OK;
    for (int i = 0; s == HN_OK && i < m->n_param_tensors; i++)
        s = gguf_load_param(m, f, &m->params[i], tmp, err);
    free(tmp);
    return s;
}

static char *gguf_chat_template(const gguf_file *f) {
    gguf_str t;
    if (gguf_get_str(f, "tokenizer.chat_template", &t, NULL) != HN_OK) return NULL;
    return strndup(t.p, t.len);
}

/* Whether most matrix elements of the file (by count) are Q8_0: llama.cpp's
 * and hone's Q8_0 exports keep vectors in F32 and may keep a matrix whose
 * width is not a multiple of 32 in F16. */
static bool gguf_mostly_q8_0(const gguf_file *f) {
    uint64_t q8 = 0, all = 0;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (t->n_dims < 2) continue;
        all += t->n_elems;
        if (t->type == GGUF_T_Q8_0) q8 += t->n_elems;
    }
    return all > 0 && q8 > all / 2;
}

static hn_status load_gguf(hn_model *m, const char *path, hn_err *err) {
    gguf_file *f;
    hn_status s = gguf_open(path, &f, err);
    if (s != HN_OK) return s;
    s = gguf_read_config(f, &m->cfg, err);
    if (s == HN_OK) s = check_config(&m->cfg, path, err);
    if (s == HN_OK) s = tok_from_gguf(f, &m->tok, err);
    if (s == HN_OK) s = model_build_params(m, err);
    if (s == HN_OK) s = gguf_load_weights(m, f, err);
    if (s == HN_OK) s = gguf_load_rope_freqs(m, f, err);
    if (s == HN_OK) m->chat_template = gguf_chat_template(f);
    if (s == HN_OK) m->gguf_q8_0 = gguf_mostly_q8_0(f);
    gguf_close(f);
    return s;
}

/* ---- RoPE frequencies ---- */

/* HF's llama3 rule: long wavelengths are divided by factor, short ones kept,
 * the band between interpolated smoothly. Stored as divisors (llama.cpp's
 * rope_freqs) so that both sources feed the same table builder. */
hn_status model_rope_freqs_init(hn_model *m, hn_err *err) {
    const rope_scaling *r = &m->cfg.rope_scale;
    if (!r->llama3) return HN_OK;
    int half = m->cfg.head_dim / 2;
    free(m->rope_freqs);
    m->rope_freqs = malloc(sizeof(float) * (size_t)half);
    if (!m->rope_freqs) return hn_errf(err, HN_ENOMEM, "out of memory");
    double low_wl = r->original_max_pos / r->low_freq_factor;
    double high_wl = r->original_max_pos / r->high_freq_factor;
    for (int i = 0; i < half; i++) {
        double inv = pow(m->cfg.rope_theta, -2.0 * i / m->cfg.head_dim);
        double wl = 2 * M_PI / inv, scaled = inv;
        if (wl > low_wl) scaled = inv / r->factor;
        else if (wl >= high_wl) {
            double smooth = (r->original_max_pos / wl - r->low_freq_factor) /
                            (r->high_freq_factor - r->low_freq_factor);
            scaled = (1 - smooth) * inv / r->factor + smooth * inv;
        }
        m->rope_freqs[i] = (float)(inv / scaled);
    }
    return HN_OK;
}

/* ---- Hugging Face directory ---- */

static int json_int(json_t *o, const char *k, int dflt) {
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int)json_integer_value(v) : dflt;
}

static double json_num(json_t *o, const char *k, double dflt) {
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

static hn_status load_json(const char *path, json_t **out, hn_err *err) {
    json_error_t je;
    *out = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!*out)
        return hn_errf(err, HN_EFORMAT, "%s:%d:%d: invalid JSON: %s", path, je.line, je.column,
                       je.text);
    if (!json_is_object(*out)) {
        json_decref(*out);
        return hn_errf(err, HN_EFORMAT, "%s: top level is not a JSON object", path);
    }
    return HN_OK;
}

/* rope_scaling / rope_parameters: none, "default", or "llama3". */
static hn_status hf_rope_scaling(json_t *j, model_config *c, const char *path, hn_err *err) {
    json_t *rs = json_object_get(j, "rope_scaling");
    json_t *rp = json_object_get(j, "rope_parameters"); /* transformers >= 4.56 */
    if (json_is_object(rp)) {
        c->rope_theta = (float)json_num(rp, "rope_theta", c->rope_theta);
        if (!json_is_object(rs)) rs = rp;
    }
    if (!json_is_object(rs)) return HN_OK;
    const char *type = json_string_value(json_object_get(rs, "rope_type"));
    if (!type) type = json_string_value(json_object_get(rs, "type"));
    if (!type || !strcmp(type, "default")) return HN_OK;
    if (strcmp(type, "llama3"))
        return hn_errf(err, HN_EUNSUPPORTED, "%s: rope_scaling type '%s' is not supported "
                       "(llama3 is)", path, type);
    rope_scaling *r = &c->rope_scale;
    r->llama3 = true;
    r->factor = (float)json_num(rs, "factor", 8.0);
    r->low_freq_factor = (float)json_num(rs, "low_freq_factor", 1.0);
    r->high_freq_factor = (float)json_num(rs, "high_freq_factor", 4.0);
    r->original_max_pos = json_int(rs, "original_max_position_embeddings", 8192);
    if (r->factor <= 0 || r->high_freq_factor <= r->low_freq_factor || r->original_max_pos <= 0)
        return hn_errf(err, HN_EFORMAT, "%s: rope_scaling: inconsistent llama3 parameters", path);
    return HN_OK;
}

static hn_status hf_gpt2_config(json_t *j, model_config *c, const char *path, hn_err *err) {
    c->arch = ARCH_GPT2;
    c->dim = json_int(j, "n_embd", 0);
    c->n_layers = json_int(j, "n_layer", 0);
    c->n_heads = c->n_kv_heads = json_int(j, "n_head", 0);
    c->head_dim = c->n_heads ? c->dim / c->n_heads : 0;
    c->hidden_dim = json_int(j, "n_inner", 4 * c->dim);
    c->vocab_size = json_int(j, "vocab_size", 0);
    c->max_seq_len = json_int(j, "n_positions", 1024);
    c->norm_eps = (float)json_num(j, "layer_norm_epsilon", 1e-5);
    c->tied_embeddings = true;
    const char *act = json_string_value(json_object_get(j, "activation_function"));
    if (act && strcmp(act, "gelu_new") && strcmp(act, "gelu_pytorch_tanh"))
        return hn_errf(err, HN_EUNSUPPORTED, "%s: activation_function '%s' is not supported "
                       "(gelu_new is)", path, act);
    if (json_is_true(json_object_get(j, "scale_attn_by_inverse_layer_idx")) ||
        json_is_true(json_object_get(j, "reorder_and_upcast_attn")) ||
        json_is_false(json_object_get(j, "scale_attn_weights")))
        return hn_errf(err, HN_EUNSUPPORTED, "%s: GPT-2 attention scaling variants are not "
                       "supported", path);
    return HN_OK;
}

/* Llama, Mistral, Qwen2, Qwen3 share the config keys. */
static hn_status hf_llama_config(json_t *j, const char *mt, model_config *c, const char *path,
                                 hn_err *err) {
    c->arch = !strcmp(mt, "qwen2") ? ARCH_QWEN2 : !strcmp(mt, "qwen3") ? ARCH_QWEN3 : ARCH_LLAMA;
    c->dim = json_int(j, "hidden_size", 0);
    c->hidden_dim = json_int(j, "intermediate_size", 0);
    c->n_layers = json_int(j, "num_hidden_layers", 0);
    c->n_heads = json_int(j, "num_attention_heads", 0);
    c->n_kv_heads = json_int(j, "num_key_value_heads", c->n_heads);
    json_t *hd = json_object_get(j, "head_dim");
    c->head_dim = json_is_integer(hd) ? (int)json_integer_value(hd)
                                      : c->n_heads ? c->dim / c->n_heads : 0;
    c->vocab_size = json_int(j, "vocab_size", 0);
    c->max_seq_len = json_int(j, "max_position_embeddings", 2048);
    c->norm_eps = (float)json_num(j, "rms_norm_eps", 1e-6);
    c->rope_theta = (float)json_num(j, "rope_theta", 10000.0);
    c->tied_embeddings = json_is_true(json_object_get(j, "tie_word_embeddings"));
    const char *act = json_string_value(json_object_get(j, "hidden_act"));
    if (act && strcmp(act, "silu"))
        return hn_errf(err, HN_EUNSUPPORTED, "%s: hidden_act '%s' is not supported (silu is)",
                       path, act);
    if (c->arch != ARCH_QWEN2 && json_is_true(json_object_get(j, "attention_bias")))
        return hn_errf(err, HN_EUNSUPPORTED, "%s: attention_bias is not supported for %s", path, mt);
    if (json_is_true(json_object_get(j, "use_sliding_window")))
        return hn_errf(err, HN_EUNSUPPORTED, "%s: sliding-window attention is not supported", path);
    return hf_rope_scaling(j, c, path, err);
}

/* The shape and norm keys must be numbers (or null) where present: a quoted
 * "64" would otherwise read as missing and give a vaguer error later. */
static hn_status hf_check_types(json_t *j, const char *path, hn_err *err) {
    static const char *ints[] = {"hidden_size", "intermediate_size", "num_hidden_layers",
                                 "num_attention_heads", "num_key_value_heads", "head_dim",
                                 "vocab_size", "max_position_embeddings", "n_embd", "n_layer",
                                 "n_head", "n_inner", "n_positions"};
    static const char *nums[] = {"rms_norm_eps", "rope_theta", "layer_norm_epsilon"};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        json_t *v = json_object_get(j, ints[i]);
        if (v && !json_is_integer(v) && !json_is_null(v))
            return hn_errf(err, HN_EFORMAT, "%s: %s: expected an integer", path, ints[i]);
    }
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) {
        json_t *v = json_object_get(j, nums[i]);
        if (v && !json_is_number(v))
            return hn_errf(err, HN_EFORMAT, "%s: %s: expected a number", path, nums[i]);
    }
    return HN_OK;
}

static hn_status hf_family_config(json_t *j, const char *mt, model_config *c, const char *path,
                                  hn_err *err) {
    if (!strcmp(mt, "gpt2")) return hf_gpt2_config(j, c, path, err);
    if (!strcmp(mt, "llama") || !strcmp(mt, "mistral") || !strcmp(mt, "qwen2") ||
        !strcmp(mt, "qwen3"))
        return hf_llama_config(j, mt, c, path, err);
    return hn_errf(err, HN_EUNSUPPORTED, "%s: model_type '%s' is not supported (llama, mistral, "
                   "qwen2, qwen3 and gpt2 are)", path, mt);
}

static hn_status hf_read_config(const char *dir, model_config *c, hn_err *err) {
    char path[4096];
    hn_path_join(path, sizeof path, dir, "config.json");
    json_t *j;
    hn_status s = load_json(path, &j, err);
    if (s != HN_OK) return s;
    const char *mt = json_string_value(json_object_get(j, "model_type"));
    s = mt ? hf_check_types(j, path, err) : hn_errf(err, HN_EFORMAT, "%s: no model_type", path);
    if (s == HN_OK) s = hf_family_config(j, mt, c, path, err);
    json_decref(j);
    return s;
}

static hn_status hf_load_weights(hn_model *m, const char *dir, hn_err *err) {
    st_model *st;
    hn_status s = st_open(dir, &st, err);
    if (s != HN_OK) return s;
    for (int i = 0; s == HN_OK && i < m->n_param_tensors; i++) {
        const model_param *p = &m->params[i];
        const st_tensor *t = st_find(st, p->name);
        /* GPT2Model checkpoints (the hub's gpt2) have no "transformer." prefix */
        if (!t && !strncmp(p->name, "transformer.", 12)) t = st_find(st, p->name + 12);
        if (!t) {
            s = hn_errf(err, HN_EFORMAT, "%s: missing tensor '%s'", dir, p->name);
            break;
        }
        bool ok = t->n_dims == p->n_dims && t->shape[0] == p->shape[0] &&
                  (p->n_dims == 1 || t->shape[1] == p->shape[1]);
        if (!ok)
            s = hn_errf(err, HN_EFORMAT, "%s: tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]",
                        dir, p->name, (long long)t->shape[0],
                        (long long)(t->n_dims > 1 ? t->shape[1] : 0), (long long)p->shape[0],
                        (long long)p->shape[1]);
        else
            s = st_tensor_to_f32(t, p->data, err);
    }
    st_close(st);
    return s;
}

/* tokenizer_config.json "chat_template": a string, or a list of {name,
 * template} of which "default" is the one; newer transformers save it as
 * chat_template.jinja instead. */
char *model_hf_chat_template(const char *dir) {
    char path[4096], *r = NULL;
    size_t len;
    hn_path_join(path, sizeof path, dir, "tokenizer_config.json");
    json_t *j = json_load_file(path, 0, NULL), *ct = json_object_get(j, "chat_template"), *e;
    size_t i;
    const char *t = json_string_value(ct);
    json_array_foreach(ct, i, e) {
        const char *name = json_string_value(json_object_get(e, "name"));
        if (name && !strcmp(name, "default")) t = json_string_value(json_object_get(e, "template"));
    }
    r = t ? strdup(t) : NULL;
    json_decref(j);
    hn_path_join(path, sizeof path, dir, "chat_template.jinja");
    if (!r && hn_path_exists(path) && hn_file_read(path, 0, &r, &len, NULL) != HN_OK) r = NULL;
    return r;
}

/* tokenizer.json, else GPT-2's vocab.json + merges.txt (HN_ENOTFOUND if neither). */
static hn_status hf_load_tok(const char *dir, tok **out, hn_err *err) {
    return tok_from_hf_dir(dir, out, err);
}

static hn_status load_hf(hn_model *m, const char *dir, unsigned flags, hn_err *err) {
    hn_status s = hf_read_config(dir, &m->cfg, err);
    if (s == HN_OK) s = check_config(&m->cfg, dir, err);
    if (s == HN_OK) s = hf_load_tok(dir, &m->tok, err);
    if (s == HN_ENOTFOUND && (flags & MODEL_LOAD_TOKENIZER_OPTIONAL)) s = HN_OK;
    if (s == HN_OK) s = model_build_params(m, err);
    if (s == HN_OK) s = hf_load_weights(m, dir, err);
    if (s == HN_OK) s = model_rope_freqs_init(m, err);
    if (s == HN_OK) m->chat_template = model_hf_chat_template(dir);
    return s;
}

/* ---- public ---- */

static void set_name(hn_model *m, const char *path) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    size_t n = strlen(tmp);
    while (n > 1 && tmp[n - 1] == '/') tmp[--n] = 0;
    snprintf(m->cfg.name, sizeof m->cfg.name, "%s", basename(tmp));
    snprintf(m->path, sizeof m->path, "%s", path);
}

hn_status model_load(const char *path, hn_model **out, hn_err *err) {
    return model_load_ex(path, 0, out, err);
}

hn_status model_load_ex(const char *path, unsigned flags, hn_model **out, hn_err *err) {
    *out = NULL;
    hn_model *m = calloc(1, sizeof *m);
    if (!m) return hn_errf(err, HN_ENOMEM, "out of memory");
    hn_status s;
    if (hn_path_is_dir(path)) s = load_hf(m, path, flags, err);
    else if (hn_path_exists(path)) s = load_gguf(m, path, err);
    else s = hn_errf(err, HN_ENOTFOUND, "%s: no such model file or directory", path);
    if (s == HN_OK && m->tok && tok_vocab_size(m->tok) > m->cfg.vocab_size)
        s = hn_errf(err, HN_EFORMAT, "%s: tokenizer has %d tokens but the model only %d", path,
                    tok_vocab_size(m->tok), m->cfg.vocab_size);
    if (s != HN_OK) {
        model_free(m);
        return s;
    }
    set_name(m, path);
    *out = m;
    return HN_OK;
}

hn_status model_set_q8_0(hn_model *m, bool on, hn_err *err) {
    if (on && !m->q8_0 && !gemm_q8_weights_add(m->slab, m->n_params))
        return hn_errf(err, HN_ENOMEM, "too many models in q8_0 at once");
    if (!on && m->q8_0) gemm_q8_weights_remove(m->slab);
    m->q8_0 = on;
    return HN_OK;
}

void model_free(hn_model *m) {
    if (!m) return;
    if (m->tok) tok_free(m->tok);
    if (m->q8_0) gemm_q8_weights_remove(m->slab);
    gemm_weight_cache_clear(); /* no stale bf16/Q8_0 copy may outlive these weights */
    free(m->slab);
    free(m->params);
    free(m->w.layers);
    free(m->chat_template);
    free(m->rope_freqs);
    free(m->chat_template_vars);
    free(m);
}

hn_status model_load_tokenizer(const char *path, tok **out, int *max_seq_len,
                               char **chat_template, hn_err *err) {
    *out = NULL;
    if (chat_template) *chat_template = NULL;
    model_config c = {0};
    hn_status s;
    if (hn_path_is_dir(path)) {
        s = hf_read_config(path, &c, err);
        if (s == HN_OK) s = hf_load_tok(path, out, err);
        if (s == HN_OK && chat_template) *chat_template = model_hf_chat_template(path);
    } else {
        gguf_file *f;
        s = gguf_open(path, &f, err);
        if (s != HN_OK) return s;
        s = gguf_read_config(f, &c, err);
        if (s == HN_OK) s = tok_from_gguf(f, out, err);
        if (s == HN_OK && chat_template) *chat_template = gguf_chat_template(f);
        gguf_close(f);
    }
    if (max_seq_len) *max_seq_len = c.max_seq_len;
    return s;
}
