/* cmd_serve.c — `hone serve`: parses options, starts the server, prints the
 * address it listens on, and runs until SIGINT/SIGTERM. Also the training
 * child's entry point (`hone serve --run-job ID`, started by the worker). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "cli/cli.h"
#include "server/server.h"
#include "worker/worker.h"

#ifndef HONE_DEFAULT_SHARED
#define HONE_DEFAULT_SHARED "../shared"
#endif

static void usage(FILE *f) {
    fprintf(f,
            "usage: hone serve [--host 127.0.0.1] [--port 8080] [--data DIR] [--models DIR]\n"
            "                  [--keys-file FILE] [--max-jobs N] [--max-upload-mb N]\n"
            "                  [--precision f32|bf16|q8_0]\n\n"
            "Serves OpenAI's fine-tuning, files, models and chat completions API at\n"
            "http://HOST:PORT/v1. --port 0 picks a free port.\n"
            "  --data DIR       state: hone.db, files/, jobs/ (default $HONE_DATA or ./hone-data)\n"
            "  --models DIR     base models: *.gguf and HF dirs (default $HONE_MODELS, else\n"
            "                   DATA/models); the bundled shared models are listed too\n"
            "  --keys-file FILE accepted API keys, one per line (or $HONE_API_KEY, comma-separated)\n"
            "  --precision P    chat completions: f32 (exact), bf16 (faster matrix products) or\n"
            "                   q8_0 (weight products in Q8_0, llama.cpp's format: fastest\n"
            "                   decode); default q8_0 for GGUF models whose matrices are Q8_0,\n"
            "                   else f32. Fine-tuning jobs are not affected.\n");
}

static char *read_keys(const char *path) {
    char *text = NULL;
    hn_err err;
    if (hn_file_read(path, 1 << 20, &text, NULL, &err) != HN_OK) {
        fprintf(stderr, "hone serve: %s\n", err.msg);
        return NULL;
    }
    return text;
}

static int run_job(const char *data, const char *job, const char *model_path) {
    hn_err err;
    if (worker_run_job(data, job, model_path, &err) != HN_OK) {
        fprintf(stderr, "hone serve --run-job: %s\n", err.msg);
        return 1;
    }
    return 0;
}

typedef struct serve_opts {
    const char *host, *port, *data, *models, *keys_file, *max_jobs, *max_upload, *run_job,
        *model_path, *precision;
} serve_opts;

static bool parse(int argc, char **argv, serve_opts *o) {
    bool bad = false;
    for (int i = 1; i < argc && !bad; i++) {
        if (cli_opt(argc, argv, &i, "--host", &o->host, &bad) ||
            cli_opt(argc, argv, &i, "--port", &o->port, &bad) ||
            cli_opt(argc, argv, &i, "--data", &o->data, &bad) ||
            cli_opt(argc, argv, &i, "--models", &o->models, &bad) ||
            cli_opt(argc, argv, &i, "--keys-file", &o->keys_file, &bad) ||
            cli_opt(argc, argv, &i, "--max-jobs", &o->max_jobs, &bad) ||
            cli_opt(argc, argv, &i, "--max-upload-mb", &o->max_upload, &bad) ||
            cli_opt(argc, argv, &i, "--run-job", &o->run_job, &bad) ||
            cli_opt(argc, argv, &i, "--model-path", &o->model_path, &bad) ||
            cli_opt(argc, argv, &i, "--precision", &o->precision, &bad))
            continue;
        if (!bad) fprintf(stderr, "hone serve: unknown option '%s'\n", argv[i]);
        bad = true;
    }
    return !bad;
}

static int wait_for_signal(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    sigwait(&set, &sig);
    return sig;
}

int cmd_serve(int argc, char **argv) {
    if (cli_want_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    serve_opts o = {0};
    if (!parse(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    if (!o.data) o.data = getenv("HONE_DATA");
    if (!o.data) o.data = "hone-data";
    if (o.run_job) return run_job(o.data, o.run_job, o.model_path ? o.model_path : "");
    cli_prec prec = CLI_PREC_DEFAULT;
    if (o.precision && !cli_precision("serve", o.precision, false, &prec)) return 2;

    /* Block the stop signals before any thread starts; the main thread waits. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    static char exe[4096], data_models[4200];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    snprintf(data_models, sizeof data_models, "%s/models", o.data);
    server_config cfg = {0};
    cfg.host = o.host;
    cfg.port = o.port ? atoi(o.port) : 8080;
    cfg.data_dir = o.data;
    cfg.model_dirs[cfg.n_model_dirs++] =
        o.models ? o.models : getenv("HONE_MODELS") ? getenv("HONE_MODELS") : data_models;
    cfg.model_dirs[cfg.n_model_dirs++] = HONE_DEFAULT_SHARED "/models";
    char *keys = o.keys_file ? read_keys(o.keys_file) : NULL;
    if (o.keys_file && !keys) return 1;
    cfg.api_keys = keys ? keys : getenv("HONE_API_KEY");
    cfg.max_jobs = o.max_jobs ? atoi(o.max_jobs) : 1;
    cfg.max_upload_bytes = o.max_upload ? atoll(o.max_upload) << 20 : 0;
    cfg.exe = exe;
    cfg.q8_0 = prec == CLI_PREC_Q8_0 ? SERVER_Q8_ALL
               : prec == CLI_PREC_DEFAULT ? SERVER_Q8_AUTO : SERVER_Q8_NONE;

    server *srv;
    hn_err err;
    if (server_start(&cfg, &srv, &err) != HN_OK) {
        fprintf(stderr, "hone serve: %s\n", err.msg);
        free(keys);
        return 1;
    }
    printf("hone: serving http://%s:%d/v1 (data %s)\n", cfg.host ? cfg.host : "127.0.0.1",
           server_port(srv), o.data);
    fflush(stdout);
    wait_for_signal();
    server_stop(srv);
    free(keys);
    return 0;
}
