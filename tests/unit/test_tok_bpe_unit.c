/* test_tok_bpe_unit.c — byte-level BPE edge cases: invalid UTF-8 and empty
 * input (real GPT-2 / Qwen3 files), streaming decode of tokens that end inside a
 * UTF-8 character, offsets, added-token matching (longest first, or off), merge
 * ranks on a small hand-built tokenizer.json, the NFC normalizer (alone or in a
 * Sequence: decomposed input encodes as composed, offsets point into the
 * caller's text), and corrupt tokenizer.json / GGUF variants refused with
 * messages naming the file and the field. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "test.h"
#include "tokenizer/tok.h"

typedef struct enc_out {
    int32_t *ids;
    uint32_t *starts;
    size_t n, cap;
} enc_out;

static hn_status enc(const tok *t, const char *s, size_t len, bool parse, enc_out *o) {
    hn_err err = {0};
    o->n = 0;
    hn_status st = tok_encode_ex(t, s, len, false, parse, &o->ids, &o->starts, &o->n, &o->cap, &err);
    CHECK(st == HN_OK, "encode: %s", err.msg);
    return st;
}

static void enc_free(enc_out *o) {
    free(o->ids);
    free(o->starts);
}

/* decode(encode(s)) == s byte for byte, streaming equals whole, offsets rise. */
static void check_roundtrip(const char *label, const tok *t, const char *s, size_t len) {
    enc_out o = {0};
    if (enc(t, s, len, true, &o) != HN_OK) return;
    hn_buf a, b;
    hn_buf_init(&a);
    hn_buf_init(&b);
    tok_decode(t, o.ids, o.n, &a);
    for (size_t i = 0; i < o.n; i++) tok_decode_piece(t, i ? o.ids[i - 1] : -1, o.ids[i], &b);
    CHECK(a.len == len && memcmp(a.data ? a.data : "", s, len) == 0, "%s: roundtrip (%zu -> %zu bytes)",
          label, len, a.len);
    CHECK(b.len == a.len && memcmp(a.data ? a.data : "", b.data ? b.data : "", a.len) == 0,
          "%s: streaming", label);
    for (size_t i = 0; i < o.n; i++)
        CHECK(o.starts[i] < len && (i == 0 || o.starts[i] > o.starts[i - 1]), "%s: start %zu = %u",
              label, i, o.starts[i]);
    hn_buf_free(&a);
    hn_buf_free(&b);
    enc_free(&o);
}

static void test_real(const char *rel, int eot) {
    hn_err err = {0};
    tok *t = NULL;
    if (tok_from_hf_json(test_shared(rel), &t, &err) != HN_OK) {
        CHECK(0, "%s: %s", rel, err.msg);
        return;
    }
    const char bad[] = "\xff\xfe abc \xc3 \xe6\x97 x\xed\xa0\x80y\xf0\x9f\x98"; /* truncated at end */
    check_roundtrip(rel, t, bad, sizeof bad - 1);
    check_roundtrip(rel, t, "a\0b", 3); /* NUL inside */
    check_roundtrip(rel, t, "\xF0\x9F\x98\x80\xF0\x9F\x8E\x89 \xE4\xB8\xAD", 11);
    enc_out o = {0};
    enc(t, "", 0, true, &o);
    CHECK(o.n == 0, "%s: empty text gives %zu ids", rel, o.n);
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    CHECK(tok_encode(t, "", 0, true, &ids, &n, &cap, &err) == HN_OK, "%s", err.msg);
    CHECK(tok_bos(t) < 0 ? n == 0 : n == 1 && ids[0] == tok_bos(t), "%s: empty + BOS: %zu", rel, n);
    free(ids);
    /* special text: parsed -> one id starting at its offset; plain -> several */
    enc(t, "a<|endoftext|>b", 15, true, &o);
    CHECK(o.n == 3 && o.ids[1] == eot && o.starts[1] == 1 && o.starts[2] == 14, "%s: special n=%zu",
          rel, o.n);
    enc(t, "a<|endoftext|>b", 15, false, &o);
    CHECK(o.n > 3, "%s: no special parsing n=%zu", rel, o.n);
    /* a token ending inside a UTF-8 character: its piece is the raw bytes */
    enc(t, "\xF0\x9F\x98\x80", 4, true, &o);
    hn_buf b;
    hn_buf_init(&b);
    if (o.n > 1) tok_decode_piece(t, -1, o.ids[0], &b);
    CHECK(o.n == 1 || (b.len > 0 && b.len < 4 && memcmp(b.data, "\xF0\x9F\x98\x80", b.len) == 0),
          "%s: partial character piece", rel);
    hn_buf_clear(&b);
    tok_decode(t, &eot, 1, &b);
    CHECK(b.len == 0, "%s: special skipped by tok_decode", rel);
    tok_decode_ex(t, &eot, 1, false, &b);
    CHECK(b.len == 13 && memcmp(b.data, "<|endoftext|>", 13) == 0, "%s: special kept", rel);
    hn_buf_free(&b);
    enc_free(&o);
    tok_free(t);
}

/* ---- a small hand-built byte-level tokenizer.json ---- */

static void spell(unsigned b, char *out) {
    unsigned cp = b <= 0x20 ? 256 + b : (b >= 0x7F && b <= 0xA0) ? 256 + 33 + (b - 0x7F)
                : b == 0xAD ? 323 : b;
    if (cp < 0x80) {
        out[0] = (char)cp, out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3F)), out[2] = 0;
    }
}

/* Valid: 256 byte pieces, "Ġt" 256, "he" 257, "Ġthe" 258; added <|x|> 259, <|xy|> 260. */
static json_t *small_json(void) {
    json_t *vocab = json_object();
    for (unsigned b = 0; b < 256; b++) {
        char p[4];
        spell(b, p);
        json_object_set_new(vocab, p, json_integer(b));
    }
    json_object_set_new(vocab, "\xC4\xA0t", json_integer(256));
    json_object_set_new(vocab, "he", json_integer(257));
    json_object_set_new(vocab, "\xC4\xA0the", json_integer(258));
    return json_pack("{s:{s:s, s:o, s:[s,s,s]}, s:{s:s, s:b, s:b}, s:{s:s}, s:[{s:i,s:s,s:b},"
                     "{s:i,s:s,s:b}]}",
                     "model", "type", "BPE", "vocab", vocab, "merges", "h e", "\xC4\xA0 t",
                     "\xC4\xA0t he", "pre_tokenizer", "type", "ByteLevel", "add_prefix_space", 0,
                     "use_regex", 1, "decoder", "type", "ByteLevel", "added_tokens", "id", 259,
                     "content", "<|x|>", "special", 1, "id", 260, "content", "<|xy|>", "special", 1);
}

static const char *dump(const char *name, json_t *j) {
    static char paths[8][512];
    static int k;
    char *p = paths[k++ % 8];
    snprintf(p, 512, "%s/%s", test_tmpdir(), name);
    json_dump_file(j, p, 0);
    json_decref(j);
    return p;
}

static void test_small(void) {
    hn_err err = {0};
    tok *t = NULL;
    if (tok_from_hf_json(dump("small.json", small_json()), &t, &err) != HN_OK) {
        CHECK(0, "small: %s", err.msg);
        return;
    }
    enc_out o = {0};
    enc(t, " the", 4, true, &o); /* Ġ t -> Ġt (rank 1), h e -> he (0), Ġt he -> Ġthe (2) */
    CHECK(o.n == 1 && o.ids[0] == 258, "small: ' the' n=%zu id=%d", o.n, o.n ? o.ids[0] : -1);
    enc(t, "the", 3, true, &o);
    CHECK(o.n == 2 && o.ids[0] == 't' && o.ids[1] == 257, "small: 'the' n=%zu", o.n);
    enc(t, "<|xy|><|x|>", 11, true, &o); /* longest match first */
    CHECK(o.n == 2 && o.ids[0] == 260 && o.ids[1] == 259, "small: added n=%zu", o.n);
    enc(t, "<|x|>", 5, false, &o);
    CHECK(o.n == 5 && o.ids[0] == '<', "small: added unparsed n=%zu", o.n);
    CHECK(tok_bos(t) == -1 && !tok_default_add_bos(t), "small: no BOS");
    enc_free(&o);
    tok_free(t);
}

/* ---- NFC ---- */

static void test_nfc(void) {
    json_t *j = small_json();
    json_object_set_new(j, "normalizer", json_pack("{s:s, s:[{s:s}]}", "type", "Sequence",
                                                   "normalizers", "type", "NFC"));
    hn_err err = {0};
    tok *t = NULL, *plain = NULL;
    CHECK(tok_from_hf_json(dump("nfc.json", j), &t, &err) == HN_OK, "nfc: %s", err.msg);
    CHECK(tok_from_hf_json(dump("plain.json", small_json()), &plain, &err) == HN_OK, "%s", err.msg);
    if (!t || !plain) return;
    tok_pretok p;
    tok_get_pretok(t, &p);
    CHECK(p.nfc, "nfc flag");
    enc_out a = {0}, b = {0};
    enc(t, "ae\xCC\x81" "b", 5, true, &a); /* a e U+0301 b -> a U+00E9 b */
    enc(t, "a\xC3\xA9" "b", 4, true, &b);
    CHECK(a.n == 4 && a.n == b.n && !memcmp(a.ids, b.ids, a.n * sizeof *a.ids),
          "nfc: decomposed %zu ids, composed %zu", a.n, b.n);
    CHECK(a.n == 4 && a.starts[0] == 0 && a.starts[1] == 1 && a.starts[2] == 1 && a.starts[3] == 4,
          "nfc: offsets %u %u %u %u", a.starts[0], a.starts[1], a.starts[2], a.starts[3]);
    enc(plain, "ae\xCC\x81" "b", 5, true, &a);
    CHECK(a.n == 5, "no normalizer: %zu ids", a.n);
    /* Hangul jamo compose; invalid bytes around marks are kept */
    enc(t, "\xE1\x84\x80\xE1\x85\xA1", 6, true, &a); /* U+1100 U+1161 -> U+AC00 */
    enc(t, "\xEA\xB0\x80", 3, true, &b);
    CHECK(a.n == b.n && !memcmp(a.ids, b.ids, a.n * sizeof *a.ids), "nfc: hangul");
    const char bad[] = "\xff" "e\xCC\x81\xc3";
    enc(t, bad, sizeof bad - 1, true, &a);
    hn_buf out;
    hn_buf_init(&out);
    tok_decode(t, a.ids, a.n, &out);
    CHECK(out.len == 4 && !memcmp(out.data, "\xff\xC3\xA9\xc3", 4), "nfc: invalid bytes kept");
    hn_buf_free(&out);
    enc_free(&a);
    enc_free(&b);
    tok_free(t);
    tok_free(plain);
}

/* ---- refusals ---- */

static void expect_refused(const char *name, json_t *j, hn_status code, const char *needle) {
    const char *path = dump(name, j);
    tok *t = NULL;
    hn_err err = {0};
    hn_status st = tok_from_hf_json(path, &t, &err);
    CHECK(st == code && t == NULL, "%s: status %s want %s (%s)", name, hn_status_name(st),
          hn_status_name(code), err.msg);
    CHECK(strstr(err.msg, path) != NULL, "%s: message names the file: %s", name, err.msg);
    CHECK(strstr(err.msg, needle) != NULL, "%s: message mentions '%s': %s", name, needle, err.msg);
    tok_free(t);
}

static json_t *with_pre(json_t *pre) {
    json_t *j = small_json();
    json_object_set_new(j, "pre_tokenizer",
                        json_pack("{s:s, s:[o, {s:s, s:b, s:b}]}", "type", "Sequence",
                                  "pretokenizers", pre, "type", "ByteLevel", "add_prefix_space",
                                  0, "use_regex", 0));
    return j;
}

static void test_refusals(void) {
    expect_refused("removed.json", with_pre(json_pack("{s:s, s:{s:s}, s:s}", "type", "Split",
                   "pattern", "Regex", "\\s+", "behavior", "Removed")), HN_EUNSUPPORTED,
                   "pre_tokenizer.pretokenizers[0]");
    expect_refused("badre.json", with_pre(json_pack("{s:s, s:{s:s}, s:s}", "type", "Split",
                   "pattern", "Regex", "(a", "behavior", "Isolated")), HN_EUNSUPPORTED,
                   "does not compile");
    expect_refused("nopat.json", with_pre(json_pack("{s:s, s:s}", "type", "Split", "behavior",
                   "Isolated")), HN_EFORMAT, "pretokenizers[0].pattern");
    expect_refused("whitesp.json", with_pre(json_pack("{s:s}", "type", "Whitespace")),
                   HN_EUNSUPPORTED, "Whitespace");
    json_t *j = small_json();
    json_object_set_new(j, "normalizer", json_pack("{s:s}", "type", "Lowercase"));
    expect_refused("lower.json", j, HN_EUNSUPPORTED, "normalizer");
    j = small_json();
    json_object_set_new(j, "normalizer", json_pack("{s:s, s:[{s:s}, {s:s}]}", "type", "Sequence",
                                                   "normalizers", "type", "NFC", "type",
                                                   "Lowercase"));
    expect_refused("nfclower.json", j, HN_EUNSUPPORTED, "normalizer");
    j = small_json();
    json_object_set_new(j, "decoder", json_pack("{s:s}", "type", "WordPiece"));
    expect_refused("decoder.json", j, HN_EUNSUPPORTED, "decoder");
    j = small_json();
    json_array_append_new(json_object_get(json_object_get(j, "model"), "merges"), json_string("q zz"));
    expect_refused("merge.json", j, HN_EFORMAT, "model.merges[3]");
    j = small_json();
    json_object_del(json_object_get(json_object_get(j, "model"), "vocab"), "\xC4\x80");
    json_object_set_new(json_object_get(json_object_get(j, "model"), "vocab"), "zz", json_integer(0));
    expect_refused("nobyte.json", j, HN_EUNSUPPORTED, "byte 0x00");
    j = small_json();
    json_object_set_new(json_object_get(j, "pre_tokenizer"), "use_regex", json_string("yes"));
    expect_refused("useregex.json", j, HN_EFORMAT, "use_regex");
    j = small_json();
    json_object_set_new(json_object_get(j, "model"), "byte_fallback", json_true());
    expect_refused("fallback.json", j, HN_EUNSUPPORTED, "byte_fallback");
}

/* GGUF: tokenizer.ggml.pre unknown -> refused, naming the key. */
static void test_gguf_pre(void) {
    const char *toks[256];
    char sp[256][4];
    int32_t types[256];
    for (unsigned b = 0; b < 256; b++) {
        spell(b, sp[b]);
        toks[b] = sp[b];
        types[b] = 1;
    }
    const char *merges[1] = {"h e"};
    const char *pres[2] = {"gpt-2", "no-such-pre"};
    for (int k = 0; k < 2; k++) {
        gguf_writer *w = gguf_writer_create();
        gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
        gguf_writer_set_str(w, "tokenizer.ggml.pre", pres[k]);
        gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 256);
        gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, 256);
        gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, k == 0 ? 1 : 0);
        char path[512];
        snprintf(path, sizeof path, "%s/pre%d.gguf", test_tmpdir(), k);
        hn_err err = {0};
        CHECK(gguf_writer_write(w, path, &err) == HN_OK, "%s", err.msg);
        gguf_writer_free(w);
        gguf_file *g = NULL;
        tok *t = NULL;
        if (gguf_open(path, &g, &err) != HN_OK) {
            CHECK(0, "%s", err.msg);
            continue;
        }
        hn_status st = tok_from_gguf(g, &t, &err);
        if (k == 0) {
            /* "h e" names pieces but "he" is not a token */
            CHECK(st == HN_EFORMAT && strstr(err.msg, "merges[0]"), "merge: %s", err.msg);
        } else {
            CHECK(st == HN_EUNSUPPORTED && strstr(err.msg, "no-such-pre") &&
                  strstr(err.msg, "tokenizer.ggml.pre"), "pre: %s", err.msg);
        }
        tok_free(t);
        gguf_close(g);
    }
}

int main(void) {
    test_real("tokenizers/gpt2/tokenizer.json", 50256);
    test_real("tokenizers/qwen3/tokenizer.json", 151643);
    test_small();
    test_nfc();
    test_refusals();
    test_gguf_pre();
    return test_finish("test_tok_bpe_unit");
}
