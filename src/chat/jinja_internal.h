/* jinja_internal.h — what the Jinja interpreter's files share: the arena, the
 * lexer's tokens, the syntax tree, run-time values and the evaluator's state.
 * Not a public header: only src/chat/jinja*.c include it. */
#ifndef HN_CHAT_JINJA_INTERNAL_H
#define HN_CHAT_JINJA_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "chat/jinja.h"

/* ---- arena: everything of a parse or a render lives and dies together ---- */

typedef struct ja_chunk ja_chunk;
typedef struct jarena {
    ja_chunk *head;
    size_t used, limit; /* bytes handed out; 0 limit = unlimited */
    bool over;          /* an allocation failed or passed the limit */
} jarena;

void ja_init(jarena *a, size_t limit);
void ja_free(jarena *a);
/* Zeroed, 16-byte aligned; NULL (and a->over) past the limit or on OOM. */
void *ja_alloc(jarena *a, size_t n);
/* n * size with overflow check. */
void *ja_array(jarena *a, size_t n, size_t size);
char *ja_strdup(jarena *a, const char *s, size_t n);

/* ---- lexer ---- */

typedef enum tk_kind {
    TK_TEXT, TK_VAR_BEGIN, TK_VAR_END, TK_BLOCK_BEGIN, TK_BLOCK_END,
    TK_NAME, TK_STRING, TK_INT, TK_FLOAT, TK_OP, TK_EOF
} tk_kind;

typedef struct jtok {
    tk_kind k;
    int line, col;
    const char *p; /* text, name, operator or decoded string (not NUL-terminated) */
    size_t n;
    int64_t i;
    double f;
} jtok;

/* Splits src into tokens (in arena a), applying whitespace control. */
hn_status jlex(const char *src, size_t len, jarena *a, jtok **toks, size_t *n, hn_err *err);

/* ---- values ---- */

typedef enum jkind {
    JV_UNDEF = 0, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT,
    JV_NS,    /* namespace(): a dict whose attributes `set` may change */
    JV_MACRO, /* a macro of the template */
    JV_LOOP,  /* the `loop` variable */
    JV_FUNC,  /* a global function (namespace, range, ...) */
} jkind;

typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jloop jloop;
typedef struct jnode jnode;

typedef struct jv {
    jkind k;
    union {
        bool b;
        int64_t i;
        double f;
        struct { const char *p; size_t n; } s; /* JV_STR; JV_UNDEF: its name */
        jlist *l;
        jdict *d;
        const jnode *m;
        jloop *lp;
        int fn;
    } u;
} jv;

struct jlist { size_t n; jv *v; bool tuple; /* repr as (a, b) */ };
struct jdict { size_t n, cap; jv *keys, *vals; };

struct jloop {
    const jlist *items;
    size_t i;
};

static inline jv jv_undef(void) { jv v = {.k = JV_UNDEF}; return v; }
static inline jv jv_none(void) { jv v = {.k = JV_NONE}; return v; }
static inline jv jv_bool(bool b) { jv v = {.k = JV_BOOL}; v.u.b = b; return v; }
static inline jv jv_int(int64_t i) { jv v = {.k = JV_INT}; v.u.i = i; return v; }
static inline jv jv_float(double f) { jv v = {.k = JV_FLOAT}; v.u.f = f; return v; }
static inline jv jv_str(const char *p, size_t n) { jv v = {.k = JV_STR}; v.u.s.p = p; v.u.s.n = n; return v; }

/* ---- syntax tree ---- */

typedef enum jnode_type {
    /* expressions */
    E_LIT, E_NAME, E_ATTR, E_ITEM, E_SLICE, E_CALL, E_FILTER, E_TEST, E_NEG, E_POS, E_NOT,
    E_BIN, E_AND, E_OR, E_COND, E_LIST, E_DICT,
    /* statements */
    S_TEXT, S_OUT, S_IF, S_FOR, S_SET, S_MACRO, S_BREAK, S_CONTINUE, S_BLOCK,
} jnode_type;

typedef enum jbinop {
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_CONCAT,
    OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOTIN,
} jbinop;

struct jnode {
    jnode_type type;
    int line, col;
    int op;             /* E_BIN: jbinop; E_TEST: 1 = negated ("is not"); E_LIST: 1 = tuple */
    const char *name;   /* E_NAME, E_ATTR, E_FILTER, E_TEST, S_MACRO: NUL-terminated */
    jv lit;             /* E_LIT; S_TEXT: the text */
    jnode *a, *b, *c;   /* operands; S_FOR: a targets (E_LIST), b iterable, c filter */
    jnode **args;       /* call/filter/test args, list items, dict keys, macro params */
    jnode **args2;      /* dict values, macro defaults (NULL entries: none) */
    int nargs;
    const char **kwnames; /* keyword arguments of calls and filters */
    jnode **kwargs;
    int nkw;
    jnode *body, *orelse; /* S_IF, S_FOR, S_SET (block form), S_MACRO, S_BLOCK */
    jnode *next;          /* the next statement */
};

struct jinja_tmpl {
    jarena arena;
    jnode *body;
};

/* ---- parser ---- */

hn_status jparse(const jtok *toks, size_t n, jarena *a, jnode **body, hn_err *err);

/* Checks done by the parser against what the evaluator implements. */
bool jbuiltin_has_filter(const char *name);
bool jbuiltin_has_test(const char *name);
bool jbuiltin_has_method(const char *name);
int jbuiltin_func(const char *name); /* -1 if not a global function */

/* ---- evaluator ---- */

typedef struct jframe jframe;
struct jframe {
    jframe *parent;
    size_t n, cap;
    const char **names;
    jv *vals;
};

typedef struct jctx {
    jarena *a;
    hn_buf *out;
    jframe *scope, *root;
    jinja_limits lim;
    size_t iters;
    int depth;
    int flow; /* 0, or FLOW_BREAK / FLOW_CONTINUE while unwinding to the loop */
    hn_err *err;
    hn_status st; /* first error */
} jctx;

enum { FLOW_BREAK = 1, FLOW_CONTINUE = 2 };

/* Records an error at node n (first one wins); returns the status. */
hn_status jerr(jctx *c, const jnode *n, hn_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
hn_status joom(jctx *c, const jnode *n);

hn_status jeval(jctx *c, const jnode *e, jv *out);
hn_status jcall_macro(jctx *c, const jnode *at, const jnode *macro, jv *args, int nargs,
                      const char **kwnames, jv *kwargs, int nkw, jv *out);

/* ---- value helpers (jinja_value.c) ---- */

bool jv_truthy(jv v);
const char *jv_type_name(jv v);
bool jv_equal(jv a, jv b);
/* <0, 0, >0; false if the types cannot be ordered. */
bool jv_compare(jv a, jv b, int *cmp);
/* Python str(v) appended to b (Undefined: nothing). */
bool jv_to_str(jv v, hn_buf *b);
/* str(v) as a value in the arena. */
bool jv_stringify(jarena *a, jv v, jv *out);
/* json.dumps(v, ensure_ascii=False, indent=indent) appended; false if v is not
 * JSON-serialisable (*bad names the type). indent < 0: none. */
bool jv_to_json(jv v, int indent, int level, hn_buf *b, const char **bad);
/* JSON -> value (strings are copied into the arena). */
bool jv_from_json(jarena *a, const json_t *j, jv *out);
jv jdict_get(const jdict *d, const char *key, size_t n);
jv *jdict_slot(jarena *a, jdict *d, jv key); /* finds or adds key; NULL on OOM */
jlist *jlist_new(jarena *a, size_t n);
/* The UTF-8 characters of a string as a list of one-character strings. */
bool jv_str_chars(jarena *a, jv s, jlist **out);
size_t utf8_count(const char *p, size_t n);
/* Iterable -> list (strings: characters; dicts: keys). false if not iterable. */
bool jv_iter_list(jarena *a, jv v, const jlist **out);

/* ---- builtins (jinja_builtins.c: filters; jinja_methods.c: the rest) ---- */

typedef struct jargs {
    jv *a;
    int n;
    const char **kwn;
    jv *kw;
    int nkw;
} jargs;

/* Positional argument pos (-1: none) or keyword `name`; JV_UNDEF if absent. */
jv jarg(const jargs *x, int pos, const char *name);
/* Refuses more than maxpos positional arguments or a keyword not in names. */
hn_status jcheck_args(jctx *c, const jnode *at, const char *what, const jargs *x, int maxpos,
                      const char *const *names);
/* Refuses a value not of kind k: "what expects a string, got int". */
hn_status jneed(jctx *c, const jnode *at, const char *what, jv v, jkind k);

hn_status jbuiltin_filter(jctx *c, const jnode *at, const char *name, jv self, jv *args, int nargs,
                          const char **kwnames, jv *kwargs, int nkw, jv *out);
hn_status jbuiltin_test(jctx *c, const jnode *at, const char *name, jv self, jv *args, int nargs,
                        bool *out);
/* obj.name(args); *found false if obj has no such method. */
hn_status jbuiltin_method(jctx *c, const jnode *at, jv obj, const char *name, jv *args, int nargs,
                          const char **kwnames, jv *kwargs, int nkw, jv *out, bool *found);
hn_status jbuiltin_call(jctx *c, const jnode *at, int fn, jv *args, int nargs,
                        const char **kwnames, jv *kwargs, int nkw, jv *out);
/* obj.name for loop, namespace and dict; JV_UNDEF when absent. */
jv jattr(jv obj, const char *name);

#endif
