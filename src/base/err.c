/* err.c — formatting of hn_err messages. */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

hn_status hn_errf(hn_err *e, hn_status code, const char *fmt, ...) {
    if (!e) return code;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

hn_status hn_err_prefix(hn_err *e, const char *fmt, ...) {
    if (!e) return HN_OK;
    char prefix[512], old[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof e->msg - 3) n = sizeof e->msg - 3;
    memcpy(e->msg, prefix, n);
    memcpy(e->msg + n, ": ", 2);
    size_t rest = sizeof e->msg - n - 3;
    size_t ol = strnlen(old, rest);
    memcpy(e->msg + n + 2, old, ol);
    e->msg[n + 2 + ol] = 0;
    return e->code;
}

const char *hn_status_name(hn_status s) {
    static const char *names[] = {"ok", "invalid", "io", "format", "unsupported",
                                  "nomem", "notfound", "cancelled", "state"};
    _Static_assert(sizeof names / sizeof names[0] == HN_ESTATE + 1, "status names");
    return (unsigned)s <= HN_ESTATE ? names[s] : "unknown";
}
