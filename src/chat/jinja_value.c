/* jinja_value.c — run-time values of the Jinja interpreter with Python's
 * semantics, since transformers renders templates with Python Jinja2:
 * truthiness, equality and ordering, str() and repr() (None, True, 1.0,
 * ['a', 'b']), json.dumps(ensure_ascii=False) for tojson, and the conversion
 * of JSON input (messages, tools) into values. All memory is the render's
 * arena, so values are never freed one by one. */
#include "chat/jinja_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

jlist *jlist_new(jarena *a, size_t n) {
    jlist *l = ja_alloc(a, sizeof *l);
    if (!l) return NULL;
    l->n = n;
    l->v = n ? ja_array(a, n, sizeof *l->v) : NULL;
    return n && !l->v ? NULL : l;
}

bool jv_truthy(jv v) {
    switch (v.k) {
    case JV_UNDEF: case JV_NONE: return false;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0;
    case JV_STR: return v.u.s.n != 0;
    case JV_LIST: return v.u.l->n != 0;
    case JV_DICT: return v.u.d->n != 0;
    default: return true;
    }
}

const char *jv_type_name(jv v) {
    static const char *const names[] = {"Undefined", "NoneType", "bool", "int", "float", "str",
                                        "list", "dict", "Namespace", "Macro", "LoopContext",
                                        "function"};
    return names[v.k];
}

static bool is_num(jv v) { return v.k == JV_INT || v.k == JV_FLOAT || v.k == JV_BOOL; }

static double num_f(jv v) {
    return v.k == JV_FLOAT ? v.u.f : v.k == JV_INT ? (double)v.u.i : v.u.b;
}

bool jv_equal(jv a, jv b) {
    if (is_num(a) && is_num(b)) {
        if (a.k != JV_FLOAT && b.k != JV_FLOAT) return (a.k == JV_INT ? a.u.i : a.u.b) == (b.k == JV_INT ? b.u.i : b.u.b);
        return num_f(a) == num_f(b);
    }
    if (a.k != b.k) return false;
    switch (a.k) {
    case JV_UNDEF: case JV_NONE: return true;
    case JV_STR: return a.u.s.n == b.u.s.n && !memcmp(a.u.s.p, b.u.s.p, a.u.s.n);
    case JV_LIST:
        if (a.u.l->n != b.u.l->n) return false;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!jv_equal(a.u.l->v[i], b.u.l->v[i])) return false;
        return true;
    case JV_DICT: case JV_NS:
        if (a.u.d->n != b.u.d->n) return false;
        for (size_t i = 0; i < a.u.d->n; i++) {
            jv k = a.u.d->keys[i], other = jv_undef();
            for (size_t j = 0; j < b.u.d->n; j++)
                if (jv_equal(k, b.u.d->keys[j])) other = b.u.d->vals[j];
            if (other.k == JV_UNDEF || !jv_equal(a.u.d->vals[i], other)) return false;
        }
        return true;
    case JV_MACRO: return a.u.m == b.u.m;
    case JV_LOOP: return a.u.lp == b.u.lp;
    case JV_FUNC: return a.u.fn == b.u.fn;
    default: return false;
    }
}

bool jv_compare(jv a, jv b, int *cmp) {
    if (is_num(a) && is_num(b)) {
        if (a.k == JV_INT && b.k == JV_INT) *cmp = (a.u.i > b.u.i) - (a.u.i < b.u.i);
        else *cmp = (num_f(a) > num_f(b)) - (num_f(a) < num_f(b));
        return true;
    }
    if (a.k == JV_STR && b.k == JV_STR) { /* UTF-8 byte order = code point order */
        size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
        int c = n ? memcmp(a.u.s.p, b.u.s.p, n) : 0;
        *cmp = c ? (c > 0) - (c < 0) : (a.u.s.n > b.u.s.n) - (a.u.s.n < b.u.s.n);
        return true;
    }
    if (a.k == JV_LIST && b.k == JV_LIST) {
        for (size_t i = 0; i < a.u.l->n && i < b.u.l->n; i++) {
            if (jv_equal(a.u.l->v[i], b.u.l->v[i])) continue;
            return jv_compare(a.u.l->v[i], b.u.l->v[i], cmp);
        }
        *cmp = (a.u.l->n > b.u.l->n) - (a.u.l->n < b.u.l->n);
        return true;
    }
    return false;
}

/* ---- str() / repr() ---- */

/* Python's repr(float): the shortest digits that read back the same, fixed
 * notation for exponents -4..15, else d.ddde+XX. */
static void fmt_float(double f, char *out, size_t cap) {
    if (isnan(f)) { snprintf(out, cap, "nan"); return; }
    if (isinf(f)) { snprintf(out, cap, f < 0 ? "-inf" : "inf"); return; }
    char e[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, f);
        if (strtod(e, NULL) == f) break;
    }
    char digits[24];
    size_t nd = 0;
    const char *p = e;
    bool neg = *p == '-';
    if (neg) p++;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int ex = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    size_t o = 0;
    if (neg) out[o++] = '-';
    if (ex >= -4 && ex < 16) {
        if (ex < 0) {
            o += (size_t)snprintf(out + o, cap - o, "0.");
            for (int k = -1; k > ex; k--) out[o++] = '0';
            snprintf(out + o, cap - o, "%s", digits);
            return;
        }
        for (int k = 0; k <= ex; k++) out[o++] = (size_t)k < nd ? digits[k] : '0';
        out[o++] = '.';
        if ((size_t)ex + 1 < nd) snprintf(out + o, cap - o, "%s", digits + ex + 1);
        else snprintf(out + o, cap - o, "0");
        return;
    }
    out[o++] = digits[0];
    if (nd > 1) o += (size_t)snprintf(out + o, cap - o, ".%s", digits + 1);
    snprintf(out + o, cap - o, "e%c%02d", ex < 0 ? '-' : '+', ex < 0 ? -ex : ex);
}

static bool repr_str(const char *p, size_t n, hn_buf *b) {
    bool sq = memchr(p, '\'', n) != NULL, dq = memchr(p, '"', n) != NULL;
    char q = sq && !dq ? '"' : '\'';
    hn_buf_putc(b, q);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\\' || c == (unsigned char)q) hn_buf_putc(b, '\\'), hn_buf_putc(b, (char)c);
        else if (c == '\n') hn_buf_puts(b, "\\n");
        else if (c == '\r') hn_buf_puts(b, "\\r");
        else if (c == '\t') hn_buf_puts(b, "\\t");
        else if (c < 0x20 || c == 0x7f) hn_buf_printf(b, "\\x%02x", c);
        else hn_buf_putc(b, (char)c);
    }
    return hn_buf_putc(b, q);
}

static bool jv_repr(jv v, hn_buf *b) {
    if (v.k == JV_STR) return repr_str(v.u.s.p, v.u.s.n, b);
    if (v.k == JV_UNDEF) return hn_buf_puts(b, "Undefined");
    return jv_to_str(v, b);
}

static bool dict_to_str(const jdict *d, hn_buf *b) {
    hn_buf_putc(b, '{');
    for (size_t i = 0; i < d->n; i++) {
        if (i) hn_buf_puts(b, ", ");
        jv_repr(d->keys[i], b);
        hn_buf_puts(b, ": ");
        jv_repr(d->vals[i], b);
    }
    return hn_buf_putc(b, '}');
}

bool jv_to_str(jv v, hn_buf *b) {
    char tmp[64];
    switch (v.k) {
    case JV_UNDEF: return true;
    case JV_NONE: return hn_buf_puts(b, "None");
    case JV_BOOL: return hn_buf_puts(b, v.u.b ? "True" : "False");
    case JV_INT: return hn_buf_printf(b, "%lld", (long long)v.u.i);
    case JV_FLOAT: fmt_float(v.u.f, tmp, sizeof tmp); return hn_buf_puts(b, tmp);
    case JV_STR: return hn_buf_append(b, v.u.s.p, v.u.s.n);
    case JV_LIST:
        hn_buf_putc(b, v.u.l->tuple ? '(' : '[');
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) hn_buf_puts(b, ", ");
            jv_repr(v.u.l->v[i], b);
        }
        if (v.u.l->tuple && v.u.l->n == 1) hn_buf_putc(b, ',');
        return hn_buf_putc(b, v.u.l->tuple ? ')' : ']');
    case JV_DICT: return dict_to_str(v.u.d, b);
    case JV_NS: hn_buf_puts(b, "<Namespace "); dict_to_str(v.u.d, b); return hn_buf_putc(b, '>');
    case JV_MACRO: return hn_buf_printf(b, "<Macro '%s'>", v.u.m->name);
    case JV_LOOP: return hn_buf_puts(b, "<LoopContext>");
    case JV_FUNC: return hn_buf_puts(b, "<function>");
    }
    return false;
}

bool jv_stringify(jarena *a, jv v, jv *out) {
    if (v.k == JV_STR) {
        *out = v;
        return true;
    }
    hn_buf b;
    hn_buf_init(&b);
    bool ok = jv_to_str(v, &b) && !b.oom;
    char *s = ok ? ja_strdup(a, b.data ? b.data : "", b.len) : NULL;
    if (s) *out = jv_str(s, b.len);
    hn_buf_free(&b);
    return s != NULL;
}

/* ---- json.dumps ---- */

static bool json_str(const char *p, size_t n, hn_buf *b) {
    hn_buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                        : c == '\t' ? "\\t" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
        if (esc) hn_buf_puts(b, esc);
        else if (c < 0x20) hn_buf_printf(b, "\\u%04x", c);
        else hn_buf_putc(b, (char)c);
    }
    return hn_buf_putc(b, '"');
}

static void json_nl(int indent, int level, hn_buf *b) {
    hn_buf_putc(b, '\n');
    for (int k = 0; k < indent * level; k++) hn_buf_putc(b, ' ');
}

/* Python json turns None/bool/number keys into strings. */
static bool json_key(jv k, hn_buf *b, const char **bad) {
    if (k.k == JV_STR) return json_str(k.u.s.p, k.u.s.n, b);
    if (k.k == JV_NONE) return hn_buf_puts(b, "\"null\"");
    if (k.k == JV_BOOL) return hn_buf_puts(b, k.u.b ? "\"true\"" : "\"false\"");
    if (k.k == JV_INT || k.k == JV_FLOAT) {
        hn_buf_putc(b, '"');
        jv_to_str(k, b);
        return hn_buf_putc(b, '"');
    }
    *bad = jv_type_name(k);
    return false;
}

bool jv_to_json(jv v, int indent, int level, hn_buf *b, const char **bad) {
    char tmp[64];
    bool list = v.k == JV_LIST;
    size_t n = list ? v.u.l->n : v.k == JV_DICT ? v.u.d->n : 0;
    switch (v.k) {
    case JV_NONE: return hn_buf_puts(b, "null");
    case JV_BOOL: return hn_buf_puts(b, v.u.b ? "true" : "false");
    case JV_INT: return hn_buf_printf(b, "%lld", (long long)v.u.i);
    case JV_FLOAT:
        if (isnan(v.u.f)) return hn_buf_puts(b, "NaN");
        if (isinf(v.u.f)) return hn_buf_puts(b, v.u.f < 0 ? "-Infinity" : "Infinity");
        fmt_float(v.u.f, tmp, sizeof tmp);
        return hn_buf_puts(b, tmp);
    case JV_STR: return json_str(v.u.s.p, v.u.s.n, b);
    case JV_LIST: case JV_DICT: break;
    default: *bad = jv_type_name(v); return false;
    }
    hn_buf_putc(b, list ? '[' : '{');
    for (size_t i = 0; i < n; i++) {
        if (i) hn_buf_puts(b, indent >= 0 ? "," : ", ");
        if (indent >= 0) json_nl(indent, level + 1, b);
        if (!list && (!json_key(v.u.d->keys[i], b, bad) || !hn_buf_puts(b, ": "))) return false;
        if (!jv_to_json(list ? v.u.l->v[i] : v.u.d->vals[i], indent, level + 1, b, bad)) return false;
    }
    if (indent >= 0 && n) json_nl(indent, level, b);
    return hn_buf_putc(b, list ? ']' : '}');
}

/* ---- JSON input ---- */

bool jv_from_json(jarena *a, const json_t *j, jv *out) {
    switch (json_typeof(j)) {
    case JSON_NULL: *out = jv_none(); return true;
    case JSON_TRUE: *out = jv_bool(true); return true;
    case JSON_FALSE: *out = jv_bool(false); return true;
    case JSON_INTEGER: *out = jv_int(json_integer_value(j)); return true;
    case JSON_REAL: *out = jv_float(json_real_value(j)); return true;
    case JSON_STRING: {
        size_t n = json_string_length(j);
        char *s = ja_strdup(a, json_string_value(j), n);
        if (s) *out = jv_str(s, n);
        return s != NULL;
    }
    case JSON_ARRAY: {
        jlist *l = jlist_new(a, json_array_size(j));
        if (!l) return false;
        for (size_t i = 0; i < l->n; i++)
            if (!jv_from_json(a, json_array_get(j, i), &l->v[i])) return false;
        out->k = JV_LIST;
        out->u.l = l;
        return true;
    }
    case JSON_OBJECT: {
        jdict *d = ja_alloc(a, sizeof *d);
        if (!d) return false;
        out->k = JV_DICT;
        out->u.d = d;
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)j, key, val) {
            size_t kn = strlen(key);
            char *ks = ja_strdup(a, key, kn);
            jv *slot = ks ? jdict_slot(a, d, jv_str(ks, kn)) : NULL;
            if (!slot || !jv_from_json(a, val, slot)) return false;
        }
        return true;
    }
    }
    return false;
}

/* ---- dicts, lists, strings ---- */

jv jdict_get(const jdict *d, const char *key, size_t n) {
    for (size_t i = 0; i < d->n; i++) {
        jv k = d->keys[i];
        if (k.k == JV_STR && k.u.s.n == n && !memcmp(k.u.s.p, key, n)) return d->vals[i];
    }
    return jv_undef();
}

jv *jdict_slot(jarena *a, jdict *d, jv key) {
    for (size_t i = 0; i < d->n; i++)
        if (jv_equal(d->keys[i], key)) return &d->vals[i];
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        jv *k = ja_array(a, cap, sizeof *k), *v = ja_array(a, cap, sizeof *v);
        if (!k || !v) return NULL;
        if (d->n) memcpy(k, d->keys, d->n * sizeof *k), memcpy(v, d->vals, d->n * sizeof *v);
        d->keys = k, d->vals = v, d->cap = cap;
    }
    d->keys[d->n] = key;
    d->vals[d->n] = jv_undef();
    return &d->vals[d->n++];
}

static size_t utf8_len_at(const char *p, size_t n) {
    unsigned char c = (unsigned char)p[0];
    size_t k = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return k > n ? n : k;
}

size_t utf8_count(const char *p, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i += utf8_len_at(p + i, n - i)) c++;
    return c;
}

bool jv_str_chars(jarena *a, jv s, jlist **out) {
    jlist *l = jlist_new(a, utf8_count(s.u.s.p, s.u.s.n));
    if (!l) return false;
    size_t i = 0;
    for (size_t k = 0; k < l->n; k++) {
        size_t len = utf8_len_at(s.u.s.p + i, s.u.s.n - i);
        l->v[k] = jv_str(s.u.s.p + i, len);
        i += len;
    }
    *out = l;
    return true;
}

bool jv_iter_list(jarena *a, jv v, const jlist **out) {
    static jlist empty;
    if (v.k == JV_LIST) { *out = v.u.l; return true; }
    if (v.k == JV_UNDEF) { *out = &empty; return true; }
    if (v.k == JV_STR) {
        jlist *l;
        if (!jv_str_chars(a, v, &l)) return false;
        *out = l;
        return true;
    }
    if (v.k == JV_DICT || v.k == JV_NS) {
        jlist *l = jlist_new(a, v.u.d->n);
        if (!l) return false;
        for (size_t i = 0; i < l->n; i++) l->v[i] = v.u.d->keys[i];
        *out = l;
        return true;
    }
    return false;
}
