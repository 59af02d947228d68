/* client.c — libcurl transport for the API client commands: configuration
 * (base URL, key, --json), JSON calls, raw downloads, multipart uploads and
 * the error messages every command shares (client.h). */
#include "cli/client.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client_http.h"

const char *const hc_common_usage =
    "  --base-url URL   API base (default: $HONE_BASE_URL, $OPENAI_BASE_URL or\n"
    "                   " HC_DEFAULT_BASE ")\n"
    "  --api-key KEY    bearer key (default: $OPENAI_API_KEY or $HONE_API_KEY)\n"
    "  --json           print the raw JSON response\n";

static void set_base(hc *c, const char *url) {
    snprintf(c->base, sizeof c->base, "%s", url);
    size_t n = strlen(c->base);
    while (n > 0 && c->base[n - 1] == '/') c->base[--n] = 0;
}

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

void hc_init(hc *c, const char *cmd) {
    static char key[1024];
    memset(c, 0, sizeof *c);
    c->cmd = cmd;
    const char *base = env("HONE_BASE_URL");
    if (!base) base = env("OPENAI_BASE_URL");
    set_base(c, base ? base : HC_DEFAULT_BASE);
    const char *k = env("OPENAI_API_KEY");
    if (!k) k = env("HONE_API_KEY");
    if (k) {
        snprintf(key, sizeof key, "%s", k);
        key[strcspn(key, ",")] = 0; /* HONE_API_KEY may list several */
        c->key = key;
    }
}

bool hc_common_opt(hc *c, int argc, char **argv, int *i, bool *bad) {
    const char *v;
    if (cli_opt(argc, argv, i, "--base-url", &v, bad)) {
        if (!*bad) set_base(c, v);
        return true;
    }
    if (cli_opt(argc, argv, i, "--api-key", &c->key, bad)) return true;
    if (cli_flag(argv, *i, "--json")) {
        c->json = true;
        return true;
    }
    return false;
}

void hc_close(hc *c) {
    if (c->curl) curl_easy_cleanup(c->curl);
    c->curl = NULL;
}

void hc_path(char *out, size_t cap, const char *prefix, const char *id, const char *suffix) {
    char *esc = curl_easy_escape(NULL, id, 0);
    snprintf(out, cap, "%s%s%s", prefix, esc ? esc : id, suffix ? suffix : "");
    curl_free(esc);
}

void hc_query(hn_buf *b, const char *key, const char *val) {
    if (!val) return;
    char *esc = curl_easy_escape(NULL, val, 0);
    hn_buf_printf(b, "%c%s=%s", strchr(b->data ? b->data : "", '?') ? '&' : '?', key,
                  esc ? esc : val);
    curl_free(esc);
}

/* ---- transport ---------------------------------------------------------- */

size_t hc_write_buf(char *p, size_t size, size_t n, void *ctx) {
    return hn_buf_append(ctx, p, size * n) ? size * n : 0;
}

static struct curl_slist *headers(const hc *c, const hc_req *q) {
    char line[1200];
    struct curl_slist *h = NULL;
    if (c->key) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", c->key);
        h = curl_slist_append(h, line);
    }
    snprintf(line, sizeof line, "Accept: %s", q->accept ? q->accept : "application/json");
    h = curl_slist_append(h, line);
    if (q->body) h = curl_slist_append(h, "Content-Type: application/json");
    else if (!q->mime) h = curl_slist_append(h, "Content-Type:"); /* bodiless POST */
    return h;
}

static void set_method(CURL *k, const hc_req *q) {
    if (q->mime) {
        curl_easy_setopt(k, CURLOPT_MIMEPOST, q->mime);
    } else if (!strcmp(q->method, "POST")) {
        curl_easy_setopt(k, CURLOPT_POSTFIELDS, q->body ? q->body : "");
        curl_easy_setopt(k, CURLOPT_POSTFIELDSIZE, (long)(q->body ? strlen(q->body) : 0));
    } else if (strcmp(q->method, "GET")) {
        curl_easy_setopt(k, CURLOPT_CUSTOMREQUEST, q->method);
    }
}

static bool handle(hc *c) {
    if (c->curl) return true;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    c->curl = curl_easy_init();
    if (!c->curl) fprintf(stderr, "%s: cannot initialise libcurl\n", c->cmd);
    return c->curl != NULL;
}

bool hc_perform(hc *c, const hc_req *q, long *status) {
    if (!handle(c)) return false;
    CURL *k = c->curl;
    char url[4096], errbuf[CURL_ERROR_SIZE] = "";
    snprintf(url, sizeof url, "%s%s", c->base, q->path);
    curl_easy_reset(k);
    struct curl_slist *h = headers(c, q);
    curl_easy_setopt(k, CURLOPT_URL, url);
    curl_easy_setopt(k, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(k, CURLOPT_USERAGENT, "hone-cli");
    curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(k, CURLOPT_CONNECTTIMEOUT, 15L);
    curl_easy_setopt(k, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, q->write);
    curl_easy_setopt(k, CURLOPT_WRITEDATA, q->wctx);
    set_method(k, q);
    CURLcode rc = curl_easy_perform(k);
    curl_slist_free_all(h);
    curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, status);
    c->last_status = *status;
    if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && q->stopped && *q->stopped)) return true;
    c->last_status = 0;
    if (c->quiet_conn) return false;
    fprintf(stderr, "%s: %s %s failed: %s\n", c->cmd, q->method, url,
            *errbuf ? errbuf : curl_easy_strerror(rc));
    if (rc == CURLE_COULDNT_CONNECT)
        fprintf(stderr, "%s: is the server running? (set --base-url or HONE_BASE_URL)\n", c->cmd);
    return false;
}

/* "CMD: HTTP 404: <error.message> (code: X, param: Y)", or the raw body. */
void hc_report(const hc *c, long status, const char *body, size_t len) {
    json_t *j = json_loadb(body, len, 0, NULL);
    json_t *e = json_object_get(j, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (!msg) msg = json_string_value(e);
    if (msg) {
        const char *code = json_string_value(json_object_get(e, "code"));
        const char *param = json_string_value(json_object_get(e, "param"));
        fprintf(stderr, "%s: HTTP %ld: %s", c->cmd, status, msg);
        if (code || param)
            fprintf(stderr, " (%s%s%s%s)", code ? "code: " : "", code ? code : "",
                    code && param ? ", param: " : param ? "param: " : "", param ? param : "");
        fputc('\n', stderr);
    } else {
        fprintf(stderr, "%s: HTTP %ld from %s: %.300s\n", c->cmd, status, c->base,
                len ? body : "(no body)");
    }
    json_decref(j);
}

static bool fetch(hc *c, const char *method, const char *path, const char *body,
                  curl_mime *mime, const char *accept, hn_buf *out) {
    long status = 0;
    hc_req q = {.method = method, .path = path, .body = body, .mime = mime, .accept = accept,
                .write = hc_write_buf, .wctx = out};
    if (!hc_perform(c, &q, &status)) return false;
    if (status >= 200 && status < 300) return true;
    hc_report(c, status, out->data, out->len);
    return false;
}

static json_t *parse(const hc *c, hn_buf *b) {
    json_error_t je;
    json_t *j = json_loadb(b->data ? b->data : "", b->len, 0, &je);
    if (!j) fprintf(stderr, "%s: the server's reply is not JSON: %s\n", c->cmd, je.text);
    hn_buf_free(b);
    return j;
}

json_t *hc_call(hc *c, const char *method, const char *path, json_t *body) {
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    hn_buf out;
    hn_buf_init(&out);
    bool ok = fetch(c, method, path, text, NULL, NULL, &out);
    free(text);
    if (!ok) {
        hn_buf_free(&out);
        return NULL;
    }
    return parse(c, &out);
}

bool hc_get_raw(hc *c, const char *path, hn_buf *out) {
    return fetch(c, "GET", path, NULL, NULL, "application/octet-stream", out);
}

json_t *hc_upload(hc *c, const char *file, const char *purpose) {
    FILE *f = fopen(file, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open %s\n", c->cmd, file);
        return NULL;
    }
    fclose(f);
    curl_mime *mime = handle(c) ? curl_mime_init(c->curl) : NULL;
    if (!mime) return NULL;
    curl_mimepart *p = curl_mime_addpart(mime);
    curl_mime_name(p, "purpose");
    curl_mime_data(p, purpose, CURL_ZERO_TERMINATED);
    p = curl_mime_addpart(mime);
    curl_mime_name(p, "file");
    curl_mime_filedata(p, file);
    hn_buf out;
    hn_buf_init(&out);
    bool ok = fetch(c, "POST", "/files", NULL, mime, NULL, &out);
    curl_mime_free(mime);
    if (!ok) {
        hn_buf_free(&out);
        return NULL;
    }
    return parse(c, &out);
}
