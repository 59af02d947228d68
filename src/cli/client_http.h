/* client_http.h — the request primitive shared by client.c and the SSE
 * reader in client_sse.c (not for the command files). */
#ifndef HN_CLI_CLIENT_HTTP_H
#define HN_CLI_CLIENT_HTTP_H

#include <curl/curl.h>

#include "cli/client.h"

typedef struct hc_req {
    const char *method, *path;
    const char *body;   /* JSON text or NULL */
    curl_mime *mime;    /* multipart body or NULL */
    const char *accept; /* Accept header (default application/json) */
    size_t (*write)(char *p, size_t size, size_t n, void *ctx);
    void *wctx;
    const bool *stopped; /* write callback refused on purpose: not an error */
} hc_req;

/* Runs the request; false (message naming the URL printed) when no HTTP
 * response was received. *status is the HTTP status. */
bool hc_perform(hc *c, const hc_req *q, long *status);
/* Prints the OpenAI error in a failed response body. */
void hc_report(const hc *c, long status, const char *body, size_t len);
size_t hc_write_buf(char *p, size_t size, size_t n, void *ctx);

#endif
