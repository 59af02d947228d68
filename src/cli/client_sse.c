/* client_sse.c — server-sent events for `hone chat --stream`: POSTs a JSON
 * body and hands every `data:` payload to a callback as it arrives. Lines are
 * split on \n (a trailing \r is dropped), `:` comments are skipped, several
 * data lines of one event are joined with \n, `[DONE]` ends the stream and a
 * payload with an `error` key (or `event: error`) is reported as a failure. */
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "cli/client_http.h"

typedef struct sse {
    hc *c;
    hc_event_fn fn;
    void *ctx;
    hn_buf line, data, err; /* partial line, current event's data, error body */
    long status;            /* 0 until the headers are in */
    bool error_event, done, stopped, failed;
} sse;

static void dispatch(sse *s) {
    if (!s->data.len) return;
    if (!strcmp(s->data.data, "[DONE]")) {
        s->done = s->stopped = true;
        return;
    }
    json_error_t je;
    json_t *j = json_loadb(s->data.data, s->data.len, 0, &je);
    if (!j) {
        fprintf(stderr, "%s: bad event in the stream: %s\n", s->c->cmd, je.text);
        s->failed = s->stopped = true;
    } else if (s->error_event || json_object_get(j, "error")) {
        hc_report(s->c, s->status, s->data.data, s->data.len);
        s->failed = s->stopped = true;
    } else if (!s->fn(s->ctx, j)) {
        s->stopped = true;
    }
    json_decref(j);
    hn_buf_clear(&s->data);
    s->error_event = false;
}

static void on_line(sse *s, char *l, size_t n) {
    if (n && l[n - 1] == '\r') l[--n] = 0;
    if (n == 0) {
        dispatch(s);
    } else if (!strncmp(l, "data:", 5)) {
        const char *v = l[5] == ' ' ? l + 6 : l + 5;
        if (s->data.len) hn_buf_putc(&s->data, '\n');
        hn_buf_puts(&s->data, v);
    } else if (!strncmp(l, "event:", 6)) {
        s->error_event = strstr(l + 6, "error") != NULL;
    } /* `:` comments, id:, retry: ignored */
}

static size_t on_bytes(char *p, size_t size, size_t n, void *ctx) {
    sse *s = ctx;
    size_t len = size * n;
    if (!s->status) curl_easy_getinfo(s->c->curl, CURLINFO_RESPONSE_CODE, &s->status);
    if (s->status < 200 || s->status >= 300) return hc_write_buf(p, size, n, &s->err);
    for (size_t i = 0; i < len && !s->stopped; i++) {
        if (p[i] != '\n') {
            hn_buf_putc(&s->line, p[i]);
            continue;
        }
        on_line(s, s->line.data ? s->line.data : (char *)"", s->line.len);
        hn_buf_clear(&s->line);
    }
    return s->stopped ? 0 : len;
}

static bool finish(sse *s, long status) {
    if (status < 200 || status >= 300) {
        hc_report(s->c, status, s->err.data ? s->err.data : "", s->err.len);
        return false;
    }
    if (!s->stopped) {
        if (s->line.len) on_line(s, s->line.data, s->line.len);
        dispatch(s);
    }
    if (!s->done && !s->failed && !s->stopped) {
        fprintf(stderr, "%s: the stream ended without [DONE]\n", s->c->cmd);
        return false;
    }
    return !s->failed;
}

bool hc_stream(hc *c, const char *path, json_t *body, hc_event_fn fn, void *ctx) {
    sse s = {.c = c, .fn = fn, .ctx = ctx};
    hn_buf_init(&s.line);
    hn_buf_init(&s.data);
    hn_buf_init(&s.err);
    char *text = json_dumps(body, JSON_COMPACT);
    hc_req q = {.method = "POST", .path = path, .body = text, .accept = "text/event-stream",
                .write = on_bytes, .wctx = &s, .stopped = &s.stopped};
    long status = 0;
    bool ok = hc_perform(c, &q, &status) && finish(&s, status);
    free(text);
    hn_buf_free(&s.line);
    hn_buf_free(&s.data);
    hn_buf_free(&s.err);
    return ok;
}
