/* test_tok_spm_unit.c — SentencePiece tokenizer properties: invalid UTF-8 round
 * trips through byte tokens without reading past the input, empty input, a
 * 200 KB random input encodes fast and round-trips, tok_encode_spans offsets
 * line up with the text, streaming decode equals tok_decode, merge order by
 * rank (HF) and by score (GGUF), and hostile tokenizer.json / GGUF metadata are
 * refused with messages naming the file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/rng.h"
#include "format/gguf.h"
#include "test.h"
#include "tokenizer/tok.h"

#define SP "\xE2\x96\x81"

typedef struct enc_out {
    int32_t *ids;
    uint32_t *starts;
    size_t n, cap;
} enc_out;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Encodes from an exact-size heap copy so ASan catches any read past the end. */
static hn_status encode_exact(const tok *t, const char *text, size_t len, bool bos, enc_out *o) {
    char *copy = malloc(len ? len : 1);
    if (len) memcpy(copy, text, len);
    o->n = 0;
    hn_err err = {0};
    hn_status st = tok_encode_spans(t, len ? copy : NULL, len, bos, &o->ids, &o->starts, &o->n,
                                    &o->cap, &err);
    if (st) fprintf(stderr, "  encode: %s\n", err.msg);
    free(copy);
    return st;
}

static void enc_free(enc_out *o) {
    free(o->ids);
    free(o->starts);
}

static bool decodes_to(const tok *t, const enc_out *o, const char *text, size_t len) {
    hn_buf b;
    hn_buf_init(&b);
    tok_decode(t, o->ids, o->n, &b);
    bool ok = b.len == len && (len == 0 || memcmp(b.data, text, len) == 0);
    hn_buf_free(&b);
    return ok;
}

/* The raw bytes one token stands for (no leading-space stripping). */
static void raw_piece(const tok *t, int id, hn_buf *out) {
    hn_buf_clear(out);
    tok_decode_piece(t, 3, id, out); /* prev = a byte token: nothing is stripped */
}

/* Walks " " + text against the tokens: every piece must match the text at its
 * position, and its start must be that position in the original text (byte
 * tokens continuing one character share its start). */
static bool spans_line_up(const tok *t, const enc_out *o, const char *text, size_t len, bool bos) {
    size_t i = bos ? 1 : 0, dpos = 0;
    if (bos && (o->n < 1 || o->starts[0] != 0)) return false;
    hn_buf piece;
    hn_buf_init(&piece);
    bool ok = true;
    for (; ok && i < o->n; i++) {
        raw_piece(t, o->ids[i], &piece);
        uint32_t want = dpos ? (uint32_t)(dpos - 1) : 0;
        bool cont = i > (bos ? 1u : 0u) && o->starts[i] == o->starts[i - 1] &&
                    tok_piece(t, o->ids[i])[0] == '<' && tok_piece(t, o->ids[i - 1])[0] == '<';
        ok = o->starts[i] == want || cont;
        for (size_t k = 0; ok && k < piece.len; k++) {
            size_t p = dpos + k; /* position in " " + text */
            char c = p == 0 ? ' ' : p - 1 < len ? text[p - 1] : 0;
            ok = p <= len && piece.data[k] == c;
        }
        if (!ok) fprintf(stderr, "  span mismatch at token %zu (id %d, start %u, want %u)\n", i,
                         o->ids[i], o->starts[i], want);
        dpos += piece.len;
    }
    hn_buf_free(&piece);
    return ok && dpos == (len ? len + 1 : 0);
}

static bool streaming_matches(const tok *t, const int32_t *ids, size_t n) {
    hn_buf a, b;
    hn_buf_init(&a);
    hn_buf_init(&b);
    tok_decode(t, ids, n, &a);
    for (size_t i = 0; i < n; i++) tok_decode_piece(t, i ? ids[i - 1] : -1, ids[i], &b);
    bool ok = a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
    hn_buf_free(&a);
    hn_buf_free(&b);
    return ok;
}

/* ---- invalid UTF-8, empty input ---- */

static void test_invalid_utf8(const char *label, const tok *t) {
    static const struct { const char *s; size_t n; } cases[] = {
        {"\x80", 1}, {"a\x80" "b", 3}, {"\xBF\xBF\xBF", 3}, {"abc\xF0\x9F\x98", 6},
        {"\xF0\x9F\x98", 3}, {"\xC0\xAF", 2}, {"\xE0\x80\xAF", 3}, {"\xF0\x80\x80\xAF", 4},
        {"\xFF", 1}, {"x \xFE\xFF y", 6}, {"\xED\xA0\x80", 3}, {"\xF4\x90\x80\x80", 4},
        {"\xC3", 1}, {"\xE2\x96", 2}, {"\xE6\x41\x42", 3}, {"ok\0nul", 6},
    };
    enc_out o = {0};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        hn_status st = encode_exact(t, cases[c].s, cases[c].n, true, &o);
        CHECK(st == HN_OK, "%s: case %zu", label, c);
        CHECK(decodes_to(t, &o, cases[c].s, cases[c].n), "%s: case %zu round trip", label, c);
        CHECK(spans_line_up(t, &o, cases[c].s, cases[c].n, true), "%s: case %zu spans", label, c);
        CHECK(streaming_matches(t, o.ids, o.n), "%s: case %zu streaming", label, c);
    }
    /* 0xFF alone: BOS, "▁", <0xFF> (id 3 + 255) */
    encode_exact(t, "\xFF", 1, true, &o);
    CHECK(o.n == 3 && o.ids[0] == 1 && o.ids[1] == 410 && o.ids[2] == 258, "%s: 0xFF ids", label);
    /* E6 41 42: the invalid lead byte alone falls back; "AB" stay letters */
    encode_exact(t, "\xE6\x41\x42", 3, false, &o);
    CHECK(o.n >= 2 && o.ids[1] == 3 + 0xE6, "%s: E6 byte token", label);
    enc_free(&o);
}

static void test_empty(const char *label, const tok *t) {
    enc_out o = {0};
    CHECK(encode_exact(t, "", 0, true, &o) == HN_OK && o.n == 1 && o.ids[0] == 1 &&
          o.starts[0] == 0, "%s: empty with BOS", label);
    CHECK(encode_exact(t, "", 0, false, &o) == HN_OK && o.n == 0, "%s: empty", label);
    CHECK(decodes_to(t, &o, "", 0), "%s: empty decode", label);
    enc_free(&o);
}

/* ---- big random input ---- */

static char *random_text(size_t len) {
    static const char *pieces[] = {" ", " ", "  ", "e", "the", " the", "a", "\n", "\t", "caf\xC3\xA9",
                                   "\xE6\x97\xA5", "\xF0\x9F\x98\x80", "Once upon", "!", "7"};
    char *s = malloc(len);
    hn_rng r;
    hn_rng_seed(&r, 42);
    for (size_t i = 0; i < len;) {
        uint32_t k = hn_rng_below(&r, 20);
        if (k >= 15) { /* a random byte, often invalid UTF-8 */
            s[i++] = (char)hn_rng_below(&r, 256);
            continue;
        }
        size_t pl = strlen(pieces[k]);
        for (size_t j = 0; j < pl && i < len; j++) s[i++] = pieces[k][j];
    }
    for (size_t i = 0; i + 2 < len; i++) /* "▁" itself decodes to a space: avoid it */
        if (memcmp(s + i, SP, 3) == 0) s[i + 2] = 'x';
    return s;
}

static void test_big(const char *label, const tok *t) {
    size_t len = 200 * 1024;
    char *text = random_text(len);
    enc_out o = {0};
    double t0 = now();
    hn_status st = encode_exact(t, text, len, true, &o);
    double dt = now() - t0;
    printf("%s: 200 KB -> %zu tokens in %.3f s\n", label, o.n, dt);
    CHECK(st == HN_OK && o.n > len / 8, "%s: big encode", label);
    CHECK(dt < 1.0, "%s: big encode took %.3f s", label, dt);
    CHECK(decodes_to(t, &o, text, len), "%s: big round trip", label);
    bool mono = true;
    for (size_t i = 1; i < o.n; i++) mono = mono && o.starts[i] >= o.starts[i - 1];
    for (size_t i = 0; i < o.n; i++) mono = mono && o.starts[i] < len;
    CHECK(mono, "%s: big spans monotonic and inside", label);
    CHECK(spans_line_up(t, &o, text, len, true), "%s: big spans line up", label);
    CHECK(streaming_matches(t, o.ids, o.n), "%s: big streaming", label);
    /* without BOS it also round-trips, and a leading space survives */
    text[0] = ' ';
    CHECK(encode_exact(t, text, 5000, false, &o) == HN_OK && decodes_to(t, &o, text, 5000),
          "%s: no-BOS round trip", label);
    free(text);
    enc_free(&o);
}

static void test_spans_and_decode(const char *label, const tok *t) {
    enc_out o = {0};
    const char *s = " leading space"; /* ids 1 410 278(▁l) 411 380 299 262(▁s) ... */
    encode_exact(t, s, strlen(s), true, &o);
    CHECK(o.n == 10 && o.starts[1] == 0 && o.starts[2] == 0 && o.starts[3] == 2 &&
          o.starts[6] == 8, "%s: leading-space starts", label);
    s = "caf\xC3\xA9 \xE6\x97\xA5";
    CHECK(encode_exact(t, s, strlen(s), false, &o) == HN_OK && spans_line_up(t, &o, s, strlen(s), false),
          "%s: accents spans", label);
    hn_buf b;
    hn_buf_init(&b);
    tok_decode_piece(t, -1, 265, &b); /* "▁the" at the start */
    tok_decode_piece(t, 265, 265, &b); /* after a token: space kept */
    tok_decode_piece(t, 1, 2, &b);     /* </s>: nothing */
    tok_decode_piece(t, 2, 0, &b);     /* <unk>: nothing */
    tok_decode_piece(t, 2, 9999, &b);  /* out of range: nothing */
    CHECK(b.data && strcmp(b.data, "the the") == 0, "%s: pieces '%s'", label, b.data ? b.data : "");
    int32_t seq[] = {1, 265, 2, 1, 265};
    hn_buf_clear(&b);
    tok_decode(t, seq, 5, &b);
    CHECK(strcmp(b.data, "thethe") == 0, "%s: BOS mid-sequence drops the space: '%s'", label, b.data);
    hn_buf_free(&b);
    enc_free(&o);
}

static void test_tokenizer(const char *label, const tok *t) {
    test_invalid_utf8(label, t);
    test_empty(label, t);
    test_spans_and_decode(label, t);
    test_big(label, t);
}

/* ---- small hand-made tokenizer.json files ---- */

static const char *write_file(const char *name, const char *body) {
    static char path[8][512];
    static int k;
    char *p = path[k++ & 7];
    snprintf(p, sizeof path[0], "%s/%s", test_tmpdir(), name);
    if (!body) return p; /* a path that does not exist */
    FILE *f = fopen(p, "wb");
    fputs(body, f);
    fclose(f);
    return p;
}

#define LEGACY_NORM                                                                          \
    "\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", "   \
    "\"prepend\": \"" SP "\"}, {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, "  \
    "\"content\": \"" SP "\"}]}"

static void expect_refused(const char *name, const char *body, hn_status code, const char *needle) {
    const char *path = write_file(name, body);
    tok *t = NULL;
    hn_err err = {0};
    hn_status st = tok_from_hf_json(path, &t, &err);
    CHECK(st == code && t == NULL, "%s: status %s want %s (%s)", name, hn_status_name(st),
          hn_status_name(code), err.msg);
    CHECK(strstr(err.msg, path) != NULL, "%s: message names the file: %s", name, err.msg);
    CHECK(strstr(err.msg, needle) != NULL, "%s: message mentions '%s': %s", name, needle, err.msg);
    tok_free(t);
}

static void test_hostile_json(void) {
    expect_refused("notjson.json", "{\"model\": ", HN_EFORMAT, "not valid JSON");
    expect_refused("array.json", "[1, 2, 3]", HN_EFORMAT, "not a JSON object");
    expect_refused("nomodel.json", "{\"version\": \"1.0\"}", HN_EFORMAT, "model");
    expect_refused("novocab.json", "{\"model\": {\"type\": \"BPE\"}, " LEGACY_NORM "}", HN_EFORMAT,
                   "model.vocab");
    expect_refused("badmerge.json",
                   "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, "
                   "\"merges\": [\"a b\", \"a c\"]}, " LEGACY_NORM "}", HN_EFORMAT, "merges[1]");
    expect_refused("badmerge2.json",
                   "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, "
                   "\"merges\": [[\"a\", \"b\"]]}, " LEGACY_NORM "}", HN_EFORMAT, "merges[0]");
    expect_refused("range.json",
                   "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 7}, \"merges\": []}, "
                   LEGACY_NORM "}", HN_EFORMAT, "out of range");
    expect_refused("dupid.json",
                   "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}, "
                   LEGACY_NORM "}", HN_EFORMAT, "duplicated");
    expect_refused("dupkey.json",
                   "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"a\": 1}, \"merges\": []}, "
                   LEGACY_NORM "}", HN_EFORMAT, "duplicate");
    expect_refused("negid.json",
                   "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}, "
                   LEGACY_NORM "}", HN_EFORMAT, "out of range");
    expect_refused("addedid.json",
                   "{\"added_tokens\": [{\"id\": 5, \"content\": \"<x>\", \"special\": true}], "
                   "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, "
                   LEGACY_NORM "}", HN_EFORMAT, "added_tokens");
    expect_refused("unigram.json",
                   "{\"model\": {\"type\": \"Unigram\", \"vocab\": {}}, " LEGACY_NORM "}",
                   HN_EUNSUPPORTED, "Unigram");
    expect_refused("bytelevel.json",
                   "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, "
                   "\"pre_tokenizer\": {\"type\": \"ByteLevel\"}}", HN_EUNSUPPORTED, "byte-level");
    expect_refused("missing.json", NULL, HN_EIO, "cannot open");
}

/* Rank order: "b c" (rank 0) beats "a b" (rank 1); fused unknowns. */
static void test_merge_rank(void) {
    const char *path = write_file("rank.json",
        "{\"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"special\": true}], "
        "\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": true, "
        "\"byte_fallback\": false, \"vocab\": {\"<unk>\": 0, \"" SP "\": 1, \"a\": 2, \"b\": 3, "
        "\"c\": 4, \"ab\": 5, \"bc\": 6, \"" SP "a\": 7}, "
        "\"merges\": [\"b c\", \"a b\", [\"" SP "\", \"a\"]]}, " LEGACY_NORM "}");
    tok *t = NULL;
    hn_err err = {0};
    CHECK(tok_from_hf_json(path, &t, &err) == HN_OK, "rank.json: %s", err.msg);
    if (!t) return;
    CHECK(tok_bos(t) == -1 && tok_unk(t) == 0, "rank.json specials");
    enc_out o = {0};
    encode_exact(t, "abc", 3, true, &o); /* ▁ a bc -> ▁a bc */
    CHECK(o.n == 2 && o.ids[0] == 7 && o.ids[1] == 6, "rank order: n=%zu", o.n);
    encode_exact(t, "a\xE2\x98\x83\xE2\x98\x83" "b", 8, false, &o); /* ▁a <unk> b */
    CHECK(o.n == 3 && o.ids[0] == 7 && o.ids[1] == 0 && o.ids[2] == 3 && o.starts[1] == 1 &&
          o.starts[2] == 7, "fused unk: n=%zu", o.n);
    enc_free(&o);
    tok_free(t);
}

/* ---- GGUF metadata written by hand (no tensors) ---- */

typedef struct gw {
    unsigned char buf[8192];
    size_t n;
} gw;

static void gw_put(gw *w, const void *p, size_t n) {
    memcpy(w->buf + w->n, p, n);
    w->n += n;
}
static void gw_u32(gw *w, uint32_t v) { gw_put(w, &v, 4); }
static void gw_u64(gw *w, uint64_t v) { gw_put(w, &v, 8); }
static void gw_str(gw *w, const char *s) {
    gw_u64(w, strlen(s));
    gw_put(w, s, strlen(s));
}
static void gw_key(gw *w, const char *k, uint32_t type) {
    gw_str(w, k);
    gw_u32(w, type);
}

/* A GGUF with tokens ▁ a b c ab bc ▁a, given scores and model name. */
static const char *write_gguf(const char *name, const char *model, const float *scores,
                              int n_scores, int32_t bad_type) {
    static const char *toks[] = {"<unk>", "<s>", "</s>", SP, "a", "b", "c", "ab", "bc", SP "a"};
    int nt = 10;
    gw w = {.n = 0};
    gw_put(&w, "GGUF", 4);
    gw_u32(&w, 3);
    gw_u64(&w, 0);
    gw_u64(&w, 4);
    gw_key(&w, "tokenizer.ggml.model", 8);
    gw_str(&w, model);
    gw_key(&w, "tokenizer.ggml.tokens", 9);
    gw_u32(&w, 8);
    gw_u64(&w, (uint64_t)nt);
    for (int i = 0; i < nt; i++) gw_str(&w, toks[i]);
    gw_key(&w, "tokenizer.ggml.scores", 9);
    gw_u32(&w, 6);
    gw_u64(&w, (uint64_t)n_scores);
    gw_put(&w, scores, (size_t)n_scores * 4);
    gw_key(&w, "tokenizer.ggml.token_type", 9);
    gw_u32(&w, 5);
    gw_u64(&w, (uint64_t)nt);
    for (int i = 0; i < nt; i++) gw_u32(&w, (uint32_t)(i == 0 ? 2 : i < 3 ? 3 : i == 9 ? bad_type : 1));
    static char path[4][512];
    static int k;
    char *p = path[k++ & 3];
    snprintf(p, sizeof path[0], "%s/%s", test_tmpdir(), name);
    FILE *f = fopen(p, "wb");
    fwrite(w.buf, 1, w.n, f);
    fclose(f);
    return p;
}

static hn_status gguf_tok(const char *path, tok **t, hn_err *err) {
    gguf_file *g = NULL;
    *t = NULL;
    hn_status st = gguf_open(path, &g, err);
    if (st) return st;
    st = tok_from_gguf(g, t, err);
    gguf_close(g);
    return st;
}

static void test_gguf_meta(void) {
    /* scores: "ab" (-5) beats "bc" (-6); the tokenizer has no byte tokens */
    float sc[10] = {0, 0, 0, -1, -2, -2, -2, -5, -6, -1};
    tok *t = NULL;
    hn_err err = {0};
    CHECK(gguf_tok(write_gguf("s.gguf", "llama", sc, 10, 1), &t, &err) == HN_OK, "s.gguf: %s",
          err.msg);
    if (t) {
        enc_out o = {0};
        encode_exact(t, "bbc", 3, true, &o); /* ▁ b b c: only "bc" merges -> ▁ b bc */
        CHECK(o.n == 4 && o.ids[1] == 3 && o.ids[2] == 5 && o.ids[3] == 8, "score merge n=%zu", o.n);
        encode_exact(t, "xabc", 4, false, &o); /* no byte tokens: x -> <unk>; ab(-5) before bc */
        CHECK(o.n == 4 && o.ids[0] == 3 && o.ids[1] == 0 && o.ids[2] == 7 && o.ids[3] == 6,
              "score order n=%zu", o.n);
        enc_free(&o);
        tok_free(t);
    }
    const char *p = write_gguf("gpt2.gguf", "gpt2", sc, 10, 1);
    CHECK(gguf_tok(p, &t, &err) == HN_EUNSUPPORTED && strstr(err.msg, "gpt2"), "gpt2: %s", err.msg);
    p = write_gguf("short.gguf", "llama", sc, 9, 1);
    CHECK(gguf_tok(p, &t, &err) == HN_EFORMAT && strstr(err.msg, "scores") && strstr(err.msg, p),
          "short scores: %s", err.msg);
    p = write_gguf("type.gguf", "llama", sc, 10, 9);
    CHECK(gguf_tok(p, &t, &err) == HN_EFORMAT && strstr(err.msg, "token_type"), "bad type: %s",
          err.msg);
    p = write_gguf("bytetype.gguf", "llama", sc, 10, 6);
    CHECK(gguf_tok(p, &t, &err) == HN_EFORMAT && strstr(err.msg, "byte"), "byte type: %s", err.msg);
}

int main(void) {
    hn_err err = {0};
    tok *hf = NULL, *gt = NULL;
    CHECK(tok_from_hf_json(test_shared("models/stories260K/hf/tokenizer.json"), &hf, &err) == HN_OK,
          "hf: %s", err.msg);
    gguf_tok(test_shared("models/stories260K/stories260K.gguf"), &gt, &err);
    CHECK(gt != NULL, "gguf: %s", err.msg);
    if (hf) test_tokenizer("hf", hf);
    if (gt) test_tokenizer("gguf", gt);
    tok_free(hf);
    tok_free(gt);
    test_hostile_json();
    test_merge_rank();
    test_gguf_meta();
    return test_finish("test_tok_spm_unit");
}
