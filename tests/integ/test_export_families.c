/* test_export_families.c — `hone export` of every family (GPT-2 from
 * ../shared, Qwen2 / Qwen3 / byte-level Llama made by `hone init-model`
 * around the real tokenizers): the GGUF carries the tensor names, shapes and
 * hyper-parameter keys llama.cpp's loader for that architecture asks for
 * (listed here by hand from llama.cpp's tensor tables, not from hone's own
 * mapping), and the GGUF and HF exports load back with logits equal to the
 * source model's (f32), tokenizer and chat template intact. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chat/template.h"
#include "format/gguf.h"
#include "model/llama.h"
#include "test.h"

static const char *bin;

static void run(const char *cmd) {
    int st;
    char *out = test_run_cmd(cmd, &st);
    CHECK(st == 0, "%s exited %d:\n%s", cmd, st, out ? out : "");
    free(out);
}

static hn_model *load(const char *path) {
    hn_model *m = NULL;
    hn_err err = {0};
    CHECK(model_load(path, &m, &err) == HN_OK, "%s: %s", path, err.msg);
    return m;
}

typedef struct want_tensor {
    const char *name;
    int64_t ne0, ne1; /* ggml order; ne1 0 for vectors; -1 = the vocab */
} want_tensor;

static void check_gguf(const char *path, const char *arch, const want_tensor *want, int n,
                       const char *const *keys) {
    hn_err err = {0};
    gguf_file *f;
    if (gguf_open(path, &f, &err) != HN_OK) {
        CHECK(0, "%s", err.msg);
        return;
    }
    gguf_str s;
    CHECK(gguf_get_str(f, "general.architecture", &s, &err) == HN_OK && s.len == strlen(arch) &&
              !memcmp(s.p, arch, s.len), "%s: general.architecture", path);
    for (int i = 0; keys[i]; i++) {
        char k[128];
        snprintf(k, sizeof k, "%s.%s", arch, keys[i]);
        CHECK(gguf_find_kv(f, k) >= 0, "%s: missing key %s", path, k);
    }
    for (int i = 0; i < n; i++) {
        const gguf_tensor *t = gguf_find_tensor(f, want[i].name);
        CHECK(t != NULL, "%s: missing tensor %s", path, want[i].name);
        if (!t) continue;
        uint64_t ne1 = t->n_dims > 1 ? t->ne[1] : 0;
        CHECK((int64_t)t->ne[0] == want[i].ne0 && (want[i].ne1 < 0 || (int64_t)ne1 == want[i].ne1),
              "%s: %s is [%llu, %llu], llama.cpp wants [%lld, %lld]", path, want[i].name,
              (unsigned long long)t->ne[0], (unsigned long long)ne1, (long long)want[i].ne0,
              (long long)want[i].ne1);
    }
    CHECK(gguf_find_kv(f, "tokenizer.ggml.model") >= 0, "%s: no tokenizer", path);
    gguf_close(f);
}

static void round_trip(const char *src, const char *tag, const want_tensor *want, int n,
                       const char *const *keys) {
    printf("== %s (%s)\n", tag, src);
    hn_model *m = load(src);
    if (!m) return;
    char gguf[1024], hf[1024], cmd[4096];
    snprintf(gguf, sizeof gguf, "%s/%s.gguf", test_tmpdir(), tag);
    snprintf(hf, sizeof hf, "%s/%s-hf", test_tmpdir(), tag);
    snprintf(cmd, sizeof cmd, "'%s' export --model '%s' --format gguf --dtype f32 --out '%s' 2>&1",
             bin, src, gguf);
    run(cmd);
    snprintf(cmd, sizeof cmd, "'%s' export --model '%s' --format safetensors --out '%s' 2>&1",
             bin, src, hf);
    run(cmd);
    check_gguf(gguf, model_arch_name(m->cfg.arch), want, n, keys);
    const char *outs[] = {gguf, hf};
    for (int k = 0; k < 2; k++) {
        hn_model *b = load(outs[k]);
        if (!b) continue;
        CHECK(b->cfg.arch == m->cfg.arch && b->n_params == m->n_params, "%s: arch/params", outs[k]);
        double d = test_logits_diff(m, b, 10);
        CHECK(d < 1e-5, "%s: logits differ from the source by %g", outs[k], d);
        /* GGUF pads the token list to the model's vocab ([PADn]), as llama.cpp needs */
        int nt = tok_vocab_size(m->tok), same = 0;
        for (int i = 0; i < nt && i < tok_vocab_size(b->tok); i++)
            same += !strcmp(tok_piece(b->tok, i), tok_piece(m->tok, i));
        CHECK(same == nt && tok_eos(b->tok) == tok_eos(m->tok) && tok_bos(b->tok) == tok_bos(m->tok),
              "%s: tokenizer: %d of %d pieces equal, eos %d/%d", outs[k], same, nt,
              tok_eos(b->tok), tok_eos(m->tok));
        /* a model without a template exports hone's default one, in Jinja */
        const char *want = m->chat_template ? m->chat_template : chat_template_default_jinja();
        CHECK(b->chat_template && !strcmp(want, b->chat_template),
              "%s: chat template not carried over", outs[k]);
        printf("%s: logits max diff %.2e\n", outs[k], d);
        model_free(b);
    }
    model_free(m);
}

static const char *init_model(const char *arch, const char *tokenizer, const char *extra) {
    const char *out = test_tmp_path(arch);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' init-model --arch %s --tokenizer '%s' --out '%s' --dim 32 "
             "--layers 1 --context 64 %s 2>&1", bin, arch, test_shared(tokenizer), out, extra);
    run(cmd);
    return out;
}

int main(void) {
    bin = getenv("HONE_BIN");
    if (!bin) return 77;
    static const char *const rope_keys[] = {"context_length", "embedding_length", "block_count",
        "feed_forward_length", "attention.head_count", "attention.head_count_kv",
        "attention.layer_norm_rms_epsilon", "rope.freq_base", NULL};
    static const char *const gpt2_keys[] = {"context_length", "embedding_length", "block_count",
        "feed_forward_length", "attention.head_count", "attention.layer_norm_epsilon", NULL};
    /* gpt2-tiny: n_embd 64, n_inner 256, 128 positions */
    static const want_tensor gpt2[] = {
        {"token_embd.weight", 64, -1}, {"position_embd.weight", 64, 128},
        {"blk.0.attn_norm.weight", 64, 0}, {"blk.0.attn_norm.bias", 64, 0},
        {"blk.0.attn_qkv.weight", 64, 192}, {"blk.0.attn_qkv.bias", 192, 0},
        {"blk.0.attn_output.weight", 64, 64}, {"blk.0.attn_output.bias", 64, 0},
        {"blk.0.ffn_norm.weight", 64, 0}, {"blk.0.ffn_norm.bias", 64, 0},
        {"blk.0.ffn_up.weight", 64, 256}, {"blk.0.ffn_up.bias", 256, 0},
        {"blk.0.ffn_down.weight", 256, 64}, {"blk.0.ffn_down.bias", 64, 0},
        {"output_norm.weight", 64, 0}, {"output_norm.bias", 64, 0}};
    round_trip(test_shared("models/gpt2-tiny"), "gpt2", gpt2, sizeof gpt2 / sizeof *gpt2, gpt2_keys);
    /* qwen2: dim 32, 4 heads of 8, 2 kv heads, ffn 64, untied */
    static const want_tensor qwen2[] = {
        {"token_embd.weight", 32, -1}, {"output.weight", 32, -1},
        {"blk.0.attn_q.weight", 32, 32}, {"blk.0.attn_q.bias", 32, 0},
        {"blk.0.attn_k.weight", 32, 16}, {"blk.0.attn_k.bias", 16, 0},
        {"blk.0.attn_v.weight", 32, 16}, {"blk.0.attn_v.bias", 16, 0},
        {"blk.0.attn_output.weight", 32, 32}, {"blk.0.ffn_gate.weight", 32, 64},
        {"blk.0.ffn_up.weight", 32, 64}, {"blk.0.ffn_down.weight", 64, 32},
        {"blk.0.attn_norm.weight", 32, 0}, {"blk.0.ffn_norm.weight", 32, 0},
        {"output_norm.weight", 32, 0}};
    round_trip(init_model("qwen2", "tokenizers/qwen3", "--heads 4 --kv-heads 2 --untied"), "qwen2",
               qwen2, sizeof qwen2 / sizeof *qwen2, rope_keys);
    /* qwen3: head_dim 16 != 32 / 4: q [64 rows], k/v [32 rows] */
    static const want_tensor qwen3[] = {
        {"token_embd.weight", 32, -1}, {"blk.0.attn_q.weight", 32, 64},
        {"blk.0.attn_k.weight", 32, 32}, {"blk.0.attn_v.weight", 32, 32},
        {"blk.0.attn_q_norm.weight", 16, 0}, {"blk.0.attn_k_norm.weight", 16, 0},
        {"blk.0.attn_output.weight", 64, 32}, {"output_norm.weight", 32, 0}};
    static const char *const qwen3_keys[] = {"attention.key_length", "attention.value_length",
                                             "rope.freq_base", NULL};
    round_trip(init_model("qwen3", "tokenizers/qwen3", "--heads 4 --kv-heads 2 --head-dim 16"),
               "qwen3", qwen3, sizeof qwen3 / sizeof *qwen3, qwen3_keys);
    /* a Llama with a byte-level (GPT-2) tokenizer, like Llama 3 */
    static const want_tensor llama[] = {{"token_embd.weight", 32, -1},
                                        {"blk.0.attn_q.weight", 32, 32},
                                        {"blk.0.ffn_gate.weight", 32, 64}};
    round_trip(init_model("llama", "tokenizers/gpt2", "--heads 2"), "llama-bpe", llama,
               sizeof llama / sizeof *llama, rope_keys);
    return test_finish("test_export_families");
}
