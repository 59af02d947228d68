/* tok_nfc.c — Unicode NFC normalisation (utf8proc) for tokenizers whose
 * tokenizer.json asks for it (Qwen's normalizer NFC), with a map from every
 * output byte back to the input so token offsets stay in the caller's text.
 *
 * The text is cut into chunks that NFC treats independently: a chunk starts
 * at a character NFC never joins with what precedes it — below U+0300 (no
 * composition has such a second element, none of them changes under NFC, and
 * all have combining class 0), a CJK ideograph or a Hangul syllable — or at
 * an invalid UTF-8 byte, which is kept as it is (HF only takes valid UTF-8;
 * hone encodes anything). A chunk NFC leaves alone maps byte for byte; the
 * bytes of a changed chunk all map to the chunk's first byte. */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static bool starts_chunk(utf8proc_int32_t c) {
    return c < 0x300 || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) ||
           (c >= 0xAC00 && c <= 0xD7A3);
}

/* Length of the valid UTF-8 character at p[0..n) and its code point, or 0. */
static size_t char_at(const char *p, size_t n, utf8proc_int32_t *c) {
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)p,
                                          (utf8proc_ssize_t)(n > 4 ? 4 : n), c);
    return k > 0 ? (size_t)k : 0;
}

typedef struct nfc_out {
    char *p;
    uint32_t *map;
    size_t n, cap;
} nfc_out;

static bool put(nfc_out *o, const char *p, size_t n, uint32_t at, bool identity) {
    if (o->n + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 64;
        while (cap < o->n + n + 1) cap *= 2;
        char *np = realloc(o->p, cap);
        if (np) o->p = np;
        uint32_t *nm = np ? realloc(o->map, cap * sizeof *nm) : NULL;
        if (!nm) return false;
        o->map = nm;
        o->cap = cap;
    }
    memcpy(o->p + o->n, p, n);
    for (size_t i = 0; i < n; i++) o->map[o->n + i] = at + (identity ? (uint32_t)i : 0);
    o->n += n;
    return true;
}

/* End of the chunk that starts with the valid character at text[i]. */
static size_t chunk_end(const char *text, size_t len, size_t i, size_t k) {
    size_t j = i + k;
    while (j < len) {
        utf8proc_int32_t c;
        size_t m = char_at(text + j, len - j, &c);
        if (!m || starts_chunk(c)) break;
        j += m;
    }
    return j;
}

/* Normalises text[i..j) into o; *changed when NFC altered it. */
static hn_status chunk(nfc_out *o, const char *text, size_t i, size_t j, bool *changed,
                       hn_err *err) {
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(j - i),
                                      &dst, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (r < 0) {
        free(dst);
        return r == UTF8PROC_ERROR_NOMEM
                   ? hn_errf(err, HN_ENOMEM, "out of memory normalising text")
                   : hn_errf(err, HN_EINVAL, "NFC at byte %zu: %s", i, utf8proc_errmsg(r));
    }
    bool same = (size_t)r == j - i && memcmp(dst, text + i, j - i) == 0;
    *changed |= !same;
    bool ok = put(o, same ? text + i : (const char *)dst, same ? j - i : (size_t)r, (uint32_t)i,
                  same);
    free(dst);
    return ok ? HN_OK : hn_errf(err, HN_ENOMEM, "out of memory normalising text");
}

hn_status tok_nfc(const char *text, size_t len, char **out, size_t *out_len, uint32_t **map,
                  hn_err *err) {
    *out = NULL;
    *map = NULL;
    *out_len = 0;
    size_t i = 0;
    while (i < len && !((unsigned char)text[i] & 0x80)) i++;
    if (i == len) return HN_OK; /* ASCII is NFC */
    i = i ? i - 1 : 0; /* the last ASCII character may take the marks that follow */
    nfc_out o = {0};
    bool changed = false;
    hn_status st = put(&o, text, i, 0, true) ? HN_OK : hn_errf(err, HN_ENOMEM, "out of memory");
    while (!st && i < len) {
        utf8proc_int32_t c;
        size_t k = char_at(text + i, len - i, &c);
        if (!k) { /* an invalid byte: kept, a chunk of its own */
            st = put(&o, text + i, 1, (uint32_t)i, true) ? HN_OK
                                                         : hn_errf(err, HN_ENOMEM, "out of memory");
            i++;
            continue;
        }
        size_t j = chunk_end(text, len, i, k);
        st = j - i == 1 ? (put(&o, text + i, 1, (uint32_t)i, true)
                               ? HN_OK
                               : hn_errf(err, HN_ENOMEM, "out of memory"))
                        : chunk(&o, text, i, j, &changed, err);
        i = j;
    }
    if (st || !changed) {
        free(o.p);
        free(o.map);
        return st;
    }
    o.map[o.n] = (uint32_t)len; /* one past the end: offsets of an empty tail */
    *out = o.p;
    *map = o.map;
    *out_len = o.n;
    return HN_OK;
}
