/* tok.c — the tokenizer object: allocation, vocabulary indexing (piece->id and
 * merge-pair hash maps), accessors and decoding. Loading lives in tok_gguf.c and
 * tok_hf.c, encoding in tok_spm.c and tok_bpe.c.
 *
 * Decoding rules for TOK_SPM (docs/tokenizer.md; TOK_BPE_BYTES decodes in tok_bpe.c): normal pieces give their text with "▁"
 * turned into " "; byte tokens give their raw byte; user-defined tokens give their
 * text verbatim; control, unknown and unused tokens give nothing (as HF with
 * skip_special_tokens and llama.cpp with special=false). When the tokenizer
 * prepends "▁" on encode, one leading space is dropped from a piece that follows
 * nothing (prev = -1) or BOS — SentencePiece/llama2.c's rule. */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

#include "base/num.h"

static uint64_t hash_bytes(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* Smallest power of two >= 2n (at least 16), or 0 if too large. */
static size_t table_size(size_t n) {
    size_t c = 16;
    while (c < 2 * n) {
        if (c > ((size_t)1 << 40)) return 0;
        c *= 2;
    }
    return c;
}

hn_status tok_alloc(int n, size_t text_bytes, tok **out, hn_err *err) {
    *out = NULL;
    size_t arena;
    if (n <= 0 || n > (1 << 28) || !hn_add_ok(text_bytes, (size_t)n, &arena) ||
        arena > UINT32_MAX)
        return hn_errf(err, HN_EFORMAT, "vocabulary of %d pieces (%zu bytes) out of range",
                       n, text_bytes);
    tok *t = calloc(1, sizeof *t);
    if (!t) return hn_errf(err, HN_ENOMEM, "out of memory");
    t->n = n;
    t->text = malloc(arena);
    t->off = calloc((size_t)n, sizeof *t->off);
    t->len = calloc((size_t)n, sizeof *t->len);
    t->score = calloc((size_t)n, sizeof *t->score);
    t->type = calloc((size_t)n, 1);
    t->byte_val = calloc((size_t)n, 1);
    t->in_model = calloc((size_t)n, 1);
    if (!t->text || !t->off || !t->len || !t->score || !t->type || !t->byte_val ||
        !t->in_model) {
        tok_free(t);
        return hn_errf(err, HN_ENOMEM, "out of memory for %d pieces", n);
    }
    t->bos = t->eos = t->unk = t->pad = -1;
    for (int b = 0; b < 256; b++) t->byte_id[b] = t->bb_id[b] = -1;
    *out = t;
    return HN_OK;
}

void tok_free(tok *t) {
    if (!t) return;
    free(t->text);
    free(t->off);
    free(t->len);
    free(t->score);
    free(t->type);
    free(t->byte_val);
    free(t->in_model);
    free(t->map.slots);
    free(t->merges.keys);
    free(t->merges.rank);
    free(t->merges.result);
    tok_bpe_free(t);
    free(t);
}

void tok_set_piece(tok *t, int i, const char *p, size_t len, size_t *cursor) {
    t->off[i] = (uint32_t)*cursor;
    t->len[i] = (uint32_t)len;
    if (len) memcpy(t->text + *cursor, p, len);
    t->text[*cursor + len] = '\0';
    *cursor += len + 1;
}

int tok_parse_byte_piece(const char *p, size_t len) {
    if (len != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0'
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
              : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Finds the slot for piece p: either the slot holding it or the empty slot. */
static uint32_t *map_slot(const tok *t, const char *p, size_t len) {
    uint32_t mask = t->map.mask;
    for (uint64_t h = hash_bytes(p, len);; h++) {
        uint32_t *s = &t->map.slots[h & mask];
        if (*s == 0) return s;
        uint32_t id = *s - 1;
        if (t->len[id] == len && memcmp(t->text + t->off[id], p, len) == 0) return s;
    }
}

int tok_lookup(const tok *t, const char *p, size_t len) {
    if (!t->map.slots) return -1;
    uint32_t *s = map_slot(t, p, len);
    return *s ? (int)(*s - 1) : -1;
}

static void index_bytes(tok *t) {
    static const char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; b++) {
        char piece[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
        t->byte_id[b] = tok_lookup(t, piece, 6);
    }
}

hn_status tok_index(tok *t, int *dup, hn_err *err) {
    *dup = -1;
    size_t cap = table_size((size_t)t->n);
    if (!cap || cap > UINT32_MAX) return hn_errf(err, HN_ENOMEM, "vocabulary too large");
    t->map.slots = calloc(cap, sizeof *t->map.slots);
    if (!t->map.slots) return hn_errf(err, HN_ENOMEM, "out of memory for the vocabulary map");
    t->map.mask = (uint32_t)(cap - 1);
    for (int i = 0; i < t->n; i++) {
        uint32_t *s = map_slot(t, t->text + t->off[i], t->len[i]);
        if (*s && *dup < 0) *dup = (int)(*s - 1);
        *s = (uint32_t)i + 1;
    }
    index_bytes(t);
    return HN_OK;
}

hn_status tok_merge_map_init(tok_merge_map *m, size_t n, hn_err *err) {
    size_t cap = table_size(n);
    if (!cap || cap > UINT32_MAX) return hn_errf(err, HN_ENOMEM, "too many merges");
    m->keys = calloc(cap, sizeof *m->keys);
    m->rank = calloc(cap, sizeof *m->rank);
    m->result = calloc(cap, sizeof *m->result);
    if (!m->keys || !m->rank || !m->result)
        return hn_errf(err, HN_ENOMEM, "out of memory for %zu merges", n);
    m->mask = (uint32_t)(cap - 1);
    return HN_OK;
}

static size_t merge_slot(const tok_merge_map *m, uint64_t key) {
    for (uint64_t h = hash_u64(key);; h++) {
        size_t i = h & m->mask;
        if (m->keys[i] == 0 || m->keys[i] == key) return i;
    }
}

void tok_merge_map_put(tok_merge_map *m, int32_t a, int32_t b, uint32_t rank, int32_t res) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    size_t i = merge_slot(m, key);
    m->keys[i] = key; /* a repeated pair keeps the later rank, as HF's HashMap does */
    m->rank[i] = rank;
    m->result[i] = res;
}

bool tok_merge_map_get(const tok_merge_map *m, int32_t a, int32_t b, uint32_t *rank,
                       int32_t *res) {
    if (!m->keys) return false;
    uint64_t key = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    size_t i = merge_slot(m, key);
    if (m->keys[i] != key) return false;
    *rank = m->rank[i];
    *res = m->result[i];
    return true;
}

/* ---- accessors ---- */

tok_kind tok_get_kind(const tok *t) { return t->kind; }
int tok_vocab_size(const tok *t) { return t->n; }
int tok_bos(const tok *t) { return t->bos; }
int tok_eos(const tok *t) { return t->eos; }
int tok_unk(const tok *t) { return t->unk; }
int tok_pad(const tok *t) { return t->pad; }
bool tok_default_add_bos(const tok *t) { return t->add_bos && t->bos >= 0; }

const char *tok_piece(const tok *t, int id) {
    if (id < 0 || id >= t->n) return "";
    return t->text + t->off[id];
}

int tok_find(const tok *t, const char *piece, size_t len) {
    return piece ? tok_lookup(t, piece, len) : -1;
}

bool tok_is_special(const tok *t, int id) {
    if (id < 0 || id >= t->n) return false;
    return t->type[id] == TOK_T_CONTROL || t->type[id] == TOK_T_UNKNOWN;
}

/* ---- decoding ---- */

/* Appends a normal piece with every "▁" (E2 96 81) replaced by a space. */
static void put_unescaped(const char *p, size_t n, bool strip, hn_buf *out) {
    size_t i = 0;
    if (strip) {
        if (n >= 3 && memcmp(p, "\xE2\x96\x81", 3) == 0) i = 3;
        else if (n >= 1 && p[0] == ' ') i = 1;
    }
    size_t run = i;
    while (i < n) {
        if (i + 3 <= n && memcmp(p + i, "\xE2\x96\x81", 3) == 0) {
            hn_buf_append(out, p + run, i - run);
            hn_buf_putc(out, ' ');
            i += 3;
            run = i;
        } else {
            i++;
        }
    }
    hn_buf_append(out, p + run, n - run);
}

void tok_decode_piece_ex(const tok *t, int prev, int id, bool skip_special, hn_buf *out) {
    if (id < 0 || id >= t->n) return;
    if (t->kind == TOK_BPE_BYTES) {
        tok_bpe_decode_piece(t, id, skip_special, out);
        return;
    }
    bool strip = t->prefix != TOK_PREFIX_NONE && (prev < 0 || prev == t->bos);
    const char *p = t->text + t->off[id];
    switch (t->type[id]) {
    case TOK_T_NORMAL:
        put_unescaped(p, t->len[id], strip, out);
        break;
    case TOK_T_BYTE:
        if (!(strip && t->byte_val[id] == ' ')) hn_buf_putc(out, (char)t->byte_val[id]);
        break;
    case TOK_T_USER:
        hn_buf_append(out, p, t->len[id]);
        break;
    case TOK_T_CONTROL:
    case TOK_T_UNKNOWN:
        if (!skip_special) hn_buf_append(out, p, t->len[id]);
        break;
    default: /* unused, undefined: nothing */
        break;
    }
}

void tok_decode_piece(const tok *t, int prev, int id, hn_buf *out) {
    tok_decode_piece_ex(t, prev, id, true, out);
}

void tok_decode_ex(const tok *t, const int32_t *ids, size_t n, bool skip_special, hn_buf *out) {
    int prev = -1;
    for (size_t i = 0; i < n; i++) {
        tok_decode_piece_ex(t, prev, ids[i], skip_special, out);
        prev = ids[i];
    }
}

void tok_decode(const tok *t, const int32_t *ids, size_t n, hn_buf *out) {
    tok_decode_ex(t, ids, n, true, out);
}
