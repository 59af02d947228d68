/* test_model_config.c — reading config.json for each family: what loads,
 * what is refused with a message naming the file and the setting (unknown
 * model_type, unsupported RoPE scaling, sliding window, activation), the
 * newer transformers layout (rope_parameters), and the llama3 RoPE frequency
 * rule (high frequencies kept, low ones divided by factor, smooth between). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "test.h"

/* A model directory: config.json from text, weights of qwen3-tiny linked in. */
static const char *make_dir(const char *name, const char *config) {
    const char *dir = test_tmp_path(name);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p %s && ln -sf %s %s/model.safetensors", dir,
             test_shared("models/qwen3-tiny/model.safetensors"), dir);
    int st;
    free(test_run_cmd(cmd, &st));
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    test_write_file(path, config, strlen(config));
    return dir;
}

#define QWEN3_BASE                                                                       \
    "\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":2,"             \
    "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"head_dim\":16,"              \
    "\"vocab_size\":1000,\"max_position_embeddings\":256,\"tie_word_embeddings\":true"

static void expect_refused(const char *name, const char *config, const char *words) {
    const char *dir = make_dir(name, config);
    hn_model *m = NULL;
    hn_err err = {0};
    hn_status s = model_load_ex(dir, MODEL_LOAD_TOKENIZER_OPTIONAL, &m, &err);
    CHECK(s != HN_OK, "%s: loaded", name);
    CHECK(strstr(err.msg, words) && strstr(err.msg, dir), "%s: message '%s' lacks '%s' or the path",
          name, err.msg, words);
    model_free(m);
}

static hn_model *expect_loaded(const char *name, const char *config) {
    const char *dir = make_dir(name, config);
    hn_model *m = NULL;
    hn_err err = {0};
    CHECK(model_load_ex(dir, MODEL_LOAD_TOKENIZER_OPTIONAL, &m, &err) == HN_OK, "%s: %s", name,
          err.msg);
    return m;
}

static void check_llama3_freqs(void) {
    hn_model *m = expect_loaded(
        "llama3", "{\"model_type\":\"qwen3\"," QWEN3_BASE ",\"rope_theta\":500000,"
                  "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,"
                  "\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
                  "\"original_max_position_embeddings\":64}}");
    if (!m) return;
    CHECK(m->rope_freqs && m->cfg.rope_scale.llama3, "llama3 scaling not applied");
    int half = m->cfg.head_dim / 2;
    for (int i = 0; m->rope_freqs && i < half; i++) {
        double inv = pow(500000.0, -2.0 * i / m->cfg.head_dim), wl = 2 * M_PI / inv;
        double div = m->rope_freqs[i];
        if (wl < 64 / 4.0) CHECK(fabs(div - 1) < 1e-6, "dim %d: high frequency scaled (%g)", i, div);
        else if (wl > 64 / 1.0) CHECK(fabs(div - 8) < 1e-5, "dim %d: low frequency divisor %g", i, div);
        else CHECK(div > 1 && div < 8, "dim %d: medium frequency divisor %g", i, div);
        if (i) CHECK(div >= m->rope_freqs[i - 1] - 1e-6, "divisors not monotonic at %d", i);
    }
    model_free(m);
}

/* GPT-2 as the hub ships it: vocab.json + merges.txt, no tokenizer.json */
static void check_vocab_merges_dir(void) {
    const char *dir = test_tmp_path("gpt2-vm");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "mkdir -p %s && ln -sf %s %s %s/ && ln -sf %s %s %s/", dir,
             test_shared("models/gpt2-tiny/config.json"),
             test_shared("models/gpt2-tiny/model.safetensors"), dir,
             test_shared("tokenizers/gpt2/vocab.json"), test_shared("tokenizers/gpt2/merges.txt"),
             dir);
    int st;
    free(test_run_cmd(cmd, &st));
    hn_model *m = NULL;
    hn_err err = {0};
    CHECK(model_load(dir, &m, &err) == HN_OK, "vocab.json + merges.txt: %s", err.msg);
    if (m) CHECK(m->tok && tok_vocab_size(m->tok) == 50257, "GPT-2 tokenizer not loaded");
    model_free(m);
}

int main(void) {
    check_vocab_merges_dir();
    hn_model *m = expect_loaded("qwen3", "{\"model_type\":\"qwen3\"," QWEN3_BASE "}");
    if (m) CHECK(m->cfg.arch == ARCH_QWEN3 && !m->rope_freqs, "qwen3 config");
    model_free(m);
    /* transformers >= 4.56 writes rope_parameters */
    m = expect_loaded("ropeparams", "{\"model_type\":\"qwen3\"," QWEN3_BASE
                                    ",\"rope_parameters\":{\"rope_type\":\"default\","
                                    "\"rope_theta\":12345.0}}");
    if (m) CHECK(m->cfg.rope_theta == 12345.0f, "rope_parameters.rope_theta ignored");
    model_free(m);
    check_llama3_freqs();
    expect_refused("bert", "{\"model_type\":\"bert\"}", "model_type 'bert'");
    expect_refused("notype", "{\"hidden_size\":64}", "model_type");
    expect_refused("yarn", "{\"model_type\":\"qwen3\"," QWEN3_BASE
                           ",\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4}}", "'yarn'");
    expect_refused("swa", "{\"model_type\":\"qwen2\"," QWEN3_BASE ",\"use_sliding_window\":true}",
                   "sliding-window");
    expect_refused("act", "{\"model_type\":\"llama\"," QWEN3_BASE ",\"hidden_act\":\"gelu\"}",
                   "hidden_act 'gelu'");
    expect_refused("gpt2act", "{\"model_type\":\"gpt2\",\"n_embd\":64,\"n_layer\":2,\"n_head\":4,"
                              "\"vocab_size\":1000,\"activation_function\":\"relu\"}",
                   "activation_function 'relu'");
    expect_refused("quoted", "{\"model_type\":\"qwen3\",\"hidden_size\":\"64\"}",
                   "hidden_size: expected an integer");
    expect_refused("truncated", "{\"model_type\":\"qwen3\",", "invalid JSON");
    expect_refused("shape", "{\"model_type\":\"qwen3\",\"hidden_size\":64,\"intermediate_size\":128,"
                            "\"num_hidden_layers\":2,\"num_attention_heads\":8,\"head_dim\":16,"
                            "\"vocab_size\":1000,\"tie_word_embeddings\":true}",
                   "q_proj.weight' has shape");
    return test_finish("test_model_config");
}
