/* tok_gguf.c — builds a tok from GGUF metadata (tokenizer.ggml.*), using only
 * the gguf.h API. Supports tokenizer.ggml.model "llama" (SentencePiece BPE with
 * byte fallback, merged by score as llama.cpp does) and "gpt2" (byte-level BPE:
 * tokens, merges "a b" by rank, token_type; tokenizer.ggml.pre names the
 * pre-tokenizer regexes); anything else is refused with HN_EUNSUPPORTED. Arrays
 * are validated (types, lengths, token types, special ids in range) before use. */
#include "tokenizer/tok_internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/num.h"

#define KEY "tokenizer.ggml."

static bool is_int_type(gguf_vtype t) {
    return t <= GGUF_INT32 || t == GGUF_UINT64 || t == GGUF_INT64;
}

static bool is_num_type(gguf_vtype t) {
    return is_int_type(t) || t == GGUF_FLOAT32 || t == GGUF_FLOAT64;
}

static hn_status check_model(const gguf_file *f, tok_kind *kind, hn_err *err) {
    gguf_str m;
    hn_status st = gguf_get_str(f, KEY "model", &m, err);
    if (st == HN_ENOTFOUND)
        return hn_errf(err, HN_ENOTFOUND, "%s: no tokenizer (" KEY "model is missing)", gguf_path(f));
    if (st) return st;
    *kind = TOK_SPM;
    if (m.len == 5 && memcmp(m.p, "llama", 5) == 0) return HN_OK;
    *kind = TOK_BPE_BYTES;
    if (m.len == 4 && memcmp(m.p, "gpt2", 4) == 0) return HN_OK;
    return hn_errf(err, HN_EUNSUPPORTED, "%s: " KEY "model \"%.*s\" is not supported; only "
                   "\"llama\" (SentencePiece BPE) and \"gpt2\" (byte-level BPE)", gguf_path(f),
                   (int)(m.len > 64 ? 64 : m.len), m.p);
}

/* Optional per-token array: absent -> a->n = 0; else numeric with n elements. */
static hn_status opt_array(const gguf_file *f, const char *key, uint64_t n, bool ints,
                           gguf_arr *a, hn_err *err) {
    a->n = 0;
    hn_status st = gguf_get_arr(f, key, a, err);
    if (st == HN_ENOTFOUND) {
        a->n = 0;
        return HN_OK;
    }
    if (st) return st;
    if (!(ints ? is_int_type(a->type) : is_num_type(a->type)) || a->n != n)
        return hn_errf(err, HN_EFORMAT, "%s: %s: expected %llu %s, got %llu of type %d",
                       gguf_path(f), key, (unsigned long long)n, ints ? "integers" : "numbers",
                       (unsigned long long)a->n, (int)a->type);
    return HN_OK;
}

static hn_status read_pieces(const gguf_file *f, tok **out, hn_err *err) {
    gguf_arr toks;
    hn_status st = gguf_get_arr(f, KEY "tokens", &toks, err);
    if (st == HN_ENOTFOUND)
        return hn_errf(err, HN_EFORMAT, "%s: " KEY "tokens is missing", gguf_path(f));
    if (st) return st;
    if (toks.type != GGUF_STRING || toks.n == 0 || toks.n > (1u << 28))
        return hn_errf(err, HN_EFORMAT, "%s: " KEY "tokens: expected 1..2^28 strings",
                       gguf_path(f));
    size_t bytes = 0;
    for (uint64_t i = 0; i < toks.n; i++) {
        gguf_str s = gguf_arr_str(&toks, i);
        if (s.len > UINT32_MAX || !hn_add_ok(bytes, (size_t)s.len, &bytes))
            return hn_errf(err, HN_EFORMAT, "%s: " KEY "tokens too large", gguf_path(f));
    }
    st = tok_alloc((int)toks.n, bytes, out, err);
    if (st) return hn_err_prefix(err, "%s: " KEY "tokens", gguf_path(f));
    size_t cursor = 0;
    for (uint64_t i = 0; i < toks.n; i++) {
        gguf_str s = gguf_arr_str(&toks, i);
        tok_set_piece(*out, (int)i, s.p, (size_t)s.len, &cursor);
    }
    return HN_OK;
}

static hn_status read_scores_types(const gguf_file *f, tok *t, hn_err *err) {
    gguf_arr sc, ty;
    hn_status st = opt_array(f, KEY "scores", (uint64_t)t->n, false, &sc, err);
    if (!st) st = opt_array(f, KEY "token_type", (uint64_t)t->n, true, &ty, err);
    if (st) return st;
    for (int i = 0; i < t->n; i++) {
        double s = sc.n ? gguf_arr_num(&sc, (uint64_t)i) : 0.0;
        t->score[i] = isnan(s) ? -FLT_MAX : (float)s; /* NaN would break the queue order */
        double ty_i = ty.n ? gguf_arr_num(&ty, (uint64_t)i) : TOK_T_NORMAL;
        if (!(ty_i >= 0 && ty_i <= TOK_T_BYTE))
            return hn_errf(err, HN_EFORMAT, "%s: " KEY "token_type[%d] = %g is not 0..6",
                           gguf_path(f), i, ty_i);
        t->type[i] = (uint8_t)ty_i;
        int b = tok_parse_byte_piece(t->text + t->off[i], t->len[i]);
        if (t->type[i] == TOK_T_BYTE && b < 0)
            return hn_errf(err, HN_EFORMAT, "%s: token %d \"%.40s\" has type byte but is not <0xXX>",
                           gguf_path(f), i, tok_piece(t, i));
        t->byte_val[i] = (uint8_t)(b >= 0 ? b : 0);
        t->in_model[i] = 1;
    }
    return HN_OK;
}

/* Optional special id: absent -> def (if in range); out of range -> error, or
 * -1 when lenient (padding ids of -1 are common). */
static hn_status special_id(const gguf_file *f, const char *key, int n, int def, bool lenient,
                            int *out, hn_err *err) {
    int64_t v;
    hn_status st = gguf_get_int(f, key, &v, err);
    if (st == HN_ENOTFOUND) {
        *out = def < n ? def : -1;
        return HN_OK;
    }
    if (st) return st;
    if (v >= 0 && v < n) *out = (int)v;
    else if (lenient) *out = -1;
    else
        return hn_errf(err, HN_EFORMAT, "%s: %s = %lld is outside the vocabulary (%d tokens)",
                       gguf_path(f), key, (long long)v, n);
    return HN_OK;
}

static hn_status opt_bool(const gguf_file *f, const char *key, bool def, bool *out, hn_err *err) {
    hn_status st = gguf_get_bool(f, key, out, err);
    if (st == HN_ENOTFOUND) *out = def;
    return st == HN_ENOTFOUND ? HN_OK : st;
}

static hn_status read_specials(const gguf_file *f, tok *t, hn_err *err) {
    /* defaults as llama.cpp's for SPM vocabularies */
    hn_status st = special_id(f, KEY "bos_token_id", t->n, 1, false, &t->bos, err);
    if (!st) st = special_id(f, KEY "eos_token_id", t->n, 2, false, &t->eos, err);
    if (!st) st = special_id(f, KEY "unknown_token_id", t->n, 0, false, &t->unk, err);
    if (!st) st = special_id(f, KEY "padding_token_id", t->n, -1, true, &t->pad, err);
    if (!st) st = opt_bool(f, KEY "add_bos_token", true, &t->add_bos, err);
    bool space = true;
    if (!st) st = opt_bool(f, KEY "add_space_prefix", true, &space, err);
    t->prefix = space ? TOK_PREFIX_ALWAYS : TOK_PREFIX_NONE;
    return st;
}

/* ---- byte-level BPE ("gpt2") ---- */

/* Regexes of tokenizer.ggml.pre (llama.cpp's names); *llama3 for "llama-bpe". */
static hn_status set_pre(const gguf_file *f, tok *t, bool *llama3, hn_err *err) {
    gguf_str p;
    hn_status st = gguf_get_str(f, KEY "pre", &p, err);
    if (st == HN_ENOTFOUND)
        return hn_errf(err, HN_EUNSUPPORTED, "%s: " KEY "model \"gpt2\" without " KEY "pre "
                       "(the pre-tokenizer name, e.g. \"gpt-2\", \"qwen2\", \"llama-bpe\") is "
                       "not supported", gguf_path(f));
    if (st) return st;
#define PRE_IS(s) (p.len == strlen(s) && memcmp(p.p, s, p.len) == 0)
    *llama3 = PRE_IS("llama-bpe");
    if (PRE_IS("gpt-2")) st = tok_bpe_add_regex(t, TOK_RE_GPT2, strlen(TOK_RE_GPT2), false, true, err);
    else if (PRE_IS("qwen2")) st = tok_bpe_add_regex(t, TOK_RE_QWEN2, strlen(TOK_RE_QWEN2), false, false, err);
    else if (*llama3) st = tok_bpe_add_regex(t, TOK_RE_LLAMA3, strlen(TOK_RE_LLAMA3), false, false, err);
    else if (PRE_IS("smollm")) {
        st = tok_bpe_add_regex(t, "\\p{N}", 5, false, false, err);
        if (!st) st = tok_bpe_add_regex(t, TOK_RE_GPT2, strlen(TOK_RE_GPT2), false, true, err);
    } else
        return hn_errf(err, HN_EUNSUPPORTED, "%s: " KEY "pre \"%.*s\" is not supported (known: "
                       "gpt-2, qwen2, llama-bpe, smollm)", gguf_path(f), (int)(p.len > 64 ? 64 : p.len), p.p);
#undef PRE_IS
    return st ? hn_err_prefix(err, "%s: " KEY "pre", gguf_path(f)) : HN_OK;
}

static hn_status add_merge(const gguf_file *f, tok *t, gguf_str m, uint64_t i, char *tmp,
                           hn_err *err) {
    const char *sp = m.len ? memchr(m.p, ' ', (size_t)m.len) : NULL;
    if (!sp || memchr(sp + 1, ' ', (size_t)(m.p + m.len - sp - 1)))
        return hn_errf(err, HN_EFORMAT, "%s: " KEY "merges[%llu] \"%.*s\": expected \"left right\"",
                       gguf_path(f), (unsigned long long)i, (int)(m.len > 64 ? 64 : m.len), m.p);
    size_t al = (size_t)(sp - m.p), bl = (size_t)m.len - al - 1;
    int a = tok_lookup(t, m.p, al), b = tok_lookup(t, sp + 1, bl);
    memcpy(tmp, m.p, al);
    memcpy(tmp + al, sp + 1, bl);
    int r = tok_lookup(t, tmp, al + bl);
    if (a < 0 || b < 0 || r < 0)
        return hn_errf(err, HN_EFORMAT, "%s: " KEY "merges[%llu] \"%.*s\": %s is not a token",
                       gguf_path(f), (unsigned long long)i, (int)(m.len > 64 ? 64 : m.len), m.p,
                       a < 0 ? "the left part" : b < 0 ? "the right part" : "the merged piece");
    tok_merge_map_put(&t->merges, a, b, (uint32_t)i, r);
    return HN_OK;
}

static hn_status read_merges(const gguf_file *f, tok *t, hn_err *err) {
    gguf_arr m;
    hn_status st = gguf_get_arr(f, KEY "merges", &m, err);
    if (st == HN_ENOTFOUND)
        return hn_errf(err, HN_EFORMAT, "%s: " KEY "merges is missing", gguf_path(f));
    if (st) return st;
    if (m.type != GGUF_STRING || m.n > UINT32_MAX)
        return hn_errf(err, HN_EFORMAT, "%s: " KEY "merges: expected an array of strings",
                       gguf_path(f));
    size_t maxlen = 0;
    for (int i = 0; i < t->n; i++) maxlen = t->len[i] > maxlen ? t->len[i] : maxlen;
    st = tok_merge_map_init(&t->merges, (size_t)m.n, err);
    char *tmp = st ? NULL : malloc(2 * maxlen + 2);
    if (!st && !tmp) st = hn_errf(err, HN_ENOMEM, "out of memory for merges");
    for (uint64_t i = 0; !st && i < m.n; i++) {
        gguf_str s = gguf_arr_str(&m, i);
        if (s.len > 2 * maxlen + 1) st = hn_errf(err, HN_EFORMAT, "%s: " KEY "merges[%llu] too long",
                                                gguf_path(f), (unsigned long long)i);
        else st = add_merge(f, t, s, i, tmp, err);
    }
    free(tmp);
    return st;
}

static hn_status read_bpe(const gguf_file *f, tok *t, hn_err *err) {
    t->kind = TOK_BPE_BYTES;
    t->use_merges = true;
    for (int i = 0; i < t->n; i++)
        if (t->type[i] == TOK_T_BYTE)
            return hn_errf(err, HN_EFORMAT, "%s: token %d: byte tokens are not used by byte-level "
                           "BPE", gguf_path(f), i);
    bool llama3 = false;
    hn_status st = set_pre(f, t, &llama3, err);
    t->ignore_merges = llama3; /* as llama.cpp */
    if (!st) st = read_merges(f, t, err);
    if (!st) st = special_id(f, KEY "bos_token_id", t->n, -1, false, &t->bos, err);
    if (!st) st = special_id(f, KEY "eos_token_id", t->n, -1, false, &t->eos, err);
    if (!st) st = special_id(f, KEY "unknown_token_id", t->n, -1, true, &t->unk, err);
    if (!st) st = special_id(f, KEY "padding_token_id", t->n, -1, true, &t->pad, err);
    if (!st) st = opt_bool(f, KEY "add_bos_token", llama3, &t->add_bos, err);
    if (!st && tok_bpe_finish(t, err)) st = hn_err_prefix(err, "%s: " KEY "tokens", gguf_path(f));
    return st;
}

static hn_status read_spm(const gguf_file *f, tok *t, hn_err *err) {
    t->kind = TOK_SPM;
    t->use_merges = false;
    t->byte_fallback = true;
    return read_specials(f, t, err);
}

hn_status tok_from_gguf(const gguf_file *f, tok **out, hn_err *err) {
    *out = NULL;
    tok_kind kind = TOK_SPM;
    hn_status st = check_model(f, &kind, err);
    if (!st) st = read_pieces(f, out, err);
    if (!st) st = read_scores_types(f, *out, err);
    int dup; /* duplicated pieces: the later id wins, as in llama.cpp's map */
    if (!st) st = tok_index(*out, &dup, err);
    if (!st) st = kind == TOK_BPE_BYTES ? read_bpe(f, *out, err) : read_spm(f, *out, err);
    if (st) {
        tok_free(*out);
        *out = NULL;
    }
    return st;
}
