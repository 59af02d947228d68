/* test_tok_bpe.c — byte-level BPE against the fixtures of Hugging Face
 * tokenizers (../shared/fixtures/tokenizers/{gpt2,qwen3}.json, 41 strings each):
 * ids with special-token parsing, ids without it, decoded text (special tokens
 * kept) and streaming decode; the GPT-2 and Qwen3 tokenizer.json files, a
 * GGUF (tokenizer.ggml.model "gpt2") written from the GPT-2 vocab + merges that
 * must encode the same, and GPT-2's vocab.json + merges.txt pair (with and
 * without the "#version" line, with and without tokenizer_config.json), whose
 * damaged copies must be refused naming the file and line. Qwen3's NFC
 * normalizer: the NFD form of every fixture string (5 differ) must give the
 * fixture's ids (HF normalises it back); GPT-2 has no normalizer, so there
 * the NFD forms must give other ids. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "format/gguf.h"
#include "test.h"
#include "tokenizer/tok.h"

static void print_ids(const char *label, const int32_t *ids, size_t n) {
    fprintf(stderr, "  %s:", label);
    for (size_t i = 0; i < n && i < 64; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "%s\n", n > 64 ? " ..." : "");
}

static int32_t *ids_from_json(const json_t *arr, size_t *n) {
    *n = json_array_size(arr);
    int32_t *v = malloc((*n ? *n : 1) * sizeof *v);
    for (size_t i = 0; i < *n; i++) v[i] = (int32_t)json_integer_value(json_array_get(arr, i));
    return v;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Encodes text (parse_special as asked) and compares with the field's ids. */
static void check_ids(const char *label, const tok *t, const json_t *c, const char *field,
                      bool parse) {
    const json_t *jt = json_object_get(c, "text");
    const char *text = json_string_value(jt);
    size_t nwant, n = 0, cap = 0;
    int32_t *want = ids_from_json(json_object_get(c, field), &nwant), *ids = NULL;
    hn_err err = {0};
    double t0 = now_s();
    hn_status st = tok_encode_ex(t, text, json_string_length(jt), false, parse, &ids, NULL, &n,
                                 &cap, &err);
    double dt = now_s() - t0;
    CHECK(st == HN_OK, "%s: encode \"%.40s\": %s", label, text, err.msg);
    /* a guard against pathological (runaway) encodes, not a benchmark: loose
     * enough for a loaded 2-core CI machine under ASan (normal: < 1 ms) */
    CHECK(dt < 2.0, "%s: encoding \"%.40s\" took %.3f s", label, text, dt);
    bool same = n == nwant && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
    CHECK(same, "%s: ids for \"%.60s\" (%s)", label, text, field);
    if (!same) {
        print_ids("got ", ids, n);
        print_ids("want", want, nwant);
    }
    free(ids);
    free(want);
}

/* tok_encode (the default: specials parsed) equals tok_encode_ex(parse = true). */
static void check_default(const char *label, const tok *t, const json_t *c) {
    const json_t *jt = json_object_get(c, "text");
    size_t nwant, n = 0, cap = 0;
    int32_t *want = ids_from_json(json_object_get(c, "ids"), &nwant), *ids = NULL;
    hn_err err = {0};
    hn_status st = tok_encode(t, json_string_value(jt), json_string_length(jt), false, &ids, &n,
                              &cap, &err);
    CHECK(st == HN_OK && n == nwant && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0),
          "%s: tok_encode \"%.40s\"", label, json_string_value(jt));
    free(ids);
    free(want);
}

/* Decoding the fixture ids (specials kept) gives `decoded`; streaming pieces
 * concatenate to the same bytes. */
static void check_decode(const char *label, const tok *t, const json_t *c, const char *field) {
    const json_t *jd = json_object_get(c, "decoded");
    size_t n;
    int32_t *ids = ids_from_json(json_object_get(c, field), &n);
    hn_buf a, b;
    hn_buf_init(&a);
    hn_buf_init(&b);
    tok_decode_ex(t, ids, n, false, &a);
    for (size_t i = 0; i < n; i++) tok_decode_piece_ex(t, i ? ids[i - 1] : -1, ids[i], false, &b);
    bool ok = a.len == json_string_length(jd) && memcmp(a.data ? a.data : "", json_string_value(jd), a.len) == 0;
    CHECK(ok, "%s: decode (%s) of \"%.40s\" gives \"%.60s\"", label, field,
          json_string_value(jd), a.data ? a.data : "");
    CHECK(a.len == b.len && memcmp(a.data ? a.data : "", b.data ? b.data : "", a.len) == 0,
          "%s: streaming decode differs for \"%.40s\"", label, json_string_value(jd));
    hn_buf_free(&a);
    hn_buf_free(&b);
    free(ids);
}

static void check_fixture(const char *label, const tok *t, const char *fixture) {
    json_error_t je;
    json_t *fx = json_load_file(test_shared(fixture), 0, &je);
    const json_t *cases = json_object_get(fx, "cases");
    CHECK(json_array_size(cases) == 41, "%s: fixture %s: %s", label, fixture, je.text);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        check_ids(label, t, c, "ids", true);
        check_ids(label, t, c, "ids_no_special_parsing", false);
        check_default(label, t, c);
        check_decode(label, t, c, "ids");
        check_decode(label, t, c, "ids_no_special_parsing");
    }
    json_decref(fx);
}

static tok *load_hf(const char *rel) {
    hn_err err = {0};
    tok *t = NULL;
    hn_status st = tok_from_hf_json(test_shared(rel), &t, &err);
    CHECK(st == HN_OK, "%s: %s", rel, err.msg);
    return t;
}

static void check_gpt2_basics(const char *label, const tok *t) {
    CHECK(tok_get_kind(t) == TOK_BPE_BYTES, "%s", label);
    CHECK(tok_vocab_size(t) == 50257, "%s: vocab %d", label, tok_vocab_size(t));
    CHECK(tok_bos(t) == 50256 && tok_eos(t) == 50256, "%s: bos %d eos %d", label, tok_bos(t),
          tok_eos(t));
    CHECK(!tok_default_add_bos(t), "%s: GPT-2 adds no BOS", label);
    CHECK(tok_is_special(t, 50256) && !tok_is_special(t, 995), "%s", label);
    CHECK(strcmp(tok_piece(t, 995), "\xC4\xA0world") == 0, "%s: piece 995", label);
}

/* ---- GGUF from the GPT-2 tokenizer.json ---- */

static const char *write_gpt2_gguf(void) {
    static char path[512];
    json_error_t je;
    json_t *j = json_load_file(test_shared("tokenizers/gpt2/tokenizer.json"), 0, &je);
    const json_t *vocab = json_object_get(json_object_get(j, "model"), "vocab");
    const json_t *merges = json_object_get(json_object_get(j, "model"), "merges");
    size_t nv = json_object_size(vocab), nm = json_array_size(merges);
    const char **toks = calloc(nv, sizeof *toks), **mg = calloc(nm ? nm : 1, sizeof *mg);
    int32_t *types = calloc(nv, sizeof *types);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)vocab, key, v) {
        toks[json_integer_value(v)] = key;
        types[json_integer_value(v)] = 1;
    }
    types[50256] = 3; /* control */
    for (size_t i = 0; i < nm; i++) mg[i] = json_string_value(json_array_get(merges, i));
    gguf_writer *w = gguf_writer_create();
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_set_str(w, "tokenizer.ggml.pre", "gpt-2");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, nv);
    gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, nv);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", mg, nm);
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 50256);
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 50256);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", false);
    snprintf(path, sizeof path, "%s/gpt2-tok.gguf", test_tmpdir());
    hn_err err = {0};
    hn_status st = gguf_writer_write(w, path, &err);
    CHECK(st == HN_OK, "gguf write: %s", err.msg);
    gguf_writer_free(w);
    free(toks);
    free(mg);
    free(types);
    json_decref(j);
    return st == HN_OK ? path : NULL;
}

static void check_gguf(void) {
    const char *path = write_gpt2_gguf();
    if (!path) return;
    hn_err err = {0};
    gguf_file *g = NULL;
    tok *t = NULL;
    hn_status st = gguf_open(path, &g, &err);
    CHECK(st == HN_OK, "gguf_open: %s", err.msg);
    if (g) {
        st = tok_from_gguf(g, &t, &err);
        CHECK(st == HN_OK, "gguf tok: %s", err.msg);
    }
    if (t) {
        check_gpt2_basics("gguf", t);
        check_fixture("gguf", t, "fixtures/tokenizers/gpt2.json");
        tok_free(t);
    }
    if (g) gguf_close(g);
}

/* ---- NFC ---- */

/* Encodes the NFD form of every fixture string; returns how many gave the
 * fixture's ids, and counts the strings whose NFD form differs. */
static int nfd_matches(const tok *t, const char *fixture, int *differ) {
    json_t *fx = json_load_file(test_shared(fixture), 0, NULL);
    size_t i;
    json_t *c;
    int same = 0;
    *differ = 0;
    json_array_foreach(json_object_get(fx, "cases"), i, c) {
        const char *text = json_string_value(json_object_get(c, "text"));
        char *nfd = (char *)utf8proc_NFD((const utf8proc_uint8_t *)text);
        size_t nw, n = 0, cap = 0;
        int32_t *want = ids_from_json(json_object_get(c, "ids"), &nw), *ids = NULL;
        hn_err err = {0};
        *differ += nfd && strcmp(nfd, text) != 0;
        if (nfd && tok_encode(t, nfd, strlen(nfd), false, &ids, &n, &cap, &err) == HN_OK)
            same += n == nw && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
        free(ids);
        free(want);
        free(nfd);
    }
    json_decref(fx);
    return same;
}

static void check_nfc(const tok *qwen3, const tok *gpt2) {
    int differ;
    int same = nfd_matches(qwen3, "fixtures/tokenizers/qwen3.json", &differ);
    CHECK(same == 41 && differ >= 5, "qwen3: NFD forms: %d of 41 give the fixture ids (%d differ)",
          same, differ);
    same = nfd_matches(gpt2, "fixtures/tokenizers/gpt2.json", &differ);
    CHECK(same == 41 - differ && differ >= 5, "gpt2 (no normalizer): %d same, %d differ", same,
          differ);
}

/* ---- vocab.json + merges.txt ---- */

static char *slurp(const char *rel, size_t *len) { return test_read(test_shared(rel), len); }

/* A directory with GPT-2's vocab.json, merges.txt (header line if asked) and
 * tokenizer_config.json (if asked). */
static const char *pair_dir(const char *name, bool header, bool config) {
    static char dirs[4][512];
    static int k;
    char *dir = dirs[k++ % 4], path[1024];
    snprintf(dir, sizeof dirs[0], "%s", test_tmp_path(name));
    snprintf(path, sizeof path, "mkdir -p '%s'", dir);
    CHECK(system(path) == 0, "%s", path);
    size_t n;
    char *v = slurp("tokenizers/gpt2/vocab.json", &n);
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    test_write_file(path, v, n);
    free(v);
    char *m = slurp("tokenizers/gpt2/merges.txt", &n);
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    FILE *f = fopen(path, "wb");
    if (header) fputs("#version: 0.2\n", f);
    fwrite(m, 1, n, f);
    fclose(f);
    free(m);
    if (config) {
        char *c = slurp("tokenizers/gpt2/tokenizer_config.json", &n);
        snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
        test_write_file(path, c, n);
        free(c);
    }
    return dir;
}

static void check_pair(const char *label, bool header, bool config) {
    const char *dir = pair_dir(label, header, config);
    hn_err err = {0};
    tok *t = NULL;
    hn_status st = tok_from_hf_dir(dir, &t, &err);
    CHECK(st == HN_OK, "%s: %s", label, err.msg);
    if (!t) return;
    check_gpt2_basics(label, t);
    check_fixture(label, t, "fixtures/tokenizers/gpt2.json");
    tok_free(t);
}

/* Replaces file name in dir by text and expects an error containing want. */
static void check_bad(const char *dir, const char *name, const char *text, const char *want) {
    char path[1024], keep[1100];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(keep, sizeof keep, "%s.keep", path);
    CHECK(rename(path, keep) == 0, "rename %s", path);
    test_write_file(path, text, strlen(text));
    hn_err err = {0};
    tok *t = NULL;
    hn_status st = tok_from_hf_dir(dir, &t, &err);
    CHECK(st != HN_OK && strstr(err.msg, want), "%s: wanted an error with \"%s\", got %s: %s",
          name, want, hn_status_name(st), err.msg);
    tok_free(t);
    CHECK(rename(keep, path) == 0, "rename %s", keep);
}

static void check_vocab_merges(void) {
    check_pair("pair", false, true);
    check_pair("pair-version", true, true);
    check_pair("pair-noconfig", false, false);
    const char *dir = pair_dir("pair-bad", true, true);
    char want[1200];
    snprintf(want, sizeof want, "%s/vocab.json:3:", dir);
    check_bad(dir, "vocab.json", "{\"a\": 0,\n \"b\": 1,\n \"c\": ", want);
    snprintf(want, sizeof want, "%s/vocab.json:1: expected a non-empty JSON object", dir);
    check_bad(dir, "vocab.json", "[1, 2]", want);
    snprintf(want, sizeof want, "%s/merges.txt:3: expected \"left right\"", dir);
    check_bad(dir, "merges.txt", "#version: 0.2\n\xC4\xA0 t\n\xC4\xA0" "a\n", want);
    snprintf(want, sizeof want, "%s/merges.txt:2: right part \"zzzq\" is not in vocab.json", dir);
    check_bad(dir, "merges.txt", "\xC4\xA0 t\nh zzzq\n", want);
    snprintf(want, sizeof want, "%s/merges.txt:1: merged piece \"qz\" is not in vocab.json", dir);
    check_bad(dir, "merges.txt", "q z\n", want);
    hn_err err = {0};
    tok *t = NULL;
    CHECK(tok_from_hf_dir(test_tmpdir(), &t, &err) == HN_ENOTFOUND, "empty dir: %s", err.msg);
}

int main(void) {
    tok *g2 = load_hf("tokenizers/gpt2/tokenizer.json");
    if (g2) {
        check_gpt2_basics("gpt2", g2);
        check_fixture("gpt2", g2, "fixtures/tokenizers/gpt2.json");
    }
    tok *q = load_hf("tokenizers/qwen3/tokenizer.json");
    if (q) {
        CHECK(tok_get_kind(q) == TOK_BPE_BYTES, "qwen3");
        CHECK(tok_bos(q) == -1 && tok_eos(q) == 151645 && tok_pad(q) == 151643,
              "qwen3: bos %d eos %d pad %d", tok_bos(q), tok_eos(q), tok_pad(q));
        CHECK(!tok_default_add_bos(q), "qwen3");
        CHECK(tok_vocab_size(q) == 151669, "qwen3: vocab %d", tok_vocab_size(q));
        check_fixture("qwen3", q, "fixtures/tokenizers/qwen3.json");
        if (g2) check_nfc(q, g2);
        tok_free(q);
    }
    tok_free(g2);
    check_gguf();
    check_vocab_merges();
    return test_finish("test_tok_bpe");
}
