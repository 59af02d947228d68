/* client.h — the HTTP client behind `hone files|jobs|models|chat`: libcurl +
 * jansson against an OpenAI-compatible API (`hone serve` or OpenAI itself).
 *
 * Every call prints its own failure (the server's OpenAI error message and
 * HTTP status, or which URL could not be reached) prefixed with the command
 * name, and returns NULL/false; callers then exit 1. */
#ifndef HN_CLI_CLIENT_H
#define HN_CLI_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "base/buf.h"

#define HC_DEFAULT_BASE "http://127.0.0.1:8080/v1"

typedef struct hc {
    char base[2048];  /* no trailing slash */
    const char *key;  /* API key or NULL */
    const char *cmd;  /* "hone jobs get": prefix of every message */
    bool json;        /* --json: print the raw JSON responses */
    bool quiet_conn;  /* do not print connection failures (the caller retries) */
    long last_status; /* HTTP status of the last request; 0 = no response */
    void *curl;       /* CURL easy handle, reused between requests */
} hc;

/* Base URL from HONE_BASE_URL, OPENAI_BASE_URL or the default; key from
 * OPENAI_API_KEY or HONE_API_KEY (its first comma-separated entry). */
void hc_init(hc *c, const char *cmd);
/* Consumes --base-url URL, --api-key KEY and --json at argv[*i]. */
bool hc_common_opt(hc *c, int argc, char **argv, int *i, bool *bad);
extern const char *const hc_common_usage;
void hc_close(hc *c);

/* METHOD base+path with an optional JSON body (not stolen). Returns the
 * parsed 2xx response (caller decrefs) or NULL after printing the error. */
json_t *hc_call(hc *c, const char *method, const char *path, json_t *body);
/* GET base+path; the raw 2xx body goes to out. */
bool hc_get_raw(hc *c, const char *path, hn_buf *out);
/* POST /files as multipart (file + purpose). */
json_t *hc_upload(hc *c, const char *file, const char *purpose);

/* Called with every SSE `data:` payload (parsed) until `[DONE]`; return
 * false to stop. */
typedef bool (*hc_event_fn)(void *ctx, json_t *chunk);
/* POST base+path with body and read the SSE response. */
bool hc_stream(hc *c, const char *path, json_t *body, hc_event_fn fn, void *ctx);

/* out = prefix + URL-escaped id + suffix (ids in paths). */
void hc_path(char *out, size_t cap, const char *prefix, const char *id, const char *suffix);
/* Appends "?key=val" or "&key=val" (val escaped) to b; nothing when val is NULL. */
void hc_query(hn_buf *b, const char *key, const char *val);

/* ---- subcommand dispatch (client_fmt.c) ---- */
typedef struct hc_sub {
    const char *name;
    int (*fn)(hc *c, int argc, char **argv); /* argv[0] is the subcommand */
} hc_sub;
/* `hone GROUP SUB ...`: finds SUB, sets up the client, runs it. */
int hc_dispatch(const char *group, const hc_sub *subs, const char *usage, int argc,
                char **argv);
/* Parses `SUB ID [common options]`; 0, or 2 after a usage message. */
int hc_id_args(hc *c, int argc, char **argv, const char **id);

/* ---- output helpers (client_fmt.c) ---- */
void hc_print_json(const json_t *j);
/* Prints j (raw with --json, else human(j)), decrefs it; 1 if j is NULL. */
int hc_show(const hc *c, json_t *j, void (*human)(const json_t *));
/* "2026-05-01 12:00:00" (local time) or "-" for null/0. */
const char *hc_time(const json_t *t, char *buf, size_t cap);
/* A string field, "-" when null or absent; numbers are formatted. */
const char *hc_str(const json_t *obj, const char *key, char *buf, size_t cap);
/* One "  key   value" line per (label, key) pair in fields, NULL-terminated. */
void hc_print_fields(const json_t *obj, const char *const *fields);
/* A table of page["data"]: one column per key (header = key in capitals),
 * widths[i] characters wide (the last column is not padded). */
void hc_print_table(const json_t *page, const char *const *keys, const int *widths);
/* Prints "CMD: message" to stderr and returns rc. */
int hc_fail(const hc *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Positive integer argument; prints "CMD: NAME needs ..." otherwise. */
bool hc_parse_int(const hc *c, const char *name, const char *v, long lo, long hi, long *out);
bool hc_parse_double(const hc *c, const char *name, const char *v, double *out);
/* Collects a positional argument into pos[*n] (max positionals); false = too many. */
bool hc_positional(const hc *c, char **argv, int i, const char **pos, int *n, int max);

/* ---- fine-tuning jobs (client_jobs.c) ---- */
void hc_print_job(const json_t *job);
void hc_print_event(const json_t *ev);
/* Polls the job until it reaches a terminal status, printing new events as
 * they appear (metrics as a progress bar when bar and stdout is a terminal).
 * timeout_s <= 0: no limit. Returns 0 on succeeded, 1 otherwise. */
int hc_follow_job(hc *c, const char *id, double timeout_s, double interval_s, bool bar);

#endif
