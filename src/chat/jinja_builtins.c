/* jinja_builtins.c — the filters, tests, methods and global functions the
 * interpreter implements, each in a table the parser consults, so a template
 * using anything else is refused when it is loaded. Semantics follow Python
 * Jinja2 as configured by transformers (tojson: json.dumps without key
 * sorting or HTML escaping; raise_exception; strftime_now). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat/jinja_internal.h"
#include "chat/jinja_str.h"

/* Positional argument pos or keyword `name`; JV_UNDEF if not given. */
jv jarg(const jargs *x, int pos, const char *name) {
    if (pos >= 0 && pos < x->n) return x->a[pos];
    for (int k = 0; name && k < x->nkw; k++)
        if (!strcmp(x->kwn[k], name)) return x->kw[k];
    return jv_undef();
}

/* Refuses more than maxpos positional arguments or a keyword not in names. */
hn_status jcheck_args(jctx *c, const jnode *at, const char *what, const jargs *x, int maxpos,
                      const char *const *names) {
    if (x->n > maxpos) return jerr(c, at, HN_EINVAL, "%s takes at most %d arguments, %d given", what, maxpos, x->n);
    for (int k = 0; k < x->nkw; k++) {
        bool ok = false;
        for (const char *const *p = names; p && *p && !ok; p++) ok = !strcmp(*p, x->kwn[k]);
        if (!ok) return jerr(c, at, HN_EUNSUPPORTED, "%s: unsupported argument '%s'", what, x->kwn[k]);
    }
    return HN_OK;
}

hn_status jneed(jctx *c, const jnode *at, const char *what, jv v, jkind k) {
    if (v.k == k) return HN_OK;
    static const char *const kn[] = {"undefined", "none", "a bool", "an integer", "a float", "a string",
                                     "a list", "a dict", "a namespace", "a macro", "a loop", "a function"};
    return jerr(c, at, HN_EINVAL, "%s expects %s, got %s", what, kn[k], jv_type_name(v));
}

static hn_status to_str(jctx *c, const jnode *at, jv v, jv *out) {
    return jv_stringify(c->a, v, out) ? HN_OK : joom(c, at);
}

static hn_status str_result(jctx *c, const jnode *at, bool ok) { return ok ? HN_OK : joom(c, at); }

static hn_status list_out(jctx *c, const jnode *at, jlist *l, jv *out) {
    if (!l) return joom(c, at);
    out->k = JV_LIST;
    out->u.l = l;
    return HN_OK;
}

static hn_status ascii_case(jctx *c, const jnode *at, const char *what, jv s, char mode, jv *out) {
    if (jstr_has_non_ascii(s))
        return jerr(c, at, HN_EUNSUPPORTED, "%s of non-ASCII text is not supported", what);
    return str_result(c, at, jstr_case(c->a, s, mode, out));
}

/* ---- filters ---- */

typedef hn_status (*filter_fn)(jctx *c, const jnode *at, jv self, const jargs *x, jv *out);

static hn_status f_trim(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) {
    static const char *const kw[] = {"chars", NULL};
    jv s, chars = jarg(x, 0, "chars");
    if (jcheck_args(c, at, "trim", x, 1, kw) || to_str(c, at, self, &s)) return c->st;
    if (chars.k != JV_UNDEF && chars.k != JV_NONE && jneed(c, at, "trim", chars, JV_STR)) return c->st;
    bool cs = chars.k == JV_STR;
    *out = jstr_strip(s, cs ? chars.u.s.p : NULL, cs ? chars.u.s.n : 0, true, true);
    return HN_OK;
}

static hn_status f_tojson(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) {
    static const char *const kw[] = {"indent", NULL};
    jv ind = jarg(x, 0, "indent");
    if (jcheck_args(c, at, "tojson", x, 1, kw)) return c->st;
    if (ind.k != JV_UNDEF && ind.k != JV_NONE && jneed(c, at, "tojson indent", ind, JV_INT)) return c->st;
    int indent = ind.k == JV_INT ? (int)(ind.u.i < 0 ? 0 : ind.u.i > 64 ? 64 : ind.u.i) : -1;
    hn_buf b;
    hn_buf_init(&b);
    const char *bad = NULL;
    bool ok = jv_to_json(self, indent, 0, &b, &bad);
    char *s = ok && !b.oom ? ja_strdup(c->a, b.data ? b.data : "", b.len) : NULL;
    if (s) *out = jv_str(s, b.len);
    hn_buf_free(&b);
    if (!ok) return jerr(c, at, HN_EINVAL, "tojson: object of type %s is not JSON serializable", bad);
    return s ? HN_OK : joom(c, at);
}

static hn_status f_length(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) {
    if (jcheck_args(c, at, "length", x, 0, NULL)) return c->st;
    switch (self.k) {
    case JV_STR: *out = jv_int((int64_t)utf8_count(self.u.s.p, self.u.s.n)); return HN_OK;
    case JV_LIST: *out = jv_int((int64_t)self.u.l->n); return HN_OK;
    case JV_DICT: case JV_NS: *out = jv_int((int64_t)self.u.d->n); return HN_OK;
    case JV_UNDEF: *out = jv_int(0); return HN_OK;
    default: return jerr(c, at, HN_EINVAL, "object of type '%s' has no len()", jv_type_name(self));
    }
}

static hn_status f_case(jctx *c, const jnode *at, jv self, const jargs *x, jv *out, const char *what, char mode) {
    jv s;
    if (jcheck_args(c, at, what, x, 0, NULL) || to_str(c, at, self, &s)) return c->st;
    return ascii_case(c, at, what, s, mode, out);
}

static hn_status f_upper(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) { return f_case(c, at, self, x, out, "upper", 'u'); }
static hn_status f_lower(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) { return f_case(c, at, self, x, out, "lower", 'l'); }
static hn_status f_title(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) { return f_case(c, at, self, x, out, "title", 'j'); }
static hn_status f_capitalize(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) { return f_case(c, at, self, x, out, "capitalize", 'c'); }

static hn_status f_replace(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) {
    static const char *const kw[] = {"old", "new", "count", NULL};
    jv s, old = jarg(x, 0, "old"), rep = jarg(x, 1, "new"), cnt = jarg(x, 2, "count");
    if (jcheck_args(c, at, "replace", x, 3, kw) || to_str(c, at, self, &s) ||
        jneed(c, at, "replace", old, JV_STR) || jneed(c, at, "replace", rep, JV_STR))
        return c->st;
    if (cnt.k != JV_UNDEF && cnt.k != JV_NONE && jneed(c, at, "replace count", cnt, JV_INT)) return c->st;
    return str_result(c, at, jstr_replace(c->a, s, old, rep, cnt.k == JV_INT ? cnt.u.i : -1, out));
}

static hn_status iter_of(jctx *c, const jnode *at, const char *what, jv v, const jlist **l) {
    if (v.k != JV_LIST && v.k != JV_STR && v.k != JV_DICT && v.k != JV_UNDEF && v.k != JV_NS)
        return jerr(c, at, HN_EINVAL, "%s: '%s' object is not iterable", what, jv_type_name(v));
    return jv_iter_list(c->a, v, l) ? HN_OK : joom(c, at);
}

/* obj.attr or obj.a.b (dotted, as Jinja's attribute= arguments). */
static jv attr_path(jv obj, jv path) {
    const char *p = path.u.s.p, *end = p + path.u.s.n;
    while (p <= end && obj.k != JV_UNDEF) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t n = dot ? (size_t)(dot - p) : (size_t)(end - p);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)n, p);
        char *e;
        long idx = strtol(name, &e, 10);
        if (*name && !*e && obj.k == JV_LIST) obj = idx >= 0 && (size_t)idx < obj.u.l->n ? obj.u.l->v[idx] : jv_undef();
        else obj = jattr(obj, name);
        if (!dot) break;
        p = dot + 1;
    }
    return obj;
}

static hn_status f_join(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) {
    static const char *const kw[] = {"d", "attribute", NULL};
    jv sep = jarg(x, 0, "d"), attr = jarg(x, 1, "attribute");
    const jlist *l;
    if (jcheck_args(c, at, "join", x, 2, kw) || iter_of(c, at, "join", self, &l)) return c->st;
    if (sep.k != JV_UNDEF && jneed(c, at, "join", sep, JV_STR)) return c->st;
    if (attr.k != JV_UNDEF && jneed(c, at, "join attribute", attr, JV_STR)) return c->st;
    hn_buf b;
    hn_buf_init(&b);
    for (size_t i = 0; i < l->n; i++) {
        if (i && sep.k == JV_STR) hn_buf_append(&b, sep.u.s.p, sep.u.s.n);
        jv_to_str(attr.k == JV_STR ? attr_path(l->v[i], attr) : l->v[i], &b);
    }
    char *s = b.oom ? NULL : ja_strdup(c->a, b.data ? b.data : "", b.len);
    if (s) *out = jv_str(s, b.len);
    hn_buf_free(&b);
    return s ? HN_OK : joom(c, at);
}

static hn_status f_first_last(jctx *c, const jnode *at, jv self, const jargs *x, jv *out, bool last) {
    const jlist *l;
    if (jcheck_args(c, at, last ? "last" : "first", x, 0, NULL) || iter_of(c, at, last ? "last" : "first", self, &l))
        return c->st;
    *out = l->n ? l->v[last ? l->n - 1 : 0] : jv_undef();
    return HN_OK;
}

static hn_status f_first(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) { return f_first_last(c, at, self, x, out, false); }
static hn_status f_last(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) { return f_first_last(c, at, self, x, out, true); }

static hn_status f_default(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) {
    static const char *const kw[] = {"default_value", "boolean", NULL};
    jv dv = jarg(x, 0, "default_value"), boolean = jarg(x, 1, "boolean");
    if (jcheck_args(c, at, "default", x, 2, kw)) return c->st;
    bool use = self.k == JV_UNDEF || (jv_truthy(boolean) && !jv_truthy(self));
    *out = use ? (dv.k == JV_UNDEF ? jv_str("", 0) : dv) : self;
    return HN_OK;
}

static hn_status f_list(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) {
    const jlist *l;
    if (jcheck_args(c, at, "list", x, 0, NULL) || iter_of(c, at, "list", self, &l)) return c->st;
    jlist *copy = jlist_new(c->a, l->n);
    if (copy && l->n) memcpy(copy->v, l->v, l->n * sizeof *l->v);
    return list_out(c, at, copy, out);
}

static hn_status f_string(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) {
    if (jcheck_args(c, at, "string", x, 0, NULL)) return c->st;
    return to_str(c, at, self, out);
}

static hn_status f_number(jctx *c, const jnode *at, jv self, const jargs *x, jv *out, bool flt) {
    static const char *const kw[] = {"default", NULL};
    jv dflt = jarg(x, 0, "default");
    if (jcheck_args(c, at, flt ? "float" : "int", x, 1, kw)) return c->st;
    double f = 0;
    bool ok = true;
    if (self.k == JV_INT || self.k == JV_BOOL) f = (double)(self.k == JV_INT ? self.u.i : self.u.b);
    else if (self.k == JV_FLOAT) f = self.u.f;
    else if (self.k == JV_STR) {
        char buf[64];
        jv t = jstr_strip(self, NULL, 0, true, true);
        snprintf(buf, sizeof buf, "%.*s", (int)(t.u.s.n < 63 ? t.u.s.n : 63), t.u.s.p);
        char *e;
        f = strtod(buf, &e);
        ok = *buf && !*e && t.u.s.n < 63;
    } else ok = false;
    if (!ok) {
        *out = dflt.k != JV_UNDEF ? dflt : flt ? jv_float(0) : jv_int(0);
        return HN_OK;
    }
    if (!flt && self.k == JV_INT) *out = self;
    else *out = flt ? jv_float(f) : jv_int((int64_t)f);
    return HN_OK;
}

static hn_status f_int(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) { return f_number(c, at, self, x, out, false); }
static hn_status f_float(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) { return f_number(c, at, self, x, out, true); }

static hn_status dict_items(jctx *c, const jnode *at, const jdict *d, jv *out) {
    jlist *l = jlist_new(c->a, d ? d->n : 0);
    for (size_t i = 0; l && d && i < d->n; i++) {
        jlist *pair = jlist_new(c->a, 2);
        if (!pair) return joom(c, at);
        pair->v[0] = d->keys[i];
        pair->v[1] = d->vals[i];
        pair->tuple = true;
        l->v[i].k = JV_LIST;
        l->v[i].u.l = pair;
    }
    return list_out(c, at, l, out);
}

static hn_status f_items(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) {
    if (jcheck_args(c, at, "items", x, 0, NULL)) return c->st;
    if (self.k == JV_UNDEF) return dict_items(c, at, NULL, out);
    if (jneed(c, at, "items", self, JV_DICT)) return c->st;
    return dict_items(c, at, self.u.d, out);
}

/* select/reject/selectattr/rejectattr: keep items whose (attribute) passes
 * the test (default: truthy) == want. */
static hn_status select_items(jctx *c, const jnode *at, jv self, const jargs *x, jv *out, bool by_attr, bool want) {
    const char *what = by_attr ? (want ? "selectattr" : "rejectattr") : (want ? "select" : "reject");
    const jlist *l;
    if (jcheck_args(c, at, what, x, 16, NULL) || iter_of(c, at, what, self, &l)) return c->st;
    int t0 = by_attr ? 1 : 0;
    jv attr = jarg(x, 0, NULL), test = jarg(x, t0, NULL);
    if (by_attr && jneed(c, at, what, attr, JV_STR)) return c->st;
    if (test.k != JV_UNDEF && jneed(c, at, what, test, JV_STR)) return c->st;
    char tname[64];
    snprintf(tname, sizeof tname, "%.*s", test.k == JV_STR ? (int)test.u.s.n : 0, test.k == JV_STR ? test.u.s.p : "");
    if (test.k == JV_STR && !jbuiltin_has_test(tname)) return jerr(c, at, HN_EUNSUPPORTED, "unsupported test '%s'", tname);
    jlist *r = jlist_new(c->a, l->n);
    if (!r) return joom(c, at);
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++) {
        jv v = by_attr ? attr_path(l->v[i], attr) : l->v[i];
        bool pass = jv_truthy(v);
        if (test.k == JV_STR && jbuiltin_test(c, at, tname, v, x->a + t0 + 1, x->n > t0 + 1 ? x->n - t0 - 1 : 0, &pass))
            return c->st;
        if (pass == want) r->v[n++] = l->v[i];
    }
    r->n = n;
    return list_out(c, at, r, out);
}

static hn_status f_selectattr(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) { return select_items(c, at, self, x, out, true, true); }
static hn_status f_rejectattr(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) { return select_items(c, at, self, x, out, true, false); }
static hn_status f_select(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) { return select_items(c, at, self, x, out, false, true); }
static hn_status f_reject(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) { return select_items(c, at, self, x, out, false, false); }

/* map(attribute='x', default=d) or map('filter', args...) */
static hn_status f_map(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) {
    const jlist *l;
    if (iter_of(c, at, "map", self, &l)) return c->st;
    jv attr = jarg(x, -1, "attribute"), dflt = jarg(x, -1, "default"), fname = jarg(x, 0, NULL);
    char name[64] = "";
    if (attr.k == JV_UNDEF) {
        if (jneed(c, at, "map", fname, JV_STR) || jcheck_args(c, at, "map", x, 16, NULL)) return c->st;
        snprintf(name, sizeof name, "%.*s", (int)fname.u.s.n, fname.u.s.p);
        if (!jbuiltin_has_filter(name)) return jerr(c, at, HN_EUNSUPPORTED, "unsupported filter '%s'", name);
    } else {
        static const char *const kw[] = {"attribute", "default", NULL};
        if (jneed(c, at, "map attribute", attr, JV_STR) || jcheck_args(c, at, "map", x, 0, kw)) return c->st;
    }
    jlist *r = jlist_new(c->a, l->n);
    if (!r) return joom(c, at);
    for (size_t i = 0; i < l->n; i++) {
        if (attr.k == JV_STR) {
            r->v[i] = attr_path(l->v[i], attr);
            if (r->v[i].k == JV_UNDEF && dflt.k != JV_UNDEF) r->v[i] = dflt;
        } else if (jbuiltin_filter(c, at, name, l->v[i], x->a + 1, x->n - 1, x->kwn, x->kw, x->nkw, &r->v[i])) {
            return c->st;
        }
    }
    return list_out(c, at, r, out);
}

static hn_status f_safe(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) {
    if (jcheck_args(c, at, "safe", x, 0, NULL)) return c->st;
    *out = self;
    return HN_OK;
}

static hn_status f_indent(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) {
    static const char *const kw[] = {"width", "first", "blank", NULL};
    jv s, w = jarg(x, 0, "width"), first = jarg(x, 1, "first"), blank = jarg(x, 2, "blank"), ind;
    if (jcheck_args(c, at, "indent", x, 3, kw) || to_str(c, at, self, &s)) return c->st;
    if (w.k == JV_STR) ind = w;
    else {
        int64_t n = w.k == JV_UNDEF ? 4 : w.k == JV_INT ? w.u.i : -1;
        if (n < 0 || n > 1024) return jerr(c, at, HN_EINVAL, "indent: bad width");
        char *sp = ja_alloc(c->a, (size_t)n + 1);
        if (!sp) return joom(c, at);
        memset(sp, ' ', (size_t)n);
        ind = jv_str(sp, (size_t)n);
    }
    return str_result(c, at, jstr_indent(c->a, s, ind, jv_truthy(first), jv_truthy(blank), out));
}

static hn_status f_reverse(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) {
    const jlist *l;
    if (jcheck_args(c, at, "reverse", x, 0, NULL) || iter_of(c, at, "reverse", self, &l)) return c->st;
    jlist *r = jlist_new(c->a, l->n);
    if (!r) return joom(c, at);
    for (size_t i = 0; i < l->n; i++) r->v[i] = l->v[l->n - 1 - i];
    if (self.k != JV_STR) return list_out(c, at, r, out);
    char *s = ja_alloc(c->a, self.u.s.n + 1);
    if (!s) return joom(c, at);
    size_t o = 0;
    for (size_t i = 0; i < r->n; i++) memcpy(s + o, r->v[i].u.s.p, r->v[i].u.s.n), o += r->v[i].u.s.n;
    *out = jv_str(s, o);
    return HN_OK;
}

static hn_status f_abs(jctx *c, const jnode *at, jv self, const jargs *x, jv *out) {
    if (jcheck_args(c, at, "abs", x, 0, NULL)) return c->st;
    if (self.k == JV_FLOAT) *out = jv_float(self.u.f < 0 ? -self.u.f : self.u.f);
    else if (self.k == JV_INT && self.u.i != INT64_MIN) *out = jv_int(self.u.i < 0 ? -self.u.i : self.u.i);
    else return jerr(c, at, HN_EINVAL, "bad operand type for abs(): '%s'", jv_type_name(self));
    return HN_OK;
}

typedef struct filter_entry { const char *name; filter_fn fn; } filter_entry;
static const filter_entry filters[] = {
    {"abs", f_abs}, {"capitalize", f_capitalize}, {"count", f_length}, {"d", f_default},
    {"default", f_default}, {"first", f_first}, {"float", f_float}, {"indent", f_indent},
    {"int", f_int}, {"items", f_items}, {"join", f_join}, {"last", f_last}, {"length", f_length},
    {"list", f_list}, {"lower", f_lower}, {"map", f_map}, {"reject", f_reject},
    {"rejectattr", f_rejectattr}, {"replace", f_replace}, {"reverse", f_reverse}, {"safe", f_safe},
    {"select", f_select}, {"selectattr", f_selectattr}, {"string", f_string}, {"title", f_title},
    {"tojson", f_tojson}, {"trim", f_trim}, {"upper", f_upper},
};

static filter_fn find_filter(const char *name) {
    for (size_t k = 0; k < sizeof filters / sizeof *filters; k++)
        if (!strcmp(filters[k].name, name)) return filters[k].fn;
    return NULL;
}

bool jbuiltin_has_filter(const char *name) { return find_filter(name) != NULL; }

hn_status jbuiltin_filter(jctx *c, const jnode *at, const char *name, jv self, jv *args, int nargs,
                          const char **kwnames, jv *kwargs, int nkw, jv *out) {
    filter_fn fn = find_filter(name);
    jargs x = {args, nargs, kwnames, kwargs, nkw};
    if (!fn) return jerr(c, at, HN_EUNSUPPORTED, "unsupported filter '%s'", name);
    return fn(c, at, self, &x, out);
}

