/* test_lora_tokens.c — trainable token rows in the PEFT adapter layout, for a
 * tied and an untied model (and GPT-2's transformer.wte name): the config's
 * trainable_token_indices (a list when tied, {"embed_tokens", "lm_head"} when
 * untied), the token_adapter.trainable_tokens_delta tensors holding the new
 * rows (base + delta, as PEFT stores them), load back to the same deltas, and
 * lora_merge adding them to the right rows and nothing else. */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "format/safetensors.h"
#include "model/llama.h"
#include "test.h"

static const char *emb_name(model_arch a) {
    return a == ARCH_GPT2 ? "base_model.model.transformer.wte.token_adapter.trainable_tokens_delta"
                          : "base_model.model.model.embed_tokens.token_adapter.trainable_tokens_delta";
}

static void check_config(const char *dir, bool tied, const int32_t *ids, int n) {
    char path[600];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    json_t *j = json_load_file(path, 0, NULL);
    json_t *ti = j ? json_object_get(j, "trainable_token_indices") : NULL;
    json_t *list = tied ? ti : json_object_get(ti, "embed_tokens");
    CHECK(json_is_array(list) && (int)json_array_size(list) == n, "trainable_token_indices");
    for (int i = 0; list && i < n; i++)
        CHECK(json_integer_value(json_array_get(list, i)) == ids[i], "index %d", i);
    if (!tied) CHECK(json_is_array(json_object_get(ti, "lm_head")), "untied: lm_head indices");
    json_decref(j);
}

/* The tensor holds base row + delta for every id. */
static void check_tensor(const char *dir, const char *name, const float *W, const float *delta,
                         const int32_t *ids, int n, int D) {
    char path[600];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    st_model *st = NULL;
    hn_err err = {0};
    CHECK(st_open(path, &st, &err) == HN_OK, "%s", err.msg);
    const st_tensor *t = st ? st_find(st, name) : NULL;
    CHECK(t && t->n_dims == 2 && t->n_elems == (uint64_t)n * D, "tensor %s", name);
    float rows[4 * 64];
    if (t && t->n_elems <= sizeof rows / sizeof *rows && st_tensor_to_f32(t, rows, &err) == HN_OK) {
        double worst = 0;
        for (int k = 0; k < n; k++)
            for (int i = 0; i < D; i++)
                worst = fmax(worst, fabs(rows[k * D + i] - (W[(size_t)ids[k] * D + i] + delta[k * D + i])));
        CHECK(worst == 0, "%s: rows off by %g", name, worst);
    }
    if (st) st_close(st);
}

static void check_arch(const char *label, model_arch arch, bool tied) {
    model_config c = {.arch = arch, .dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4,
                      .n_kv_heads = arch == ARCH_GPT2 ? 4 : 2, .head_dim = 4, .vocab_size = 32,
                      .max_seq_len = 16, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                      .tied_embeddings = tied};
    hn_model *m, *merged;
    hn_err err = {0};
    CHECK(model_create_random(&c, 3, &m, &err) == HN_OK, "%s", err.msg);
    CHECK(model_create_random(&c, 3, &merged, &err) == HN_OK, "%s", err.msg);
    hn_rng rng;
    hn_rng_seed(&rng, 5);
    const int32_t ids[3] = {2, 31, 7};
    const int n = 3, D = c.dim;
    lora_set *l = NULL, *back = NULL;
    CHECK(lora_create_ex(m, 4, 8, LORA_ALL, ids, n, &rng, &l, &err) == HN_OK, "%s", err.msg);
    if (!l) return;
    CHECK((l->tok_head == NULL) == tied, "%s: head deltas iff untied", label);
    for (size_t i = 0; i < (size_t)n * D; i++) {
        l->tok_emb[i] = (float)(hn_rng_uniform(&rng) - 0.5);
        if (l->tok_head) l->tok_head[i] = (float)(hn_rng_uniform(&rng) - 0.5);
    }
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), label);
    CHECK(lora_save(l, m, dir, &err) == HN_OK, "%s", err.msg);
    check_config(dir, tied, ids, n);
    check_tensor(dir, emb_name(arch), m->w.tok_emb, l->tok_emb, ids, n, D);
    if (!tied)
        check_tensor(dir, "base_model.model.lm_head.token_adapter.trainable_tokens_delta",
                     m->w.lm_head, l->tok_head, ids, n, D);
    CHECK(lora_load(m, dir, &back, &err) == HN_OK, "%s", err.msg);
    if (back) {
        CHECK(back->n_tok == n && !memcmp(back->tok_ids, ids, sizeof ids), "%s: ids", label);
        CHECK(!memcmp(back->slab, l->slab, (size_t)(l->tok_emb - l->slab) * sizeof(float)),
              "%s: A/B round trip", label);
        double worst = 0;
        for (size_t i = 0; i < (size_t)n * D; i++) {
            worst = fmax(worst, fabs(back->tok_emb[i] - l->tok_emb[i]));
            if (!tied) worst = fmax(worst, fabs(back->tok_head[i] - l->tok_head[i]));
        }
        CHECK(worst < 1e-6, "%s: deltas round trip off by %g", label, worst);
    }
    /* merge: token rows move by their deltas, every other row stays */
    lora_merge(l, merged);
    int moved = 0, wrong = 0;
    for (int v = 0; v < c.vocab_size; v++) {
        int k = lora_token_index(l, v);
        for (int i = 0; i < D; i++) {
            float e = m->w.tok_emb[v * D + i] + (k >= 0 ? l->tok_emb[k * D + i] : 0);
            float h = m->w.lm_head[v * D + i] +
                      (k >= 0 ? (tied ? 0 : l->tok_head[k * D + i]) : 0);
            if (tied) h = e;
            wrong += merged->w.tok_emb[v * D + i] != e || merged->w.lm_head[v * D + i] != h;
        }
        moved += k >= 0;
    }
    CHECK(moved == n && wrong == 0, "%s: %d merged values wrong", label, wrong);
    printf("%s: %d token rows saved (PEFT layout), loaded and merged\n", label, n);
    lora_free(l);
    lora_free(back);
    model_free(m);
    model_free(merged);
}

int main(void) {
    check_arch("llama-tied", ARCH_LLAMA, true);
    check_arch("llama-untied", ARCH_LLAMA, false);
    check_arch("gpt2", ARCH_GPT2, true);
    return test_finish("test_lora_tokens");
}
