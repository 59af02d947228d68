/* test_lora_base.c — adapters remember their base model: loading one on other
 * weights is refused with a clear message; the GGUF and HF copies of one model
 * hash the same, so an adapter moves between them. */
#include <string.h>

#include "model/llama.h"
#include "test.h"

int main(void) {
    model_config c = {.dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                      .head_dim = 4, .vocab_size = 32, .max_seq_len = 16, .norm_eps = 1e-5f,
                      .rope_theta = 10000.0f, .tied_embeddings = true};
    hn_model *a, *b;
    hn_err err = {0};
    CHECK(model_create_random(&c, 1, &a, &err) == HN_OK, "%s", err.msg);
    CHECK(model_create_random(&c, 2, &b, &err) == HN_OK, "%s", err.msg);
    CHECK(model_weights_hash(a) != model_weights_hash(b), "different weights, same hash");
    hn_rng rng;
    hn_rng_seed(&rng, 7);
    lora_set *l, *back = NULL;
    CHECK(lora_create(a, 4, 8, (1u << LORA_N_TARGETS) - 1, &rng, &l, &err) == HN_OK, "%s", err.msg);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/adapter", test_tmpdir());
    CHECK(lora_save(l, a, dir, &err) == HN_OK, "%s", err.msg);
    CHECK(lora_load(a, dir, &back, &err) == HN_OK, "%s", err.msg);
    CHECK(back && !memcmp(back->slab, l->slab, l->n_params * sizeof(float)), "round trip");
    lora_free(back);
    back = NULL;
    CHECK(lora_load(b, dir, &back, &err) == HN_EINVAL && !back, "adapter accepted on another base");
    CHECK(strstr(err.msg, "different base model") && strstr(err.msg, "adapter_config.json"),
          "message: %s", err.msg);
    lora_free(l);
    model_free(a);
    model_free(b);

    hn_model *g, *h;
    CHECK(model_load(test_shared("models/stories260K/stories260K.gguf"), &g, &err) == HN_OK, "%s", err.msg);
    CHECK(model_load(test_shared("models/stories260K/hf"), &h, &err) == HN_OK, "%s", err.msg);
    CHECK(model_weights_hash(g) == model_weights_hash(h), "GGUF and HF copies hash differently");
    model_free(g);
    model_free(h);
    return test_finish("test_lora_base");
}
