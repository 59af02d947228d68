/* jinja.c — the Jinja interpreter's entry points (parse, free, limits) and
 * its arena. The pieces: jinja_lex.c (source -> tokens, whitespace control),
 * jinja_parse.c (tokens -> tree, refusing what is not implemented),
 * jinja_eval.c (tree -> text), jinja_value.c (Python value semantics),
 * jinja_builtins.c (filters, tests, methods, global functions). */
#include "chat/jinja_internal.h"

#include <stdlib.h>
#include <string.h>

struct ja_chunk {
    ja_chunk *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
};

void ja_init(jarena *a, size_t limit) {
    memset(a, 0, sizeof *a);
    a->limit = limit;
}

void ja_free(jarena *a) {
    for (ja_chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    a->head = NULL;
}

void *ja_alloc(jarena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (a->limit && (n > a->limit || a->used > a->limit - n)) {
        a->over = true;
        return NULL;
    }
    ja_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        c = malloc(sizeof *c + cap);
        if (!c) {
            a->over = true;
            return NULL;
        }
        c->cap = cap;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    a->used += n;
    memset(p, 0, n);
    return p;
}

void *ja_array(jarena *a, size_t n, size_t size) {
    if (size && n > ((size_t)-1 >> 1) / size) {
        a->over = true;
        return NULL;
    }
    return ja_alloc(a, n * size);
}

char *ja_strdup(jarena *a, const char *s, size_t n) {
    char *p = ja_alloc(a, n + 1);
    if (p && n) memcpy(p, s, n);
    return p;
}

void jinja_limits_default(jinja_limits *l) {
    l->max_output = (size_t)16 << 20;
    l->max_memory = (size_t)256 << 20;
    l->max_iterations = 10000000;
    l->max_depth = 64;
}

hn_status jinja_parse(const char *src, size_t len, jinja_tmpl **out, hn_err *err) {
    *out = NULL;
    jinja_tmpl *t = calloc(1, sizeof *t);
    if (!t) return hn_errf(err, HN_ENOMEM, "chat template: out of memory");
    ja_init(&t->arena, 0);
    jtok *toks;
    size_t n;
    hn_status st = jlex(src, len, &t->arena, &toks, &n, err);
    if (st == HN_OK) st = jparse(toks, n, &t->arena, &t->body, err);
    if (st != HN_OK) {
        jinja_free(t);
        return st;
    }
    *out = t;
    return HN_OK;
}

void jinja_free(jinja_tmpl *t) {
    if (!t) return;
    ja_free(&t->arena);
    free(t);
}
