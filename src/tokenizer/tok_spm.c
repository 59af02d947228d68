/* tok_spm.c — encoding for SentencePiece-style BPE with byte fallback.
 *
 * Text is normalised (spaces -> "▁", a "▁" prepended), split into UTF-8
 * characters (each byte of an invalid sequence is its own symbol) and the
 * symbols, kept in a linked list, are merged through a priority queue:
 *  - Hugging Face BPE (merges list): lowest merge rank first, ties leftmost,
 *    over symbol ids; characters outside the vocabulary become byte tokens before
 *    merging (tokenizers' BPE::merge_word + Word::merge_all);
 *  - GGUF "llama" vocab (no merges): the adjacent pair whose concatenation is a
 *    piece with the highest score first, ties leftmost; leftover characters that
 *    are not pieces become byte tokens afterwards (llama.cpp llm_tokenizer_spm).
 * Special-token text such as "<s>" in the input is plain text. Byte-level BPE
 * (TOK_BPE_BYTES) is dispatched to tok_bpe.c from encode(). Each symbol keeps
 * the normalised offset of the character it starts in, which maps back to the
 * original text for tok_encode_spans. */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct sym {
    uint32_t start; /* normalised byte offset of the symbol's bytes */
    uint32_t len;   /* 0 once merged into its left neighbour */
    uint32_t span;  /* normalised offset of the character the symbol starts in */
    int32_t id;     /* vocab id, or -1 (score mode: not a piece) */
    int32_t prev, next;
} sym;

typedef struct cand {
    double prio;    /* higher first: -rank or score */
    int32_t left;   /* symbol index */
    int32_t id;     /* id of the merged piece */
    uint32_t size;  /* score mode: byte length of the merged piece */
} cand;

typedef struct heap {
    cand *v;
    size_t n, cap;
} heap;

typedef struct enc {
    const tok *t;
    char *s;         /* normalised text */
    uint32_t *orig;  /* original offset of each normalised byte */
    size_t n;
    sym *sy;
    size_t nsy;
    heap h;
} enc;

/* ---- priority queue ---- */

static bool better(const cand *a, const cand *b) {
    return a->prio > b->prio || (a->prio == b->prio && a->left < b->left);
}

static bool heap_push(heap *h, cand c) {
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 64;
        cand *nv = realloc(h->v, nc * sizeof *nv);
        if (!nv) return false;
        h->v = nv;
        h->cap = nc;
    }
    size_t i = h->n++;
    while (i > 0 && better(&c, &h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = c;
    return true;
}

static cand heap_pop(heap *h) {
    cand top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && better(&h->v[c + 1], &h->v[c])) c++;
        if (!better(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

/* ---- output ---- */

bool tok_out_push(tok_out *o, int32_t id, uint32_t start) {
    if (*o->n == *o->cap) {
        size_t nc = *o->cap ? *o->cap * 2 : 64;
        int32_t *ni = realloc(*o->ids, nc * sizeof *ni);
        if (!ni) return false;
        *o->ids = ni;
        if (o->starts) {
            uint32_t *ns = realloc(*o->starts, nc * sizeof *ns);
            if (!ns) return false;
            *o->starts = ns;
        }
        *o->cap = nc;
    }
    (*o->ids)[*o->n] = id;
    if (o->starts) (*o->starts)[*o->n] = start;
    (*o->n)++;
    return true;
}

/* ---- normalisation and UTF-8 ---- */

static bool is_cont(unsigned char c) { return (c & 0xC0) == 0x80; }

/* Length of the valid UTF-8 character at s[i] (i < n), or 1 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n, size_t i) {
    unsigned char c = s[i];
    size_t left = n - i;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return left >= 2 && is_cont(s[i + 1]) ? 2 : 1;
    if (c >= 0xE0 && c <= 0xEF) {
        if (left < 3 || !is_cont(s[i + 1]) || !is_cont(s[i + 2])) return 1;
        if (c == 0xE0 && s[i + 1] < 0xA0) return 1; /* overlong */
        if (c == 0xED && s[i + 1] > 0x9F) return 1; /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (left < 4 || !is_cont(s[i + 1]) || !is_cont(s[i + 2]) || !is_cont(s[i + 3]))
            return 1;
        if (c == 0xF0 && s[i + 1] < 0x90) return 1; /* overlong */
        if (c == 0xF4 && s[i + 1] > 0x8F) return 1; /* > U+10FFFF */
        return 4;
    }
    return 1;
}

static void put_norm(enc *e, const char *p, size_t k, uint32_t orig) {
    memcpy(e->s + e->n, p, k);
    for (size_t j = 0; j < k; j++) e->orig[e->n + j] = orig;
    e->n += k;
}

static bool wants_prefix(const tok *t, const char *text, size_t len) {
    if (len == 0 || t->prefix == TOK_PREFIX_NONE) return false;
    if (t->prefix == TOK_PREFIX_ALWAYS) return true;
    return text[0] != ' ' && !(len >= 3 && memcmp(text, "\xE2\x96\x81", 3) == 0);
}

static hn_status normalise(enc *e, const char *text, size_t len, hn_err *err) {
    size_t cap = 3 * len + 3;
    e->s = malloc(cap);
    e->orig = malloc(cap * sizeof *e->orig);
    if (!e->s || !e->orig) return hn_errf(err, HN_ENOMEM, "out of memory encoding %zu bytes", len);
    if (wants_prefix(e->t, text, len)) put_norm(e, "\xE2\x96\x81", 3, 0);
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') put_norm(e, "\xE2\x96\x81", 3, (uint32_t)i);
        else put_norm(e, text + i, 1, (uint32_t)i);
    }
    return HN_OK;
}

/* ---- symbols ---- */

static void add_sym(enc *e, uint32_t start, uint32_t len, uint32_t span, int32_t id) {
    sym *s = &e->sy[e->nsy];
    s->start = start;
    s->len = len;
    s->span = span;
    s->id = id;
    s->prev = (int32_t)e->nsy - 1;
    s->next = -1;
    if (e->nsy) e->sy[e->nsy - 1].next = (int32_t)e->nsy;
    e->nsy++;
}

static int model_id(const tok *t, const char *p, size_t len) {
    int id = tok_lookup(t, p, len);
    return id >= 0 && t->in_model[id] ? id : -1;
}

static bool bytes_known(const tok *t, const unsigned char *p, size_t k) {
    for (size_t j = 0; j < k; j++) {
        int id = t->byte_id[p[j]];
        if (id < 0 || !t->in_model[id]) return false;
    }
    return true;
}

static hn_status no_token(const enc *e, uint32_t at, hn_err *err) {
    return hn_errf(err, HN_EINVAL,
                   "byte %u of the text: character not in the vocabulary and the "
                   "tokenizer has neither byte nor unknown tokens", (unsigned)e->orig[at]);
}

/* HF BPE::merge_word: characters -> ids, byte fallback, (fused) unknowns. */
static hn_status split_hf(enc *e, hn_err *err) {
    const tok *t = e->t;
    const unsigned char *s = (const unsigned char *)e->s;
    bool pending_unk = false;
    for (size_t i = 0; i < e->n;) {
        size_t k = utf8_len(s, e->n, i);
        int id = model_id(t, e->s + i, k);
        if (id < 0 && t->byte_fallback && bytes_known(t, s + i, k)) {
            for (size_t j = 0; j < k; j++)
                add_sym(e, (uint32_t)(i + j), 1, (uint32_t)i, t->byte_id[s[i + j]]);
            pending_unk = false;
        } else if (id < 0 && t->unk < 0) {
            return no_token(e, (uint32_t)i, err);
        } else if (id < 0 && pending_unk && t->fuse_unk) {
            e->sy[e->nsy - 1].len += (uint32_t)k;
        } else {
            add_sym(e, (uint32_t)i, (uint32_t)k, (uint32_t)i, id < 0 ? t->unk : id);
            pending_unk = id < 0;
        }
        i += k;
    }
    return HN_OK;
}

/* llama.cpp: one symbol per character, its id if it is a piece. */
static void split_chars(enc *e) {
    const unsigned char *s = (const unsigned char *)e->s;
    for (size_t i = 0; i < e->n;) {
        size_t k = utf8_len(s, e->n, i);
        add_sym(e, (uint32_t)i, (uint32_t)k, (uint32_t)i, tok_lookup(e->t, e->s + i, k));
        i += k;
    }
}

/* ---- merging ---- */

/* Queues the merge of symbols l and r (adjacent, both live) if there is one. */
static bool try_pair(enc *e, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return true;
    const tok *t = e->t;
    const sym *L = &e->sy[l], *R = &e->sy[r];
    cand c = {.left = l};
    if (t->use_merges) {
        uint32_t rank;
        if (!tok_merge_map_get(&t->merges, L->id, R->id, &rank, &c.id)) return true;
        c.prio = -(double)rank;
    } else {
        c.size = L->len + R->len;
        c.id = tok_lookup(t, e->s + L->start, c.size);
        if (c.id < 0) return true;
        c.prio = t->score[c.id];
    }
    return heap_push(&e->h, c);
}

/* Whether a popped candidate still describes the current pair at c->left. */
static bool cand_live(const enc *e, const cand *c) {
    const sym *L = &e->sy[c->left];
    if (L->len == 0 || L->next < 0) return false;
    const sym *R = &e->sy[L->next];
    if (!e->t->use_merges) return L->len + R->len == c->size;
    uint32_t rank;
    int32_t res;
    return tok_merge_map_get(&e->t->merges, L->id, R->id, &rank, &res) && res == c->id;
}

static hn_status merge_all(enc *e, hn_err *err) {
    for (size_t i = 1; i < e->nsy; i++)
        if (!try_pair(e, (int32_t)i - 1, (int32_t)i)) goto oom;
    while (e->h.n) {
        cand c = heap_pop(&e->h);
        if (!cand_live(e, &c)) continue;
        sym *L = &e->sy[c.left], *R = &e->sy[L->next];
        L->len += R->len;
        L->id = c.id;
        R->len = 0;
        L->next = R->next;
        if (R->next >= 0) e->sy[R->next].prev = c.left;
        if (!try_pair(e, L->prev, c.left) || !try_pair(e, c.left, L->next)) goto oom;
    }
    return HN_OK;
oom:
    return hn_errf(err, HN_ENOMEM, "out of memory while merging");
}

/* ---- emission ---- */

static hn_status emit(enc *e, tok_out *o, hn_err *err) {
    const tok *t = e->t;
    for (int32_t i = e->nsy ? 0 : -1; i >= 0; i = e->sy[i].next) {
        const sym *s = &e->sy[i];
        uint32_t at = e->orig[s->span];
        if (s->id >= 0) {
            if (!tok_out_push(o, s->id, at)) goto oom;
            continue;
        }
        for (uint32_t j = 0; j < s->len; j++) { /* byte fallback */
            int32_t id = t->byte_id[(unsigned char)e->s[s->start + j]];
            if (id < 0) id = t->unk;
            if (id < 0) return no_token(e, s->start, err);
            if (!tok_out_push(o, id, at)) goto oom;
        }
    }
    return HN_OK;
oom:
    return hn_errf(err, HN_ENOMEM, "out of memory for token ids");
}

static hn_status encode_normalised(enc *e, tok_out *o, hn_err *err) {
    const tok *t = e->t;
    if (t->use_merges && t->ignore_merges) {
        int id = model_id(t, e->s, e->n);
        if (id >= 0) return tok_out_push(o, id, 0) ? HN_OK : hn_errf(err, HN_ENOMEM, "out of memory");
    }
    e->sy = malloc((e->n ? e->n : 1) * sizeof *e->sy);
    if (!e->sy) return hn_errf(err, HN_ENOMEM, "out of memory for %zu symbols", e->n);
    hn_status st = HN_OK;
    if (t->use_merges) st = split_hf(e, err);
    else split_chars(e);
    if (st == HN_OK) st = merge_all(e, err);
    if (st == HN_OK) st = emit(e, o, err);
    return st;
}

static void enc_free(enc *e) {
    free(e->s);
    free(e->orig);
    free(e->sy);
    free(e->h.v);
}

static hn_status encode(const tok *t, const char *text, size_t len, bool add_bos,
                        bool parse_special, tok_out *o, hn_err *err) {
    if (!t || (!text && len) || !o->ids || !o->n || !o->cap)
        return hn_errf(err, HN_EINVAL, "tok_encode: bad arguments");
    if (t->kind == TOK_SPM && parse_special)
        return hn_errf(err, HN_EUNSUPPORTED, "tok_encode: SentencePiece tokenizers do not "
                       "parse special-token text");
    if (len > (INT32_MAX - 3) / 3)
        return hn_errf(err, HN_EINVAL, "tok_encode: text of %zu bytes is too long", len);
    size_t n0 = *o->n; /* on failure nothing is appended */
    enc e = {.t = t};
    hn_status st = HN_OK;
    if (add_bos && t->bos >= 0 && !tok_out_push(o, t->bos, 0))
        st = hn_errf(err, HN_ENOMEM, "out of memory for token ids");
    if (st == HN_OK && t->kind == TOK_BPE_BYTES)
        st = tok_bpe_encode(t, text, len, parse_special, o, err);
    else if (st == HN_OK) st = normalise(&e, text, len, err);
    if (st == HN_OK && e.n) st = encode_normalised(&e, o, err);
    if (st != HN_OK) *o->n = n0;
    enc_free(&e);
    return st;
}

hn_status tok_encode(const tok *t, const char *text, size_t len, bool add_bos,
                     int32_t **ids, size_t *n, size_t *cap, hn_err *err) {
    tok_out o = {ids, NULL, n, cap};
    return encode(t, text, len, add_bos, t && t->kind == TOK_BPE_BYTES, &o, err);
}

hn_status tok_encode_spans(const tok *t, const char *text, size_t len, bool add_bos,
                           int32_t **ids, uint32_t **starts, size_t *n, size_t *cap,
                           hn_err *err) {
    if (!starts) return hn_errf(err, HN_EINVAL, "tok_encode_spans: starts is NULL");
    tok_out o = {ids, starts, n, cap};
    return encode(t, text, len, add_bos, t && t->kind == TOK_BPE_BYTES, &o, err);
}

hn_status tok_encode_ex(const tok *t, const char *text, size_t len, bool add_bos,
                        bool parse_special, int32_t **ids, uint32_t **starts, size_t *n,
                        size_t *cap, hn_err *err) {
    tok_out o = {ids, starts, n, cap};
    return encode(t, text, len, add_bos, parse_special, &o, err);
}
