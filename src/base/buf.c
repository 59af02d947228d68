/* buf.c — growable byte buffer. */
#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hn_buf_init(hn_buf *b) { memset(b, 0, sizeof *b); }

void hn_buf_free(hn_buf *b) {
    free(b->data);
    hn_buf_init(b);
}

void hn_buf_clear(hn_buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = 0;
}

static bool reserve(hn_buf *b, size_t extra) {
    if (b->oom) return false;
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) {
        if (cap > ((size_t)-1) / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

bool hn_buf_append(hn_buf *b, const void *p, size_t n) {
    if (!reserve(b, n)) return false;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return true;
}

bool hn_buf_puts(hn_buf *b, const char *s) { return hn_buf_append(b, s, strlen(s)); }

bool hn_buf_putc(hn_buf *b, char c) { return hn_buf_append(b, &c, 1); }

bool hn_buf_printf(hn_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n)) return false;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}

char *hn_buf_take(hn_buf *b) {
    if (!b->data) reserve(b, 0);
    char *p = b->data;
    hn_buf_init(b);
    return p;
}
