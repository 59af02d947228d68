/* tok_gguf.c — builds a tok from GGUF metadata (tokenizer.ggml.*), using only
 * the gguf.h API. Supports tokenizer.ggml.model "llama" (SentencePiece BPE with
 * byte fallback, merged by score as llama.cpp does); "gpt2" (byte-level BPE) and
 * anything else is refused with HN_EUNSUPPORTED. Arrays are validated (types,
 * lengths, token types, special ids in range) before use. */
#include "tokenizer/tok_internal.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "base/num.h"

#define KEY "tokenizer.ggml."

static bool is_int_type(gguf_vtype t) {
    return t <= GGUF_INT32 || t == GGUF_UINT64 || t == GGUF_INT64;
}

static bool is_num_type(gguf_vtype t) {
    return is_int_type(t) || t == GGUF_FLOAT32 || t == GGUF_FLOAT64;
}

static hn_status check_model(const gguf_file *f, hn_err *err) {
    gguf_str m;
    hn_status st = gguf_get_str(f, KEY "model", &m, err);
    if (st == HN_ENOTFOUND)
        return hn_errf(err, HN_ENOTFOUND, "%s: no tokenizer (" KEY "model is missing)", gguf_path(f));
    if (st) return st;
    if (m.len == 5 && memcmp(m.p, "llama", 5) == 0) return HN_OK;
    if (m.len == 4 && memcmp(m.p, "gpt2", 4) == 0)
        return hn_errf(err, HN_EUNSUPPORTED, "%s: " KEY "model \"gpt2\" (byte-level BPE) is not "
                       "supported yet; only \"llama\" (SentencePiece BPE)", gguf_path(f));
    return hn_errf(err, HN_EUNSUPPORTED, "%s: " KEY "model \"%.*s\" is not supported; only "
                   "\"llama\" (SentencePiece BPE)", gguf_path(f), (int)(m.len > 64 ? 64 : m.len), m.p);
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

hn_status tok_from_gguf(const gguf_file *f, tok **out, hn_err *err) {
    *out = NULL;
    hn_status st = check_model(f, err);
    if (!st) st = read_pieces(f, out, err);
    if (!st) st = read_scores_types(f, *out, err);
    int dup; /* duplicated pieces: the later id wins, as in llama.cpp's map */
    if (!st) st = tok_index(*out, &dup, err);
    if (!st) st = read_specials(f, *out, err);
    if (st) {
        tok_free(*out);
        *out = NULL;
        return st;
    }
    (*out)->kind = TOK_SPM;
    (*out)->use_merges = false;
    (*out)->byte_fallback = true;
    return HN_OK;
}
