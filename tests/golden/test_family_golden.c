/* test_family_golden.c — inference of the GPT-2, Qwen2 and Qwen3 test
 * checkpoints against PyTorch float64 (../shared/fixtures/<model>/greedy.json):
 * 20 greedy tokens per prompt through hone's KV-cached model_forward (the
 * fixture recomputes the whole sequence each step, so this also checks the
 * cache), the last prompt position's logits against a cache-free batch
 * forward, and GPT-2's BF16 checkpoint loading to within 1e-2 of F32. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "model/llama.h"
#include "test.h"

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static void check_greedy(const hn_model *m, const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "fixtures/%s/greedy.json", name);
    json_error_t je;
    json_t *fx = json_load_file(test_shared(rel), 0, &je);
    CHECK(fx != NULL, "%s: %s", rel, je.text);
    json_t *runs = json_object_get(fx, "runs");
    hn_err err = {0};
    for (size_t r = 0; r < json_array_size(runs); r++) {
        json_t *run = json_array_get(runs, r);
        json_t *prompt = json_object_get(run, "prompt"), *want = json_object_get(run, "new_tokens");
        model_state *s;
        CHECK(model_state_create(m, 128, &s, &err) == HN_OK, "%s", err.msg);
        int32_t ids[64];
        int n = (int)json_array_size(prompt), mismatches = 0;
        for (int i = 0; i < n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(prompt, i));
        const float *logits;
        CHECK(model_forward(m, s, ids, n, NULL, &logits, &err) == HN_OK, "%s", err.msg);
        for (size_t k = 0; k < json_array_size(want); k++) {
            int32_t next = argmax(logits, m->cfg.vocab_size);
            if (next != json_integer_value(json_array_get(want, k))) mismatches++;
            CHECK(model_forward(m, s, &next, 1, NULL, &logits, &err) == HN_OK, "%s", err.msg);
        }
        CHECK(mismatches == 0, "%s prompt %zu: %d of %zu greedy tokens differ from PyTorch", name,
              r, mismatches, json_array_size(want));
        printf("%s prompt %zu: %zu greedy tokens, %d mismatches\n", name, r,
               json_array_size(want), mismatches);
        model_state_free(s);
    }
    json_decref(fx);
}

/* KV-cached token-by-token logits == one batched training forward. */
static void check_cache_vs_batch(const hn_model *m, const char *name) {
    enum { T = 12 };
    int32_t ids[T];
    for (int i = 0; i < T; i++) ids[i] = (int32_t)((i * 7919 + 13) % m->cfg.vocab_size);
    hn_err err = {0};
    llama_acts *a;
    model_state *s;
    CHECK(llama_acts_create(m, 1, T, 0, &a, &err) == HN_OK, "%s", err.msg);
    CHECK(model_state_create(m, 64, &s, &err) == HN_OK, "%s", err.msg);
    int V = m->cfg.vocab_size;
    float *batch = malloc(sizeof(float) * T * V);
    llama_forward(m, NULL, a, ids);
    llama_logits(m, a, batch);
    double md = 0;
    for (int t = 0; t < T; t++) {
        const float *lg;
        CHECK(model_forward(m, s, ids + t, 1, NULL, &lg, &err) == HN_OK, "%s", err.msg);
        for (int v = 0; v < V; v++) md = fmax(md, fabs(lg[v] - batch[(size_t)t * V + v]));
    }
    CHECK(md < 1e-5, "%s: cached vs batched logits differ by %g", name, md);
    free(batch);
    model_state_free(s);
    llama_acts_free(a);
}

static hn_model *load(const char *dir) {
    hn_model *m = NULL;
    hn_err err = {0};
    CHECK(model_load_ex(dir, MODEL_LOAD_TOKENIZER_OPTIONAL, &m, &err) == HN_OK, "%s: %s", dir,
          err.msg);
    return m;
}

/* gpt2-tiny/model-bf16.safetensors in a directory of its own. */
static void check_bf16(const hn_model *f32) {
    const char *dir = test_tmp_path("gpt2-bf16");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p %s && cp %s %s/ && ln -sf %s %s/model.safetensors", dir,
             test_shared("models/gpt2-tiny/config.json"), dir,
             test_shared("models/gpt2-tiny/model-bf16.safetensors"), dir);
    int st;
    free(test_run_cmd(cmd, &st));
    hn_model *m = load(dir);
    if (!m || !f32) return;
    double md = test_logits_diff(m, f32, 16);
    CHECK(md < 1e-2, "gpt2 bf16 logits differ from f32 by %g", md);
    printf("gpt2-tiny bf16 vs f32 logits: max diff %.2e\n", md);
    model_free(m);
}

int main(void) {
    static const char *names[] = {"gpt2-tiny", "qwen2-tiny", "qwen3-tiny", "qwen3-hd32-tiny"};
    hn_model *gpt2 = NULL;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "models/%s", names[i]);
        hn_model *m = load(test_shared(rel));
        if (!m) continue;
        check_greedy(m, names[i]);
        check_cache_vs_batch(m, names[i]);
        if (i == 0) gpt2 = m;
        else model_free(m);
    }
    check_bf16(gpt2);
    model_free(gpt2);
    return test_finish("test_family_golden");
}
