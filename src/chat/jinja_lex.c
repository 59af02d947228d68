/* jinja_lex.c — the Jinja lexer: template source -> text, tag and expression
 * tokens, with whitespace control applied as transformers configures Jinja:
 *
 *   - newlines normalised to "\n", one trailing newline of the source dropped
 *     (keep_trailing_newline=False);
 *   - "{%-", "{{-", "{#-" strip all whitespace before the tag; "-%}", "-}}",
 *     "-#}" strip all whitespace after it;
 *   - trim_blocks: the first newline after a block or comment tag is removed;
 *   - lstrip_blocks: spaces and tabs between the start of a line and a block or
 *     comment tag are removed ("{%+" and "+%}" turn these two off per tag);
 *   - {% raw %}...{% endraw %} is text.
 *
 * Inside tags, brackets are balanced so that "}}" closing a dict literal does
 * not end the tag (as Jinja does). */
#include "chat/jinja_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

typedef struct lexer {
    const char *s;
    size_t len;
    jarena *a;
    jtok *toks;
    size_t n, cap;
    hn_err *err;
    size_t lpos; /* where() cache: line of position lpos */
    int line;
    size_t lstart;
} lexer;

static void where(lexer *lx, size_t pos, int *line, int *col) {
    if (pos < lx->lpos) lx->lpos = 0, lx->line = 1, lx->lstart = 0;
    for (; lx->lpos < pos; lx->lpos++)
        if (lx->s[lx->lpos] == '\n') lx->line++, lx->lstart = lx->lpos + 1;
    *line = lx->line;
    *col = (int)(pos - lx->lstart) + 1;
}

static hn_status lex_err(lexer *lx, size_t pos, const char *msg, const char *arg) {
    int line, col;
    where(lx, pos, &line, &col);
    return hn_errf(lx->err, HN_EFORMAT, "chat template line %d, col %d: %s%s", line, col, msg,
                   arg ? arg : "");
}

static jtok *push(lexer *lx, tk_kind k, size_t pos, const char *p, size_t n) {
    if (lx->n == lx->cap) {
        size_t cap = lx->cap ? lx->cap * 2 : 256;
        jtok *t = ja_array(lx->a, cap, sizeof *t);
        if (!t) return NULL;
        if (lx->n) memcpy(t, lx->toks, lx->n * sizeof *t);
        lx->toks = t;
        lx->cap = cap;
    }
    jtok *t = &lx->toks[lx->n++];
    memset(t, 0, sizeof *t);
    t->k = k;
    t->p = p;
    t->n = n;
    where(lx, pos, &t->line, &t->col);
    return t;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* ---- string literals: Python escape rules ---- */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 63));
        o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 63));
    o[2] = (char)(0x80 | ((cp >> 6) & 63)); o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

/* \xHH, \uHHHH, \UHHHHHHHH: digits hex digits at p; -1 if malformed. */
static long hex_escape(const char *p, size_t avail, int digits) {
    if ((size_t)digits > avail) return -1;
    long v = 0;
    for (int i = 0; i < digits; i++) {
        int h = hexval(p[i]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v > 0x10FFFF ? -1 : v;
}

/* One escape after the backslash at s[i]; writes to o, returns bytes
 * written; *used = source bytes consumed after the backslash. */
static size_t unescape_one(const char *s, size_t avail, char *o, size_t *used) {
    static const char from[] = "ntr\\'\"bfva\n", to[] = "\n\t\r\\'\"\b\f\v\a";
    const char *f = memchr(from, s[0], sizeof from - 1);
    *used = 1;
    if (f && s[0] == '\n') return 0; /* line continuation */
    if (f) { o[0] = to[f - from]; return 1; }
    int digits = s[0] == 'x' ? 2 : s[0] == 'u' ? 4 : s[0] == 'U' ? 8 : 0;
    long cp = digits ? hex_escape(s + 1, avail - 1, digits) : -1;
    if (cp >= 0) { *used = 1 + (size_t)digits; return put_utf8(o, (uint32_t)cp); }
    if (s[0] >= '0' && s[0] <= '7') {
        unsigned v = 0;
        size_t k = 0;
        while (k < 3 && k < avail && s[k] >= '0' && s[k] <= '7') v = v * 8 + (unsigned)(s[k++] - '0');
        *used = k;
        return put_utf8(o, v);
    }
    o[0] = '\\'; /* unknown escape: Python keeps it */
    o[1] = s[0];
    return 2;
}

static hn_status lex_string(lexer *lx, size_t *pp) {
    size_t start = *pp, i = start + 1;
    char q = lx->s[start];
    while (i < lx->len && lx->s[i] != q) i += lx->s[i] == '\\' ? 2 : 1;
    if (i >= lx->len) return lex_err(lx, start, "unterminated string literal", NULL);
    char *o = ja_alloc(lx->a, (i - start) * 4 + 1);
    if (!o) return hn_errf(lx->err, HN_ENOMEM, "chat template: out of memory");
    size_t n = 0;
    for (size_t k = start + 1; k < i;) {
        if (lx->s[k] != '\\') { o[n++] = lx->s[k++]; continue; }
        size_t used;
        n += unescape_one(lx->s + k + 1, i - k - 1, o + n, &used);
        k += 1 + used;
    }
    if (!push(lx, TK_STRING, start, o, n)) return hn_errf(lx->err, HN_ENOMEM, "chat template: out of memory");
    *pp = i + 1;
    return HN_OK;
}

static hn_status lex_number(lexer *lx, size_t *pp) {
    size_t start = *pp, i = start;
    const char *s = lx->s;
    bool flt = false;
    while (i < lx->len && (isdigit((unsigned char)s[i]) || s[i] == '_')) i++;
    if (i + 1 < lx->len && s[i] == '.' && isdigit((unsigned char)s[i + 1])) {
        flt = true;
        for (i++; i < lx->len && (isdigit((unsigned char)s[i]) || s[i] == '_');) i++;
    }
    if (i < lx->len && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < lx->len && (s[j] == '+' || s[j] == '-')) j++;
        if (j < lx->len && isdigit((unsigned char)s[j])) {
            flt = true;
            for (i = j; i < lx->len && isdigit((unsigned char)s[i]);) i++;
        }
    }
    char buf[128];
    size_t n = 0;
    for (size_t k = start; k < i && n < sizeof buf - 1; k++)
        if (s[k] != '_') buf[n++] = s[k];
    buf[n] = 0;
    jtok *t = push(lx, flt ? TK_FLOAT : TK_INT, start, s + start, i - start);
    if (!t) return hn_errf(lx->err, HN_ENOMEM, "chat template: out of memory");
    if (flt) t->f = strtod(buf, NULL);
    else {
        char *end;
        unsigned long long v = strtoull(buf, &end, 10);
        if (n >= sizeof buf - 1 || v > INT64_MAX) return lex_err(lx, start, "integer literal too large", NULL);
        t->i = (int64_t)v;
    }
    *pp = i;
    return HN_OK;
}

static const char *const ops2[] = {"**", "//", "==", "!=", "<=", ">="};
static const char ops1[] = "+-*/%~<>=()[]{},.:|";

static hn_status lex_op(lexer *lx, size_t *pp, char *stack, int *depth) {
    size_t i = *pp;
    const char *s = lx->s;
    size_t n = 0;
    for (size_t k = 0; k < sizeof ops2 / sizeof *ops2 && !n; k++)
        if (i + 1 < lx->len && s[i] == ops2[k][0] && s[i + 1] == ops2[k][1]) n = 2;
    if (!n && strchr(ops1, s[i])) n = 1;
    if (!n) {
        char c[8];
        snprintf(c, sizeof c, "%c'", s[i]);
        return lex_err(lx, i, "unexpected character '", c);
    }
    if (n == 1 && strchr("([{", s[i])) {
        if (*depth >= 64) return lex_err(lx, i, "brackets nested too deeply", NULL);
        stack[(*depth)++] = s[i];
    } else if (n == 1 && strchr(")]}", s[i])) {
        char open = s[i] == ')' ? '(' : s[i] == ']' ? '[' : '{';
        if (*depth == 0 || stack[*depth - 1] != open) {
            char c[8];
            snprintf(c, sizeof c, "%c'", s[i]);
            return lex_err(lx, i, "unbalanced '", c);
        }
        (*depth)--;
    }
    if (!push(lx, TK_OP, i, s + i, n)) return hn_errf(lx->err, HN_ENOMEM, "chat template: out of memory");
    *pp = i + n;
    return HN_OK;
}

/* The tag end at p ("}}" for {{, "%}" for {%, optionally preceded by - or +):
 * its length, *sign set to '-', '+' or 0. 0 if none at p. */
static size_t tag_end_at(const lexer *lx, size_t p, char kind, char *sign) {
    const char *s = lx->s;
    char close = kind == '{' ? '}' : kind;
    *sign = 0;
    if (p < lx->len && (s[p] == '-' || s[p] == '+') && p + 2 < lx->len + 0 && s[p + 1] == close &&
        s[p + 2] == '}') {
        *sign = s[p];
        return 3;
    }
    if (p + 1 < lx->len && s[p] == close && s[p + 1] == '}') return 2;
    return 0;
}

/* Tokens of one {{ }} or {% %} tag from p; *pp ends after the tag end. */
static hn_status lex_tag(lexer *lx, size_t tag_pos, size_t *pp, char kind, char *end_sign) {
    char stack[64];
    int depth = 0;
    size_t p = *pp;
    hn_status st = HN_OK;
    for (;;) {
        while (p < lx->len && is_ws(lx->s[p])) p++;
        if (p >= lx->len)
            return lex_err(lx, tag_pos, kind == '{' ? "unterminated '{{' (no '}}')" : "unterminated '{%' (no '%}')", NULL);
        size_t n = depth == 0 ? tag_end_at(lx, p, kind, end_sign) : 0;
        if (n) {
            if (!push(lx, kind == '{' ? TK_VAR_END : TK_BLOCK_END, p, lx->s + p, n))
                return hn_errf(lx->err, HN_ENOMEM, "chat template: out of memory");
            *pp = p + n;
            return HN_OK;
        }
        char c = lx->s[p];
        if (isalpha((unsigned char)c) || c == '_') {
            size_t b = p;
            while (p < lx->len && (isalnum((unsigned char)lx->s[p]) || lx->s[p] == '_')) p++;
            if (!push(lx, TK_NAME, b, lx->s + b, p - b))
                return hn_errf(lx->err, HN_ENOMEM, "chat template: out of memory");
        } else if (isdigit((unsigned char)c)) st = lex_number(lx, &p);
        else if (c == '\'' || c == '"') st = lex_string(lx, &p);
        else st = lex_op(lx, &p, stack, &depth);
        if (st != HN_OK) return st;
    }
}

/* Appends text s[b..e) after whitespace control. */
static hn_status emit_text(lexer *lx, size_t b, size_t e) {
    if (e > b && !push(lx, TK_TEXT, b, lx->s + b, e - b))
        return hn_errf(lx->err, HN_ENOMEM, "chat template: out of memory");
    return HN_OK;
}

/* End of the text before a tag at t: whitespace control of that tag. */
static size_t text_end(const lexer *lx, size_t b, size_t t, char kind, char sign, bool line_starting) {
    const char *s = lx->s;
    if (sign == '-') {
        while (t > b && is_ws(s[t - 1])) t--;
        return t;
    }
    if (kind == '{' || sign == '+') return t;
    size_t l = t; /* lstrip_blocks */
    while (l > b && (s[l - 1] == ' ' || s[l - 1] == '\t')) l--;
    if (l > b ? s[l - 1] == '\n' : line_starting) return l;
    return t;
}

/* {% raw %} at p (after "{%" and the sign): true and *after past "%}" if so. */
static bool raw_begin(const lexer *lx, size_t p, size_t *after) {
    while (p < lx->len && is_ws(lx->s[p])) p++;
    if (p + 3 > lx->len || memcmp(lx->s + p, "raw", 3)) return false;
    p += 3;
    while (p < lx->len && is_ws(lx->s[p])) p++;
    if (p < lx->len && lx->s[p] == '-') p++;
    if (p + 2 > lx->len || memcmp(lx->s + p, "%}", 2)) return false;
    *after = p + 2;
    return true;
}

/* Finds "{% endraw %}" (any whitespace/signs) from p: start and end. */
static bool raw_end(const lexer *lx, size_t p, size_t *b, size_t *e) {
    for (const char *q; (q = memmem(lx->s + p, lx->len - p, "{%", 2)); p = (size_t)(q - lx->s) + 2) {
        size_t k = (size_t)(q - lx->s) + 2;
        if (k < lx->len && (lx->s[k] == '-' || lx->s[k] == '+')) k++;
        while (k < lx->len && is_ws(lx->s[k])) k++;
        if (k + 6 > lx->len || memcmp(lx->s + k, "endraw", 6)) continue;
        k += 6;
        while (k < lx->len && is_ws(lx->s[k])) k++;
        if (k < lx->len && lx->s[k] == '-') k++;
        if (k + 2 <= lx->len && !memcmp(lx->s + k, "%}", 2)) {
            *b = (size_t)(q - lx->s);
            *e = k + 2;
            return true;
        }
    }
    return false;
}

/* After a tag ending at p with sign: skips what whitespace control removes. */
static size_t after_tag(const lexer *lx, size_t p, char kind, char sign) {
    if (sign == '-')
        while (p < lx->len && is_ws(lx->s[p])) p++;
    else if (kind != '{' && sign != '+' && p < lx->len && lx->s[p] == '\n')
        p++; /* trim_blocks */
    return p;
}

static hn_status lex_comment(lexer *lx, size_t t, size_t *pp) {
    const char *q = memmem(lx->s + t + 2, lx->len - t - 2, "#}", 2);
    if (!q) return lex_err(lx, t, "unterminated comment '{#' (no '#}')", NULL);
    size_t e = (size_t)(q - lx->s);
    char sign = e > t + 2 && (lx->s[e - 1] == '-' || lx->s[e - 1] == '+') ? lx->s[e - 1] : 0;
    *pp = after_tag(lx, e + 2, '#', sign);
    return HN_OK;
}

static hn_status lex_all(lexer *lx) {
    size_t pos = 0;
    bool line_starting = true;
    hn_status st = HN_OK;
    while (st == HN_OK && pos < lx->len) {
        const char *q = pos + 1 < lx->len ? memchr(lx->s + pos, '{', lx->len - pos - 1) : NULL;
        while (q && !strchr("{%#", q[1]))
            q = (size_t)(q - lx->s) + 2 < lx->len ? memchr(q + 1, '{', lx->len - (size_t)(q - lx->s) - 2) : NULL;
        if (!q) return emit_text(lx, pos, lx->len);
        size_t t = (size_t)(q - lx->s);
        char kind = q[1];
        char sign = t + 2 < lx->len && (q[2] == '-' || q[2] == '+') ? q[2] : 0;
        st = emit_text(lx, pos, text_end(lx, pos, t, kind, sign, line_starting));
        size_t p = t + 2 + (sign ? 1 : 0), raw_after, rb, re;
        if (st != HN_OK) break;
        if (kind == '#') {
            st = lex_comment(lx, t, &pos);
        } else if (kind == '%' && raw_begin(lx, p, &raw_after)) {
            if (!raw_end(lx, raw_after, &rb, &re)) return lex_err(lx, t, "unterminated {% raw %}", NULL);
            st = emit_text(lx, after_tag(lx, raw_after, '%', 0), rb);
            pos = after_tag(lx, re, '%', 0);
        } else {
            char end_sign;
            if (!push(lx, kind == '{' ? TK_VAR_BEGIN : TK_BLOCK_BEGIN, t, q, 2))
                return hn_errf(lx->err, HN_ENOMEM, "chat template: out of memory");
            st = lex_tag(lx, t, &p, kind, &end_sign);
            pos = after_tag(lx, p, kind, end_sign);
        }
        line_starting = pos > 0 && lx->s[pos - 1] == '\n';
    }
    return st;
}

/* Jinja reads the source with newlines normalised and one trailing newline
 * dropped. */
static char *normalise(jarena *a, const char *src, size_t len, size_t *out_len) {
    char *s = ja_alloc(a, len + 1);
    if (!s) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n && s[n - 1] == '\n') n--;
    s[n] = 0;
    *out_len = n;
    return s;
}

hn_status jlex(const char *src, size_t len, jarena *a, jtok **toks, size_t *n, hn_err *err) {
    lexer lx = {.a = a, .err = err, .line = 1};
    lx.s = normalise(a, src, len, &lx.len);
    if (!lx.s) return hn_errf(err, HN_ENOMEM, "chat template: out of memory");
    hn_status st = lex_all(&lx);
    if (st == HN_OK && !push(&lx, TK_EOF, lx.len, lx.s + lx.len, 0))
        st = hn_errf(err, HN_ENOMEM, "chat template: out of memory");
    *toks = lx.toks;
    *n = lx.n;
    return st;
}
