/* test_llama_golden.c — the stories260K runtime against llama2.c and llama.cpp:
 * greedy token ids for four prompts and the logits at positions 0..7, from the
 * GGUF file and from the Hugging Face directory. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "infer/generate.h"
#include "test.h"

static json_t *load_fixture(const char *rel) {
    json_error_t je;
    json_t *j = json_load_file(test_shared(rel), 0, &je);
    if (!j) {
        fprintf(stderr, "%s: %s\n", rel, je.text);
        exit(2);
    }
    return j;
}

static void check_greedy(hn_model *m, const char *label) {
    json_t *fx = load_fixture("fixtures/stories260K/llama2c_greedy.json");
    json_t *res = json_object_get(fx, "results");
    for (size_t r = 0; r < json_array_size(res); r++) {
        json_t *e = json_array_get(res, r);
        const char *prompt = json_string_value(json_object_get(e, "prompt"));
        json_t *want = json_object_get(e, "tokens");
        int32_t *ids = NULL, *out = NULL;
        size_t n = 0, cap = 0;
        hn_err err = {0};
        CHECK(tok_encode(m->tok, prompt, strlen(prompt), true, &ids, &n, &cap, &err) == HN_OK,
              "%s", err.msg);
        gen_params gp;
        gen_params_default(&gp);
        gp.temperature = 0;
        gp.max_tokens = (int)json_array_size(want) - (int)n;
        gp.stop_at_eos = false;
        gen_result gr;
        CHECK(gen_run(m, ids, (int)n, &gp, NULL, NULL, &out, &gr, &err) == HN_OK, "%s", err.msg);
        int mismatches = 0;
        for (size_t i = 0; i < json_array_size(want); i++) {
            int got = i < n ? ids[i] : (int)i - (int)n < gr.n_generated ? out[i - n] : -1;
            if (got != json_integer_value(json_array_get(want, i))) mismatches++;
        }
        CHECK(mismatches == 0, "%s: prompt '%s': %d of %zu ids differ from llama2.c", label,
              prompt, mismatches, json_array_size(want));
        free(ids);
        free(out);
    }
    json_decref(fx);
}

static void check_logits(hn_model *m, const char *fixture, const char *label) {
    json_t *fx = load_fixture(fixture);
    json_t *toks = json_object_get(fx, "tokens_fed");
    json_t *lg = json_object_get(fx, "logits");
    if (!toks) toks = json_object_get(fx, "token_ids");
    CHECK(toks && lg, "%s: fixture layout not understood", fixture);
    if (!toks || !lg) {
        json_decref(fx);
        return;
    }
    int n = (int)json_array_size(lg), V = m->cfg.vocab_size;
    int32_t ids[64];
    for (int i = 0; i < n && i < 64; i++) ids[i] = (int32_t)json_integer_value(json_array_get(toks, i));
    model_state *s;
    hn_err err = {0};
    CHECK(model_state_create(m, 0, &s, &err) == HN_OK, "%s", err.msg);
    float *all = malloc(sizeof(float) * n * V);
    const float *last;
    CHECK(model_forward(m, s, ids, n, all, &last, &err) == HN_OK, "%s", err.msg);
    double maxdiff = 0;
    for (int p = 0; p < n; p++) {
        json_t *row = json_array_get(lg, p);
        for (int v = 0; v < V; v++) {
            double d = fabs(all[p * V + v] - json_number_value(json_array_get(row, v)));
            if (d > maxdiff) maxdiff = d;
        }
    }
    CHECK(maxdiff < 1e-4, "%s: %s: max |logit diff| %g >= 1e-4", label, fixture, maxdiff);
    printf("%s: %s: max |logit diff| %.3g\n", label, fixture, maxdiff);
    /* one-token-at-a-time decoding through the KV cache gives the same logits */
    model_state_reset(s);
    double kvdiff = 0;
    for (int p = 0; p < n; p++) {
        CHECK(model_forward(m, s, &ids[p], 1, NULL, &last, &err) == HN_OK, "%s", err.msg);
        for (int v = 0; v < V; v++) {
            double d = fabs(last[v] - all[p * V + v]);
            if (d > kvdiff) kvdiff = d;
        }
    }
    CHECK(kvdiff < 1e-5, "%s: incremental vs batched logits differ by %g", label, kvdiff);
    free(all);
    model_state_free(s);
    json_decref(fx);
}

int main(void) {
    const char *paths[2] = {test_shared("models/stories260K/stories260K.gguf"),
                            test_shared("models/stories260K/hf")};
    for (int k = 0; k < 2; k++) {
        hn_model *m;
        hn_err err = {0};
        if (model_load(paths[k], &m, &err) != HN_OK) {
            CHECK(0, "load %s: %s", paths[k], err.msg);
            continue;
        }
        const char *label = k ? "hf" : "gguf";
        check_greedy(m, label);
        check_logits(m, "fixtures/stories260K/llama2c_logits_once_upon_a_time.json", label);
        check_logits(m, "fixtures/stories260K/llamacpp_logits_once_upon_a_time_kvf32.json", label);
        model_free(m);
    }
    return test_finish("test_llama_golden");
}
