/* model.c — loading checkpoints into hn_model: configuration from GGUF
 * metadata or config.json, weights converted to one f32 slab in HF layout
 * (GGUF q/k rows un-permuted from adjacent-pair to rotate-half order), the
 * tokenizer and the chat template. */
#include "model/model.h"

#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "format/gguf.h"
#include "format/safetensors.h"

static hn_status check_config(const model_config *c, const char *path, hn_err *err);

/* ---- parameter table (HF names, shapes) ---- */

static void add_param(hn_model *m, const char *name, int64_t d0, int64_t d1) {
    model_param *p = &m->params[m->n_param_tensors++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->n_dims = d1 ? 2 : 1;
    p->shape[0] = d0;
    p->shape[1] = d1;
    p->numel = (size_t)d0 * (size_t)(d1 ? d1 : 1);
}

static hn_status build_params(hn_model *m, hn_err *err) {
    const model_config *c = &m->cfg;
    int L = c->n_layers, D = c->dim, F = c->hidden_dim;
    int qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    m->params = calloc((size_t)L * 9 + 3, sizeof *m->params);
    m->w.layers = calloc((size_t)L, sizeof *m->w.layers);
    if (!m->params || !m->w.layers) return hn_errf(err, HN_ENOMEM, "out of memory");
    char name[96];
    add_param(m, "model.embed_tokens.weight", c->vocab_size, D);
    static const char *fmt[9] = {
        "model.layers.%d.input_layernorm.weight",   "model.layers.%d.self_attn.q_proj.weight",
        "model.layers.%d.self_attn.k_proj.weight",  "model.layers.%d.self_attn.v_proj.weight",
        "model.layers.%d.self_attn.o_proj.weight",  "model.layers.%d.post_attention_layernorm.weight",
        "model.layers.%d.mlp.gate_proj.weight",     "model.layers.%d.mlp.up_proj.weight",
        "model.layers.%d.mlp.down_proj.weight"};
    const int64_t shp[9][2] = {{D, 0}, {qd, D}, {kvd, D}, {kvd, D}, {D, qd},
                               {D, 0}, {F, D},  {F, D},   {D, F}};
    for (int l = 0; l < L; l++)
        for (int j = 0; j < 9; j++) {
            snprintf(name, sizeof name, fmt[j], l);
            add_param(m, name, shp[j][0], shp[j][1]);
        }
    add_param(m, "model.norm.weight", D, 0);
    if (!c->tied_embeddings) add_param(m, "lm_head.weight", c->vocab_size, D);
    size_t total = 0;
    for (int i = 0; i < m->n_param_tensors; i++) total += m->params[i].numel;
    m->slab = malloc(total * sizeof(float));
    if (!m->slab) return hn_errf(err, HN_ENOMEM, "out of memory for %zu parameters", total);
    m->n_params = total;
    float *p = m->slab;
    for (int i = 0; i < m->n_param_tensors; i++) {
        m->params[i].data = p;
        p += m->params[i].numel;
    }
    int k = 0;
    m->w.tok_emb = m->params[k++].data;
    for (int l = 0; l < L; l++) {
        layer_weights *lw = &m->w.layers[l];
        float **dst[9] = {&lw->attn_norm, &lw->wq, &lw->wk, &lw->wv, &lw->wo,
                          &lw->ffn_norm, &lw->w_gate, &lw->w_up, &lw->w_down};
        for (int j = 0; j < 9; j++) *dst[j] = m->params[k++].data;
    }
    m->w.final_norm = m->params[k++].data;
    m->w.lm_head = c->tied_embeddings ? m->w.tok_emb : m->params[k++].data;
    return HN_OK;
}

hn_status model_alloc(const model_config *cfg, hn_model **out, hn_err *err) {
    *out = NULL;
    hn_status s = check_config(cfg, cfg->name[0] ? cfg->name : "model", err);
    if (s != HN_OK) return s;
    hn_model *m = calloc(1, sizeof *m);
    if (!m) return hn_errf(err, HN_ENOMEM, "out of memory");
    m->cfg = *cfg;
    s = build_params(m, err);
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

static hn_status gguf_read_config(const gguf_file *f, model_config *c, hn_err *err) {
    gguf_str a;
    if (gguf_get_str(f, "general.architecture", &a, err) != HN_OK)
        return hn_errf(err, HN_EFORMAT, "%s: missing general.architecture", gguf_path(f));
    char arch[64];
    snprintf(arch, sizeof arch, "%.*s", (int)(a.len < 63 ? a.len : 63), a.p);
    if (strcmp(arch, "llama"))
        return hn_errf(err, HN_EUNSUPPORTED, "%s: architecture '%s' is not supported yet (llama is)",
                       gguf_path(f), arch);
    c->arch = ARCH_LLAMA;
    c->dim = (int)gguf_int_or(f, arch, "embedding_length", 0);
    c->hidden_dim = (int)gguf_int_or(f, arch, "feed_forward_length", 0);
    c->n_layers = (int)gguf_int_or(f, arch, "block_count", 0);
    c->n_heads = (int)gguf_int_or(f, arch, "attention.head_count", 0);
    c->n_kv_heads = (int)gguf_int_or(f, arch, "attention.head_count_kv", c->n_heads);
    c->head_dim = (int)gguf_int_or(f, arch, "attention.key_length",
                                   c->n_heads ? c->dim / c->n_heads : 0);
    c->max_seq_len = (int)gguf_int_or(f, arch, "context_length", 2048);
    c->norm_eps = (float)gguf_float_or(f, arch, "attention.layer_norm_rms_epsilon", 1e-5);
    c->rope_theta = (float)gguf_float_or(f, arch, "rope.freq_base", 10000.0);
    const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    if (!emb || emb->n_dims != 2)
        return hn_errf(err, HN_EFORMAT, "%s: missing tensor token_embd.weight", gguf_path(f));
    c->vocab_size = (int)emb->ne[1];
    c->tied_embeddings = gguf_find_tensor(f, "output.weight") == NULL;
    return HN_OK;
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

/* GGUF stores q/k rows per head in adjacent-pair order; HF's rotate-half order
 * has row j <- 2j and row hd/2+j <- 2j+1 within each head. */
static hn_status unpermute_heads(float *w, int n_heads, int hd, int cols, hn_err *err) {
    size_t head = (size_t)hd * cols;
    float *tmp = malloc(head * sizeof(float));
    if (!tmp) return hn_errf(err, HN_ENOMEM, "out of memory");
    for (int h = 0; h < n_heads; h++) {
        float *base = w + h * head;
        for (int j = 0; j < hd / 2; j++) {
            memcpy(tmp + (size_t)j * cols, base + (size_t)(2 * j) * cols, cols * sizeof(float));
            memcpy(tmp + (size_t)(hd / 2 + j) * cols, base + (size_t)(2 * j + 1) * cols,
                   cols * sizeof(float));
        }
        memcpy(base, tmp, head * sizeof(float));
    }
    free(tmp);
    return HN_OK;
}

static hn_status gguf_load_weights(hn_model *m, const gguf_file *f, hn_err *err) {
    static const char *gname[9] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                   "ffn_norm",  "ffn_gate", "ffn_up", "ffn_down"};
    const model_config *c = &m->cfg;
    hn_status s = gguf_load_into(f, "token_embd.weight", m->w.tok_emb, c->vocab_size, c->dim, err);
    for (int l = 0; s == HN_OK && l < c->n_layers; l++)
        for (int j = 0; s == HN_OK && j < 9; j++) {
            const model_param *p = &m->params[1 + l * 9 + j];
            char name[96];
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, gname[j]);
            s = gguf_load_into(f, name, p->data, p->shape[0], p->shape[1], err);
            if (s == HN_OK && j == 1) s = unpermute_heads(p->data, c->n_heads, c->head_dim, c->dim, err);
            if (s == HN_OK && j == 2)
                s = unpermute_heads(p->data, c->n_kv_heads, c->head_dim, c->dim, err);
        }
    if (s == HN_OK) s = gguf_load_into(f, "output_norm.weight", m->w.final_norm, c->dim, 0, err);
    if (s == HN_OK && !c->tied_embeddings)
        s = gguf_load_into(f, "output.weight", m->w.lm_head, c->vocab_size, c->dim, err);
    return s;
}

static char *gguf_chat_template(const gguf_file *f) {
    gguf_str t;
    if (gguf_get_str(f, "tokenizer.chat_template", &t, NULL) != HN_OK) return NULL;
    return strndup(t.p, t.len);
}

static hn_status load_gguf(hn_model *m, const char *path, hn_err *err) {
    gguf_file *f;
    hn_status s = gguf_open(path, &f, err);
    if (s != HN_OK) return s;
    s = gguf_read_config(f, &m->cfg, err);
    if (s == HN_OK) s = check_config(&m->cfg, path, err);
    if (s == HN_OK) s = tok_from_gguf(f, &m->tok, err);
    if (s == HN_OK) s = build_params(m, err);
    if (s == HN_OK) s = gguf_load_weights(m, f, err);
    if (s == HN_OK) m->chat_template = gguf_chat_template(f);
    gguf_close(f);
    return s;
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

static hn_status hf_read_config(const char *dir, model_config *c, hn_err *err) {
    char path[4096];
    hn_path_join(path, sizeof path, dir, "config.json");
    json_t *j;
    hn_status s = load_json(path, &j, err);
    if (s != HN_OK) return s;
    const char *mt = json_string_value(json_object_get(j, "model_type"));
    if (!mt || (strcmp(mt, "llama") && strcmp(mt, "mistral"))) {
        s = hn_errf(err, HN_EUNSUPPORTED, "%s: model_type '%s' is not supported yet (llama is)",
                    path, mt ? mt : "(missing)");
        json_decref(j);
        return s;
    }
    c->arch = ARCH_LLAMA;
    c->dim = json_int(j, "hidden_size", 0);
    c->hidden_dim = json_int(j, "intermediate_size", 0);
    c->n_layers = json_int(j, "num_hidden_layers", 0);
    c->n_heads = json_int(j, "num_attention_heads", 0);
    c->n_kv_heads = json_int(j, "num_key_value_heads", c->n_heads);
    c->head_dim = json_int(j, "head_dim", c->n_heads ? c->dim / c->n_heads : 0);
    c->vocab_size = json_int(j, "vocab_size", 0);
    c->max_seq_len = json_int(j, "max_position_embeddings", 2048);
    c->norm_eps = (float)json_num(j, "rms_norm_eps", 1e-6);
    c->rope_theta = (float)json_num(j, "rope_theta", 10000.0);
    c->tied_embeddings = json_is_true(json_object_get(j, "tie_word_embeddings"));
    json_t *rs = json_object_get(j, "rope_scaling");
    if (rs && !json_is_null(rs))
        s = hn_errf(err, HN_EUNSUPPORTED, "%s: rope_scaling is not supported yet", path);
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
static char *hf_chat_template(const char *dir) {
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

static hn_status hf_load_tok(const char *dir, tok **out, hn_err *err) {
    char path[4096];
    hn_path_join(path, sizeof path, dir, "tokenizer.json");
    if (!hn_path_exists(path))
        return hn_errf(err, HN_ENOTFOUND, "%s: no tokenizer.json in the model directory", dir);
    return tok_from_hf_json(path, out, err);
}

static hn_status load_hf(hn_model *m, const char *dir, hn_err *err) {
    hn_status s = hf_read_config(dir, &m->cfg, err);
    if (s == HN_OK) s = check_config(&m->cfg, dir, err);
    if (s == HN_OK) s = hf_load_tok(dir, &m->tok, err);
    if (s == HN_OK) s = build_params(m, err);
    if (s == HN_OK) s = hf_load_weights(m, dir, err);
    if (s == HN_OK) m->chat_template = hf_chat_template(dir);
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
    *out = NULL;
    hn_model *m = calloc(1, sizeof *m);
    if (!m) return hn_errf(err, HN_ENOMEM, "out of memory");
    hn_status s;
    if (hn_path_is_dir(path)) s = load_hf(m, path, err);
    else if (hn_path_exists(path)) s = load_gguf(m, path, err);
    else s = hn_errf(err, HN_ENOTFOUND, "%s: no such model file or directory", path);
    if (s == HN_OK && tok_vocab_size(m->tok) > m->cfg.vocab_size)
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

void model_free(hn_model *m) {
    if (!m) return;
    if (m->tok) tok_free(m->tok);
    free(m->slab);
    free(m->params);
    free(m->w.layers);
    free(m->chat_template);
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
        if (s == HN_OK && chat_template) *chat_template = hf_chat_template(path);
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
