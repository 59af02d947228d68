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

static hn_status lora_alloc(const hn_model *m, int rank, float alpha, unsigned targets,
                            lora_set **out, hn_err *err) {
    if (rank <= 0 || rank > 4096) return hn_errf(err, HN_EINVAL, "LoRA rank %d out of range", rank);
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
    l->slab = calloc(total, sizeof(float));
    if (!l->slab) {
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
    *out = l;
    return HN_OK;
}

hn_status lora_create(const hn_model *m, int rank, float alpha, unsigned targets, hn_rng *rng,
                      lora_set **out, hn_err *err) {
    hn_status s = lora_alloc(m, rank, alpha, targets, out, err);
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

void lora_free(lora_set *l) {
    if (!l) return;
    free(l->slab);
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
    json_object_set_new(j, "lora_dropout", json_real(0.0));
    json_object_set_new(j, "bias", json_string("none"));
    /* PEFT's flag for Conv1D (in, out) base weights; A and B keep their shapes */
    json_object_set_new(j, "fan_in_fan_out", json_boolean(model_arch_traits(m->cfg.arch).conv1d));
    json_object_set_new(j, "target_modules", tm);
    json_object_set_new(j, "base_model_name_or_path", json_string(m->cfg.name));
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

hn_status lora_save(const lora_set *l, const hn_model *m, const char *dir, hn_err *err) {
    hn_status s = hn_mkdirs(dir, err);
    if (s != HN_OK) return s;
    size_t n = 0, cap = (size_t)l->n_layers * LORA_N_TARGETS * 2;
    st_wtensor *ts = calloc(cap, sizeof *ts);
    char (*names)[128] = calloc(cap, sizeof *names);
    if (!ts || !names) {
        free(ts);
        free(names);
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
    char path[4096];
    hn_path_join(path, sizeof path, dir, "adapter_model.safetensors");
    const char *meta[] = {"format", "pt", NULL};
    s = st_write(path, ts, n, meta, err);
    free(ts);
    free(names);
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

static hn_status read_config(const hn_model *m, const char *dir, int *rank, float *alpha,
                             unsigned *targets, hn_err *err) {
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
    *targets = 0;
    for (size_t i = 0; s == HN_OK && i < json_array_size(tm); i++) {
        unsigned one;
        s = lora_parse_targets(json_string_value(json_array_get(tm, i)), &one, err);
        if (s != HN_OK) hn_err_prefix(err, "%s: target_modules", path);
        *targets |= one;
    }
    if (s == HN_OK) s = check_base(m, j, path, err);
    if (s == HN_OK) {
        *rank = (int)json_integer_value(r);
        *alpha = (float)json_number_value(a);
    }
    json_decref(j);
    return s;
}

hn_status lora_load(const hn_model *m, const char *dir, lora_set **out, hn_err *err) {
    int rank = 0;
    float alpha = 0;
    unsigned targets = 0;
    *out = NULL;
    hn_status s = read_config(m, dir, &rank, &alpha, &targets, err);
    if (s != HN_OK) return s;
    char path[4096];
    hn_path_join(path, sizeof path, dir, "adapter_model.safetensors");
    st_model *st;
    if ((s = st_open(path, &st, err)) != HN_OK) return s;
    lora_set *l;
    if ((s = lora_alloc(m, rank, alpha, targets, &l, err)) != HN_OK) {
        st_close(st);
        return s;
    }
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
    st_close(st);
    if (s != HN_OK) {
        lora_free(l);
        return s;
    }
    *out = l;
    return HN_OK;
}

void lora_merge(const lora_set *l, hn_model *m) {
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
}
