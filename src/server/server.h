/* server.h — `hone serve`: the OpenAI-compatible HTTP API (files, fine-tuning
 * jobs, models, chat completions) over libmicrohttpd, backed by the store and
 * the worker that runs training jobs in child processes.
 *
 * The server never trains: creating a job writes a row; the worker picks it up.
 * So a crash in training is a failed job, never a dead server. */
#ifndef HN_SERVER_H
#define HN_SERVER_H

#include "base/err.h"

/* Inference precision of the served models' weight products: AUTO (default)
 * computes models loaded from a Q8_0 GGUF in Q8_0 and the rest on the GEMM
 * backend; ALL computes every model in Q8_0 (`hone serve --precision q8_0`);
 * NONE never (`--precision f32|bf16`). Training jobs are unaffected. */
typedef enum server_q8 { SERVER_Q8_AUTO = 0, SERVER_Q8_ALL, SERVER_Q8_NONE } server_q8;

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
    server_q8 q8_0;            /* which models answer chat completions in Q8_0 */
} server_config;

typedef struct server server;

hn_status server_start(const server_config *cfg, server **out, hn_err *err);
int server_port(const server *s);
void server_stop(server *s);

#endif
