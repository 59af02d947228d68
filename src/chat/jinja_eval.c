/* jinja_eval.c — executes the syntax tree: statements append to the output
 * buffer, expressions produce values in the render's arena.
 *
 * Scoping follows Jinja: every for-loop iteration and every macro call gets
 * its own frame, so `set` inside a loop does not leak out of it (templates
 * use namespace() for that); if-blocks share the enclosing frame. Attribute
 * or item access on an undefined value is an error (as in Jinja2), other
 * missing attributes and keys are undefined. Limits (jinja_limits) are
 * checked on output, loop iterations and call depth; memory is bounded by the
 * arena. */
#include "chat/jinja_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

hn_status jerr(jctx *c, const jnode *n, hn_status code, const char *fmt, ...) {
    if (c->st != HN_OK) return c->st;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n) hn_errf(c->err, code, "chat template line %d, col %d: %s", n->line, n->col, msg);
    else hn_errf(c->err, code, "chat template: %s", msg);
    c->st = code;
    return code;
}

hn_status joom(jctx *c, const jnode *n) {
    return jerr(c, n, HN_ENOMEM, "rendering needs more than %zu bytes of memory (limit)",
                c->lim.max_memory);
}

/* ---- scopes ---- */

static jframe *frame_new(jctx *c, jframe *parent) {
    jframe *f = ja_alloc(c->a, sizeof *f);
    if (f) f->parent = parent;
    return f;
}

static jv *frame_find(jframe *f, const char *name) {
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->names[i], name)) return &f->vals[i];
    return NULL;
}

static bool frame_set(jctx *c, jframe *f, const char *name, jv v) {
    jv *slot = frame_find(f, name);
    if (slot) {
        *slot = v;
        return true;
    }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        const char **nn = ja_array(c->a, cap, sizeof *nn);
        jv *nv = ja_array(c->a, cap, sizeof *nv);
        if (!nn || !nv) return false;
        if (f->n) memcpy(nn, f->names, f->n * sizeof *nn), memcpy(nv, f->vals, f->n * sizeof *nv);
        f->names = nn, f->vals = nv, f->cap = cap;
    }
    f->names[f->n] = name;
    f->vals[f->n++] = v;
    return true;
}

static jv lookup(jctx *c, const char *name) {
    for (jframe *f = c->scope; f; f = f->parent) {
        jv *v = frame_find(f, name);
        if (v) return *v;
    }
    jv v = jv_undef();
    int fn = jbuiltin_func(name);
    if (fn >= 0) v.k = JV_FUNC, v.u.fn = fn;
    else v.u.s.p = name, v.u.s.n = strlen(name);
    return v;
}

/* ---- output ---- */

static hn_status emit(jctx *c, const jnode *at, const char *p, size_t n) {
    if (c->out->len + n > c->lim.max_output)
        return jerr(c, at, HN_ENOMEM, "the rendered text exceeds %zu bytes (limit)", c->lim.max_output);
    if (!hn_buf_append(c->out, p, n)) return jerr(c, at, HN_ENOMEM, "out of memory");
    return HN_OK;
}

static hn_status emit_value(jctx *c, const jnode *at, jv v) {
    if (v.k == JV_STR) return emit(c, at, v.u.s.p, v.u.s.n);
    hn_buf b;
    hn_buf_init(&b);
    jv_to_str(v, &b);
    hn_status st = b.oom ? jerr(c, at, HN_ENOMEM, "out of memory") : emit(c, at, b.data ? b.data : "", b.len);
    hn_buf_free(&b);
    return st;
}

/* ---- expressions ---- */

static hn_status undefined_error(jctx *c, const jnode *at, jv v) {
    if (v.u.s.p) return jerr(c, at, HN_EINVAL, "'%.*s' is undefined", (int)v.u.s.n, v.u.s.p);
    return jerr(c, at, HN_EINVAL, "access to an attribute or item of an undefined value");
}

/* Python index i of a sequence of length n -> position, or -1. */
static long seq_index(int64_t i, size_t n) {
    if (i < 0) i += (int64_t)n;
    return i < 0 || (uint64_t)i >= n ? -1 : (long)i;
}

static hn_status item(jctx *c, const jnode *at, jv obj, jv key, jv *out) {
    *out = jv_undef();
    if (obj.k == JV_UNDEF) return undefined_error(c, at, obj);
    if (obj.k == JV_DICT || obj.k == JV_NS) {
        for (size_t i = 0; i < obj.u.d->n; i++)
            if (jv_equal(obj.u.d->keys[i], key)) *out = obj.u.d->vals[i];
        return HN_OK;
    }
    if (key.k == JV_STR) {
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)key.u.s.n, key.u.s.p);
        *out = jattr(obj, name);
        return HN_OK;
    }
    if (key.k != JV_INT && key.k != JV_BOOL) return HN_OK;
    int64_t i = key.k == JV_INT ? key.u.i : key.u.b;
    if (obj.k == JV_LIST) {
        long k = seq_index(i, obj.u.l->n);
        if (k >= 0) *out = obj.u.l->v[k];
    } else if (obj.k == JV_STR) {
        jlist *chars;
        if (!jv_str_chars(c->a, obj, &chars)) return joom(c, at);
        long k = seq_index(i, chars->n);
        if (k >= 0) *out = chars->v[k];
    }
    return HN_OK;
}

static hn_status eval_int_opt(jctx *c, const jnode *e, bool *set, int64_t *v) {
    *set = false;
    if (!e) return HN_OK;
    jv x;
    if (jeval(c, e, &x) != HN_OK) return c->st;
    if (x.k == JV_NONE) return HN_OK;
    if (x.k != JV_INT) return jerr(c, e, HN_EINVAL, "slice indices must be integers, not %s", jv_type_name(x));
    *set = true;
    *v = x.u.i;
    return HN_OK;
}

/* Python slice bounds: fills start and the element count. */
static void slice_bounds(size_t n, bool hs, int64_t s, bool he, int64_t e, int64_t step, int64_t *start, size_t *count) {
    int64_t len = (int64_t)n;
    if (step > 0) {
        s = !hs ? 0 : s < 0 ? (s + len < 0 ? 0 : s + len) : (s > len ? len : s);
        e = !he ? len : e < 0 ? (e + len < 0 ? 0 : e + len) : (e > len ? len : e);
        *count = e > s ? (size_t)((e - s + step - 1) / step) : 0;
    } else {
        s = !hs ? len - 1 : s < 0 ? (s + len < 0 ? -1 : s + len) : (s >= len ? len - 1 : s);
        e = !he ? -1 : e < 0 ? (e + len < 0 ? -1 : e + len) : (e >= len ? len - 1 : e);
        *count = s > e ? (size_t)((s - e - step - 1) / -step) : 0;
    }
    *start = s;
}

static hn_status eval_slice(jctx *c, const jnode *e, jv *out) {
    jv obj;
    bool hs, he, hst;
    int64_t s = 0, en = 0, step = 1;
    if (jeval(c, e->a, &obj) || eval_int_opt(c, e->b, &hs, &s) || eval_int_opt(c, e->c, &he, &en) ||
        eval_int_opt(c, e->args[0], &hst, &step))
        return c->st;
    if (!hst) step = 1;
    if (step == 0) return jerr(c, e, HN_EINVAL, "slice step cannot be zero");
    if (obj.k == JV_UNDEF) return undefined_error(c, e, obj);
    const jlist *src;
    if (obj.k == JV_STR) {
        jlist *ch;
        if (!jv_str_chars(c->a, obj, &ch)) return joom(c, e);
        src = ch;
    } else if (obj.k == JV_LIST) src = obj.u.l;
    else return jerr(c, e, HN_EINVAL, "'%s' object is not subscriptable", jv_type_name(obj));
    int64_t start;
    size_t cnt;
    slice_bounds(src->n, hs, s, he, en, step, &start, &cnt);
    jlist *l = jlist_new(c->a, cnt);
    if (!l) return joom(c, e);
    for (size_t k = 0; k < cnt; k++) l->v[k] = src->v[start + (int64_t)k * step];
    if (obj.k == JV_LIST) {
        out->k = JV_LIST;
        out->u.l = l;
        return HN_OK;
    }
    size_t len = 0, o = 0;
    for (size_t k = 0; k < cnt; k++) len += l->v[k].u.s.n;
    char *buf = ja_alloc(c->a, len + 1);
    if (!buf) return joom(c, e);
    for (size_t k = 0; k < cnt; k++) memcpy(buf + o, l->v[k].u.s.p, l->v[k].u.s.n), o += l->v[k].u.s.n;
    *out = jv_str(buf, len);
    return HN_OK;
}

/* Evaluates call arguments into arena arrays. */
static hn_status eval_args(jctx *c, const jnode *e, jv **args, jv **kwargs) {
    *args = e->nargs ? ja_array(c->a, (size_t)e->nargs, sizeof **args) : NULL;
    *kwargs = e->nkw ? ja_array(c->a, (size_t)e->nkw, sizeof **kwargs) : NULL;
    if ((e->nargs && !*args) || (e->nkw && !*kwargs)) return joom(c, e);
    for (int i = 0; i < e->nargs; i++)
        if (jeval(c, e->args[i], &(*args)[i]) != HN_OK) return c->st;
    for (int i = 0; i < e->nkw; i++)
        if (jeval(c, e->kwargs[i], &(*kwargs)[i]) != HN_OK) return c->st;
    return HN_OK;
}

static hn_status eval_call(jctx *c, const jnode *e, jv *out) {
    jv *args, *kw;
    const jnode *f = e->a;
    if (f->type == E_ATTR) {
        jv obj;
        if (jeval(c, f->a, &obj) != HN_OK) return c->st;
        if (obj.k == JV_UNDEF) return undefined_error(c, f, obj);
        if (eval_args(c, e, &args, &kw) != HN_OK) return c->st;
        bool found;
        hn_status st = jbuiltin_method(c, e, obj, f->name, args, e->nargs, e->kwnames, kw, e->nkw, out, &found);
        if (st != HN_OK || found) return st;
        jv m = jattr(obj, f->name);
        if (m.k == JV_MACRO)
            return jcall_macro(c, e, m.u.m, args, e->nargs, e->kwnames, kw, e->nkw, out);
        return jerr(c, e, HN_EINVAL, "'%s' object has no method '%s'", jv_type_name(obj), f->name);
    }
    jv fn;
    if (jeval(c, f, &fn) != HN_OK || eval_args(c, e, &args, &kw) != HN_OK) return c->st;
    if (fn.k == JV_MACRO) return jcall_macro(c, e, fn.u.m, args, e->nargs, e->kwnames, kw, e->nkw, out);
    if (fn.k == JV_FUNC) return jbuiltin_call(c, e, fn.u.fn, args, e->nargs, e->kwnames, kw, e->nkw, out);
    if (fn.k == JV_UNDEF) return undefined_error(c, f, fn);
    return jerr(c, e, HN_EINVAL, "'%s' object is not callable", jv_type_name(fn));
}

static hn_status eval_filter(jctx *c, const jnode *e, jv *out) {
    jv self, *args, *kw;
    if (jeval(c, e->a, &self) != HN_OK || eval_args(c, e, &args, &kw) != HN_OK) return c->st;
    return jbuiltin_filter(c, e, e->name, self, args, e->nargs, e->kwnames, kw, e->nkw, out);
}

static hn_status eval_test(jctx *c, const jnode *e, jv *out) {
    jv self, *args, *kw;
    if (jeval(c, e->a, &self) != HN_OK || eval_args(c, e, &args, &kw) != HN_OK) return c->st;
    bool r;
    if (jbuiltin_test(c, e, e->name, self, args, e->nargs, &r) != HN_OK) return c->st;
    *out = jv_bool(e->op ? !r : r);
    return HN_OK;
}

static hn_status eval_list(jctx *c, const jnode *e, jv *out) {
    jlist *l = jlist_new(c->a, (size_t)e->nargs);
    if (!l) return joom(c, e);
    l->tuple = e->op == 1;
    for (int i = 0; i < e->nargs; i++)
        if (jeval(c, e->args[i], &l->v[i]) != HN_OK) return c->st;
    out->k = JV_LIST;
    out->u.l = l;
    return HN_OK;
}

static hn_status eval_dict(jctx *c, const jnode *e, jv *out) {
    jdict *d = ja_alloc(c->a, sizeof *d);
    if (!d) return joom(c, e);
    for (int i = 0; i < e->nargs; i++) {
        jv k, v;
        if (jeval(c, e->args[i], &k) != HN_OK || jeval(c, e->args2[i], &v) != HN_OK) return c->st;
        jv *slot = jdict_slot(c->a, d, k);
        if (!slot) return joom(c, e);
        *slot = v;
    }
    out->k = JV_DICT;
    out->u.d = d;
    return HN_OK;
}

/* ---- operators ---- */

static bool is_numv(jv v) { return v.k == JV_INT || v.k == JV_FLOAT || v.k == JV_BOOL; }
static int64_t ival(jv v) { return v.k == JV_INT ? v.u.i : v.u.b; }
static double fval(jv v) { return v.k == JV_FLOAT ? v.u.f : (double)ival(v); }

static const char *op_text(int op) {
    static const char *const t[] = {"+", "-", "*", "/", "//", "%", "**", "~",
                                    "==", "!=", "<", "<=", ">", ">=", "in", "not in"};
    return t[op];
}

static hn_status type_error(jctx *c, const jnode *e, jv a, jv b) {
    return jerr(c, e, HN_EINVAL, "unsupported operand types for %s: '%s' and '%s'", op_text(e->op),
                jv_type_name(a), jv_type_name(b));
}

static hn_status concat(jctx *c, const jnode *e, jv a, jv b, jv *out) {
    char *s = ja_alloc(c->a, a.u.s.n + b.u.s.n + 1);
    if (!s) return joom(c, e);
    memcpy(s, a.u.s.p, a.u.s.n);
    memcpy(s + a.u.s.n, b.u.s.p, b.u.s.n);
    *out = jv_str(s, a.u.s.n + b.u.s.n);
    return HN_OK;
}

static hn_status list_concat(jctx *c, const jnode *e, const jlist *a, const jlist *b, jv *out) {
    jlist *l = jlist_new(c->a, a->n + b->n);
    if (!l) return joom(c, e);
    if (a->n) memcpy(l->v, a->v, a->n * sizeof *l->v);
    if (b->n) memcpy(l->v + a->n, b->v, b->n * sizeof *l->v);
    out->k = JV_LIST;
    out->u.l = l;
    return HN_OK;
}

/* str * int, list * int */
static hn_status repeat(jctx *c, const jnode *e, jv seq, int64_t times, jv *out) {
    size_t n = seq.k == JV_STR ? seq.u.s.n : seq.u.l->n, k = times > 0 ? (size_t)times : 0;
    size_t unit = seq.k == JV_STR ? 1 : sizeof(jv);
    if (n && k > c->lim.max_memory / n / unit) return joom(c, e);
    char *p = ja_alloc(c->a, n * k * unit + 1);
    if (!p) return joom(c, e);
    const void *src = seq.k == JV_STR ? (const void *)seq.u.s.p : (const void *)seq.u.l->v;
    for (size_t i = 0; i < k; i++) memcpy(p + i * n * unit, src, n * unit);
    if (seq.k == JV_STR) {
        *out = jv_str(p, n * k);
        return HN_OK;
    }
    jlist *l = ja_alloc(c->a, sizeof *l);
    if (!l) return joom(c, e);
    l->n = n * k;
    l->v = (jv *)p;
    out->k = JV_LIST;
    out->u.l = l;
    return HN_OK;
}

static hn_status int_arith(jctx *c, const jnode *e, int64_t x, int64_t y, jv *out) {
    int64_t r = 0;
    bool ovf = false;
    switch (e->op) {
    case OP_ADD: ovf = __builtin_add_overflow(x, y, &r); break;
    case OP_SUB: ovf = __builtin_sub_overflow(x, y, &r); break;
    case OP_MUL: ovf = __builtin_mul_overflow(x, y, &r); break;
    case OP_FLOORDIV: case OP_MOD:
        if (y == 0) return jerr(c, e, HN_EINVAL, "integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) { ovf = true; break; }
        r = e->op == OP_FLOORDIV ? x / y - ((x % y != 0) && ((x < 0) != (y < 0))) : x % y;
        if (e->op == OP_MOD && r != 0 && ((r < 0) != (y < 0))) r += y;
        break;
    case OP_POW:
        if (y < 0) {
            *out = jv_float(pow((double)x, (double)y));
            return HN_OK;
        }
        r = 1;
        for (int64_t k = 0; k < y && !ovf; k++) ovf = __builtin_mul_overflow(r, x, &r);
        break;
    default: return jerr(c, e, HN_EINVAL, "bad operator");
    }
    if (ovf) return jerr(c, e, HN_EUNSUPPORTED, "integer overflow in '%s' (hone's integers are 64-bit)", op_text(e->op));
    *out = jv_int(r);
    return HN_OK;
}

static hn_status float_arith(jctx *c, const jnode *e, double x, double y, jv *out) {
    if (y == 0 && (e->op == OP_DIV || e->op == OP_FLOORDIV || e->op == OP_MOD))
        return jerr(c, e, HN_EINVAL, "division by zero");
    double r = e->op == OP_ADD ? x + y : e->op == OP_SUB ? x - y : e->op == OP_MUL ? x * y
             : e->op == OP_DIV ? x / y : e->op == OP_FLOORDIV ? floor(x / y) : e->op == OP_POW ? pow(x, y)
             : x - floor(x / y) * y;
    *out = jv_float(r);
    return HN_OK;
}

static hn_status arith(jctx *c, const jnode *e, jv a, jv b, jv *out) {
    if (is_numv(a) && is_numv(b)) {
        if (e->op == OP_DIV) return float_arith(c, e, fval(a), fval(b), out);
        if (a.k != JV_FLOAT && b.k != JV_FLOAT) return int_arith(c, e, ival(a), ival(b), out);
        return float_arith(c, e, fval(a), fval(b), out);
    }
    if (e->op == OP_ADD && a.k == JV_STR && b.k == JV_STR) return concat(c, e, a, b, out);
    if (e->op == OP_ADD && a.k == JV_LIST && b.k == JV_LIST) return list_concat(c, e, a.u.l, b.u.l, out);
    if (e->op == OP_MUL && (a.k == JV_STR || a.k == JV_LIST) && (b.k == JV_INT || b.k == JV_BOOL))
        return repeat(c, e, a, ival(b), out);
    if (e->op == OP_MUL && (b.k == JV_STR || b.k == JV_LIST) && (a.k == JV_INT || a.k == JV_BOOL))
        return repeat(c, e, b, ival(a), out);
    if (e->op == OP_MOD && a.k == JV_STR)
        return jerr(c, e, HN_EUNSUPPORTED, "unsupported: string formatting with '%%'");
    return type_error(c, e, a, b);
}

static hn_status contains(jctx *c, const jnode *e, jv hay, jv needle, bool *r) {
    *r = false;
    if (hay.k == JV_STR) {
        if (needle.k != JV_STR)
            return jerr(c, e, HN_EINVAL, "'in <string>' requires string as left operand, not %s", jv_type_name(needle));
        *r = needle.u.s.n == 0 || memmem(hay.u.s.p, hay.u.s.n, needle.u.s.p, needle.u.s.n) != NULL;
    } else if (hay.k == JV_LIST) {
        for (size_t i = 0; i < hay.u.l->n && !*r; i++) *r = jv_equal(hay.u.l->v[i], needle);
    } else if (hay.k == JV_DICT || hay.k == JV_NS) {
        for (size_t i = 0; i < hay.u.d->n && !*r; i++) *r = jv_equal(hay.u.d->keys[i], needle);
    } else if (hay.k != JV_UNDEF) {
        return jerr(c, e, HN_EINVAL, "argument of type '%s' is not iterable", jv_type_name(hay));
    }
    return HN_OK;
}

static hn_status eval_bin(jctx *c, const jnode *e, jv *out) {
    jv a, b;
    if (jeval(c, e->a, &a) != HN_OK || jeval(c, e->b, &b) != HN_OK) return c->st;
    int cmp;
    bool r;
    switch (e->op) {
    case OP_CONCAT: {
        jv sa, sb;
        if (!jv_stringify(c->a, a, &sa) || !jv_stringify(c->a, b, &sb)) return joom(c, e);
        return concat(c, e, sa, sb, out);
    }
    case OP_EQ: case OP_NE:
        *out = jv_bool(jv_equal(a, b) == (e->op == OP_EQ));
        return HN_OK;
    case OP_LT: case OP_LE: case OP_GT: case OP_GE:
        if (!jv_compare(a, b, &cmp))
            return jerr(c, e, HN_EINVAL, "'%s' not supported between instances of '%s' and '%s'",
                        op_text(e->op), jv_type_name(a), jv_type_name(b));
        *out = jv_bool(e->op == OP_LT ? cmp < 0 : e->op == OP_LE ? cmp <= 0 : e->op == OP_GT ? cmp > 0 : cmp >= 0);
        return HN_OK;
    case OP_IN: case OP_NOTIN:
        if (contains(c, e, b, a, &r) != HN_OK) return c->st;
        *out = jv_bool(r == (e->op == OP_IN));
        return HN_OK;
    default:
        return arith(c, e, a, b, out);
    }
}

static hn_status eval_unary(jctx *c, const jnode *e, jv *out) {
    jv a;
    if (jeval(c, e->a, &a) != HN_OK) return c->st;
    if (e->type == E_NOT) {
        *out = jv_bool(!jv_truthy(a));
        return HN_OK;
    }
    if (!is_numv(a)) return jerr(c, e, HN_EINVAL, "bad operand type for unary %s: '%s'", e->type == E_NEG ? "-" : "+", jv_type_name(a));
    if (e->type == E_POS) *out = a.k == JV_BOOL ? jv_int(a.u.b) : a;
    else if (a.k == JV_FLOAT) *out = jv_float(-a.u.f);
    else if (ival(a) == INT64_MIN) return jerr(c, e, HN_EUNSUPPORTED, "integer overflow");
    else *out = jv_int(-ival(a));
    return HN_OK;
}

hn_status jeval(jctx *c, const jnode *e, jv *out) {
    jv a;
    *out = jv_undef();
    if (c->st != HN_OK) return c->st;
    switch (e->type) {
    case E_LIT: *out = e->lit; return HN_OK;
    case E_NAME: *out = lookup(c, e->name); return HN_OK;
    case E_ATTR:
        if (jeval(c, e->a, &a) != HN_OK) return c->st;
        if (a.k == JV_UNDEF) return undefined_error(c, e, a);
        *out = jattr(a, e->name);
        if (out->k == JV_UNDEF) out->u.s.p = e->name, out->u.s.n = strlen(e->name);
        return HN_OK;
    case E_ITEM: {
        jv k;
        if (jeval(c, e->a, &a) != HN_OK || jeval(c, e->b, &k) != HN_OK) return c->st;
        return item(c, e, a, k, out);
    }
    case E_SLICE: return eval_slice(c, e, out);
    case E_CALL: return eval_call(c, e, out);
    case E_FILTER: return eval_filter(c, e, out);
    case E_TEST: return eval_test(c, e, out);
    case E_NEG: case E_POS: case E_NOT: return eval_unary(c, e, out);
    case E_BIN: return eval_bin(c, e, out);
    case E_AND: case E_OR:
        if (jeval(c, e->a, &a) != HN_OK) return c->st;
        if (jv_truthy(a) == (e->type == E_OR)) {
            *out = a;
            return HN_OK;
        }
        return jeval(c, e->b, out);
    case E_COND:
        if (jeval(c, e->b, &a) != HN_OK) return c->st;
        if (jv_truthy(a)) return jeval(c, e->a, out);
        return e->c ? jeval(c, e->c, out) : HN_OK;
    case E_LIST: return eval_list(c, e, out);
    case E_DICT: return eval_dict(c, e, out);
    default: return jerr(c, e, HN_EINVAL, "not an expression");
    }
}

/* ---- statements ---- */

static hn_status exec_list(jctx *c, const jnode *s);

static hn_status bind(jctx *c, const jnode *target, jv v) {
    if (target->type == E_NAME) return frame_set(c, c->scope, target->name, v) ? HN_OK : joom(c, target);
    if (v.k != JV_LIST || v.u.l->n != (size_t)target->nargs)
        return jerr(c, target, HN_EINVAL, "cannot unpack %s into %d variables", jv_type_name(v), target->nargs);
    for (int i = 0; i < target->nargs; i++)
        if (bind(c, target->args[i], v.u.l->v[i]) != HN_OK) return c->st;
    return HN_OK;
}

/* The items of a for loop after its `if` filter. */
static hn_status loop_items(jctx *c, const jnode *s, const jlist **out) {
    jv it;
    if (jeval(c, s->b, &it) != HN_OK) return c->st;
    bool iterable = it.k == JV_LIST || it.k == JV_STR || it.k == JV_DICT || it.k == JV_NS || it.k == JV_UNDEF;
    if (!iterable) return jerr(c, s->b, HN_EINVAL, "'%s' object is not iterable", jv_type_name(it));
    if (!jv_iter_list(c->a, it, out)) return joom(c, s);
    if (!s->c) return HN_OK;
    jlist *kept = jlist_new(c->a, (*out)->n);
    if (!kept) return joom(c, s);
    jframe *saved = c->scope;
    size_t n = 0;
    for (size_t i = 0; i < (*out)->n && c->st == HN_OK; i++) {
        jv keep;
        c->scope = frame_new(c, saved);
        if (!c->scope) return c->scope = saved, joom(c, s);
        if (bind(c, s->a, (*out)->v[i]) == HN_OK && jeval(c, s->c, &keep) == HN_OK && jv_truthy(keep))
            kept->v[n++] = (*out)->v[i];
        c->scope = saved;
    }
    kept->n = n;
    *out = kept;
    return c->st;
}

static hn_status exec_for(jctx *c, const jnode *s) {
    const jlist *items;
    if (loop_items(c, s, &items) != HN_OK) return c->st;
    if (items->n == 0) return exec_list(c, s->orelse);
    jloop *lp = ja_alloc(c->a, sizeof *lp);
    if (!lp) return joom(c, s);
    lp->items = items;
    jframe *saved = c->scope;
    for (size_t i = 0; i < items->n && c->st == HN_OK; i++) {
        if (++c->iters > c->lim.max_iterations)
            return jerr(c, s, HN_ENOMEM, "more than %zu loop iterations (limit)", c->lim.max_iterations);
        jv lv = {.k = JV_LOOP};
        lv.u.lp = lp;
        lp->i = i;
        c->scope = frame_new(c, saved);
        if (!c->scope || !frame_set(c, c->scope, "loop", lv)) {
            c->scope = saved;
            return joom(c, s);
        }
        if (bind(c, s->a, items->v[i]) == HN_OK) exec_list(c, s->body);
        c->scope = saved;
        int flow = c->flow;
        c->flow = 0;
        if (flow == FLOW_BREAK) break;
    }
    return c->st;
}

/* Runs body with its output captured into a string value. */
static hn_status capture(jctx *c, const jnode *at, const jnode *body, jv *out) {
    hn_buf buf, *saved = c->out;
    hn_buf_init(&buf);
    c->out = &buf;
    exec_list(c, body);
    c->out = saved;
    char *s = c->st == HN_OK ? ja_strdup(c->a, buf.data ? buf.data : "", buf.len) : NULL;
    if (s) *out = jv_str(s, buf.len);
    else if (c->st == HN_OK) joom(c, at);
    hn_buf_free(&buf);
    return c->st;
}

static hn_status exec_set(jctx *c, const jnode *s) {
    jv v;
    if ((s->body ? capture(c, s, s->body, &v) : jeval(c, s->b, &v)) != HN_OK) return c->st;
    if (s->a->type != E_ATTR) return bind(c, s->a, v);
    jv ns;
    if (jeval(c, s->a->a, &ns) != HN_OK) return c->st;
    if (ns.k != JV_NS)
        return jerr(c, s->a, HN_EINVAL, "cannot assign attribute on non-namespace object (%s)", jv_type_name(ns));
    size_t n = strlen(s->a->name);
    jv *slot = jdict_slot(c->a, ns.u.d, jv_str(s->a->name, n));
    if (!slot) return joom(c, s);
    *slot = v;
    return HN_OK;
}

static hn_status exec_one(jctx *c, const jnode *s) {
    jv v;
    switch (s->type) {
    case S_TEXT: return emit(c, s, s->lit.u.s.p, s->lit.u.s.n);
    case S_OUT:
        if (jeval(c, s->a, &v) != HN_OK) return c->st;
        return emit_value(c, s, v);
    case S_IF:
        if (jeval(c, s->a, &v) != HN_OK) return c->st;
        return exec_list(c, jv_truthy(v) ? s->body : s->orelse);
    case S_FOR: return exec_for(c, s);
    case S_SET: return exec_set(c, s);
    case S_MACRO:
        v.k = JV_MACRO;
        v.u.m = s;
        return frame_set(c, c->scope, s->name, v) ? HN_OK : joom(c, s);
    case S_BREAK: c->flow = FLOW_BREAK; return HN_OK;
    case S_CONTINUE: c->flow = FLOW_CONTINUE; return HN_OK;
    case S_BLOCK: return exec_list(c, s->body);
    default: return jerr(c, s, HN_EINVAL, "not a statement");
    }
}

static hn_status exec_list(jctx *c, const jnode *s) {
    for (; s && c->st == HN_OK && !c->flow; s = s->next) exec_one(c, s);
    return c->st;
}

static hn_status macro_args(jctx *c, const jnode *at, const jnode *m, jv *args, int nargs,
                            const char **kwnames, jv *kwargs, int nkw) {
    if (nargs > m->nargs)
        return jerr(c, at, HN_EINVAL, "macro '%s' takes %d arguments, %d given", m->name, m->nargs, nargs);
    for (int k = 0; k < nkw; k++) {
        int i = 0;
        while (i < m->nargs && strcmp(m->args[i]->name, kwnames[k])) i++;
        if (i == m->nargs || i < nargs)
            return jerr(c, at, HN_EINVAL, "macro '%s': unexpected argument '%s'", m->name, kwnames[k]);
    }
    for (int i = 0; i < m->nargs; i++) {
        jv v = jv_undef();
        bool given = i < nargs;
        if (given) v = args[i];
        for (int k = 0; k < nkw && !given; k++)
            if (!strcmp(m->args[i]->name, kwnames[k])) v = kwargs[k], given = true;
        if (!given && m->args2[i] && jeval(c, m->args2[i], &v) != HN_OK) return c->st;
        if (!frame_set(c, c->scope, m->args[i]->name, v)) return joom(c, at);
    }
    return HN_OK;
}

hn_status jcall_macro(jctx *c, const jnode *at, const jnode *m, jv *args, int nargs,
                      const char **kwnames, jv *kwargs, int nkw, jv *out) {
    if (c->depth >= c->lim.max_depth)
        return jerr(c, at, HN_ENOMEM, "macro calls nested deeper than %d (limit)", c->lim.max_depth);
    jframe *saved = c->scope;
    c->scope = frame_new(c, c->root);
    if (!c->scope) return c->scope = saved, joom(c, at);
    c->depth++;
    if (macro_args(c, at, m, args, nargs, kwnames, kwargs, nkw) == HN_OK) capture(c, at, m->body, out);
    c->depth--;
    c->scope = saved;
    c->flow = 0;
    return c->st;
}

hn_status jinja_render(const jinja_tmpl *t, const json_t *vars, const jinja_limits *lim,
                       hn_buf *out, hn_err *err) {
    jarena a;
    jctx c = {.a = &a, .out = out, .err = err};
    if (lim) c.lim = *lim;
    else jinja_limits_default(&c.lim);
    ja_init(&a, c.lim.max_memory);
    c.root = c.scope = frame_new(&c, NULL);
    if (!c.root) joom(&c, NULL);
    const char *key;
    json_t *val;
    if (json_is_object(vars))
        json_object_foreach((json_t *)vars, key, val) {
            jv v;
            char *name = ja_strdup(&a, key, strlen(key));
            if (c.st == HN_OK && (!name || !jv_from_json(&a, val, &v) || !frame_set(&c, c.root, name, v)))
                joom(&c, NULL);
        }
    if (c.st == HN_OK) exec_list(&c, t->body);
    ja_free(&a);
    return c.st;
}
