/* random.c — a Llama model with random weights built in memory, for tests
 * (finite-difference gradient checks, packing equivalence) that need small,
 * arbitrary shapes no checkpoint on disk has. The parameter table follows
 * model.c's HF order exactly, so gradient slabs and views work unchanged.
 * No tokenizer: such a model serves llama_forward/llama_loss_backward and
 * model_forward on ids, not text. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "model/llama.h"

static void add_param(hn_model *m, const char *name, int64_t d0, int64_t d1) {
    model_param *p = &m->params[m->n_param_tensors++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->n_dims = d1 ? 2 : 1;
    p->shape[0] = d0;
    p->shape[1] = d1;
    p->numel = (size_t)d0 * (size_t)(d1 ? d1 : 1);
}

hn_status model_create_random(const model_config *cfg, uint64_t seed, hn_model **out,
                              hn_err *err) {
    *out = NULL;
    const model_config *c = cfg;
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
        c->n_kv_heads <= 0 || c->head_dim <= 0 || c->head_dim % 2 || c->vocab_size <= 0 ||
        c->max_seq_len <= 0 || c->n_heads % c->n_kv_heads)
        return hn_errf(err, HN_EINVAL, "model_create_random: invalid config");
    hn_model *m = calloc(1, sizeof *m);
    if (!m) return hn_errf(err, HN_ENOMEM, "out of memory");
    m->cfg = *cfg;
    m->cfg.arch = ARCH_LLAMA;
    snprintf(m->cfg.name, sizeof m->cfg.name, "random-%llu", (unsigned long long)seed);
    int L = c->n_layers, D = c->dim, F = c->hidden_dim;
    int qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    m->params = calloc((size_t)L * 9 + 3, sizeof *m->params);
    m->w.layers = calloc((size_t)L, sizeof *m->w.layers);
    if (!m->params || !m->w.layers) {
        model_free(m);
        return hn_errf(err, HN_ENOMEM, "out of memory");
    }
    static const char *fmt[9] = {
        "model.layers.%d.input_layernorm.weight",  "model.layers.%d.self_attn.q_proj.weight",
        "model.layers.%d.self_attn.k_proj.weight", "model.layers.%d.self_attn.v_proj.weight",
        "model.layers.%d.self_attn.o_proj.weight", "model.layers.%d.post_attention_layernorm.weight",
        "model.layers.%d.mlp.gate_proj.weight",    "model.layers.%d.mlp.up_proj.weight",
        "model.layers.%d.mlp.down_proj.weight"};
    const int64_t shp[9][2] = {{D, 0}, {qd, D}, {kvd, D}, {kvd, D}, {D, qd},
                               {D, 0}, {F, D},  {F, D},   {D, F}};
    char name[96];
    add_param(m, "model.embed_tokens.weight", c->vocab_size, D);
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
    if (!m->slab) {
        model_free(m);
        return hn_errf(err, HN_ENOMEM, "out of memory for %zu parameters", total);
    }
    m->n_params = total;
    /* norms ~ 1 +- 0.2, matrices uniform with std ~ 1/sqrt(fan_in), embeddings ~ 1 */
    hn_rng rng;
    hn_rng_seed(&rng, seed);
    float *p = m->slab;
    for (int i = 0; i < m->n_param_tensors; i++) {
        model_param *mp = &m->params[i];
        mp->data = p;
        p += mp->numel;
        bool norm = mp->n_dims == 1, emb = i == 0;
        float bound = norm ? 0.2f : emb ? 1.0f : sqrtf(3.0f / (float)mp->shape[1]);
        for (size_t k = 0; k < mp->numel; k++)
            mp->data[k] = (norm ? 1.0f : 0.0f) + (2.0f * hn_rng_uniform(&rng) - 1.0f) * bound;
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
    snprintf(m->path, sizeof m->path, "(random)");
    *out = m;
    return HN_OK;
}
