/* test_export_tok_bpe.c — byte-level BPE tokenizers in exports (issue 7/8): a
 * small random Llama model carrying GPT-2's tokenizer (loaded from vocab.json +
 * merges.txt) or Qwen3's (tokenizer.json, chat template), with a vocab_size
 * larger than the tokenizer's, is exported to GGUF and to an HF directory.
 * The GGUF must hold tokenizer.ggml.model "gpt2", the right pre name, merges,
 * token types, special ids, [PADn] padding and the chat template, load back as
 * a model, and its tokenizer must encode every fixture string of
 * fixtures/tokenizers/{gpt2,qwen3}.json exactly as HF does (ids with and
 * without special parsing, decode); so must the synthesised tokenizer.json. */
#include <jansson.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "export/export.h"
#include "model/llama.h"
#include "test.h"
#include "tokenizer/tok.h"

#define EXTRA 11 /* model rows beyond the tokenizer: [PADn] tokens in GGUF */

static int32_t *ids_of(const json_t *arr, size_t *n) {
    *n = json_array_size(arr);
    int32_t *v = malloc((*n ? *n : 1) * sizeof *v);
    for (size_t i = 0; i < *n; i++) v[i] = (int32_t)json_integer_value(json_array_get(arr, i));
    return v;
}

static void check_case(const char *label, const tok *t, const json_t *c, const char *field,
                       bool parse) {
    const json_t *jt = json_object_get(c, "text"), *jd = json_object_get(c, "decoded");
    size_t nw, n = 0, cap = 0;
    int32_t *want = ids_of(json_object_get(c, field), &nw), *ids = NULL;
    hn_err err = {0};
    hn_status st = tok_encode_ex(t, json_string_value(jt), json_string_length(jt), false, parse,
                                 &ids, NULL, &n, &cap, &err);
    CHECK(st == HN_OK && n == nw && (!n || !memcmp(ids, want, n * sizeof *ids)),
          "%s: %s of \"%.60s\" differ (%s)", label, field, json_string_value(jt), err.msg);
    hn_buf b;
    hn_buf_init(&b);
    tok_decode_ex(t, want, nw, false, &b);
    CHECK(b.len == json_string_length(jd) && !memcmp(b.data ? b.data : "", json_string_value(jd), b.len),
          "%s: decode of \"%.60s\"", label, json_string_value(jt));
    hn_buf_free(&b);
    free(ids);
    free(want);
}

static void check_fixture(const char *label, const tok *t, const char *fixture) {
    json_t *fx = json_load_file(test_shared(fixture), 0, NULL);
    const json_t *cases = json_object_get(fx, "cases");
    CHECK(json_array_size(cases) == 41, "%s: fixture %s", label, fixture);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        check_case(label, t, c, "ids", true);
        check_case(label, t, c, "ids_no_special_parsing", false);
    }
    json_decref(fx);
}

static bool str_key(const gguf_file *f, const char *key, const char *want) {
    gguf_str s;
    return gguf_get_str(f, key, &s, NULL) == HN_OK && s.len == strlen(want) &&
           !memcmp(s.p, want, s.len);
}

static int64_t int_key(const gguf_file *f, const char *key) {
    int64_t v = -1;
    return gguf_get_int(f, key, &v, NULL) == HN_OK ? v : -1;
}

typedef struct expect {
    const char *label, *pre, *fixture;
    int n_tok, n_merges, eos, eot, pad, special; /* special: one control token's id */
} expect;

static void check_gguf_keys(const gguf_file *f, const hn_model *m, const expect *e) {
    CHECK(str_key(f, "tokenizer.ggml.model", "gpt2"), "%s: model", e->label);
    CHECK(str_key(f, "tokenizer.ggml.pre", e->pre), "%s: pre", e->label);
    gguf_arr a;
    CHECK(gguf_get_arr(f, "tokenizer.ggml.merges", &a, NULL) == HN_OK && a.type == GGUF_STRING &&
              a.n == (uint64_t)e->n_merges, "%s: merges", e->label);
    CHECK(gguf_get_arr(f, "tokenizer.ggml.tokens", &a, NULL) == HN_OK &&
              a.n == (uint64_t)(e->n_tok + EXTRA), "%s: tokens", e->label);
    gguf_str last = gguf_arr_str(&a, a.n - 1);
    char pad[32];
    snprintf(pad, sizeof pad, "[PAD%d]", e->n_tok + EXTRA - 1);
    CHECK(last.len == strlen(pad) && !memcmp(last.p, pad, last.len), "%s: padding", e->label);
    CHECK(gguf_get_arr(f, "tokenizer.ggml.token_type", &a, NULL) == HN_OK &&
              gguf_arr_num(&a, (uint64_t)e->special) == 3 && gguf_arr_num(&a, 100) == 1 &&
              gguf_arr_num(&a, a.n - 1) == 5, "%s: token types", e->label);
    CHECK(gguf_find_kv(f, "tokenizer.ggml.scores") < 0, "%s: no scores for gpt2", e->label);
    CHECK(int_key(f, "tokenizer.ggml.eos_token_id") == e->eos, "%s: eos", e->label);
    CHECK(int_key(f, "tokenizer.ggml.eot_token_id") == e->eot, "%s: eot", e->label);
    CHECK(int_key(f, "tokenizer.ggml.padding_token_id") == e->pad, "%s: pad", e->label);
    bool add_bos = true;
    CHECK(gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &add_bos, NULL) == HN_OK && !add_bos,
          "%s: add_bos_token", e->label);
    gguf_str ct;
    if (m->chat_template)
        CHECK(gguf_get_str(f, "tokenizer.chat_template", &ct, NULL) == HN_OK &&
                  ct.len == strlen(m->chat_template) && !memcmp(ct.p, m->chat_template, ct.len),
              "%s: chat template", e->label);
}

static void node_check(const char *path) {
    char src[1024], dir[1024], mod[1200], cmd[4096];
    snprintf(src, sizeof src, "%s", __FILE__);
    snprintf(dir, sizeof dir, "%s/../integ/node", dirname(src));
    snprintf(mod, sizeof mod, "%s/node_modules/@huggingface/gguf/package.json", dir);
    FILE *f = fopen(mod, "r");
    if (!f || system("node --version > /dev/null 2>&1") != 0) {
        if (f) fclose(f);
        printf("NOTE: node or @huggingface/gguf missing: structural check skipped\n");
        return;
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "node '%s/gguf_check.mjs' '%s' f32 2>&1", dir, path);
    int st;
    char *out = test_run_cmd(cmd, &st);
    CHECK(st == 0, "gguf_check:\n%s", out ? out : "");
    printf("%s", out ? out : "");
    free(out);
}

static void check_gguf(const hn_model *m, const expect *e) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.gguf", test_tmpdir(), e->label);
    export_opts o;
    export_opts_default(&o);
    hn_err err = {0};
    CHECK(export_gguf(m, &o, path, &err) == HN_OK, "%s: %s", e->label, err.msg);
    gguf_file *f = NULL;
    CHECK(gguf_open(path, &f, &err) == HN_OK, "%s", err.msg);
    if (!f) return;
    check_gguf_keys(f, m, e);
    tok *t = NULL;
    CHECK(tok_from_gguf(f, &t, &err) == HN_OK, "%s: %s", e->label, err.msg);
    gguf_close(f);
    if (t) check_fixture(e->label, t, e->fixture);
    tok_free(t);
    hn_model *back = NULL;
    CHECK(model_load(path, &back, &err) == HN_OK, "%s: loading the export: %s", e->label, err.msg);
    if (back) {
        CHECK(tok_vocab_size(back->tok) == m->cfg.vocab_size, "%s: vocab", e->label);
        CHECK(!m->chat_template || (back->chat_template &&
                                    !strcmp(back->chat_template, m->chat_template)),
              "%s: template", e->label);
    }
    model_free(back);
    node_check(path);
}

static void check_hf(const hn_model *m, const expect *e) {
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s/%s_hf", test_tmpdir(), e->label);
    export_opts o;
    export_opts_default(&o);
    hn_err err = {0};
    CHECK(export_hf(m, &o, dir, &err) == HN_OK, "%s: %s", e->label, err.msg);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    tok *t = NULL;
    CHECK(tok_from_hf_json(path, &t, &err) == HN_OK, "%s: %s", e->label, err.msg);
    if (t) {
        check_fixture(e->label, t, e->fixture);
        CHECK(tok_eos(t) == e->eos && tok_pad(t) == (e->pad >= 0 ? e->pad : tok_pad(t)),
              "%s: hf eos %d pad %d", e->label, tok_eos(t), tok_pad(t));
        CHECK(!tok_default_add_bos(t), "%s: hf add bos", e->label);
    }
    tok_free(t);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    json_t *cfg = json_load_file(path, 0, NULL);
    const char *eos = json_string_value(json_object_get(cfg, "eos_token"));
    const char *ct = json_string_value(json_object_get(cfg, "chat_template"));
    CHECK(eos && m->tok && !strcmp(eos, tok_piece(m->tok, e->eos)), "%s: eos_token", e->label);
    CHECK(!m->chat_template || (ct && !strcmp(ct, m->chat_template)), "%s: chat_template",
          e->label);
    json_decref(cfg);
}

static hn_model *model_with(tok *t, char *chat_template) {
    model_config c = {.dim = 16, .hidden_dim = 32, .n_layers = 1, .n_heads = 2,
                      .n_kv_heads = 1, .head_dim = 8, .max_seq_len = 64, .norm_eps = 1e-5f,
                      .rope_theta = 10000.0f, .tied_embeddings = true};
    c.vocab_size = tok_vocab_size(t) + EXTRA;
    hn_model *m = NULL;
    hn_err err = {0};
    CHECK(model_create_random(&c, 3, &m, &err) == HN_OK, "%s", err.msg);
    if (!m) {
        tok_free(t);
        free(chat_template);
        return NULL;
    }
    m->tok = t;
    m->chat_template = chat_template;
    return m;
}

static void run(tok *t, char *chat_template, const expect *e) {
    if (!t) return;
    hn_model *m = model_with(t, chat_template);
    if (!m) return;
    check_gguf(m, e);
    check_hf(m, e);
    model_free(m);
}

int main(void) {
    hn_err err = {0};
    tok *t = NULL;
    CHECK(tok_from_vocab_merges(test_shared("tokenizers/gpt2/vocab.json"),
                                test_shared("tokenizers/gpt2/merges.txt"), &t, &err) == HN_OK,
          "%s", err.msg);
    expect gpt2 = {"gpt2", "gpt-2", "fixtures/tokenizers/gpt2.json", 50257, 50000, 50256, -1,
                   -1, 50256};
    run(t, NULL, &gpt2);

    t = NULL;
    CHECK(tok_from_hf_json(test_shared("tokenizers/qwen3/tokenizer.json"), &t, &err) == HN_OK,
          "%s", err.msg);
    json_t *cfg = json_load_file(test_shared("tokenizers/qwen3/tokenizer_config.json"), 0, NULL);
    const char *ct = json_string_value(json_object_get(cfg, "chat_template"));
    expect qwen3 = {"qwen3", "qwen2", "fixtures/tokenizers/qwen3.json", 151669, 151387, 151645,
                    151645, 151643, 151644};
    run(t, ct ? strdup(ct) : NULL, &qwen3);
    json_decref(cfg);
    return test_finish("test_export_tok_bpe");
}
