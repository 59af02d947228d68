/* lora.c — LoRA adapter sets: creation (PEFT initialisation), PEFT-layout
 * save/load, and merging into base weights for inference. */
#include "model/lora.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "format/safetensors.h"

static const char *target_names[LORA_N_TARGETS] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                    "gate_proj", "up_proj", "down_proj", "qkv_proj"};
static const char *target_short[LORA_N_TARGETS] = {"q", "k", "v", "o", "gate", "up", "down", "qkv"};
/* GPT-2 module paths below transformer.h.N (PEFT target_modules match suffixes) */
static const char *gpt2_names[LORA_N_TARGETS] = {NULL, NULL, NULL, "attn.c_proj", NULL,
                                                  "mlp.c_fc", "mlp.c_proj", "attn.c_attn"};

unsigned lora_arch_targets(model_arch a) {
    if (a == ARCH_GPT2) return 1u << LORA_QKV | 1u << LORA_O | 1u << LORA_UP | 1u << LORA_DOWN;
    return LORA_ALL & ~(1u << LORA_QKV);
}

const char *lora_target_name(model_arch a, int t) {
    if (t < 0 || t >= LORA_N_TARGETS) return "?";
    if (a == ARCH_GPT2) return gpt2_names[t] ? gpt2_names[t] : "?";
    return target_names[t];
}

/* One name -> mask (0 if unknown). */
static unsigned parse_one(const char *s) {
    static const struct { const char *name; unsigned mask; } gpt2[] = {
        {"c_attn", 1u << LORA_QKV},     {"attn.c_attn", 1u << LORA_QKV},
        {"c_fc", 1u << LORA_UP},        {"mlp.c_fc", 1u << LORA_UP},
        {"attn.c_proj", 1u << LORA_O},  {"mlp.c_proj", 1u << LORA_DOWN},
        {"c_proj", 1u << LORA_O | 1u << LORA_DOWN}};
    for (int t = 0; t < LORA_N_TARGETS; t++)
        if (!strcmp(s, target_names[t]) || !strcmp(s, target_short[t])) return 1u << t;
    for (size_t i = 0; i < sizeof gpt2 / sizeof *gpt2; i++)
        if (!strcmp(s, gpt2[i].name)) return gpt2[i].mask;
    return 0;
}

hn_status lora_parse_targets(const char *s, unsigned *mask, hn_err *err) {
    *mask = 0;
    if (!s || !*s || !strcmp(s, "all") || !strcmp(s, "all-linear")) {
        *mask = LORA_ALL;
        return HN_OK;
    }
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tokn = strtok_r(buf, ",", &save); tokn;
         tokn = strtok_r(NULL, ",", &save)) {
        unsigned one = parse_one(tokn);
        if (!one)
            return hn_errf(err, HN_EINVAL, "unknown LoRA target '%s' (use q,k,v,o,gate,up,down "
                           "or all; for GPT-2 c_attn,c_proj,c_fc)", tokn);
        *mask |= one;
    }
    return HN_OK;
}

static void target_shape(const hn_model *m, int t, int *out, int *in) {
    const model_config *c = &m->cfg;
    int qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    const int shapes[LORA_N_TARGETS][2] = {{qd, c->dim}, {kvd, c->dim}, {kvd, c->dim},
                                           {c->dim, qd}, {c->hidden_dim, c->dim},
                                           {c->hidden_dim, c->dim}, {c->dim, c->hidden_dim},
                                           {qd + 2 * kvd, c->dim}};
    *out = shapes[t][0];
    *in = shapes[t][1];
}

static bool model_tied(const hn_model *m) { return m->w.lm_head == m->w.tok_emb; }

/* Token rows: ids copied, deltas after the A/B pairs at p. */
static hn_status check_token_ids(const hn_model *m, const int32_t *ids, int n, hn_err *err) {
    if (n < 0 || n > 1024) return hn_errf(err, HN_EINVAL, "%d trainable token rows (at most 1024)", n);
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab_size)
            return hn_errf(err, HN_EINVAL, "trainable token id %d out of range (vocabulary %d)",
                           ids[i], m->cfg.vocab_size);
        for (int j = 0; j < i; j++)
            if (ids[j] == ids[i])
                return hn_errf(err, HN_EINVAL, "trainable token id %d given twice", ids[i]);
    }
    return HN_OK;
}

static hn_status lora_alloc(const hn_model *m, int rank, float alpha, unsigned targets,
                            const int32_t *tok_ids, int n_tok, lora_set **out, hn_err *err) {
    if (rank <= 0 || rank > 4096) return hn_errf(err, HN_EINVAL, "LoRA rank %d out of range", rank);
    hn_status st = check_token_ids(m, tok_ids, n_tok, err);
    if (st != HN_OK) return st;
    targets &= lora_arch_targets(m->cfg.arch);
    if (!targets)
        return hn_errf(err, HN_EINVAL, "none of the LoRA target modules exists in a %s model",
                       model_arch_name(m->cfg.arch));
    lora_set *l = calloc(1, sizeof *l);
    int L = m->cfg.n_layers;
    if (l) l->pairs = calloc((size_t)L, sizeof *l->pairs);
    if (!l || !l->pairs) {
        free(l);
        return hn_errf(err, HN_ENOMEM, "out of memory");
    }
    l->rank = rank;
    l->alpha = alpha;
    l->scale = alpha / rank;
    l->targets = targets;
    l->n_layers = L;
    size_t total = 0;
    for (int t = 0; t < LORA_N_TARGETS; t++) {
        if (!(targets >> t & 1)) continue;
        int o, i;
        target_shape(m, t, &o, &i);
        total += (size_t)L * rank * (size_t)(o + i);
    }
    size_t tok_floats = (size_t)n_tok * m->cfg.dim;
    total += tok_floats * (model_tied(m) ? 1 : 2);
    l->slab = calloc(total ? total : 1, sizeof(float));
    l->tok_ids = calloc(n_tok ? (size_t)n_tok : 1, sizeof *l->tok_ids);
    if (!l->slab || !l->tok_ids) {
        lora_free(l);
        return hn_errf(err, HN_ENOMEM, "out of memory for LoRA parameters");
    }
    l->n_params = total;
    float *p = l->slab;
    /* layer-major, then target, A before B: the PEFT tensor order */
    for (int layer = 0; layer < L; layer++)
        for (int t = 0; t < LORA_N_TARGETS; t++) {
            if (!(targets >> t & 1)) continue;
            lora_pair *lp = &l->pairs[layer][t];
            target_shape(m, t, &lp->out, &lp->in);
            lp->A = p;
            p += (size_t)rank * lp->in;
            lp->B = p;
            p += (size_t)lp->out * rank;
        }
    l->n_tok = n_tok;
    if (n_tok) {
        memcpy(l->tok_ids, tok_ids, sizeof *tok_ids * (size_t)n_tok);
        l->tok_emb = p;
        l->tok_head = model_tied(m) ? NULL : p + tok_floats;
    }
    *out = l;
    return HN_OK;
}

hn_status lora_create(const hn_model *m, int rank, float alpha, unsigned targets, hn_rng *rng,
                      lora_set **out, hn_err *err) {
    return lora_create_ex(m, rank, alpha, targets, NULL, 0, rng, out, err);
}

hn_status lora_create_ex(const hn_model *m, int rank, float alpha, unsigned targets,
                         const int32_t *tok_ids, int n_tok, hn_rng *rng, lora_set **out,
                         hn_err *err) {
    hn_status s = lora_alloc(m, rank, alpha, targets, tok_ids, n_tok, out, err);
    if (s != HN_OK || !rng) return s;
    lora_set *l = *out;
    for (int layer = 0; layer < l->n_layers; layer++)
        for (int t = 0; t < LORA_N_TARGETS; t++) {
            lora_pair *lp = &l->pairs[layer][t];
            if (!lp->A) continue;
            float bound = 1.0f / sqrtf((float)lp->in);
            for (size_t i = 0; i < (size_t)rank * lp->in; i++)
                lp->A[i] = (2.0f * hn_rng_uniform(rng) - 1.0f) * bound;
        }
    return HN_OK;
}

int lora_token_index(const lora_set *l, int id) {
    for (int k = 0; l && k < l->n_tok; k++)
        if (l->tok_ids[k] == id) return k;
    return -1;
}

void lora_free(lora_set *l) {
    if (!l) return;
    free(l->slab);
    free(l->tok_ids);
    free(l->pairs);
    free(l);
}

static const char *module_of(int t) { return t <= LORA_O ? "self_attn" : "mlp"; }

void lora_tensor_name(model_arch a, char *out, size_t cap, int layer, int t, bool is_b) {
    if (a == ARCH_GPT2)
        snprintf(out, cap, "base_model.model.transformer.h.%d.%s.lora_%c.weight", layer,
                 lora_target_name(a, t), is_b ? 'B' : 'A');
    else
        snprintf(out, cap, "base_model.model.model.layers.%d.%s.%s.lora_%c.weight", layer,
                 module_of(t), target_names[t], is_b ? 'B' : 'A');
}

/* PEFT's names of the token-row tensors: the input embedding, and lm_head. */
static const char *token_tensor_name(model_arch a, bool head) {
    if (head) return "base_model.model.lm_head.token_adapter.trainable_tokens_delta";
    return a == ARCH_GPT2 ? "base_model.model.transformer.wte.token_adapter.trainable_tokens_delta"
                          : "base_model.model.model.embed_tokens.token_adapter.trainable_tokens_delta";
}

static json_t *ids_json(const lora_set *l) {
    json_t *a = json_array();
    for (int k = 0; k < l->n_tok; k++) json_array_append_new(a, json_integer(l->tok_ids[k]));
    return a;
}

/* A list targets the input embedding (PEFT ties lm_head to it when the model
 * is tied); an untied model names both modules. */
static json_t *token_indices_json(const lora_set *l, const hn_model *m) {
    if (!l->tok_head) return ids_json(l);
    json_t *d = json_object();
    json_object_set_new(d, m->cfg.arch == ARCH_GPT2 ? "wte" : "embed_tokens", ids_json(l));
    json_object_set_new(d, "lm_head", ids_json(l));
    return d;
}

static hn_status write_config(const lora_set *l, const hn_model *m, const char *dir,
                              hn_err *err) {
    json_t *j = json_object(), *tm = json_array();
    for (int t = 0; t < LORA_N_TARGETS; t++)
        if (l->targets >> t & 1)
            json_array_append_new(tm, json_string(lora_target_name(m->cfg.arch, t)));
    json_object_set_new(j, "peft_type", json_string("LORA"));
    json_object_set_new(j, "task_type", json_string("CAUSAL_LM"));
    json_object_set_new(j, "r", json_integer(l->rank));
    json_object_set_new(j, "lora_alpha", json_real(l->alpha));
    json_object_set_new(j, "lora_dropout", json_real(l->dropout));
    json_object_set_new(j, "bias", json_string("none"));
    /* PEFT's flag for Conv1D (in, out) base weights; A and B keep their shapes */
    json_object_set_new(j, "fan_in_fan_out", json_boolean(model_arch_traits(m->cfg.arch).conv1d));
    json_object_set_new(j, "target_modules", tm);
    json_object_set_new(j, "base_model_name_or_path", json_string(m->cfg.name));
    if (l->n_tok) json_object_set_new(j, "trainable_token_indices", token_indices_json(l, m));
    char hash[32];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)model_weights_hash(m));
    json_object_set_new(j, "hone_base_weights_hash", json_string(hash));
    char *txt = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    char path[4096];
    hn_path_join(path, sizeof path, dir, "adapter_config.json");
    const void *parts[] = {txt};
    size_t lens[] = {strlen(txt)};
    hn_status s = hn_file_write_atomic(path, parts, lens, 1, err);
    free(txt);
    return s;
}

/* rows (n_tok, dim) = base rows of W +/- the deltas (sign +1 to save, -1 to load). */
static void token_rows(const lora_set *l, const hn_model *m, const float *W, const float *src,
                       float *dst, float sign) {
    int D = m->cfg.dim;
    for (int k = 0; k < l->n_tok; k++) {
        const float *base = W + (size_t)l->tok_ids[k] * D;
        for (int i = 0; i < D; i++)
            dst[(size_t)k * D + i] = sign > 0 ? base[i] + src[(size_t)k * D + i]
                                              : src[(size_t)k * D + i] - base[i];
    }
}

hn_status lora_save(const lora_set *l, const hn_model *m, const char *dir, hn_err *err) {
    hn_status s = hn_mkdirs(dir, err);
    if (s != HN_OK) return s;
    size_t n = 0, cap = (size_t)l->n_layers * LORA_N_TARGETS * 2 + 2;
    size_t tok_floats = (size_t)l->n_tok * m->cfg.dim;
    st_wtensor *ts = calloc(cap, sizeof *ts);
    char (*names)[128] = calloc(cap, sizeof *names);
    float *rows = malloc(sizeof(float) * (2 * tok_floats + 1));
    if (!ts || !names || !rows) {
        free(ts);
        free(names);
        free(rows);
        return hn_errf(err, HN_ENOMEM, "out of memory");
    }
    for (int layer = 0; layer < l->n_layers; layer++)
        for (int t = 0; t < LORA_N_TARGETS; t++) {
            const lora_pair *lp = &l->pairs[layer][t];
            if (!lp->A) continue;
            for (int b = 0; b < 2; b++) {
                lora_tensor_name(m->cfg.arch, names[n], sizeof names[n], layer, t, b);
                ts[n] = (st_wtensor){names[n], ST_F32, 2,
                                     {b ? lp->out : l->rank, b ? l->rank : lp->in},
                                     b ? lp->B : lp->A};
                n++;
            }
        }
    for (int head = 0; l->n_tok && head < 2; head++) {
        if (head && !l->tok_head) break;
        float *dst = rows + head * tok_floats;
        token_rows(l, m, head ? m->w.lm_head : m->w.tok_emb, head ? l->tok_head : l->tok_emb, dst,
                   1.0f);
        ts[n++] = (st_wtensor){token_tensor_name(m->cfg.arch, head), ST_F32, 2,
                               {l->n_tok, m->cfg.dim}, dst};
    }
    char path[4096];
    hn_path_join(path, sizeof path, dir, "adapter_model.safetensors");
    const char *meta[] = {"format", "pt", NULL};
    s = st_write(path, ts, n, meta, err);
    free(ts);
    free(names);
    free(rows);
    return s == HN_OK ? write_config(l, m, dir, err) : s;
}

/* An adapter made by hone names the weights it was trained on; PEFT adapters
 * from elsewhere carry no hash and are checked by tensor shapes only. */
static hn_status check_base(const hn_model *m, json_t *j, const char *path, hn_err *err) {
    const char *want = json_string_value(json_object_get(j, "hone_base_weights_hash"));
    if (!want) return HN_OK;
    char have[32];
    snprintf(have, sizeof have, "%016llx", (unsigned long long)model_weights_hash(m));
    if (!strcmp(want, have)) return HN_OK;
    const char *base = json_string_value(json_object_get(j, "base_model_name_or_path"));
    return hn_errf(err, HN_EINVAL, "%s: this adapter was trained on a different base model "
                   "('%s', weights hash %s); %s has weights hash %s", path, base ? base : "?",
                   want, m->cfg.name, have);
}

typedef struct adapter_cfg {
    int rank;
    float alpha;
    unsigned targets;
    int32_t ids[1024];
    int n_ids;
} adapter_cfg;

/* An id list of trainable_token_indices into c->ids (the first one read) or
 * compared with it (a second module must train the same rows). */
static hn_status read_ids(json_t *a, adapter_cfg *c, bool first, const char *path, hn_err *err) {
    size_t n = json_array_size(a);
    if (!json_is_array(a) || n > 1024 || (!first && (int)n != c->n_ids))
        return hn_errf(err, HN_EFORMAT, "%s: trainable_token_indices must be a list of token ids "
                       "(the same for every module)", path);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_integer(v) || (!first && json_integer_value(v) != c->ids[i]))
            return hn_errf(err, HN_EFORMAT, "%s: trainable_token_indices must be a list of token "
                           "ids (the same for every module)", path);
        c->ids[i] = (int32_t)json_integer_value(v);
    }
    c->n_ids = (int)n;
    return HN_OK;
}

/* A list, or {"embed_tokens"|"wte"|"lm_head": list, ...} (PEFT's two forms). */
static hn_status read_token_indices(json_t *j, adapter_cfg *c, const char *path, hn_err *err) {
    json_t *ti = json_object_get(j, "trainable_token_indices");
    c->n_ids = 0;
    if (!ti || json_is_null(ti)) return HN_OK;
    if (json_is_array(ti)) return read_ids(ti, c, true, path, err);
    if (!json_is_object(ti))
        return hn_errf(err, HN_EFORMAT, "%s: trainable_token_indices is neither a list nor an "
                       "object", path);
    const char *key;
    json_t *v;
    bool first = true;
    json_object_foreach(ti, key, v) {
        hn_status s = read_ids(v, c, first, path, err);
        if (s != HN_OK) return s;
        first = false;
    }
    return HN_OK;
}

static hn_status read_config(const hn_model *m, const char *dir, adapter_cfg *c, hn_err *err) {
    char path[4096];
    hn_path_join(path, sizeof path, dir, "adapter_config.json");
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) return hn_errf(err, HN_EFORMAT, "%s:%d: %s", path, je.line, je.text);
    json_t *r = json_object_get(j, "r"), *a = json_object_get(j, "lora_alpha");
    json_t *tm = json_object_get(j, "target_modules");
    hn_status s = HN_OK;
    if (!json_is_integer(r) || !json_is_number(a) || !json_is_array(tm))
        s = hn_errf(err, HN_EFORMAT, "%s: needs integer r, number lora_alpha, target_modules list", path);
    c->targets = 0;
    for (size_t i = 0; s == HN_OK && i < json_array_size(tm); i++) {
        unsigned one;
        s = lora_parse_targets(json_string_value(json_array_get(tm, i)), &one, err);
        if (s != HN_OK) hn_err_prefix(err, "%s: target_modules", path);
        c->targets |= one;
    }
    if (s == HN_OK) s = read_token_indices(j, c, path, err);
    if (s == HN_OK) s = check_base(m, j, path, err);
    if (s == HN_OK) {
        c->rank = (int)json_integer_value(r);
        c->alpha = (float)json_number_value(a);
    }
    json_decref(j);
    return s;
}

static hn_status load_pairs(lora_set *l, const hn_model *m, const st_model *st, const char *path,
                            hn_err *err) {
    hn_status s = HN_OK;
    int rank = l->rank;
    for (int layer = 0; s == HN_OK && layer < l->n_layers; layer++)
        for (int t = 0; s == HN_OK && t < LORA_N_TARGETS; t++) {
            lora_pair *lp = &l->pairs[layer][t];
            for (int b = 0; lp->A && s == HN_OK && b < 2; b++) {
                char name[128];
                lora_tensor_name(m->cfg.arch, name, sizeof name, layer, t, b);
                const st_tensor *ten = st_find(st, name);
                uint64_t want = (uint64_t)rank * (b ? lp->out : lp->in);
                if (!ten || ten->n_elems != want || ten->n_dims != 2)
                    s = hn_errf(err, HN_EFORMAT, "%s: tensor '%s' missing or not %d x %d (adapter "
                                "made for a different base model?)", path, name,
                                b ? lp->out : rank, b ? rank : lp->in);
                else
                    s = st_tensor_to_f32(ten, b ? lp->B : lp->A, err);
            }
        }
    return s;
}

/* Token rows on disk are new rows: delta = row - base row. A module without
 * its tensor keeps zero deltas (a PEFT list on an untied model trains only
 * the embedding), but one of them must be there. */
static hn_status load_tokens(lora_set *l, const hn_model *m, const st_model *st, const char *path,
                             hn_err *err) {
    size_t n = (size_t)l->n_tok * m->cfg.dim;
    float *rows = malloc(sizeof(float) * (n + 1));
    if (!rows) return hn_errf(err, HN_ENOMEM, "out of memory");
    hn_status s = HN_OK;
    int found = 0;
    for (int head = 0; s == HN_OK && head < 2; head++) {
        float *dst = head ? (l->tok_head ? l->tok_head : l->tok_emb) : l->tok_emb;
        const char *name = token_tensor_name(m->cfg.arch, head);
        const st_tensor *ten = st_find(st, name);
        if (!ten) continue;
        if (found && dst == l->tok_emb) break; /* tied: the embedding tensor serves both */
        if (ten->n_elems != n)
            s = hn_errf(err, HN_EFORMAT, "%s: tensor '%s' is not %d x %d", path, name, l->n_tok,
                        m->cfg.dim);
        else
            s = st_tensor_to_f32(ten, rows, err);
        if (s == HN_OK)
            token_rows(l, m, dst == l->tok_head ? m->w.lm_head : m->w.tok_emb, rows, dst, -1.0f);
        found++;
    }
    free(rows);
    if (s == HN_OK && !found)
        s = hn_errf(err, HN_EFORMAT, "%s: trainable_token_indices given but no "
                    "token_adapter.trainable_tokens_delta tensor", path);
    return s;
}

hn_status lora_load(const hn_model *m, const char *dir, lora_set **out, hn_err *err) {
    adapter_cfg c;
    *out = NULL;
    hn_status s = read_config(m, dir, &c, err);
    if (s != HN_OK) return s;
    char path[4096];
    hn_path_join(path, sizeof path, dir, "adapter_model.safetensors");
    st_model *st;
    if ((s = st_open(path, &st, err)) != HN_OK) return s;
    lora_set *l;
    s = lora_alloc(m, c.rank, c.alpha, c.targets, c.ids, c.n_ids, &l, err);
    if (s != HN_OK) {
        hn_err_prefix(err, "%s", dir);
        st_close(st);
        return s;
    }
    s = load_pairs(l, m, st, path, err);
    if (s == HN_OK && l->n_tok) s = load_tokens(l, m, st, path, err);
    st_close(st);
    if (s != HN_OK) {
        lora_free(l);
        return s;
    }
    *out = l;
    return HN_OK;
}

void lora_merge(const lora_set *l, hn_model *m) {
    m->weights_version++;
    bool conv = model_arch_traits(m->cfg.arch).conv1d;
    for (int layer = 0; layer < l->n_layers; layer++) {
        layer_weights *w = &m->w.layers[layer];
        float *W[LORA_N_TARGETS] = {w->wq, w->wk, w->wv, w->wo, w->w_gate, w->w_up, w->w_down,
                                    w->wqkv};
        for (int t = 0; t < LORA_N_TARGETS; t++) {
            const lora_pair *lp = &l->pairs[layer][t];
            if (!lp->A) continue;
            /* delta (out, in) = scale * B A; a Conv1D weight holds its transpose */
            size_t so = conv ? 1 : (size_t)lp->in, si = conv ? (size_t)lp->out : 1;
            for (int o = 0; o < lp->out; o++)
                for (int k = 0; k < l->rank; k++) {
                    float b = l->scale * lp->B[(size_t)o * l->rank + k];
                    const float *a = lp->A + (size_t)k * lp->in;
                    float *row = W[t] + (size_t)o * so;
                    for (int i = 0; i < lp->in; i++) row[i * si] += b * a[i];
                }
        }
    }
    int D = m->cfg.dim;
    for (int k = 0; k < l->n_tok; k++) {
        float *e = m->w.tok_emb + (size_t)l->tok_ids[k] * D;
        float *h = m->w.lm_head + (size_t)l->tok_ids[k] * D;
        for (int i = 0; i < D; i++) e[i] += l->tok_emb[(size_t)k * D + i];
        for (int i = 0; l->tok_head && i < D; i++) h[i] += l->tok_head[(size_t)k * D + i];
    }
}
