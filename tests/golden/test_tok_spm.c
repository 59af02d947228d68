/* test_tok_spm.c — the SentencePiece tokenizer against the stories260K
 * cross-check fixture (ids from HF tokenizers, equal to llama.cpp's on all 21
 * strings), loaded both from the HF tokenizer.json and from the GGUF; also the
 * Metaspace-pre-tokenizer variant of tokenizer.json against its fixture ids. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "test.h"
#include "tokenizer/tok.h"

static void print_ids(const char *label, const int32_t *ids, size_t n) {
    fprintf(stderr, "  %s:", label);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n");
}

static void ids_from_json(const json_t *arr, int32_t *out, size_t *n) {
    *n = json_array_size(arr);
    for (size_t i = 0; i < *n; i++) out[i] = (int32_t)json_integer_value(json_array_get(arr, i));
}

/* Encodes text with BOS and compares with the expected ids and decode. */
static void check_case(const char *label, const tok *t, const json_t *c, const char *ids_field,
                       bool check_decode) {
    const char *text = json_string_value(json_object_get(c, "text"));
    size_t tlen = json_string_length(json_object_get(c, "text"));
    int32_t want[256];
    size_t nwant;
    ids_from_json(json_object_get(c, ids_field), want, &nwant);
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    hn_err err = {0};
    hn_status st = tok_encode(t, text, tlen, true, &ids, &n, &cap, &err);
    CHECK(st == HN_OK, "%s: encode \"%s\": %s", label, text, err.msg);
    bool same = n == nwant && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
    CHECK(same, "%s: ids for \"%s\" (%s)", label, text, ids_field);
    if (!same) {
        print_ids("got ", ids, n);
        print_ids("want", want, nwant);
    }
    if (check_decode) {
        const char *hf = json_string_value(json_object_get(c, "hf_decode"));
        hn_buf out;
        hn_buf_init(&out);
        tok_decode(t, want, nwant, &out);
        CHECK(strcmp(out.data ? out.data : "", hf) == 0, "%s: decode of \"%s\": got \"%s\" want \"%s\"",
              label, text, out.data ? out.data : "", hf);
        hn_buf_free(&out);
    }
    free(ids);
}

static void check_all(const char *label, const tok *t, const json_t *fx, const char *field,
                      bool check_decode) {
    size_t i;
    json_t *c;
    json_array_foreach(fx, i, c) check_case(label, t, c, field, check_decode);
}

static void check_basics(const char *label, const tok *t) {
    CHECK(tok_get_kind(t) == TOK_SPM, "%s", label);
    CHECK(tok_vocab_size(t) == 512, "%s: vocab %d", label, tok_vocab_size(t));
    CHECK(tok_bos(t) == 1 && tok_eos(t) == 2 && tok_unk(t) == 0, "%s: specials %d %d %d", label,
          tok_bos(t), tok_eos(t), tok_unk(t));
    CHECK(tok_default_add_bos(t), "%s", label);
    CHECK(strcmp(tok_piece(t, 13), "<0x0A>") == 0, "%s: piece 13 '%s'", label, tok_piece(t, 13));
    CHECK(strcmp(tok_piece(t, 1), "<s>") == 0, "%s", label);
    CHECK(strcmp(tok_piece(t, 512), "") == 0 && strcmp(tok_piece(t, -1), "") == 0, "%s", label);
    CHECK(tok_is_special(t, 1) && tok_is_special(t, 2) && tok_is_special(t, 0), "%s", label);
    CHECK(!tok_is_special(t, 13) && !tok_is_special(t, 300), "%s", label);
    CHECK(tok_find(t, "<0x0A>", 6) == 13, "%s", label);
}

/* Writes a copy of the stories tokenizer.json with the Metaspace pre-tokenizer
 * (prepend_scheme "first") instead of the legacy normalizer. */
static const char *metaspace_variant(void) {
    static char path[512];
    json_error_t je;
    json_t *j = json_load_file(test_shared("models/stories260K/hf/tokenizer.json"), 0, &je);
    if (!j) return NULL;
    json_object_set_new(j, "normalizer", json_null());
    json_object_set_new(j, "pre_tokenizer",
                        json_pack("{s:s, s:s, s:s, s:b}", "type", "Metaspace", "replacement",
                                  "\xE2\x96\x81", "prepend_scheme", "first", "split", 0));
    snprintf(path, sizeof path, "%s/tokenizer.json", test_tmpdir());
    int rc = json_dump_file(j, path, 0);
    json_decref(j);
    return rc == 0 ? path : NULL;
}

int main(void) {
    json_error_t je;
    json_t *fx = json_load_file(test_shared("fixtures/stories260K/tokenizer_crosscheck.json"), 0, &je);
    CHECK(json_is_array(fx) && json_array_size(fx) == 21, "fixture: %s", je.text);
    if (!fx) return test_finish("test_tok_spm");

    hn_err err = {0};
    tok *hf = NULL;
    hn_status st = tok_from_hf_json(test_shared("models/stories260K/hf/tokenizer.json"), &hf, &err);
    CHECK(st == HN_OK, "hf: %s", err.msg);
    if (hf) {
        check_basics("hf", hf);
        check_all("hf", hf, fx, "hf_tokenizer_json", true);
        tok_free(hf);
    }

    gguf_file *g = NULL;
    st = gguf_open(test_shared("models/stories260K/stories260K.gguf"), &g, &err);
    CHECK(st == HN_OK, "gguf_open: %s", err.msg);
    tok *gt = NULL;
    if (g) {
        st = tok_from_gguf(g, &gt, &err);
        CHECK(st == HN_OK, "gguf tok: %s", err.msg);
    }
    if (gt) {
        check_basics("gguf", gt);
        check_all("gguf", gt, fx, "llamacpp", true);
        check_all("gguf", gt, fx, "hf_tokenizer_json", false);
        tok_free(gt);
    }
    if (g) gguf_close(g);

    const char *ms = metaspace_variant();
    tok *mt = NULL;
    st = ms ? tok_from_hf_json(ms, &mt, &err) : HN_EIO;
    CHECK(st == HN_OK, "metaspace variant: %s", err.msg);
    if (mt) {
        check_all("metaspace", mt, fx, "hf_metaspace_first_variant", false);
        tok_free(mt);
    }
    json_decref(fx);
    return test_finish("test_tok_spm");
}
