/* http.h — the server's private HTTP layer: one request's state, the reply
 * helpers every endpoint uses (JSON with Content-Type and x-request-id,
 * OpenAI-shaped errors, raw bytes, Server-Sent Events) and the endpoint
 * handlers' signatures. Not a public API. */
#ifndef HN_HTTP_H
#define HN_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>

#include "base/buf.h"
#include "server/registry.h"
#include "server/server.h"
#include "store/store.h"
#include "worker/worker.h"

struct server {
    server_config cfg;
    struct MHD_Daemon *daemon;
    store *st;
    registry *reg;
    worker *wk;
    char **keys;
    int n_keys;
    int port;
    int lock_fd;
};

typedef struct http_req {
    server *srv;
    struct MHD_Connection *conn;
    char method[8];
    char request_id[48];
    hn_buf body;
    bool too_large;
    /* multipart upload */
    struct MHD_PostProcessor *pp;
    int up_fd;
    char up_tmp[1200];
    long long up_bytes;
    bool up_seen_file;
    bool up_file_part;   /* a part named "file" was sent (maybe empty) */
    bool up_write_failed;
    char up_filename[256];
    hn_buf up_purpose;
} http_req;

/* The MHD access handler and completion callback (cls = the server). */
enum MHD_Result http_access(void *cls, struct MHD_Connection *c, const char *url,
                            const char *method, const char *version, const char *upload_data,
                            size_t *upload_data_size, void **con_cls);
void http_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe);

/* Replies. Each returns what the MHD access handler must return. */
enum MHD_Result http_json(http_req *r, unsigned status, json_t *obj); /* steals obj */
enum MHD_Result http_error(http_req *r, unsigned status, const char *type, const char *param,
                           const char *code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* 400 invalid_request_error, the common case. */
enum MHD_Result http_bad(http_req *r, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
enum MHD_Result http_not_found(http_req *r, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
enum MHD_Result http_queue(http_req *r, unsigned status, struct MHD_Response *resp);
/* Adds Content-Type and x-request-id to a response built elsewhere. */
void http_add_headers(http_req *r, struct MHD_Response *resp, const char *ctype);

/* Query string value or NULL. */
const char *http_query(http_req *r, const char *key);
/* Parses `limit` (default def, 1..max); false and an error reply in *res if bad. */
bool http_query_limit(http_req *r, int def, int max, int *limit, enum MHD_Result *res);
/* The request body parsed as a JSON object, or NULL after replying 400 in *res. */
json_t *http_body_json(http_req *r, enum MHD_Result *res);

/* Endpoints: seg are the path segments after /v1. */
enum MHD_Result api_files(http_req *r, char **seg, int nseg);
enum MHD_Result api_jobs(http_req *r, char **seg, int nseg);
enum MHD_Result api_models(http_req *r, char **seg, int nseg);
enum MHD_Result api_chat(http_req *r, char **seg, int nseg);
enum MHD_Result api_completions(http_req *r, char **seg, int nseg);

/* Shared JSON views of store records. */
json_t *json_file(const store_file *f);
json_t *json_job(const store_job *j);
/* Parses JSON text owned by the store; returns a new reference or json null. */
json_t *json_text(const char *text);

#endif
