/* server.h — `hone serve`: the OpenAI-compatible HTTP API (files, fine-tuning
 * jobs, models, chat completions) over libmicrohttpd, backed by the store and
 * the worker that runs training jobs in child processes.
 *
 * The server never trains: creating a job writes a row; the worker picks it up.
 * So a crash in training is a failed job, never a dead server. */
#ifndef HN_SERVER_H
#define HN_SERVER_H

#include "base/err.h"

typedef struct server_config {
    const char *host;          /* default 127.0.0.1 */
    int port;                  /* 0 = any free port (see server_port) */
    const char *data_dir;      /* hone.db, files/, jobs/ */
    const char *model_dirs[4]; /* base models: *.gguf and HF dirs, searched in order */
    int n_model_dirs;
    const char *api_keys;      /* comma-separated accepted keys, NULL/"" = no auth */
    long long max_upload_bytes;/* default 512 MiB */
    long long max_json_bytes;  /* default 32 MiB */
    int max_jobs;              /* concurrent training processes, default 1 */
    const char *exe;           /* the hone binary the worker re-executes */
    const char *owner;         /* owner part of ft: model names, default "personal" */
} server_config;

typedef struct server server;

hn_status server_start(const server_config *cfg, server **out, hn_err *err);
int server_port(const server *s);
void server_stop(server *s);

#endif
