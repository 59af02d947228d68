/* jinja_str.c — Python's str methods for the Jinja interpreter: strip,
 * split, replace, startswith, case changes, format, indent. Character
 * positions are code points (UTF-8 decoded) as in Python. Case changes are
 * ASCII only: text with non-ASCII letters is refused rather than changed
 * differently from Python (hone carries no Unicode case tables). */
#include "chat/jinja_str.h"

#include <string.h>

/* Decodes one code point at p (n bytes available); *len = bytes used. */
static uint32_t cp_at(const char *p, size_t n, size_t *len) {
    const unsigned char *s = (const unsigned char *)p;
    if (s[0] < 0x80 || n < 2) { *len = 1; return s[0]; }
    if (s[0] >= 0xF0 && n >= 4) {
        *len = 4;
        return (uint32_t)(s[0] & 7) << 18 | (uint32_t)(s[1] & 63) << 12 | (uint32_t)(s[2] & 63) << 6 | (s[3] & 63);
    }
    if (s[0] >= 0xE0 && n >= 3) {
        *len = 3;
        return (uint32_t)(s[0] & 15) << 12 | (uint32_t)(s[1] & 63) << 6 | (s[2] & 63);
    }
    *len = 2;
    return (uint32_t)(s[0] & 31) << 6 | (s[1] & 63);
}

/* Start of the code point that ends at p + n. */
static size_t cp_start_before(const char *p, size_t n) {
    size_t k = n - 1;
    while (k > 0 && n - k < 4 && ((unsigned char)p[k] & 0xC0) == 0x80) k--;
    return k;
}

/* str.isspace() */
bool jstr_is_space(uint32_t c) {
    return (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

static bool in_set(uint32_t c, const char *chars, size_t n) {
    for (size_t i = 0, l; i < n; i += l)
        if (cp_at(chars + i, n - i, &l) == c) return true;
    return false;
}

static bool strippable(uint32_t c, const char *chars, size_t cn) {
    return chars ? in_set(c, chars, cn) : jstr_is_space(c);
}

jv jstr_strip(jv s, const char *chars, size_t cn, bool left, bool right) {
    const char *p = s.u.s.p;
    size_t b = 0, e = s.u.s.n, l;
    while (left && b < e && strippable(cp_at(p + b, e - b, &l), chars, cn)) b += l;
    while (right && e > b) {
        size_t k = cp_start_before(p + b, e - b) + b;
        if (!strippable(cp_at(p + k, e - k, &l), chars, cn)) break;
        e = k;
    }
    return jv_str(p + b, e - b);
}

static bool push_piece(jarena *a, jlist *l, size_t *cap, jv v) {
    if (l->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        jv *nv = ja_array(a, nc, sizeof *nv);
        if (!nv) return false;
        if (l->n) memcpy(nv, l->v, l->n * sizeof *nv);
        l->v = nv;
        *cap = nc;
    }
    l->v[l->n++] = v;
    return true;
}

/* split() without a separator: runs of whitespace, no empty pieces. */
static bool split_ws(jarena *a, jv s, int64_t maxsplit, bool from_right, jlist *l, size_t *cap) {
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, i = 0, len;
    if (from_right) { /* collect left-to-right pieces, then merge the head */
        jlist all = {0};
        size_t acap = 0;
        if (!split_ws(a, s, -1, false, &all, &acap)) return false;
        if (maxsplit < 0 || (size_t)maxsplit + 1 >= all.n) { *l = all; *cap = acap; return true; }
        size_t keep = (size_t)maxsplit, head = all.n - keep;
        const char *hb = all.v[0].u.s.p, *he = all.v[head - 1].u.s.p + all.v[head - 1].u.s.n;
        if (!push_piece(a, l, cap, jv_str(hb, (size_t)(he - hb)))) return false;
        for (size_t k = head; k < all.n; k++)
            if (!push_piece(a, l, cap, all.v[k])) return false;
        return true;
    }
    while (i < n) {
        while (i < n && jstr_is_space(cp_at(p + i, n - i, &len))) i += len;
        if (i >= n) break;
        if (maxsplit >= 0 && (int64_t)l->n == maxsplit) {
            return push_piece(a, l, cap, jv_str(p + i, n - i));
        }
        size_t b = i;
        while (i < n && !jstr_is_space(cp_at(p + i, n - i, &len))) i += len;
        if (!push_piece(a, l, cap, jv_str(p + b, i - b))) return false;
    }
    return true;
}

/* split(sep) / rsplit(sep) with a separator. */
static bool split_sep(jarena *a, jv s, jv sep, int64_t maxsplit, bool from_right, jlist *l, size_t *cap) {
    const char *p = s.u.s.p, *q = sep.u.s.p;
    size_t n = s.u.s.n, m = sep.u.s.n;
    if (!from_right) {
        size_t b = 0;
        for (const char *f; (maxsplit < 0 || (int64_t)l->n < maxsplit) && (f = memmem(p + b, n - b, q, m));) {
            if (!push_piece(a, l, cap, jv_str(p + b, (size_t)(f - p) - b))) return false;
            b = (size_t)(f - p) + m;
        }
        return push_piece(a, l, cap, jv_str(p + b, n - b));
    }
    size_t e = n, cnt = 0, np = 0;
    jlist rev = {0};
    size_t rcap = 0;
    while ((maxsplit < 0 || (int64_t)cnt < maxsplit) && e >= m) {
        size_t k = e - m + 1, hit = (size_t)-1;
        while (k-- > 0)
            if (!memcmp(p + k, q, m)) { hit = k; break; }
        if (hit == (size_t)-1) break;
        if (!push_piece(a, &rev, &rcap, jv_str(p + hit + m, e - hit - m))) return false;
        e = hit;
        cnt++;
    }
    if (!push_piece(a, l, cap, jv_str(p, e))) return false;
    for (np = rev.n; np > 0; np--)
        if (!push_piece(a, l, cap, rev.v[np - 1])) return false;
    return true;
}

bool jstr_split(jarena *a, jv s, const jv *sep, int64_t maxsplit, bool from_right, jlist **out) {
    jlist *l = ja_alloc(a, sizeof *l);
    size_t cap = 0;
    if (!l) return false;
    bool ok = sep ? split_sep(a, s, *sep, maxsplit, from_right, l, &cap)
                  : split_ws(a, s, maxsplit, from_right, l, &cap);
    *out = l;
    return ok;
}

bool jstr_replace(jarena *a, jv s, jv old, jv rep, int64_t count, jv *out) {
    hn_buf b;
    hn_buf_init(&b);
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, i = 0, len;
    int64_t done = 0;
    if (old.u.s.n == 0) { /* Python inserts between every character */
        for (; i <= n && (count < 0 || done < count); done++) {
            hn_buf_append(&b, rep.u.s.p, rep.u.s.n);
            if (i == n) { i++; break; }
            cp_at(p + i, n - i, &len);
            hn_buf_append(&b, p + i, len);
            i += len;
        }
        if (i < n) hn_buf_append(&b, p + i, n - i);
    } else {
        for (const char *f; (count < 0 || done < count) && (f = memmem(p + i, n - i, old.u.s.p, old.u.s.n)); done++) {
            hn_buf_append(&b, p + i, (size_t)(f - p) - i);
            hn_buf_append(&b, rep.u.s.p, rep.u.s.n);
            i = (size_t)(f - p) + old.u.s.n;
        }
        hn_buf_append(&b, p + i, n - i);
    }
    char *r = b.oom ? NULL : ja_strdup(a, b.data ? b.data : "", b.len);
    if (r) *out = jv_str(r, b.len);
    hn_buf_free(&b);
    return r != NULL;
}

bool jstr_has_non_ascii(jv s) {
    for (size_t i = 0; i < s.u.s.n; i++)
        if ((unsigned char)s.u.s.p[i] >= 0x80) return true;
    return false;
}

static char up(char c) { return c >= 'a' && c <= 'z' ? (char)(c - 32) : c; }
static char low(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c; }
static bool alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* mode: 'u' upper, 'l' lower, 'c' capitalize, 't' Python title, 'j' Jinja's
 * title filter (words start after - whitespace ( { [ <). */
bool jstr_case(jarena *a, jv s, char mode, jv *out) {
    char *r = ja_strdup(a, s.u.s.p, s.u.s.n);
    if (!r) return false;
    bool start = true;
    for (size_t i = 0; i < s.u.s.n; i++) {
        char c = r[i];
        switch (mode) {
        case 'u': r[i] = up(c); break;
        case 'l': r[i] = low(c); break;
        case 'c': r[i] = i == 0 ? up(c) : low(c); break;
        case 't':
            r[i] = start ? up(c) : low(c);
            start = !alpha(c);
            break;
        default:
            r[i] = start ? up(c) : low(c);
            start = strchr("- \t\n\r\v\f({[<", c) != NULL;
            break;
        }
    }
    *out = jv_str(r, s.u.s.n);
    return true;
}

/* Jinja's indent filter (s += "\n", splitlines, re-join). */
bool jstr_indent(jarena *a, jv s, jv ind, bool first, bool blank, jv *out) {
    hn_buf b;
    hn_buf_init(&b);
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, i = 0;
    bool line0 = true;
    while (i <= n) { /* lines of s + "\n", the empty tail dropped */
        const char *nl = i < n ? memchr(p + i, '\n', n - i) : NULL;
        size_t e = nl ? (size_t)(nl - p) : n;
        bool empty = e == i;
        if (!line0) hn_buf_putc(&b, '\n');
        if ((line0 && first) || (!line0 && (!empty || blank))) hn_buf_append(&b, ind.u.s.p, ind.u.s.n);
        hn_buf_append(&b, p + i, e - i);
        line0 = false;
        i = e + 1;
        if (!nl) break;
    }
    char *r = b.oom ? NULL : ja_strdup(a, b.data ? b.data : "", b.len);
    if (r) *out = jv_str(r, b.len);
    hn_buf_free(&b);
    return r != NULL;
}

int64_t jstr_find(jv s, jv sub) {
    const char *f = sub.u.s.n ? memmem(s.u.s.p, s.u.s.n, sub.u.s.p, sub.u.s.n) : s.u.s.p;
    return f ? (int64_t)utf8_count(s.u.s.p, (size_t)(f - s.u.s.p)) : -1;
}

int64_t jstr_count(jv s, jv sub) {
    if (!sub.u.s.n) return (int64_t)utf8_count(s.u.s.p, s.u.s.n) + 1;
    int64_t c = 0;
    for (size_t i = 0; i + sub.u.s.n <= s.u.s.n;) {
        const char *f = memmem(s.u.s.p + i, s.u.s.n - i, sub.u.s.p, sub.u.s.n);
        if (!f) break;
        c++;
        i = (size_t)(f - s.u.s.p) + sub.u.s.n;
    }
    return c;
}
