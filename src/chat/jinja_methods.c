/* jinja_methods.c — the interpreter's tests (`x is defined`), methods of
 * strings, dicts and the loop variable (`s.startswith('x')`, `d.items()`),
 * global functions (namespace, range, dict, raise_exception, strftime_now)
 * and attribute lookup. Each set has a name table the parser checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat/jinja_internal.h"
#include "chat/jinja_str.h"

/* ---- tests ---- */

static const char *const tests[] = {
    "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "even", "false", "float",
    "ge", "gt", "in", "integer", "iterable", "le", "lower", "lt", "mapping", "ne", "none",
    "number", "odd", "sameas", "sequence", "string", "true", "undefined", "upper", NULL};

bool jbuiltin_has_test(const char *name) {
    for (int k = 0; tests[k]; k++)
        if (!strcmp(tests[k], name)) return true;
    return false;
}

static bool same(jv a, jv b) {
    if (a.k != b.k) return false;
    switch (a.k) {
    case JV_LIST: return a.u.l == b.u.l;
    case JV_DICT: case JV_NS: return a.u.d == b.u.d;
    default: return jv_equal(a, b);
    }
}

/* Tests with one argument: comparisons, membership, divisibleby, sameas. */
static hn_status test_binary(jctx *c, const jnode *at, const char *name, jv v, jv a, bool *out) {
    int cmp;
    if (!strcmp(name, "divisibleby")) {
        if (v.k != JV_INT || a.k != JV_INT || a.u.i == 0) return jerr(c, at, HN_EINVAL, "divisibleby needs non-zero integers");
        *out = v.u.i % a.u.i == 0;
    } else if (!strcmp(name, "sameas")) *out = same(v, a);
    else if (!strcmp(name, "eq") || !strcmp(name, "equalto")) *out = jv_equal(v, a);
    else if (!strcmp(name, "ne")) *out = !jv_equal(v, a);
    else if (!strcmp(name, "in")) {
        *out = false;
        if (a.k == JV_STR && v.k == JV_STR) *out = memmem(a.u.s.p, a.u.s.n, v.u.s.p, v.u.s.n) || !v.u.s.n;
        else if (a.k == JV_LIST) for (size_t i = 0; i < a.u.l->n && !*out; i++) *out = jv_equal(a.u.l->v[i], v);
        else if (a.k == JV_DICT) for (size_t i = 0; i < a.u.d->n && !*out; i++) *out = jv_equal(a.u.d->keys[i], v);
        else return jerr(c, at, HN_EINVAL, "'in' test: '%s' is not a container", jv_type_name(a));
    } else {
        if (!jv_compare(v, a, &cmp))
            return jerr(c, at, HN_EINVAL, "test '%s' cannot compare '%s' and '%s'", name, jv_type_name(v), jv_type_name(a));
        *out = !strcmp(name, "lt") ? cmp < 0 : !strcmp(name, "le") ? cmp <= 0 : !strcmp(name, "gt") ? cmp > 0 : cmp >= 0;
    }
    return HN_OK;
}

static bool case_test(jv v, bool upper) {
    if (v.k != JV_STR) return false;
    bool cased = false;
    for (size_t i = 0; i < v.u.s.n; i++) {
        char ch = v.u.s.p[i];
        if (ch >= 'a' && ch <= 'z') { if (upper) return false; cased = true; }
        if (ch >= 'A' && ch <= 'Z') { if (!upper) return false; cased = true; }
    }
    return cased;
}

hn_status jbuiltin_test(jctx *c, const jnode *at, const char *name, jv v, jv *args, int nargs, bool *out) {
    static const char *const binary[] = {"divisibleby", "sameas", "eq", "equalto", "ne", "in", "lt", "le", "gt", "ge", NULL};
    for (int k = 0; binary[k]; k++)
        if (!strcmp(binary[k], name)) {
            if (nargs != 1) return jerr(c, at, HN_EINVAL, "test '%s' takes one argument", name);
            return test_binary(c, at, name, v, args[0], out);
        }
    if (nargs) return jerr(c, at, HN_EINVAL, "test '%s' takes no argument", name);
    jkind k = v.k;
    if (!strcmp(name, "defined")) *out = k != JV_UNDEF;
    else if (!strcmp(name, "undefined")) *out = k == JV_UNDEF;
    else if (!strcmp(name, "none")) *out = k == JV_NONE;
    else if (!strcmp(name, "boolean")) *out = k == JV_BOOL;
    else if (!strcmp(name, "true")) *out = k == JV_BOOL && v.u.b;
    else if (!strcmp(name, "false")) *out = k == JV_BOOL && !v.u.b;
    else if (!strcmp(name, "integer")) *out = k == JV_INT;
    else if (!strcmp(name, "float")) *out = k == JV_FLOAT;
    else if (!strcmp(name, "number")) *out = k == JV_INT || k == JV_FLOAT || k == JV_BOOL;
    else if (!strcmp(name, "string")) *out = k == JV_STR;
    else if (!strcmp(name, "mapping")) *out = k == JV_DICT;
    else if (!strcmp(name, "iterable")) *out = k == JV_STR || k == JV_LIST || k == JV_DICT;
    else if (!strcmp(name, "sequence")) *out = k == JV_STR || k == JV_LIST || k == JV_DICT;
    else if (!strcmp(name, "callable")) *out = k == JV_MACRO || k == JV_FUNC;
    else if (!strcmp(name, "odd") || !strcmp(name, "even")) {
        if (k != JV_INT) return jerr(c, at, HN_EINVAL, "test '%s' needs an integer, got %s", name, jv_type_name(v));
        *out = (v.u.i % 2 != 0) == !strcmp(name, "odd");
    } else if (!strcmp(name, "lower") || !strcmp(name, "upper")) *out = case_test(v, name[0] == 'u');
    else return jerr(c, at, HN_EUNSUPPORTED, "unsupported test '%s'", name);
    return HN_OK;
}

/* ---- attributes ---- */

static jv loop_attr(const jloop *lp, const char *name) {
    size_t i = lp->i, n = lp->items->n;
    if (!strcmp(name, "index")) return jv_int((int64_t)i + 1);
    if (!strcmp(name, "index0")) return jv_int((int64_t)i);
    if (!strcmp(name, "revindex")) return jv_int((int64_t)(n - i));
    if (!strcmp(name, "revindex0")) return jv_int((int64_t)(n - i - 1));
    if (!strcmp(name, "first")) return jv_bool(i == 0);
    if (!strcmp(name, "last")) return jv_bool(i + 1 == n);
    if (!strcmp(name, "length")) return jv_int((int64_t)n);
    if (!strcmp(name, "depth")) return jv_int(1);
    if (!strcmp(name, "depth0")) return jv_int(0);
    if (!strcmp(name, "previtem")) return i > 0 ? lp->items->v[i - 1] : jv_undef();
    if (!strcmp(name, "nextitem")) return i + 1 < n ? lp->items->v[i + 1] : jv_undef();
    return jv_undef();
}

jv jattr(jv obj, const char *name) {
    if (obj.k == JV_DICT || obj.k == JV_NS) return jdict_get(obj.u.d, name, strlen(name));
    if (obj.k == JV_LOOP) return loop_attr(obj.u.lp, name);
    return jv_undef();
}

/* ---- methods ---- */

static const char *const str_methods[] = {
    "capitalize", "count", "endswith", "find", "format", "join", "lower", "lstrip", "replace",
    "rsplit", "rstrip", "split", "startswith", "strip", "title", "upper", NULL};
static const char *const dict_methods[] = {"get", "items", "keys", "values", NULL};

static bool in_names(const char *const *names, const char *name) {
    for (; *names; names++)
        if (!strcmp(*names, name)) return true;
    return false;
}

bool jbuiltin_has_method(const char *name) {
    return in_names(str_methods, name) || in_names(dict_methods, name) || !strcmp(name, "cycle");
}

static hn_status opt_str(jctx *c, const jnode *at, const char *what, jv v) {
    return v.k == JV_UNDEF || v.k == JV_NONE ? HN_OK : jneed(c, at, what, v, JV_STR);
}

static hn_status opt_int(jctx *c, const jnode *at, const char *what, jv v, int64_t dflt, int64_t *out) {
    *out = v.k == JV_INT ? v.u.i : dflt;
    return v.k == JV_UNDEF || v.k == JV_INT ? HN_OK : jneed(c, at, what, v, JV_INT);
}

/* startswith/endswith: a string or a list (tuple) of strings. */
static hn_status m_affix(jctx *c, const jnode *at, jv s, const jargs *x, bool end, jv *out) {
    const char *what = end ? "endswith" : "startswith";
    jv a = jarg(x, 0, NULL);
    if (jcheck_args(c, at, what, x, 1, NULL)) return c->st;
    const jv *cands = &a;
    size_t n = 1;
    if (a.k == JV_LIST) cands = a.u.l->v, n = a.u.l->n;
    bool r = false;
    for (size_t i = 0; i < n && !r; i++) {
        jv p = cands[i];
        if (jneed(c, at, what, p, JV_STR)) return c->st;
        r = p.u.s.n <= s.u.s.n && !memcmp(s.u.s.p + (end ? s.u.s.n - p.u.s.n : 0), p.u.s.p, p.u.s.n);
    }
    *out = jv_bool(r);
    return HN_OK;
}

static hn_status m_strip(jctx *c, const jnode *at, jv s, const jargs *x, const char *what, jv *out) {
    jv chars = jarg(x, 0, NULL);
    if (jcheck_args(c, at, what, x, 1, NULL) || opt_str(c, at, what, chars)) return c->st;
    bool cs = chars.k == JV_STR;
    *out = jstr_strip(s, cs ? chars.u.s.p : NULL, cs ? chars.u.s.n : 0, what[0] != 'r', what[0] != 'l');
    return HN_OK;
}

static hn_status m_split(jctx *c, const jnode *at, jv s, const jargs *x, bool right, jv *out) {
    static const char *const kw[] = {"sep", "maxsplit", NULL};
    const char *what = right ? "rsplit" : "split";
    jv sep = jarg(x, 0, "sep");
    int64_t max;
    if (jcheck_args(c, at, what, x, 2, kw) || opt_str(c, at, what, sep) ||
        opt_int(c, at, what, jarg(x, 1, "maxsplit"), -1, &max))
        return c->st;
    if (sep.k == JV_STR && !sep.u.s.n) return jerr(c, at, HN_EINVAL, "%s: empty separator", what);
    jlist *l;
    if (!jstr_split(c->a, s, sep.k == JV_STR ? &sep : NULL, max, right, &l)) return joom(c, at);
    out->k = JV_LIST;
    out->u.l = l;
    return HN_OK;
}

/* str.format with {} / {0} / {name} fields and {{ }}; no format specs. */
static hn_status m_format(jctx *c, const jnode *at, jv s, const jargs *x, jv *out) {
    hn_buf b;
    hn_buf_init(&b);
    int auto_idx = 0;
    const char *p = s.u.s.p, *e = p + s.u.s.n;
    while (p < e && c->st == HN_OK) {
        if ((*p == '{' || *p == '}') && p + 1 < e && p[1] == *p) { hn_buf_putc(&b, *p); p += 2; continue; }
        if (*p != '{') { hn_buf_putc(&b, *p++); continue; }
        const char *close = memchr(p, '}', (size_t)(e - p));
        if (!close) { jerr(c, at, HN_EINVAL, "format: single '{' in format string"); break; }
        char field[64];
        snprintf(field, sizeof field, "%.*s", (int)(close - p - 1), p + 1);
        if (strpbrk(field, ":!.[")) { jerr(c, at, HN_EUNSUPPORTED, "format: unsupported field '{%s}'", field); break; }
        jv v = !*field ? jarg(x, auto_idx++, NULL) : (*field >= '0' && *field <= '9') ? jarg(x, atoi(field), NULL) : jarg(x, -1, field);
        if (v.k == JV_UNDEF) { jerr(c, at, HN_EINVAL, "format: no argument for '{%s}'", field); break; }
        jv_to_str(v, &b);
        p = close + 1;
    }
    char *r = c->st == HN_OK && !b.oom ? ja_strdup(c->a, b.data ? b.data : "", b.len) : NULL;
    if (r) *out = jv_str(r, b.len);
    else if (c->st == HN_OK) joom(c, at);
    hn_buf_free(&b);
    return c->st;
}

static hn_status m_join(jctx *c, const jnode *at, jv s, const jargs *x, jv *out) {
    jv items = jarg(x, 0, NULL);
    if (jcheck_args(c, at, "join", x, 1, NULL) || jneed(c, at, "join", items, JV_LIST)) return c->st;
    hn_buf b;
    hn_buf_init(&b);
    for (size_t i = 0; i < items.u.l->n && c->st == HN_OK; i++) {
        if (jneed(c, at, "join", items.u.l->v[i], JV_STR)) break;
        if (i) hn_buf_append(&b, s.u.s.p, s.u.s.n);
        hn_buf_append(&b, items.u.l->v[i].u.s.p, items.u.l->v[i].u.s.n);
    }
    char *r = c->st == HN_OK && !b.oom ? ja_strdup(c->a, b.data ? b.data : "", b.len) : NULL;
    if (r) *out = jv_str(r, b.len);
    else if (c->st == HN_OK) joom(c, at);
    hn_buf_free(&b);
    return c->st;
}

static hn_status str_method(jctx *c, const jnode *at, jv s, const char *name, const jargs *x, jv *out) {
    jv a0 = jarg(x, 0, NULL), a1 = jarg(x, 1, NULL);
    int64_t cnt;
    if (!strcmp(name, "startswith") || !strcmp(name, "endswith")) return m_affix(c, at, s, x, name[0] == 'e', out);
    if (strstr(name, "strip")) return m_strip(c, at, s, x, name, out);
    if (!strcmp(name, "split") || !strcmp(name, "rsplit")) return m_split(c, at, s, x, name[0] == 'r', out);
    if (!strcmp(name, "format")) return m_format(c, at, s, x, out);
    if (!strcmp(name, "join")) return m_join(c, at, s, x, out);
    if (!strcmp(name, "replace")) {
        if (jcheck_args(c, at, name, x, 3, NULL) || jneed(c, at, name, a0, JV_STR) || jneed(c, at, name, a1, JV_STR) ||
            opt_int(c, at, name, jarg(x, 2, NULL), -1, &cnt))
            return c->st;
        return jstr_replace(c->a, s, a0, a1, cnt, out) ? HN_OK : joom(c, at);
    }
    if (!strcmp(name, "find") || !strcmp(name, "count")) {
        if (jcheck_args(c, at, name, x, 1, NULL) || jneed(c, at, name, a0, JV_STR)) return c->st;
        *out = jv_int(name[0] == 'f' ? jstr_find(s, a0) : jstr_count(s, a0));
        return HN_OK;
    }
    if (jcheck_args(c, at, name, x, 0, NULL)) return c->st;
    if (jstr_has_non_ascii(s)) return jerr(c, at, HN_EUNSUPPORTED, "%s() of non-ASCII text is not supported", name);
    char mode = !strcmp(name, "upper") ? 'u' : !strcmp(name, "lower") ? 'l' : !strcmp(name, "title") ? 't' : 'c';
    return jstr_case(c->a, s, mode, out) ? HN_OK : joom(c, at);
}

static hn_status dict_method(jctx *c, const jnode *at, const jdict *d, const char *name, const jargs *x, jv *out) {
    if (!strcmp(name, "get")) {
        jv k = jarg(x, 0, NULL), dflt = jarg(x, 1, NULL);
        if (jcheck_args(c, at, name, x, 2, NULL)) return c->st;
        *out = dflt.k == JV_UNDEF ? jv_none() : dflt;
        for (size_t i = 0; i < d->n; i++)
            if (jv_equal(d->keys[i], k)) *out = d->vals[i];
        return HN_OK;
    }
    if (jcheck_args(c, at, name, x, 0, NULL)) return c->st;
    jlist *l = jlist_new(c->a, d->n);
    if (!l) return joom(c, at);
    for (size_t i = 0; i < d->n; i++) {
        if (name[0] == 'k') l->v[i] = d->keys[i];
        else if (name[0] == 'v') l->v[i] = d->vals[i];
        else {
            jlist *pair = jlist_new(c->a, 2);
            if (!pair) return joom(c, at);
            pair->v[0] = d->keys[i], pair->v[1] = d->vals[i];
            pair->tuple = true;
            l->v[i].k = JV_LIST, l->v[i].u.l = pair;
        }
    }
    out->k = JV_LIST;
    out->u.l = l;
    return HN_OK;
}

hn_status jbuiltin_method(jctx *c, const jnode *at, jv obj, const char *name, jv *args, int nargs,
                          const char **kwnames, jv *kwargs, int nkw, jv *out, bool *found) {
    jargs x = {args, nargs, kwnames, kwargs, nkw};
    *found = true;
    if (obj.k == JV_STR && in_names(str_methods, name)) return str_method(c, at, obj, name, &x, out);
    if (obj.k == JV_DICT && in_names(dict_methods, name)) return dict_method(c, at, obj.u.d, name, &x, out);
    if (obj.k == JV_LOOP && !strcmp(name, "cycle")) {
        if (!nargs) return jerr(c, at, HN_EINVAL, "loop.cycle needs at least one argument");
        *out = args[obj.u.lp->i % (size_t)nargs];
        return HN_OK;
    }
    *found = false;
    return HN_OK;
}

/* ---- global functions ---- */

enum { FN_NAMESPACE, FN_RAISE, FN_STRFTIME, FN_RANGE, FN_DICT, FN_COUNT };
static const char *const funcs[FN_COUNT] = {"namespace", "raise_exception", "strftime_now", "range", "dict"};

int jbuiltin_func(const char *name) {
    for (int k = 0; k < FN_COUNT; k++)
        if (!strcmp(funcs[k], name)) return k;
    return -1;
}

/* namespace(...) and dict(...): from a dict argument and keywords. */
static hn_status make_dict(jctx *c, const jnode *at, const jargs *x, jkind kind, jv *out) {
    jdict *d = ja_alloc(c->a, sizeof *d);
    if (!d) return joom(c, at);
    if (x->n > 1 || (x->n == 1 && x->a[0].k != JV_DICT))
        return jerr(c, at, HN_EINVAL, "%s() takes keyword arguments or one dict", funcs[kind == JV_NS ? FN_NAMESPACE : FN_DICT]);
    for (size_t i = 0; x->n == 1 && i < x->a[0].u.d->n; i++) {
        jv *slot = jdict_slot(c->a, d, x->a[0].u.d->keys[i]);
        if (!slot) return joom(c, at);
        *slot = x->a[0].u.d->vals[i];
    }
    for (int k = 0; k < x->nkw; k++) {
        jv *slot = jdict_slot(c->a, d, jv_str(x->kwn[k], strlen(x->kwn[k])));
        if (!slot) return joom(c, at);
        *slot = x->kw[k];
    }
    out->k = kind;
    out->u.d = d;
    return HN_OK;
}

static hn_status fn_range(jctx *c, const jnode *at, const jargs *x, jv *out) {
    int64_t v[3] = {0, 0, 1};
    if (x->nkw || x->n < 1 || x->n > 3) return jerr(c, at, HN_EINVAL, "range() takes 1 to 3 integer arguments");
    for (int k = 0; k < x->n; k++)
        if (jneed(c, at, "range()", x->a[k], JV_INT)) return c->st;
    if (x->n == 1) v[1] = x->a[0].u.i;
    else for (int k = 0; k < x->n; k++) v[k] = x->a[k].u.i;
    if (v[2] == 0) return jerr(c, at, HN_EINVAL, "range() step must not be zero");
    double span = ((double)v[1] - (double)v[0]) / (double)v[2];
    if (span > (double)c->lim.max_iterations) return jerr(c, at, HN_ENOMEM, "range() of more than %zu items (limit)", c->lim.max_iterations);
    size_t n = span > 0 ? (size_t)((v[1] - v[0] + v[2] + (v[2] > 0 ? -1 : 1)) / v[2]) : 0;
    jlist *l = jlist_new(c->a, n);
    if (!l) return joom(c, at);
    for (size_t i = 0; i < n; i++) l->v[i] = jv_int(v[0] + (int64_t)i * v[2]);
    out->k = JV_LIST;
    out->u.l = l;
    return HN_OK;
}

static hn_status fn_strftime(jctx *c, const jnode *at, const jargs *x, jv *out) {
    jv f = jarg(x, 0, NULL);
    if (jcheck_args(c, at, "strftime_now", x, 1, NULL) || jneed(c, at, "strftime_now", f, JV_STR)) return c->st;
    char fmt[256], buf[512];
    snprintf(fmt, sizeof fmt, "%.*s", (int)f.u.s.n, f.u.s.p);
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    size_t n = strftime(buf, sizeof buf, fmt, &tm);
    char *s = ja_strdup(c->a, buf, n);
    if (!s) return joom(c, at);
    *out = jv_str(s, n);
    return HN_OK;
}

hn_status jbuiltin_call(jctx *c, const jnode *at, int fn, jv *args, int nargs,
                        const char **kwnames, jv *kwargs, int nkw, jv *out) {
    jargs x = {args, nargs, kwnames, kwargs, nkw};
    switch (fn) {
    case FN_NAMESPACE: return make_dict(c, at, &x, JV_NS, out);
    case FN_DICT: return make_dict(c, at, &x, JV_DICT, out);
    case FN_RANGE: return fn_range(c, at, &x, out);
    case FN_STRFTIME: return fn_strftime(c, at, &x, out);
    case FN_RAISE: {
        hn_buf b;
        hn_buf_init(&b);
        if (nargs) jv_to_str(args[0], &b);
        jerr(c, at, HN_EINVAL, "the template refused the conversation: %s", b.data ? b.data : "");
        hn_buf_free(&b);
        return c->st;
    }
    default: return jerr(c, at, HN_EINVAL, "not a function");
    }
}
