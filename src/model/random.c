/* random.c — a model (any architecture) with random weights built in memory, for tests
 * (finite-difference gradient checks, packing equivalence) that need small,
 * arbitrary shapes no checkpoint on disk has. The parameter table is
 * model_alloc's (HF order), so gradient slabs and views work unchanged.
 * No tokenizer: such a model serves llama_forward/llama_loss_backward and
 * model_forward on ids, not text. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "model/llama.h"

hn_status model_create_random(const model_config *cfg, uint64_t seed, hn_model **out,
                              hn_err *err) {
    *out = NULL;
    model_config c = *cfg;
    snprintf(c.name, sizeof c.name, "random-%llu", (unsigned long long)seed);
    hn_model *m;
    hn_status s = model_alloc(&c, &m, err);
    if (s != HN_OK) return s;
    /* norm weights ~ 1 +- 0.2, biases ~ 0 +- 0.2, matrices uniform with std
     * ~ 1/sqrt(fan_in), embeddings ~ 1 */
    hn_rng rng;
    hn_rng_seed(&rng, seed);
    bool conv = model_arch_traits(c.arch).conv1d;
    for (int i = 0; i < m->n_param_tensors; i++) {
        model_param *mp = &m->params[i];
        bool vec = mp->n_dims == 1, bias = vec && strstr(mp->name, ".bias");
        bool emb = mp->data == m->w.tok_emb || mp->data == m->w.pos_emb;
        int64_t fan_in = conv ? mp->shape[0] : mp->shape[1];
        float bound = vec ? 0.2f : emb ? 1.0f : sqrtf(3.0f / (float)fan_in);
        for (size_t k = 0; k < mp->numel; k++)
            mp->data[k] = (vec && !bias ? 1.0f : 0.0f) + (2.0f * hn_rng_uniform(&rng) - 1.0f) * bound;
    }
    snprintf(m->path, sizeof m->path, "(random)");
    *out = m;
    return HN_OK;
}
