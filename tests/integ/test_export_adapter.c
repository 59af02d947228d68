/* test_export_adapter.c — `hone export --format gguf-adapter` (issue 8: the
 * adapter alone as a llama.cpp GGUF LoRA adapter). A rank-4 LoRA with random A
 * and B on every target of stories260K is saved in PEFT layout, exported with
 * the binary, and read back with hone's GGUF reader: metadata, names, shapes,
 * types; then for every pair, base GGUF weight + alpha/r * B @ A must equal
 * the merged GGUF export's weight — which holds only if B's q/k rows got the
 * base's permutation (checked the other way round too). The file also passes
 * tests/integ/node/gguf_adapter_check.mjs (@huggingface/gguf) when node is set up. */
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "export/export.h"
#include "format/gguf.h"
#include "model/lora.h"
#include "test.h"

#define RANK 4
#define ALPHA 8.0f

static const char *const gguf_names[LORA_N_TARGETS] = {
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down", "attn_qkv"};

static const char *bin, *base;

/* A trained-looking adapter: B is zero after lora_create, so fill it too. */
static lora_set *make_adapter(const hn_model *m, const char *dir) {
    hn_err err = {0};
    hn_rng rng;
    hn_rng_seed(&rng, 42);
    lora_set *l = NULL;
    CHECK(lora_create(m, RANK, ALPHA, LORA_ALL, &rng, &l, &err) == HN_OK, "%s", err.msg);
    if (!l) return NULL;
    for (int layer = 0; layer < l->n_layers; layer++)
        for (int t = 0; t < LORA_N_TARGETS; t++) {
            lora_pair *p = &l->pairs[layer][t];
            if (!p->A) continue;
            for (size_t i = 0; i < (size_t)p->out * RANK; i++)
                p->B[i] = 0.05f * (2.0f * hn_rng_uniform(&rng) - 1.0f);
        }
    CHECK(lora_save(l, m, dir, &err) == HN_OK, "%s", err.msg);
    return l;
}

static void run(const char *cmd) {
    int st;
    char *out = test_run_cmd(cmd, &st);
    CHECK(st == 0, "%s exited %d:\n%s", cmd, st, out ? out : "");
    printf("%s", out ? out : "");
    free(out);
}

static float *tensor_f32(const gguf_file *f, const char *name, const gguf_tensor **t) {
    hn_err err = {0};
    *t = gguf_find_tensor(f, name);
    CHECK(*t != NULL, "%s: no tensor %s", gguf_path(f), name);
    if (!*t) return NULL;
    float *v = malloc((*t)->n_elems * sizeof *v);
    CHECK(gguf_tensor_to_f32(f, *t, v, &err) == HN_OK, "%s", err.msg);
    return v;
}

static void check_meta(const gguf_file *a, gguf_ttype want_type, const char *arch) {
    hn_err err = {0};
    gguf_str s;
    CHECK(gguf_get_str(a, "general.type", &s, &err) == HN_OK && s.len == 7 &&
              !memcmp(s.p, "adapter", 7), "general.type");
    CHECK(gguf_get_str(a, "adapter.type", &s, &err) == HN_OK && s.len == 4 &&
              !memcmp(s.p, "lora", 4), "adapter.type");
    CHECK(gguf_get_str(a, "general.architecture", &s, &err) == HN_OK &&
              s.len == strlen(arch) && !memcmp(s.p, arch, s.len), "general.architecture");
    int64_t i = gguf_find_kv(a, "adapter.lora.alpha");
    double alpha = 0;
    CHECK(i >= 0 && gguf_kv_type(a, i) == GGUF_FLOAT32, "adapter.lora.alpha must be f32");
    CHECK(gguf_get_float(a, "adapter.lora.alpha", &alpha, &err) == HN_OK && alpha == ALPHA,
          "alpha %g", alpha);
    CHECK(gguf_find_kv(a, "hone.base_weights_hash") >= 0, "no hone.base_weights_hash");
    for (uint64_t k = 0; k < gguf_n_tensors(a); k++) {
        const gguf_tensor *t = gguf_tensor_at(a, k);
        gguf_ttype want = want_type == GGUF_T_Q8_0 && t->ne[0] % 32 ? GGUF_T_F16 : want_type;
        CHECK(t->type == want, "%.*s: type %s", (int)t->name.len, t->name.p,
              gguf_ttype_name(t->type));
    }
}

/* max |base + s*B*A - merged| over one target, relative to max |merged|. */
static double pair_error(const float *W, const float *M, const float *A, const float *B,
                         int out, int in, float scale) {
    double worst = 0, mx = 0;
    for (int o = 0; o < out; o++)
        for (int i = 0; i < in; i++) {
            double v = W[(size_t)o * in + i];
            for (int k = 0; k < RANK; k++)
                v += (double)scale * B[(size_t)o * RANK + k] * A[(size_t)k * in + i];
            double m = M[(size_t)o * in + i];
            worst = fmax(worst, fabs(v - m));
            mx = fmax(mx, fabs(m));
        }
    return worst / (mx > 0 ? mx : 1);
}

/* Every pair reconstructs the merged weight; for llama (whose GGUF q/k rows
 * are permuted) q and k do not with the PEFT (unpermuted) B. For GPT-2 this
 * also checks that the Conv1D (in, out) base was transposed consistently. */
static void check_reconstruct(const gguf_file *a, const gguf_file *bf, const gguf_file *mf,
                              const lora_set *l, double tol, bool llama) {
    int pairs = 0, want = 0;
    for (int layer = 0; layer < l->n_layers; layer++)
        for (int t = 0; t < LORA_N_TARGETS; t++) {
            if (!l->pairs[layer][t].A) continue;
            want++;
            char wn[96], an[112], bn[112];
            snprintf(wn, sizeof wn, "blk.%d.%s.weight", layer, gguf_names[t]);
            snprintf(an, sizeof an, "%s.lora_a", wn);
            snprintf(bn, sizeof bn, "%s.lora_b", wn);
            const gguf_tensor *tw, *tm, *ta, *tb;
            float *W = tensor_f32(bf, wn, &tw), *M = tensor_f32(mf, wn, &tm);
            float *A = tensor_f32(a, an, &ta), *B = tensor_f32(a, bn, &tb);
            if (W && M && A && B) {
                /* llama.cpp's shape rules (llama_adapter_lora_init) */
                CHECK(ta->n_dims == 2 && tb->n_dims == 2, "%s: 2-D", wn);
                CHECK(ta->ne[0] == tw->ne[0] && tb->ne[1] == tw->ne[1], "%s: shapes", wn);
                CHECK(ta->ne[1] == RANK && tb->ne[0] == RANK, "%s: rank", wn);
                const lora_pair *p = &l->pairs[layer][t];
                double e = pair_error(W, M, A, B, p->out, p->in, l->scale);
                CHECK(e < tol, "%s: base + s*B*A differs from merged by %g", wn, e);
                if (llama && (t == LORA_Q || t == LORA_K)) {
                    double e_peft = pair_error(W, M, p->A, p->B, p->out, p->in, l->scale);
                    CHECK(e_peft > 1e-3 && e_peft > 10 * e, "%s: unpermuted B fits too (%g vs %g)?",
                          wn, e_peft, e);
                }
                pairs++;
            }
            free(W), free(M), free(A), free(B);
        }
    CHECK(pairs == want && want > 0, "%d of %d pairs checked", pairs, want);
    CHECK(gguf_n_tensors(a) == (uint64_t)(2 * pairs), "%llu tensors",
          (unsigned long long)gguf_n_tensors(a));
}

static void node_check(const char *adapter, const char *base_gguf) {
    char src[1024], dir[1024], mod[1200], cmd[4096];
    snprintf(src, sizeof src, "%s", __FILE__);
    snprintf(dir, sizeof dir, "%s/node", dirname(src));
    snprintf(mod, sizeof mod, "%s/node_modules/@huggingface/gguf/package.json", dir);
    FILE *f = fopen(mod, "r");
    if (!f || system("node --version > /dev/null 2>&1") != 0) {
        if (f) fclose(f);
        printf("NOTE: node or @huggingface/gguf missing (npm ci in tests/integ/node): "
               "structural check skipped\n");
        return;
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "node '%s/gguf_adapter_check.mjs' '%s' '%s' 2>&1", dir, adapter,
             base_gguf);
    run(cmd);
}

static gguf_file *open_gguf(const char *path) {
    hn_err err = {0};
    gguf_file *f = NULL;
    CHECK(gguf_open(path, &f, &err) == HN_OK, "%s", err.msg);
    return f;
}

/* base: a GGUF file or HF directory. */
static void check_model(const char *base) {
    printf("== %s\n", base);
    hn_err err = {0};
    hn_model *m;
    if (model_load(base, &m, &err) != HN_OK) {
        CHECK(0, "%s", err.msg);
        return;
    }
    const char *dir = test_tmp_path(m->cfg.name);
    lora_set *l = make_adapter(m, dir);
    char base_out[1024], merged_out[1024], cmd[4096];
    snprintf(base_out, sizeof base_out, "%s/%s-base.gguf", test_tmpdir(), m->cfg.name);
    snprintf(merged_out, sizeof merged_out, "%s/%s-merged.gguf", test_tmpdir(), m->cfg.name);
    export_opts o;
    export_opts_default(&o);
    CHECK(export_gguf(m, &o, base_out, &err) == HN_OK, "%s", err.msg);
    static const char *dtypes[] = {"f32", "f16", "q8_0"};
    static const gguf_ttype types[] = {GGUF_T_F32, GGUF_T_F16, GGUF_T_Q8_0};
    static const double tols[] = {1e-6, 2e-3, 1e-2};
    char outs[3][1024];
    for (int k = 0; k < 3; k++) {
        snprintf(outs[k], sizeof outs[k], "%s/%s-adapter-%s.gguf", test_tmpdir(), m->cfg.name,
                 dtypes[k]);
        snprintf(cmd, sizeof cmd, "'%s' export --model '%s' --adapter '%s' --format gguf-adapter "
                 "--dtype %s --out '%s' --valid /dev/null 2>&1", bin, base, dir, dtypes[k], outs[k]);
        run(cmd);
    }
    if (l) {
        lora_merge(l, m);
        CHECK(export_gguf(m, &o, merged_out, &err) == HN_OK, "%s", err.msg);
        gguf_file *bf = open_gguf(base_out), *mf = open_gguf(merged_out);
        for (int k = 0; bf && mf && k < 3; k++) {
            gguf_file *a = open_gguf(outs[k]);
            if (!a) continue;
            check_meta(a, types[k], model_arch_name(m->cfg.arch));
            check_reconstruct(a, bf, mf, l, tols[k], m->cfg.arch == ARCH_LLAMA);
            gguf_close(a);
        }
        if (bf) gguf_close(bf);
        if (mf) gguf_close(mf);
        if (m->cfg.arch == ARCH_LLAMA) node_check(outs[0], base_out);
    }
    lora_free(l);
    model_free(m);
}

int main(void) {
    bin = getenv("HONE_BIN");
    if (!bin) {
        printf("SKIP test_export_adapter: HONE_BIN not set\n");
        return 77;
    }
    base = test_shared("models/stories260K/stories260K.gguf");
    check_model(base);
    check_model(test_shared("models/gpt2-tiny"));
    /* a Qwen3 with head_dim != dim / heads and GQA, around the real Qwen3 tokenizer */
    const char *q3 = test_tmp_path("qwen3-init");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' init-model --arch qwen3 --tokenizer '%s' --out '%s' "
             "--dim 32 --heads 4 --kv-heads 2 --head-dim 16 --layers 1 --context 64 2>&1", bin,
             test_shared("tokenizers/qwen3"), q3);
    run(cmd);
    check_model(q3);
    /* a full fine-tune or a missing adapter is refused with a reason */
    int st;
    snprintf(cmd, sizeof cmd, "'%s' export --model '%s' --format gguf-adapter --out '%s' 2>&1",
             bin, base, test_tmp_path("none.gguf"));
    char *text = test_run_cmd(cmd, &st);
    CHECK(st == 1 && text && strstr(text, "needs --adapter"), "no adapter: %d %s", st,
          text ? text : "");
    free(text);
    return test_finish("test_export_adapter");
}
