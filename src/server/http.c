/* http.c — libmicrohttpd glue: the daemon (one thread per connection, so a
 * streaming reply may block), request lifecycle (JSON bodies accumulated up to
 * a limit, multipart uploads streamed to a temp file by a post processor),
 * API-key checks, routing of /v1/... to the endpoint files, and the reply
 * helpers. Every reply carries x-request-id; every JSON reply its
 * Content-Type; every failure OpenAI's error object. */
#include "server/http.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- replies ------------------------------------------------------------ */

void http_add_headers(http_req *r, struct MHD_Response *resp, const char *ctype) {
    if (ctype) MHD_add_response_header(resp, "Content-Type", ctype);
    MHD_add_response_header(resp, "x-request-id", r->request_id);
}

enum MHD_Result http_queue(http_req *r, unsigned status, struct MHD_Response *resp) {
    if (!resp) return MHD_NO;
    enum MHD_Result res = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return res;
}

enum MHD_Result http_json(http_req *r, unsigned status, json_t *obj) {
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text) return MHD_NO;
    size_t len = strlen(text);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    http_add_headers(r, resp, "application/json");
    return http_queue(r, status, resp);
}

static enum MHD_Result verror(http_req *r, unsigned status, const char *type, const char *param,
                              const char *code, const char *fmt, va_list ap) {
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    json_t *e = json_object();
    json_object_set_new(e, "message", json_string(msg));
    json_object_set_new(e, "type", json_string(type));
    json_object_set_new(e, "param", param ? json_string(param) : json_null());
    json_object_set_new(e, "code", code ? json_string(code) : json_null());
    return http_json(r, status, json_pack("{s:o}", "error", e));
}

enum MHD_Result http_error(http_req *r, unsigned status, const char *type, const char *param,
                           const char *code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    enum MHD_Result res = verror(r, status, type, param, code, fmt, ap);
    va_end(ap);
    return res;
}

enum MHD_Result http_bad(http_req *r, const char *param, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    enum MHD_Result res = verror(r, 400, "invalid_request_error", param, NULL, fmt, ap);
    va_end(ap);
    return res;
}

enum MHD_Result http_not_found(http_req *r, const char *param, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    enum MHD_Result res = verror(r, 404, "invalid_request_error", param, NULL, fmt, ap);
    va_end(ap);
    return res;
}

/* ---- request helpers ---------------------------------------------------- */

const char *http_query(http_req *r, const char *key) {
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

bool http_query_limit(http_req *r, int def, int max, int *limit, enum MHD_Result *res) {
    const char *v = http_query(r, "limit");
    *limit = def;
    if (!v) return true;
    char *end;
    long n = strtol(v, &end, 10);
    if (*v && !*end && n >= 1 && n <= max) {
        *limit = (int)n;
        return true;
    }
    *res = http_bad(r, "limit", "Invalid 'limit': expected an integer from 1 to %d, got '%s'.",
                    max, v);
    return false;
}

json_t *http_body_json(http_req *r, enum MHD_Result *res) {
    json_error_t je;
    json_t *j = r->body.len ? json_loadb(r->body.data, r->body.len, 0, &je) : NULL;
    if (!j || !json_is_object(j)) {
        json_decref(j);
        *res = http_bad(r, NULL,
                        "We could not parse the JSON body of your request. (HINT: This likely "
                        "means you aren't using your HTTP library correctly. The OpenAI API "
                        "expects a JSON payload, but what was sent was not valid JSON.%s%s)",
                        r->body.len ? " Parser: " : "", r->body.len ? je.text : "");
        return NULL;
    }
    return j;
}

/* ---- auth ----------------------------------------------------------------- */

static bool authorized(http_req *r) {
    server *s = r->srv;
    if (s->n_keys == 0) return true;
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) return false;
    const char *key = h + 7;
    for (int i = 0; i < s->n_keys; i++)
        if (!strcmp(key, s->keys[i])) return true;
    return false;
}

static enum MHD_Result reply_unauthorized(http_req *r) {
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    if (!h)
        return http_error(r, 401, "invalid_request_error", NULL, NULL,
                          "You didn't provide an API key. You need to provide your API key in an "
                          "Authorization header using Bearer auth (i.e. Authorization: Bearer "
                          "YOUR_KEY).");
    return http_error(r, 401, "invalid_request_error", NULL, "invalid_api_key",
                      "Incorrect API key provided. The keys this server accepts are set with "
                      "HONE_API_KEY or --keys-file.");
}

/* ---- multipart uploads ------------------------------------------------------ */

static enum MHD_Result on_post_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *filename, const char *content_type,
                                     const char *transfer_encoding, const char *data,
                                     uint64_t off, size_t size) {
    (void)kind, (void)content_type, (void)transfer_encoding, (void)off;
    http_req *r = cls;
    if (!strcmp(key, "purpose")) {
        if (r->up_purpose.len + size < 256) hn_buf_append(&r->up_purpose, data, size);
        return MHD_YES;
    }
    if (strcmp(key, "file")) return MHD_YES; /* other fields are ignored */
    if (!r->up_seen_file) {
        r->up_seen_file = true;
        snprintf(r->up_filename, sizeof r->up_filename, "%s", filename ? filename : "upload");
        store_file_temp_path(r->srv->st, r->up_tmp, sizeof r->up_tmp);
        r->up_fd = open(r->up_tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (r->up_fd < 0) r->up_write_failed = true;
    }
    if (r->too_large || r->up_write_failed || size == 0) return MHD_YES;
    if (r->up_bytes + (long long)size > r->srv->cfg.max_upload_bytes) {
        r->too_large = true;
        return MHD_YES; /* keep reading the body, answer 413 at the end */
    }
    for (size_t done = 0; done < size;) {
        ssize_t w = write(r->up_fd, data + done, size - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            r->up_write_failed = true;
            return MHD_YES;
        }
        done += (size_t)w;
    }
    r->up_bytes += (long long)size;
    return MHD_YES;
}

static void req_free(http_req *r) {
    if (r->pp) MHD_destroy_post_processor(r->pp);
    if (r->up_fd >= 0) close(r->up_fd);
    if (r->up_tmp[0]) unlink(r->up_tmp); /* no-op once committed (renamed) */
    hn_buf_free(&r->body);
    hn_buf_free(&r->up_purpose);
    free(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls, (void)c, (void)toe;
    if (*con_cls) req_free(*con_cls);
    *con_cls = NULL;
}

/* ---- routing ------------------------------------------------------------------ */

static int split_path(char *path, char **seg, int max) {
    int n = 0;
    for (char *tok = strtok(path, "/"); tok && n < max; tok = strtok(NULL, "/")) seg[n++] = tok;
    return n;
}

static enum MHD_Result route(http_req *r, const char *url) {
    if (!authorized(r)) return reply_unauthorized(r);
    if (r->too_large)
        return http_error(r, 413, "invalid_request_error", NULL, "file_too_large",
                          "Request body too large: the limit is %lld bytes.",
                          r->pp ? r->srv->cfg.max_upload_bytes : r->srv->cfg.max_json_bytes);
    char path[1024];
    snprintf(path, sizeof path, "%s", url);
    char *seg[8];
    int n = split_path(path, seg, 8);
    if (n >= 2 && !strcmp(seg[0], "v1")) {
        char **s = seg + 1;
        int k = n - 1;
        if (!strcmp(s[0], "files")) return api_files(r, s, k);
        if (!strcmp(s[0], "fine_tuning")) return api_jobs(r, s, k);
        if (!strcmp(s[0], "models")) return api_models(r, s, k);
        if (!strcmp(s[0], "chat")) return api_chat(r, s, k);
        if (!strcmp(s[0], "completions")) return api_completions(r, s, k);
    }
    if (n == 0 || (n == 1 && !strcmp(seg[0], "health")))
        return http_json(r, 200, json_pack("{s:s}", "status", "ok"));
    return http_not_found(r, NULL, "Unknown request URL: %s %s.", r->method, url);
}

static http_req *req_new(server *s, struct MHD_Connection *c, const char *method) {
    http_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->srv = s;
    r->conn = c;
    r->up_fd = -1;
    snprintf(r->method, sizeof r->method, "%s", method);
    store_new_id("req_", r->request_id, sizeof r->request_id);
    hn_buf_init(&r->body);
    hn_buf_init(&r->up_purpose);
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    if (ct && !strncasecmp(ct, "multipart/form-data", 19))
        r->pp = MHD_create_post_processor(c, 65536, on_post_field, r);
    return r;
}

static void take_body(http_req *r, const char *data, size_t size) {
    if (r->pp) {
        /* The post processor says nothing about an empty part: note its header. */
        if (!r->up_file_part && memmem(data, size, "name=\"file\"", 11)) r->up_file_part = true;
        MHD_post_process(r->pp, data, size);
        return;
    }
    if (r->too_large) return;
    if ((long long)(r->body.len + size) > r->srv->cfg.max_json_bytes) {
        r->too_large = true;
        hn_buf_free(&r->body);
        return;
    }
    hn_buf_append(&r->body, data, size);
}

enum MHD_Result http_access(void *cls, struct MHD_Connection *c, const char *url,
                            const char *method, const char *version, const char *upload_data,
                            size_t *upload_data_size, void **con_cls) {
    (void)version;
    if (!*con_cls) {
        *con_cls = req_new(cls, c, method);
        return *con_cls ? MHD_YES : MHD_NO;
    }
    http_req *r = *con_cls;
    if (*upload_data_size) {
        take_body(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->up_fd >= 0) {
        close(r->up_fd);
        r->up_fd = -1;
    }
    return route(r, url);
}

void http_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe) {
    on_completed(cls, c, con_cls, toe);
}
