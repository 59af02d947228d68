/* jinja_parse.c — tokens -> syntax tree, by recursive descent with Jinja2's
 * operator precedence (lowest first):
 *
 *   a if c else b;  or;  and;  not;  == != < > <= >= in, not in;  + -;  ~;
 *   * / // %;  **;  unary - +;  primary with .attr [item] [a:b:c] (call),
 *   then | filter and "is [not] test".
 *
 * Everything the evaluator does not implement is refused here, with line and
 * column: unknown statements, filters, tests, methods and functions (a call of
 * a bare name must be a builtin or one of the template's macros). */
#include "chat/jinja_internal.h"

#include <string.h>

#define MAX_NEST 200

typedef struct parser {
    const jtok *t;
    size_t n, i;
    jarena *a;
    hn_err *err;
    hn_status st;
    int depth;
    jnode **calls; /* calls of bare names, checked against macros at the end */
    size_t ncalls, capcalls;
    const char **macros;
    size_t nmacros, capmacros;
} parser;

static const jtok *cur(parser *p) { return &p->t[p->i]; }

static bool fail_at(parser *p, const jtok *t, hn_status code, const char *fmt, const char *arg) {
    if (p->st != HN_OK) return false;
    char msg[512];
    snprintf(msg, sizeof msg, fmt, arg);
    p->st = hn_errf(p->err, code, "chat template line %d, col %d: %s", t->line, t->col, msg);
    return false;
}

static bool oom(parser *p) {
    if (p->st == HN_OK) p->st = hn_errf(p->err, HN_ENOMEM, "chat template: out of memory");
    return false;
}

static bool is_op(const jtok *t, const char *op) {
    return t->k == TK_OP && t->n == strlen(op) && !memcmp(t->p, op, t->n);
}

static bool is_name(const jtok *t, const char *name) {
    return t->k == TK_NAME && t->n == strlen(name) && !memcmp(t->p, name, t->n);
}

static bool accept_op(parser *p, const char *op) {
    if (!is_op(cur(p), op)) return false;
    p->i++;
    return true;
}

static bool accept_name(parser *p, const char *name) {
    if (!is_name(cur(p), name)) return false;
    p->i++;
    return true;
}

static const char *tok_desc(const jtok *t) {
    switch (t->k) {
    case TK_EOF: return "end of template";
    case TK_BLOCK_END: return "end of tag";
    case TK_VAR_END: return "'}}'";
    case TK_STRING: return "a string";
    case TK_INT: case TK_FLOAT: return "a number";
    default: return NULL;
    }
}

static bool expect_op(parser *p, const char *op) {
    if (accept_op(p, op)) return true;
    char m[128];
    const jtok *t = cur(p);
    const char *d = tok_desc(t);
    if (d) snprintf(m, sizeof m, "expected '%s', found %s", op, d);
    else snprintf(m, sizeof m, "expected '%s', found '%.*s'", op, (int)(t->n > 40 ? 40 : t->n), t->p);
    return fail_at(p, t, HN_EFORMAT, "%s", m);
}

static jnode *mk(parser *p, jnode_type type, const jtok *at) {
    jnode *n = ja_alloc(p->a, sizeof *n);
    if (!n) {
        oom(p);
        return NULL;
    }
    n->type = type;
    n->line = at->line;
    n->col = at->col;
    return n;
}

static const char *tok_name(parser *p, const jtok *t) {
    char *s = ja_strdup(p->a, t->p, t->n);
    if (!s) oom(p);
    return s;
}

static bool push_ptr(parser *p, void ***arr, size_t *n, size_t *cap, void *v) {
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        void **na = ja_array(p->a, c, sizeof *na);
        if (!na) return oom(p);
        if (*n) memcpy(na, *arr, *n * sizeof *na);
        *arr = na;
        *cap = c;
    }
    (*arr)[(*n)++] = v;
    return true;
}

/* A growable array of node pointers while parsing a list. */
typedef struct nvec { jnode **v; size_t n, cap; } nvec;

static bool nvec_push(parser *p, nvec *v, jnode *x) {
    return push_ptr(p, (void ***)&v->v, &v->n, &v->cap, x);
}

static jnode *parse_expr(parser *p, bool with_cond);
static jnode *parse_unary(parser *p, bool with_filter);
static jnode *parse_primary(parser *p);

static bool enter(parser *p) {
    if (++p->depth <= MAX_NEST) return true;
    return fail_at(p, cur(p), HN_EFORMAT, "%s", "template nested too deeply");
}

/* ( args, name=kwargs ) after the '(' was consumed. */
static bool parse_call_args(parser *p, jnode *n) {
    nvec args = {0}, kw = {0};
    nvec kwn = {0};
    while (p->st == HN_OK && !accept_op(p, ")")) {
        if (cur(p)->k == TK_NAME && is_op(&p->t[p->i + 1], "=")) {
            const char *name = tok_name(p, cur(p));
            p->i += 2;
            jnode *v = parse_expr(p, true);
            if (!v || !nvec_push(p, &kwn, (jnode *)name) || !nvec_push(p, &kw, v)) return false;
        } else if (is_op(cur(p), "*") || is_op(cur(p), "**")) {
            return fail_at(p, cur(p), HN_EUNSUPPORTED, "%s", "unsupported: *args / **kwargs in calls");
        } else {
            jnode *v = parse_expr(p, true);
            if (!v || !nvec_push(p, &args, v)) return false;
        }
        if (!is_op(cur(p), ")") && !expect_op(p, ",")) return false;
    }
    n->args = args.v;
    n->nargs = (int)args.n;
    n->kwnames = (const char **)kwn.v;
    n->kwargs = kw.v;
    n->nkw = (int)kw.n;
    return p->st == HN_OK;
}

/* [a:b:c] or [x] after '[' was consumed. */
static jnode *parse_subscript(parser *p, jnode *obj, const jtok *at) {
    jnode *parts[3] = {0};
    bool slice = false;
    for (int k = 0; k < 3; k++) {
        if (!is_op(cur(p), ":") && !is_op(cur(p), "]")) parts[k] = parse_expr(p, true);
        if (p->st != HN_OK) return NULL;
        if (k == 2 || !accept_op(p, ":")) break;
        slice = true;
    }
    if (!expect_op(p, "]")) return NULL;
    if (!slice && !parts[0]) {
        fail_at(p, at, HN_EFORMAT, "%s", "empty subscript");
        return NULL;
    }
    jnode *n = mk(p, slice ? E_SLICE : E_ITEM, at);
    if (!n) return NULL;
    n->a = obj;
    n->b = parts[0];
    if (slice) {
        n->c = parts[1];
        n->args = ja_array(p->a, 1, sizeof *n->args);
        if (!n->args) return oom(p), NULL;
        n->args[0] = parts[2];
    }
    return n;
}

static jnode *parse_call(parser *p, jnode *callee, const jtok *at) {
    jnode *n = mk(p, E_CALL, at);
    if (!n) return NULL;
    n->a = callee;
    if (!parse_call_args(p, n)) return NULL;
    if (callee->type == E_ATTR && !jbuiltin_has_method(callee->name)) {
        fail_at(p, at, HN_EUNSUPPORTED, "unsupported method '%s'", callee->name);
        return NULL;
    }
    if (callee->type == E_NAME && jbuiltin_func(callee->name) < 0 &&
        !push_ptr(p, (void ***)&p->calls, &p->ncalls, &p->capcalls, n))
        return NULL;
    return n;
}

static jnode *parse_postfix(parser *p, jnode *n) {
    while (n && p->st == HN_OK) {
        const jtok *at = cur(p);
        if (accept_op(p, ".")) {
            const jtok *t = cur(p);
            if (t->k == TK_INT) {
                jnode *k = mk(p, E_LIT, t), *it = mk(p, E_ITEM, at);
                if (!k || !it) return NULL;
                k->lit = jv_int(t->i);
                it->a = n, it->b = k;
                p->i++;
                n = it;
                continue;
            }
            if (t->k != TK_NAME) return fail_at(p, t, HN_EFORMAT, "%s", "expected a name after '.'"), NULL;
            jnode *x = mk(p, E_ATTR, at);
            if (!x || !(x->name = tok_name(p, t))) return NULL;
            x->a = n;
            p->i++;
            n = x;
        } else if (accept_op(p, "[")) {
            n = parse_subscript(p, n, at);
        } else if (accept_op(p, "(")) {
            n = parse_call(p, n, at);
        } else {
            break;
        }
    }
    return n;
}

static bool parse_fargs(parser *p, jnode *n) {
    if (!accept_op(p, "(")) return true;
    return parse_call_args(p, n);
}

/* `is [not] name [arg | (args)]` after "is" was consumed. */
static jnode *parse_test(parser *p, jnode *subject, const jtok *at) {
    jnode *n = mk(p, E_TEST, at);
    if (!n) return NULL;
    n->a = subject;
    n->op = accept_name(p, "not");
    const jtok *t = cur(p);
    if (t->k != TK_NAME) return fail_at(p, t, HN_EFORMAT, "%s", "expected a test name after 'is'"), NULL;
    if (!(n->name = tok_name(p, t))) return NULL;
    p->i++;
    if (!jbuiltin_has_test(n->name))
        return fail_at(p, t, HN_EUNSUPPORTED, "unsupported test '%s'", n->name), NULL;
    const jtok *c = cur(p);
    if (is_op(c, "(")) {
        p->i++;
        if (!parse_call_args(p, n)) return NULL;
    } else if ((c->k == TK_NAME || c->k == TK_STRING || c->k == TK_INT || c->k == TK_FLOAT ||
                is_op(c, "[") || is_op(c, "{")) &&
               !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and") &&
               !is_name(c, "if") && !is_name(c, "is")) {
        jnode *arg = parse_postfix(p, parse_primary(p));
        if (!arg) return NULL;
        n->args = ja_array(p->a, 1, sizeof *n->args);
        if (!n->args) return oom(p), NULL;
        n->args[0] = arg;
        n->nargs = 1;
    }
    return n;
}

static jnode *parse_filter_expr(parser *p, jnode *n) {
    while (n && p->st == HN_OK) {
        const jtok *at = cur(p);
        if (accept_op(p, "|")) {
            const jtok *t = cur(p);
            if (t->k != TK_NAME) return fail_at(p, t, HN_EFORMAT, "%s", "expected a filter name after '|'"), NULL;
            jnode *f = mk(p, E_FILTER, t);
            if (!f || !(f->name = tok_name(p, t))) return NULL;
            p->i++;
            if (!jbuiltin_has_filter(f->name))
                return fail_at(p, t, HN_EUNSUPPORTED, "unsupported filter '%s'", f->name), NULL;
            f->a = n;
            if (!parse_fargs(p, f)) return NULL;
            n = f;
        } else if (accept_name(p, "is")) {
            n = parse_test(p, n, at);
        } else if (accept_op(p, "(")) {
            n = parse_call(p, n, at);
        } else {
            break;
        }
    }
    return n;
}

/* Comma-separated items until `close`; `close` consumed. Dicts: key: value. */
static bool parse_items(parser *p, const char *close, nvec *keys, nvec *vals) {
    while (p->st == HN_OK && !accept_op(p, close)) {
        jnode *k = parse_expr(p, true);
        if (!k || !nvec_push(p, keys, k)) return false;
        if (vals) {
            jnode *v = expect_op(p, ":") ? parse_expr(p, true) : NULL;
            if (!v || !nvec_push(p, vals, v)) return false;
        }
        if (!is_op(cur(p), close) && !expect_op(p, ",")) return false;
    }
    return p->st == HN_OK;
}

static jnode *parse_literal_name(parser *p, const jtok *t) {
    static const char *const names[] = {"true", "True", "false", "False", "none", "None"};
    for (int k = 0; k < 6; k++)
        if (is_name(t, names[k])) {
            jnode *n = mk(p, E_LIT, t);
            if (n) n->lit = k < 4 ? jv_bool(k < 2) : jv_none();
            p->i++;
            return n;
        }
    jnode *n = mk(p, E_NAME, t);
    if (n && !(n->name = tok_name(p, t))) return NULL;
    p->i++;
    return n;
}

/* Adjacent string literals concatenate, as in Python. */
static jnode *parse_string(parser *p, const jtok *t) {
    size_t len = 0, k = p->i;
    for (; p->t[k].k == TK_STRING; k++) len += p->t[k].n;
    char *s = ja_alloc(p->a, len + 1);
    jnode *n = mk(p, E_LIT, t);
    if (!s || !n) return oom(p), NULL;
    size_t o = 0;
    for (; p->i < k; p->i++) memcpy(s + o, p->t[p->i].p, p->t[p->i].n), o += p->t[p->i].n;
    n->lit = jv_str(s, len);
    return n;
}

static jnode *parse_paren(parser *p, const jtok *t) {
    nvec items = {0};
    bool tuple = false;
    while (p->st == HN_OK && !accept_op(p, ")")) {
        jnode *x = parse_expr(p, true);
        if (!x || !nvec_push(p, &items, x)) return NULL;
        if (!is_op(cur(p), ")")) {
            if (!expect_op(p, ",")) return NULL;
            tuple = true;
        }
    }
    if (p->st != HN_OK) return NULL;
    if (items.n == 1 && !tuple) return items.v[0];
    jnode *n = mk(p, E_LIST, t);
    if (n) n->args = items.v, n->nargs = (int)items.n, n->op = 1; /* a tuple */
    return n;
}

static jnode *parse_primary(parser *p) {
    const jtok *t = cur(p);
    jnode *n = NULL;
    if (!enter(p)) return NULL;
    if (t->k == TK_NAME) n = parse_literal_name(p, t);
    else if (t->k == TK_STRING) n = parse_string(p, t);
    else if (t->k == TK_INT || t->k == TK_FLOAT) {
        if ((n = mk(p, E_LIT, t))) n->lit = t->k == TK_INT ? jv_int(t->i) : jv_float(t->f);
        p->i++;
    } else if (accept_op(p, "(")) n = parse_paren(p, t);
    else if (accept_op(p, "[") || accept_op(p, "{")) {
        bool dict = is_op(t, "{");
        nvec keys = {0}, vals = {0};
        if (parse_items(p, dict ? "}" : "]", &keys, dict ? &vals : NULL) &&
            (n = mk(p, dict ? E_DICT : E_LIST, t)))
            n->args = keys.v, n->args2 = vals.v, n->nargs = (int)keys.n;
    } else {
        const char *d = tok_desc(t);
        char m[96];
        if (d) snprintf(m, sizeof m, "expected an expression, found %s", d);
        else snprintf(m, sizeof m, "expected an expression, found '%.*s'", (int)(t->n > 40 ? 40 : t->n), t->p);
        fail_at(p, t, HN_EFORMAT, "%s", m);
    }
    p->depth--;
    return p->st == HN_OK ? n : NULL;
}

static jnode *parse_unary(parser *p, bool with_filter) {
    const jtok *t = cur(p);
    jnode *n;
    if (!enter(p)) return NULL;
    if (accept_op(p, "-") || accept_op(p, "+")) {
        n = mk(p, is_op(t, "-") ? E_NEG : E_POS, t);
        if (n && !(n->a = parse_unary(p, false))) n = NULL;
    } else {
        n = parse_primary(p);
    }
    n = parse_postfix(p, n);
    if (with_filter) n = parse_filter_expr(p, n);
    p->depth--;
    return p->st == HN_OK ? n : NULL;
}

static jnode *mk_bin(parser *p, jnode_type type, int op, const jtok *at, jnode *a, jnode *b) {
    if (!a || !b) return NULL;
    jnode *n = mk(p, type, at);
    if (n) n->op = op, n->a = a, n->b = b;
    return n;
}

/* Binary levels from loosest to tightest; each entry lists its operators. */
typedef struct binlevel { const char *ops[4]; int codes[4]; } binlevel;
static const binlevel levels[] = {
    {{"+", "-"}, {OP_ADD, OP_SUB}},
    {{"~"}, {OP_CONCAT}},
    {{"*", "/", "//", "%"}, {OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD}},
    {{"**"}, {OP_POW}},
};

static jnode *parse_level(parser *p, int lv) {
    if (lv == 4) return parse_unary(p, true);
    jnode *a = parse_level(p, lv + 1);
    for (bool more = true; a && more;) {
        more = false;
        for (int k = 0; k < 4 && levels[lv].ops[k]; k++) {
            const jtok *at = cur(p);
            if (accept_op(p, levels[lv].ops[k])) {
                a = mk_bin(p, E_BIN, levels[lv].codes[k], at, a, parse_level(p, lv + 1));
                more = true;
                break;
            }
        }
    }
    return a;
}

static int compare_op(parser *p) {
    static const char *const ops[] = {"==", "!=", "<", "<=", ">", ">="};
    static const int codes[] = {OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE};
    for (int k = 0; k < 6; k++)
        if (accept_op(p, ops[k])) return codes[k];
    if (accept_name(p, "in")) return OP_IN;
    if (is_name(cur(p), "not") && is_name(&p->t[p->i + 1], "in")) {
        p->i += 2;
        return OP_NOTIN;
    }
    return -1;
}

/* a < b < c is (a < b) and (b < c), as in Python. */
static jnode *parse_compare(parser *p) {
    jnode *a = parse_level(p, 0), *res = NULL, *left = a;
    for (;;) {
        const jtok *at = cur(p);
        int op = a ? compare_op(p) : -1;
        if (op < 0) break;
        jnode *b = parse_level(p, 0);
        jnode *cmp = mk_bin(p, E_BIN, op, at, left, b);
        if (!cmp) return NULL;
        res = res ? mk_bin(p, E_AND, 0, at, res, cmp) : cmp;
        left = b;
    }
    return res ? res : a;
}

static jnode *parse_not(parser *p) {
    const jtok *t = cur(p);
    if (is_name(t, "not") && !is_name(&p->t[p->i + 1], "in")) {
        p->i++;
        if (!enter(p)) return NULL;
        jnode *n = mk(p, E_NOT, t);
        if (n && !(n->a = parse_not(p))) n = NULL;
        p->depth--;
        return n;
    }
    return parse_compare(p);
}

static jnode *parse_and(parser *p) {
    jnode *a = parse_not(p);
    for (const jtok *at = cur(p); a && accept_name(p, "and"); at = cur(p)) a = mk_bin(p, E_AND, 0, at, a, parse_not(p));
    return a;
}

static jnode *parse_or(parser *p) {
    jnode *a = parse_and(p);
    for (const jtok *at = cur(p); a && accept_name(p, "or"); at = cur(p)) a = mk_bin(p, E_OR, 0, at, a, parse_and(p));
    return a;
}

static jnode *parse_expr(parser *p, bool with_cond) {
    if (!enter(p)) return NULL;
    jnode *a = parse_or(p);
    while (with_cond && a && is_name(cur(p), "if")) {
        jnode *n = mk(p, E_COND, cur(p));
        p->i++;
        if (!n || !(n->b = parse_or(p))) return NULL;
        n->a = a;
        if (accept_name(p, "else") && !(n->c = parse_expr(p, true))) return NULL;
        a = n;
    }
    p->depth--;
    return p->st == HN_OK ? a : NULL;
}

/* a, b, c (no parentheses) as a list node if there is a comma. */
static jnode *parse_tuple(parser *p, bool with_cond, bool names_only) {
    const jtok *at = cur(p);
    nvec items = {0};
    bool comma = false;
    for (;;) {
        jnode *x = names_only ? parse_primary(p) : parse_expr(p, with_cond);
        if (!x || !nvec_push(p, &items, x)) return NULL;
        if (names_only && x->type != E_NAME)
            return fail_at(p, at, HN_EFORMAT, "%s", "expected a variable name"), NULL;
        if (!accept_op(p, ",")) break;
        comma = true;
        const jtok *c = cur(p);
        if (c->k == TK_BLOCK_END || is_op(c, "=") || is_name(c, "in")) break;
    }
    if (!comma) return items.v[0];
    jnode *n = mk(p, E_LIST, at);
    if (n) n->args = items.v, n->nargs = (int)items.n, n->op = 1; /* a tuple */
    return n;
}

/* ---- statements ---- */

static bool expect_end(parser *p) {
    if (cur(p)->k == TK_BLOCK_END) {
        p->i++;
        return true;
    }
    const jtok *t = cur(p);
    const char *d = tok_desc(t);
    char m[128];
    if (d) snprintf(m, sizeof m, "expected '%%}', found %s", d);
    else snprintf(m, sizeof m, "expected '%%}', found '%.*s'", (int)(t->n > 40 ? 40 : t->n), t->p);
    return fail_at(p, t, HN_EFORMAT, "%s", m);
}

static bool in_list(const jtok *t, const char *const *names) {
    for (; names && *names; names++)
        if (is_name(t, *names)) return true;
    return false;
}

static jnode *parse_statement(parser *p);

/* Statements until a block tag whose keyword is in stops (left unconsumed:
 * p->i is at its '{%'). opener/what name the block for "unterminated". */
static jnode *parse_body(parser *p, const char *const *stops, const jtok *opener, const char *what) {
    jnode *head = NULL, **tail = &head;
    while (p->st == HN_OK) {
        const jtok *t = cur(p);
        jnode *n = NULL;
        if (t->k == TK_EOF) {
            if (stops) fail_at(p, opener, HN_EFORMAT, "unterminated '{%% %s %%}' block", what);
            break;
        }
        if (t->k == TK_TEXT) {
            if ((n = mk(p, S_TEXT, t))) n->lit = jv_str(t->p, t->n);
            p->i++;
        } else if (t->k == TK_VAR_BEGIN) {
            p->i++;
            if ((n = mk(p, S_OUT, t)) && (n->a = parse_expr(p, true)) && cur(p)->k != TK_VAR_END)
                expect_op(p, "}}");
            p->i++;
        } else if (t->k == TK_BLOCK_BEGIN) {
            if (in_list(&p->t[p->i + 1], stops)) break;
            p->i++;
            n = parse_statement(p);
        } else {
            fail_at(p, t, HN_EFORMAT, "%s", "unexpected token");
        }
        if (!n) break;
        *tail = n;
        while (*tail) tail = &(*tail)->next;
    }
    return p->st == HN_OK ? head : NULL;
}

/* At the '{%' of a stop tag: consumes "{% name" and returns the name token. */
static const jtok *take_stop(parser *p) {
    p->i += 2;
    return &p->t[p->i - 1];
}

static jnode *parse_if(parser *p, const jtok *kw) {
    static const char *const stops[] = {"elif", "else", "endif", NULL};
    jnode *n = mk(p, S_IF, kw);
    if (!n || !(n->a = parse_expr(p, true)) || !expect_end(p)) return NULL;
    n->body = parse_body(p, stops, kw, "if");
    if (p->st != HN_OK) return NULL;
    const jtok *t = take_stop(p);
    if (is_name(t, "elif")) {
        n->orelse = parse_if(p, t);
        return p->st == HN_OK ? n : NULL;
    }
    if (is_name(t, "else")) {
        static const char *const end[] = {"endif", NULL};
        if (!expect_end(p)) return NULL;
        n->orelse = parse_body(p, end, kw, "if");
        if (p->st != HN_OK) return NULL;
        take_stop(p);
    }
    return expect_end(p) ? n : NULL;
}

static jnode *parse_for(parser *p, const jtok *kw) {
    static const char *const stops[] = {"else", "endfor", NULL}, *const end[] = {"endfor", NULL};
    jnode *n = mk(p, S_FOR, kw);
    if (!n || !(n->a = parse_tuple(p, false, true))) return NULL;
    if (!accept_name(p, "in")) return fail_at(p, cur(p), HN_EFORMAT, "%s", "expected 'in' in for loop"), NULL;
    if (!(n->b = parse_tuple(p, false, false))) return NULL;
    if (accept_name(p, "if") && !(n->c = parse_expr(p, true))) return NULL;
    if (is_name(cur(p), "recursive"))
        return fail_at(p, cur(p), HN_EUNSUPPORTED, "%s", "unsupported: recursive for loops"), NULL;
    if (!expect_end(p)) return NULL;
    n->body = parse_body(p, stops, kw, "for");
    if (p->st != HN_OK) return NULL;
    if (is_name(take_stop(p), "else")) {
        if (!expect_end(p)) return NULL;
        n->orelse = parse_body(p, end, kw, "for");
        if (p->st != HN_OK) return NULL;
        take_stop(p);
    }
    return expect_end(p) ? n : NULL;
}

/* set x = e | set a, b = e | set ns.attr = e | set x %}...{% endset */
static jnode *parse_set(parser *p, const jtok *kw) {
    jnode *n = mk(p, S_SET, kw);
    if (!n) return NULL;
    const jtok *t = cur(p);
    if (t->k == TK_NAME && is_op(&p->t[p->i + 1], ".") && p->t[p->i + 2].k == TK_NAME) {
        n->a = parse_postfix(p, parse_primary(p));
        if (n->a && n->a->type != E_ATTR) return fail_at(p, t, HN_EFORMAT, "%s", "cannot assign to this"), NULL;
    } else {
        n->a = parse_tuple(p, false, true);
    }
    if (!n->a) return NULL;
    if (accept_op(p, "=")) {
        if (!(n->b = parse_tuple(p, true, false))) return NULL;
        return expect_end(p) ? n : NULL;
    }
    if (n->a->type != E_NAME) return fail_at(p, t, HN_EFORMAT, "%s", "block set needs one variable name"), NULL;
    if (is_op(cur(p), "|")) return fail_at(p, cur(p), HN_EUNSUPPORTED, "%s", "unsupported: filtered block set"), NULL;
    static const char *const end[] = {"endset", NULL};
    if (!expect_end(p)) return NULL;
    n->body = parse_body(p, end, kw, "set");
    if (p->st != HN_OK) return NULL;
    take_stop(p);
    return expect_end(p) ? n : NULL;
}

static jnode *parse_macro(parser *p, const jtok *kw) {
    jnode *n = mk(p, S_MACRO, kw);
    const jtok *t = cur(p);
    if (!n) return NULL;
    if (t->k != TK_NAME) return fail_at(p, t, HN_EFORMAT, "%s", "expected a macro name"), NULL;
    if (!(n->name = tok_name(p, t))) return NULL;
    p->i++;
    nvec params = {0}, defs = {0};
    if (!expect_op(p, "(")) return NULL;
    while (p->st == HN_OK && !accept_op(p, ")")) {
        const jtok *pt = cur(p);
        if (pt->k != TK_NAME) return fail_at(p, pt, HN_EFORMAT, "%s", "expected a parameter name"), NULL;
        jnode *pn = parse_literal_name(p, pt);
        jnode *d = accept_op(p, "=") ? parse_expr(p, true) : NULL;
        if (!pn || p->st != HN_OK || !nvec_push(p, &params, pn) || !nvec_push(p, &defs, d)) return NULL;
        if (!is_op(cur(p), ")") && !expect_op(p, ",")) return NULL;
    }
    n->args = params.v, n->args2 = defs.v, n->nargs = (int)params.n;
    static const char *const end[] = {"endmacro", NULL};
    if (!expect_end(p)) return NULL;
    n->body = parse_body(p, end, kw, "macro");
    if (p->st != HN_OK) return NULL;
    take_stop(p);
    if (cur(p)->k == TK_NAME) p->i++; /* {% endmacro name %} */
    if (!push_ptr(p, (void ***)&p->macros, &p->nmacros, &p->capmacros, (void *)n->name)) return NULL;
    return expect_end(p) ? n : NULL;
}

static jnode *parse_simple(parser *p, const jtok *kw, jnode_type type) {
    jnode *n = mk(p, type, kw);
    return n && expect_end(p) ? n : NULL;
}

static jnode *parse_generation(parser *p, const jtok *kw) {
    static const char *const end[] = {"endgeneration", NULL};
    jnode *n = mk(p, S_BLOCK, kw);
    if (!n || !expect_end(p)) return NULL;
    n->body = parse_body(p, end, kw, "generation");
    if (p->st != HN_OK) return NULL;
    take_stop(p);
    return expect_end(p) ? n : NULL;
}

static jnode *parse_statement(parser *p) {
    static const char *const unsupported[] = {"call", "filter", "include", "import", "from", "extends",
                                              "block", "with", "autoescape", "do", "trans", NULL};
    const jtok *kw = cur(p);
    if (kw->k != TK_NAME) return fail_at(p, kw, HN_EFORMAT, "%s", "expected a statement name after '{%'"), NULL;
    p->i++;
    if (!enter(p)) return NULL;
    jnode *n = NULL;
    const char *name = tok_name(p, kw);
    if (!name) return NULL;
    if (!strcmp(name, "if")) n = parse_if(p, kw);
    else if (!strcmp(name, "for")) n = parse_for(p, kw);
    else if (!strcmp(name, "set")) n = parse_set(p, kw);
    else if (!strcmp(name, "macro")) n = parse_macro(p, kw);
    else if (!strcmp(name, "break")) n = parse_simple(p, kw, S_BREAK);
    else if (!strcmp(name, "continue")) n = parse_simple(p, kw, S_CONTINUE);
    else if (!strcmp(name, "generation")) n = parse_generation(p, kw);
    else if (in_list(kw, unsupported)) fail_at(p, kw, HN_EUNSUPPORTED, "unsupported statement '{%% %s %%}'", name);
    else if (!strncmp(name, "end", 3) || !strcmp(name, "elif") || !strcmp(name, "else"))
        fail_at(p, kw, HN_EFORMAT, "unexpected '{%% %s %%}' (no open block it could close)", name);
    else fail_at(p, kw, HN_EFORMAT, "unknown statement '{%% %s %%}'", name);
    p->depth--;
    return p->st == HN_OK ? n : NULL;
}

/* Calls of bare names must be builtins (checked when parsed) or macros. */
static void check_calls(parser *p) {
    for (size_t k = 0; k < p->ncalls && p->st == HN_OK; k++) {
        const jnode *c = p->calls[k];
        bool found = false;
        for (size_t m = 0; m < p->nmacros && !found; m++) found = !strcmp(p->macros[m], c->a->name);
        if (!found) {
            jtok at = {.line = c->a->line, .col = c->a->col};
            fail_at(p, &at, HN_EUNSUPPORTED, "unsupported function '%s'", c->a->name);
        }
    }
}

hn_status jparse(const jtok *toks, size_t n, jarena *a, jnode **body, hn_err *err) {
    parser p = {.t = toks, .n = n, .a = a, .err = err};
    *body = parse_body(&p, NULL, NULL, NULL);
    if (p.st == HN_OK) check_calls(&p);
    return p.st;
}
