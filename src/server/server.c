/* server.c — starting and stopping `hone serve`: the data-dir lock (one
 * server per data directory), the store (plus the sweep of half-finished
 * uploads), the model registry, the worker, API keys, and the
 * libmicrohttpd daemon bound to host:port. */
#include "server/http.h"

#include "base/file.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static void free_keys(server *s) {
    for (int i = 0; i < s->n_keys; i++) free(s->keys[i]);
    free(s->keys);
    s->keys = NULL;
    s->n_keys = 0;
}

/* Comma-, space- or newline-separated keys. */
static void parse_keys(server *s, const char *text) {
    if (!text) return;
    char *copy = strdup(text), *save = NULL;
    for (char *k = strtok_r(copy, ", \t\r\n", &save); k; k = strtok_r(NULL, ", \t\r\n", &save)) {
        char **nk = realloc(s->keys, (size_t)(s->n_keys + 1) * sizeof *nk);
        if (!nk) break;
        s->keys = nk;
        s->keys[s->n_keys++] = strdup(k);
    }
    free(copy);
}

static hn_status lock_data_dir(server *s, hn_err *err) {
    char p[1100];
    snprintf(p, sizeof p, "%s/hone.lock", s->cfg.data_dir);
    s->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0) return hn_errf(err, HN_EIO, "%s: cannot open", p);
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return hn_errf(err, HN_ESTATE, "another hone server is using %s", s->cfg.data_dir);
    return HN_OK;
}

static hn_status resolve_base(void *ctx, const char *model, char *path, size_t cap,
                              hn_err *err) {
    server *s = ctx;
    reg_model m;
    hn_status rc = registry_find(s->reg, model, &m, err);
    if (rc == HN_OK && m.fine_tuned)
        rc = hn_errf(err, HN_EUNSUPPORTED, "continuing training from %s is not supported yet",
                     model);
    if (rc == HN_OK) snprintf(path, cap, "%s", m.path);
    return rc;
}

static void set_defaults(server_config *c) {
    if (!c->host || !*c->host) c->host = "127.0.0.1";
    if (c->max_upload_bytes <= 0) c->max_upload_bytes = 512LL << 20;
    if (c->max_json_bytes <= 0) c->max_json_bytes = 32LL << 20;
    if (c->max_jobs <= 0) c->max_jobs = 1;
    if (!c->owner || !*c->owner) c->owner = "personal";
}

static hn_status start_daemon(server *s, hn_err *err) {
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)s->cfg.port);
    if (inet_pton(AF_INET, s->cfg.host, &addr.sin_addr) != 1)
        return hn_errf(err, HN_EINVAL, "--host %s: expected an IPv4 address", s->cfg.host);
    s->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG,
        (uint16_t)s->cfg.port, NULL, NULL, http_access, s, MHD_OPTION_SOCK_ADDR, &addr,
        MHD_OPTION_NOTIFY_COMPLETED, http_completed, s, MHD_OPTION_CONNECTION_LIMIT, 256u,
        MHD_OPTION_CONNECTION_TIMEOUT, 600u, MHD_OPTION_END);
    if (!s->daemon)
        return hn_errf(err, HN_EIO, "cannot listen on %s:%d (in use?)", s->cfg.host, s->cfg.port);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : s->cfg.port;
    return HN_OK;
}

static hn_status start_parts(server *s, hn_err *err) {
    hn_status rc = hn_mkdirs(s->cfg.data_dir, err);
    if (rc == HN_OK) rc = lock_data_dir(s, err);
    if (rc == HN_OK) rc = store_open(s->cfg.data_dir, &s->st, err);
    if (rc != HN_OK) return rc;
    store_sweep_orphans(s->st);
    rc = registry_create(s->cfg.model_dirs, s->cfg.n_model_dirs, s->st, &s->reg, err);
    if (rc != HN_OK) return rc;
    registry_set_q8_0(s->reg, s->cfg.q8_0 == SERVER_Q8_ALL, s->cfg.q8_0 == SERVER_Q8_AUTO);
    worker_config wc = {s->st, s->cfg.exe, s->cfg.data_dir, s->cfg.max_jobs, resolve_base, s};
    rc = worker_start(&wc, &s->wk, err);
    if (rc == HN_OK) rc = start_daemon(s, err);
    return rc;
}

hn_status server_start(const server_config *cfg, server **out, hn_err *err) {
    *out = NULL;
    server *s = calloc(1, sizeof *s);
    if (!s) return hn_errf(err, HN_ENOMEM, "server: out of memory");
    s->cfg = *cfg;
    s->lock_fd = -1;
    set_defaults(&s->cfg);
    parse_keys(s, cfg->api_keys);
    hn_status rc = start_parts(s, err);
    if (rc != HN_OK) {
        server_stop(s);
        return rc;
    }
    *out = s;
    return HN_OK;
}

int server_port(const server *s) { return s->port; }

void server_stop(server *s) {
    if (!s) return;
    if (s->daemon) MHD_stop_daemon(s->daemon);
    worker_stop(s->wk);
    registry_free(s->reg);
    store_close(s->st);
    if (s->lock_fd >= 0) close(s->lock_fd);
    free_keys(s);
    free(s);
}
