/* err.h — status codes and the error message buffer every fallible call fills.
 *
 * Library code never prints or exits: it returns an hn_status and writes a
 * human message ("file.gguf: tensor 'x': offset 123 past end of file") into a
 * caller-provided hn_err. Only src/cli prints. */
#ifndef HN_ERR_H
#define HN_ERR_H

#include <stddef.h>

typedef enum hn_status {
    HN_OK = 0,
    HN_EINVAL,       /* bad argument or bad user input */
    HN_EIO,          /* open/read/write/mmap failed */
    HN_EFORMAT,      /* malformed or truncated file */
    HN_EUNSUPPORTED, /* well-formed but not something we handle */
    HN_ENOMEM,       /* allocation failed or size overflow */
    HN_ENOTFOUND,    /* key/tensor/file absent */
    HN_ECANCELLED,   /* stopped on request */
    HN_ESTATE,       /* operation not valid in the current state */
} hn_status;

typedef struct hn_err {
    hn_status code;
    char msg[1024];
} hn_err;

/* Sets e->code and formats e->msg (printf-style); returns code so callers can
 * write `return hn_errf(err, HN_EFORMAT, "...")`. e may be NULL. */
hn_status hn_errf(hn_err *e, hn_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to an existing message (adds context while unwinding). */
hn_status hn_err_prefix(hn_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

const char *hn_status_name(hn_status s);

#endif
