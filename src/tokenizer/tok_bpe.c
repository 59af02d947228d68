/* tok_bpe.c — byte-level BPE (TOK_BPE_BYTES: GPT-2, Llama 3, Qwen, SmolLM):
 * the GPT-2 byte<->unicode map, pre-tokenizer regexes (PCRE2, UTF + UCP),
 * added/special-token matching, merging by rank and decoding.
 *
 * Encoding follows Hugging Face tokenizers: the text is cut at added tokens
 * (longest match first, when parsing specials); each remaining segment is
 * NFC-normalised if the tokenizer says so (offsets mapped back), then goes
 * through the Split regexes in order (matches and the gaps between them are
 * pieces, "Isolated"), then the ByteLevel step (optional prefix space, optional
 * GPT-2 regex); each final word is mapped byte by byte to its byte-level
 * pieces and merged with a heap over linked symbols (lowest rank first, ties
 * leftmost). Invalid UTF-8 never matches a regex (PCRE2_MATCH_INVALID_UTF), so
 * such bytes land in gaps and are still encoded exactly. */
#include "tokenizer/tok_internal.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

/* ---- the GPT-2 byte map ---- */

/* Code point that byte b is spelled with (bytes_to_unicode in GPT-2's encoder.py). */
static uint32_t byte_cp(unsigned b) {
    if (b <= 0x20) return 256 + b;
    if (b >= 0x7F && b <= 0xA0) return 256 + 33 + (b - 0x7F);
    if (b == 0xAD) return 256 + 67;
    return b;
}

/* Inverse of byte_cp, or -1 when cp spells no byte. */
static int cp_byte(uint32_t cp) {
    if (cp < 256) return byte_cp(cp) == cp ? (int)cp : -1;
    if (cp <= 256 + 32) return (int)(cp - 256);
    if (cp <= 256 + 66) return (int)(cp - 256 - 33 + 0x7F);
    return cp == 256 + 67 ? 0xAD : -1;
}

/* Writes the UTF-8 spelling of byte b (1 or 2 bytes) to p; returns the length. */
static size_t spell_byte(unsigned b, char *p) {
    uint32_t cp = byte_cp(b);
    if (cp < 0x80) {
        p[0] = (char)cp;
        return 1;
    }
    p[0] = (char)(0xC0 | (cp >> 6));
    p[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* ---- loading helpers ---- */

hn_status tok_bpe_add_regex(tok *t, const char *pattern, size_t len, bool literal, bool bl,
                            hn_err *err) {
    if (!bl && t->n_re >= TOK_MAX_RE)
        return hn_errf(err, HN_EUNSUPPORTED, "more than %d Split pre-tokenizers", TOK_MAX_RE);
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    int code;
    PCRE2_SIZE at;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, opts, &code, &at, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return hn_errf(err, HN_EUNSUPPORTED, "regex \"%.200s\" does not compile at offset %zu: %s",
                       pattern, (size_t)at, (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional speed-up; errors are harmless */
    if (bl) {
        pcre2_code_free(t->bl_re);
        t->bl_re = re;
        return HN_OK;
    }
    char *src = strndup(pattern, len);
    if (!src) {
        pcre2_code_free(re);
        return hn_errf(err, HN_ENOMEM, "out of memory");
    }
    t->re_src[t->n_re] = src;
    t->re_literal[t->n_re] = literal;
    t->re[t->n_re++] = re;
    return HN_OK;
}

static int by_len_desc(const void *a, const void *b, void *ctx) {
    const tok *t = ctx;
    uint32_t la = t->len[*(const int32_t *)a], lb = t->len[*(const int32_t *)b];
    return la < lb ? 1 : la > lb ? -1 : (*(const int32_t *)a > *(const int32_t *)b) -
                                          (*(const int32_t *)a < *(const int32_t *)b);
}

static hn_status collect_added(tok *t, hn_err *err) {
    int n = 0;
    for (int i = 0; i < t->n; i++)
        n += (t->type[i] == TOK_T_CONTROL || t->type[i] == TOK_T_USER) && t->len[i] > 0;
    free(t->added);
    t->added = malloc((size_t)(n ? n : 1) * sizeof *t->added);
    if (!t->added) return hn_errf(err, HN_ENOMEM, "out of memory for added tokens");
    t->n_added = 0;
    for (int i = 0; i < t->n; i++)
        if ((t->type[i] == TOK_T_CONTROL || t->type[i] == TOK_T_USER) && t->len[i] > 0)
            t->added[t->n_added++] = i;
    qsort_r(t->added, (size_t)t->n_added, sizeof *t->added, by_len_desc, t);
    return HN_OK;
}

hn_status tok_bpe_finish(tok *t, hn_err *err) {
    for (unsigned b = 0; b < 256; b++) {
        char p[2];
        size_t k = spell_byte(b, p);
        int id = tok_lookup(t, p, k);
        if (id < 0 || !t->in_model[id])
            return hn_errf(err, HN_EUNSUPPORTED, "byte-level BPE whose vocabulary lacks the "
                           "piece \"%.*s\" for byte 0x%02X is not supported", (int)k, p, b);
        t->bb_id[b] = id;
    }
    return collect_added(t, err);
}

void tok_bpe_free(tok *t) {
    for (int i = 0; i < t->n_re; i++) {
        pcre2_code_free(t->re[i]);
        free(t->re_src[i]);
    }
    pcre2_code_free(t->bl_re);
    free(t->added);
}

/* ---- encoding state ---- */

typedef struct bsym {
    int32_t id, prev, next; /* id -1: merged away */
    uint32_t start;         /* offset in the original text */
} bsym;

typedef struct bcand {
    uint32_t rank;
    int32_t left, lid, rid, res;
} bcand;

typedef struct bsrc { /* the bytes being split: the text, or a copy with a prefix space */
    const char *p;
    size_t org;   /* original offset of p[shift] */
    size_t shift; /* 1 when p[0] is a prepended space */
} bsrc;

typedef struct benc {
    const tok *t;
    tok_out *o;
    hn_err *err;
    pcre2_match_data *md[TOK_MAX_RE + 1];
    bsym *sy;
    size_t sy_cap;
    bcand *h;
    size_t nh, h_cap;
    char *buf; /* scratch: prefixed segment copies, spelled words */
    size_t buf_cap;
} benc;

static hn_status oom(benc *e) { return hn_errf(e->err, HN_ENOMEM, "out of memory while encoding"); }

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    void *np = realloc(*p, nc * elem);
    if (!np) return false;
    *p = np;
    *cap = nc;
    return true;
}

static uint32_t origin(const bsrc *s, size_t i) {
    return (uint32_t)(s->org + (i >= s->shift ? i - s->shift : 0));
}

/* ---- heap of merge candidates ---- */

static bool cand_before(const bcand *a, const bcand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static bool heap_push(benc *e, bcand c) {
    if (!grow((void **)&e->h, &e->h_cap, e->nh + 1, sizeof *e->h)) return false;
    size_t i = e->nh++;
    while (i > 0 && cand_before(&c, &e->h[(i - 1) / 2])) {
        e->h[i] = e->h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    e->h[i] = c;
    return true;
}

static bcand heap_pop(benc *e) {
    bcand top = e->h[0], last = e->h[--e->nh];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= e->nh) break;
        if (c + 1 < e->nh && cand_before(&e->h[c + 1], &e->h[c])) c++;
        if (!cand_before(&e->h[c], &last)) break;
        e->h[i] = e->h[c];
        i = c;
    }
    if (e->nh) e->h[i] = last;
    return top;
}

static bool try_pair(benc *e, int32_t l) {
    if (l < 0 || e->sy[l].next < 0) return true;
    int32_t a = e->sy[l].id, b = e->sy[e->sy[l].next].id, res;
    uint32_t rank;
    if (!tok_merge_map_get(&e->t->merges, a, b, &rank, &res)) return true;
    return heap_push(e, (bcand){rank, l, a, b, res});
}

/* ---- one word: bytes s->p[i0 .. i0 + n) ---- */

static int whole_word(benc *e, const char *p, size_t n) {
    if (!grow((void **)&e->buf, &e->buf_cap, 2 * n, 1)) return -2;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += spell_byte((unsigned char)p[i], e->buf + k);
    int id = tok_lookup(e->t, e->buf, k);
    return id >= 0 && e->t->in_model[id] ? id : -1;
}

static hn_status merge_word(benc *e) {
    while (e->nh) {
        bcand c = heap_pop(e);
        bsym *L = &e->sy[c.left];
        if (L->id != c.lid || L->next < 0 || e->sy[L->next].id != c.rid) continue;
        bsym *R = &e->sy[L->next];
        L->id = c.res;
        L->next = R->next;
        if (R->next >= 0) e->sy[R->next].prev = c.left;
        R->id = -1;
        if (!try_pair(e, L->prev) || !try_pair(e, c.left)) return oom(e);
    }
    return HN_OK;
}

static hn_status bpe_word(benc *e, const bsrc *s, size_t i0, size_t n) {
    const tok *t = e->t;
    const unsigned char *p = (const unsigned char *)s->p + i0;
    if (n == 1) return tok_out_push(e->o, t->bb_id[p[0]], origin(s, i0)) ? HN_OK : oom(e);
    if (t->ignore_merges) {
        int id = whole_word(e, (const char *)p, n);
        if (id == -2) return oom(e);
        if (id >= 0) return tok_out_push(e->o, id, origin(s, i0)) ? HN_OK : oom(e);
    }
    if (!grow((void **)&e->sy, &e->sy_cap, n, sizeof *e->sy)) return oom(e);
    e->nh = 0;
    for (size_t i = 0; i < n; i++)
        e->sy[i] = (bsym){t->bb_id[p[i]], (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1,
                          origin(s, i0 + i)};
    for (size_t i = 0; i + 1 < n; i++)
        if (!try_pair(e, (int32_t)i)) return oom(e);
    hn_status st = merge_word(e);
    for (int32_t i = 0; st == HN_OK && i >= 0; i = e->sy[i].next)
        if (!tok_out_push(e->o, e->sy[i].id, e->sy[i].start)) st = oom(e);
    return st;
}

/* ---- pre-tokenization ---- */

typedef hn_status (*piece_fn)(benc *e, const bsrc *s, size_t i0, size_t n, int level);

static size_t next_char(const char *p, size_t i, size_t end) {
    i++;
    while (i < end && ((unsigned char)p[i] & 0xC0) == 0x80) i++;
    return i;
}

/* Splits s->p[i0 .. i0 + n) by re ("Isolated": matches and gaps are pieces) and
 * calls fn on each piece with level + 1. */
static hn_status split_re(benc *e, const pcre2_code *re, pcre2_match_data *md, const bsrc *s,
                          size_t i0, size_t n, int level, piece_fn fn) {
    PCRE2_SPTR subj = (PCRE2_SPTR)(s->p + i0);
    size_t pos = 0, gap = 0;
    hn_status st = HN_OK;
    while (st == HN_OK && pos < n) {
        int rc = pcre2_match(re, subj, n, pos, 0, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) return hn_errf(e->err, HN_EINVAL, "pre-tokenizer regex failed (PCRE2 error %d) "
                                   "at byte %zu", rc, (size_t)origin(s, i0 + pos));
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (me == ms) { /* empty match: not a piece; move on by one character */
            pos = next_char((const char *)subj, ms, n);
            continue;
        }
        if (ms > gap) st = fn(e, s, i0 + gap, ms - gap, level + 1);
        if (st == HN_OK) st = fn(e, s, i0 + ms, me - ms, level + 1);
        pos = gap = me;
    }
    if (st == HN_OK && gap < n) st = fn(e, s, i0 + gap, n - gap, level + 1);
    return st;
}

static hn_status bl_regex(benc *e, const bsrc *s, size_t i0, size_t n, int level) {
    (void)level;
    return bpe_word(e, s, i0, n);
}

/* ByteLevel: optional prefix space, then GPT-2's regex (use_regex) or one word. */
static hn_status byte_level(benc *e, const bsrc *s, size_t i0, size_t n) {
    const tok *t = e->t;
    bsrc c = *s;
    if (t->bl_prefix_space && s->p[i0] != ' ') {
        char *copy = malloc(n + 1); /* own buffer: e->buf is reused by whole_word */
        if (!copy) return oom(e);
        copy[0] = ' ';
        memcpy(copy + 1, s->p + i0, n);
        c = (bsrc){copy, origin(s, i0), 1};
        hn_status st = t->bl_re ? split_re(e, t->bl_re, e->md[TOK_MAX_RE], &c, 0, n + 1, 0, bl_regex)
                                : bpe_word(e, &c, 0, n + 1);
        free(copy);
        return st;
    }
    return t->bl_re ? split_re(e, t->bl_re, e->md[TOK_MAX_RE], &c, i0, n, 0, bl_regex)
                    : bpe_word(e, &c, i0, n);
}

/* Piece at Split level `level` (0 = a whole segment between added tokens). */
static hn_status split_level(benc *e, const bsrc *s, size_t i0, size_t n, int level) {
    if (level >= e->t->n_re) return byte_level(e, s, i0, n);
    return split_re(e, e->t->re[level], e->md[level], s, i0, n, level, split_level);
}

/* ---- added tokens ---- */

/* Longest added token starting at text[i], or -1. */
static int added_at(const tok *t, const char *text, size_t len, size_t i) {
    for (int k = 0; k < t->n_added; k++) {
        int id = t->added[k];
        size_t l = t->len[id];
        if (l <= len - i && memcmp(text + i, t->text + t->off[id], l) == 0) return id;
    }
    return -1;
}

/* A segment the NFC normalizer changed: encoded from the normalised copy,
 * offsets mapped back to the caller's text. */
static hn_status segment_nfc(benc *e, const char *text, size_t i0, size_t n, bool *done) {
    char *norm;
    size_t nl;
    uint32_t *map;
    hn_status st = tok_nfc(text + i0, n, &norm, &nl, &map, e->err);
    *done = st || norm;
    if (st || !norm) return st;
    size_t first = *e->o->n;
    bsrc s = {norm, 0, 0};
    st = split_level(e, &s, 0, nl, 0);
    for (size_t k = first; !st && e->o->starts && k < *e->o->n; k++) {
        uint32_t *at = &(*e->o->starts)[k];
        *at = (uint32_t)i0 + map[*at < nl ? *at : nl];
    }
    free(norm);
    free(map);
    return st;
}

static hn_status segment(benc *e, const char *text, size_t i0, size_t n) {
    if (n == 0) return HN_OK;
    bool done = false;
    hn_status st = e->t->nfc ? segment_nfc(e, text, i0, n, &done) : HN_OK;
    if (done) return st;
    bsrc s = {text, 0, 0};
    return split_level(e, &s, i0, n, 0);
}

static hn_status encode_text(benc *e, const char *text, size_t len, bool parse_special) {
    size_t seg = 0;
    hn_status st = HN_OK;
    for (size_t i = 0; parse_special && e->t->n_added && i < len && st == HN_OK;) {
        int id = added_at(e->t, text, len, i);
        if (id < 0) {
            i++;
            continue;
        }
        st = segment(e, text, seg, i - seg);
        if (st == HN_OK && !tok_out_push(e->o, id, (uint32_t)i)) st = oom(e);
        i += e->t->len[id];
        seg = i;
    }
    if (st == HN_OK) st = segment(e, text, seg, len - seg);
    return st;
}

hn_status tok_bpe_encode(const tok *t, const char *text, size_t len, bool parse_special,
                         tok_out *o, hn_err *err) {
    if (len > UINT32_MAX / 2)
        return hn_errf(err, HN_EINVAL, "tok_encode: text of %zu bytes is too long", len);
    benc e = {.t = t, .o = o, .err = err};
    hn_status st = HN_OK;
    for (int i = 0; i < t->n_re && st == HN_OK; i++)
        if (!(e.md[i] = pcre2_match_data_create_from_pattern(t->re[i], NULL))) st = oom(&e);
    if (st == HN_OK && t->bl_re &&
        !(e.md[TOK_MAX_RE] = pcre2_match_data_create_from_pattern(t->bl_re, NULL)))
        st = oom(&e);
    if (st == HN_OK) st = encode_text(&e, text, len, parse_special);
    for (int i = 0; i <= TOK_MAX_RE; i++) pcre2_match_data_free(e.md[i]);
    free(e.sy);
    free(e.h);
    free(e.buf);
    return st;
}

/* ---- decoding ---- */

/* Appends the bytes a byte-level piece spells; characters outside the map are
 * copied as they are (HF's ByteLevel decoder does the same). */
static void unspell(const char *p, size_t n, hn_buf *out) {
    const unsigned char *s = (const unsigned char *)p;
    for (size_t i = 0; i < n;) {
        uint32_t cp = s[i];
        size_t k = 1;
        if ((s[i] & 0xE0) == 0xC0 && i + 1 < n && (s[i + 1] & 0xC0) == 0x80) {
            cp = (uint32_t)(s[i] & 0x1F) << 6 | (s[i + 1] & 0x3F);
            k = 2;
        } else if (s[i] >= 0x80) {
            cp = 0xFFFFFFFF; /* longer or invalid: never a byte spelling */
            k = 1;
            while (i + k < n && (s[i + k] & 0xC0) == 0x80) k++;
        }
        int b = cp_byte(cp);
        if (b >= 0) {
            char c = (char)b;
            hn_buf_append(out, &c, 1);
        } else {
            hn_buf_append(out, p + i, k);
        }
        i += k;
    }
}

void tok_bpe_decode_piece(const tok *t, int id, bool skip_special, hn_buf *out) {
    const char *p = t->text + t->off[id];
    switch (t->type[id]) {
    case TOK_T_NORMAL:
        unspell(p, t->len[id], out);
        break;
    case TOK_T_USER:
        hn_buf_append(out, p, t->len[id]);
        break;
    case TOK_T_CONTROL:
    case TOK_T_UNKNOWN:
        if (!skip_special) hn_buf_append(out, p, t->len[id]);
        break;
    default: /* unused, undefined, byte: nothing */
        break;
    }
}
