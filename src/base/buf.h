/* buf.h — a growable byte buffer / string builder. The buffer owns its
 * memory; it is always NUL-terminated so ->data can be used as a C string. */
#ifndef HN_BUF_H
#define HN_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct hn_buf {
    char *data;
    size_t len, cap;
    bool oom; /* sticky: set when an append failed */
} hn_buf;

void hn_buf_init(hn_buf *b);
void hn_buf_free(hn_buf *b);
void hn_buf_clear(hn_buf *b);
bool hn_buf_append(hn_buf *b, const void *p, size_t n);
bool hn_buf_puts(hn_buf *b, const char *s);
bool hn_buf_putc(hn_buf *b, char c);
bool hn_buf_printf(hn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the data to the caller (must free) and resets b. */
char *hn_buf_take(hn_buf *b);

#endif
