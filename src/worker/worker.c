/* worker.c — the job queue's server side.
 *
 * One thread owns the queue. Each turn it (1) validates jobs waiting in
 * validating_files, (2) reaps finished children, recording a crash as a
 * failed job with code server_error, and (3) while fewer than max_jobs run,
 * claims the oldest queued job (atomically, in SQLite) and starts a child:
 * fork, PR_SET_PDEATHSIG so the child dies with the server, exec of the hone
 * binary with `serve --run-job`. The exec gives training a fresh process (no
 * threads or OpenMP pools inherited from the server). The thread sleeps on a
 * condition variable between turns; API calls wake it. */
#include "worker/worker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/file.h"
#include "worker/datacheck.h"

#define MAX_CHILDREN 16

typedef struct child {
    pid_t pid;
    char job_id[64];
} child;

struct worker {
    worker_config cfg;
    char exe[1024], data_dir[1024];
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, kicked;
    child kids[MAX_CHILDREN];
    int n_kids;
};

void worker_model_name(const char *base, const char *owner, const char *suffix,
                       const char *job_id, char *out, size_t cap) {
    const char *dash = strchr(job_id, '-');
    const char *rnd = dash ? dash + 1 : job_id;
    snprintf(out, cap, "ft:%s:%s:%s:%.8s", base, owner, suffix ? suffix : "", rnd);
}

/* Sets a job failed with an OpenAI-style error (only if still in `from`). */
static void fail_job(store *st, const char *id, const char *from, const char *code,
                     const char *param, const char *msg) {
    store_job j;
    if (store_job_get(st, id, &j, NULL) != HN_OK) return;
    snprintf(j.status, sizeof j.status, "failed");
    snprintf(j.error_code, sizeof j.error_code, "%s", code);
    snprintf(j.error_param, sizeof j.error_param, "%s", param ? param : "");
    free(j.error_message);
    j.error_message = strdup(msg);
    j.finished_at = (long long)time(NULL);
    j.pid = 0;
    if (store_job_update_if(st, &j, from, NULL) == HN_OK)
        store_event_add(st, id, "error", "message", msg, NULL, NULL);
    store_job_free(&j);
}

/* Checks one file of a job; fills msg and returns false when it is unusable. */
static bool check_job_file(store *st, const char *file_id, bool training, const char **code,
                           char *msg, size_t cap) {
    const char *what = training ? "training" : "validation";
    *code = training ? "invalid_training_file" : "invalid_validation_file";
    store_file f;
    if (store_file_get(st, file_id, &f, NULL) != HN_OK) {
        snprintf(msg, cap, "The job failed due to an invalid %s file. File %s does not exist.",
                 what, file_id);
        return false;
    }
    char name[256];
    snprintf(name, sizeof name, "%s", f.filename);
    store_file_free(&f);
    char path[1200];
    store_file_path(st, file_id, path, sizeof path);
    data_check dc;
    hn_err err;
    if (data_check_file(path, name, &dc, &err) != HN_OK) {
        snprintf(msg, cap, "The job failed due to an invalid %s file. %s", what, err.msg);
        return false;
    }
    if (dc.n_problems) {
        snprintf(msg, cap, "The job failed due to an invalid %s file. Invalid file format. %s",
                 what, dc.problems);
        return false;
    }
    if (training && dc.n_examples < 10) {
        *code = "invalid_n_examples";
        snprintf(msg, cap, "Training file has %d example(s), but must have at least 10 examples",
                 dc.n_examples);
        return false;
    }
    return true;
}

hn_status worker_validate_job(store *st, const char *job_id, hn_err *err) {
    store_job j;
    hn_status rc = store_job_get(st, job_id, &j, err);
    if (rc != HN_OK) return rc;
    const char *code = NULL;
    char msg[2600];
    bool ok = check_job_file(st, j.training_file, true, &code, msg, sizeof msg);
    const char *param = "training_file";
    if (ok && j.validation_file[0]) {
        ok = check_job_file(st, j.validation_file, false, &code, msg, sizeof msg);
        param = "validation_file";
    }
    if (!ok) {
        fail_job(st, job_id, "validating_files", code, param, msg);
    } else if (store_job_transition(st, job_id, "validating_files", "queued", NULL) == HN_OK) {
        store_event_add(st, job_id, "info", "message",
                        "Files validated, moving job to queued state", NULL, NULL);
    }
    store_job_free(&j);
    return HN_OK;
}

static void validate_pending(worker *w) {
    char **ids;
    int n;
    if (store_job_ids_with_status(w->cfg.st, "validating_files", &ids, &n, NULL) != HN_OK) return;
    for (int i = 0; i < n; i++) {
        worker_validate_job(w->cfg.st, ids[i], NULL);
        free(ids[i]);
    }
    free(ids);
}

static void describe_exit(int status, char *out, size_t cap) {
    if (WIFSIGNALED(status))
        snprintf(out, cap, "The training process crashed (signal %d: %s).", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(out, cap, "The training process exited unexpectedly (exit code %d).",
                 WEXITSTATUS(status));
}

/* Records the end of a child: whatever it did not record itself is a crash. */
static void child_ended(worker *w, const child *k, int status) {
    store *st = w->cfg.st;
    store_job j;
    if (store_job_get(st, k->job_id, &j, NULL) != HN_OK) return;
    bool still_running = !strcmp(j.status, "running");
    store_job_free(&j);
    if (still_running) {
        char msg[256];
        describe_exit(status, msg, sizeof msg);
        fail_job(st, k->job_id, "running", "server_error", NULL, msg);
    }
}

static void reap(worker *w) {
    for (int i = 0; i < w->n_kids;) {
        int status;
        pid_t p = waitpid(w->kids[i].pid, &status, WNOHANG);
        if (p == 0 || (p < 0 && errno == EINTR)) {
            i++;
            continue;
        }
        if (p > 0) child_ended(w, &w->kids[i], status);
        w->kids[i] = w->kids[--w->n_kids];
    }
}

static pid_t spawn(worker *w, const char *job_id, const char *model_path) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    char *argv[] = {"hone", "serve", "--data", w->data_dir, "--run-job", (char *)job_id,
                    "--model-path", (char *)model_path, NULL};
    execv(w->exe, argv);
    _exit(127);
}

static void start_one(worker *w, store_job *j) {
    char path[1024];
    hn_err err;
    if (w->cfg.resolve(w->cfg.resolve_ctx, j->model, path, sizeof path, &err) != HN_OK) {
        fail_job(w->cfg.st, j->id, "running", "model_not_found", "model", err.msg);
        return;
    }
    pid_t pid = spawn(w, j->id, path);
    if (pid < 0) {
        fail_job(w->cfg.st, j->id, "running", "server_error", NULL,
                 "could not start the training process");
        return;
    }
    w->kids[w->n_kids].pid = pid;
    snprintf(w->kids[w->n_kids].job_id, sizeof w->kids[0].job_id, "%s", j->id);
    w->n_kids++;
}

static void start_queued(worker *w) {
    while (w->n_kids < w->cfg.max_jobs && w->n_kids < MAX_CHILDREN) {
        store_job j;
        if (store_job_claim_next(w->cfg.st, &j, NULL) != HN_OK) return;
        start_one(w, &j);
        store_job_free(&j);
    }
}

static void *worker_main(void *arg) {
    worker *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        pthread_mutex_unlock(&w->mu);
        validate_pending(w);
        reap(w);
        start_queued(w);
        pthread_mutex_lock(&w->mu);
        if (w->stop) break;
        if (!w->kicked) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        }
        w->kicked = false;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Jobs left running by a previous server go back to the queue; they resume
 * from the checkpoint recorded in resume_dir. */
static void recover(worker *w) {
    char **ids;
    int n;
    if (store_job_ids_with_status(w->cfg.st, "running", &ids, &n, NULL) != HN_OK) return;
    for (int i = 0; i < n; i++) {
        store_job j;
        if (store_job_get(w->cfg.st, ids[i], &j, NULL) == HN_OK) {
            bool ck = j.resume_dir[0] && hn_path_is_dir(j.resume_dir);
            if (!ck) j.resume_dir[0] = 0;
            snprintf(j.status, sizeof j.status, "queued");
            j.pid = 0;
            j.control[0] = 0;
            if (store_job_update_if(w->cfg.st, &j, "running", NULL) == HN_OK) {
                char msg[1400];
                snprintf(msg, sizeof msg,
                         ck ? "The server restarted; the job will resume from its last "
                              "checkpoint (%s)"
                            : "The server restarted before the first checkpoint; the job will "
                              "start again from the beginning%s",
                         ck ? j.resume_dir : "");
                store_event_add(w->cfg.st, j.id, "warn", "message", msg, NULL, NULL);
            }
            store_job_free(&j);
        }
        free(ids[i]);
    }
    free(ids);
}

hn_status worker_start(const worker_config *cfg, worker **out, hn_err *err) {
    worker *w = calloc(1, sizeof *w);
    if (!w) return hn_errf(err, HN_ENOMEM, "worker: out of memory");
    w->cfg = *cfg;
    if (w->cfg.max_jobs <= 0) w->cfg.max_jobs = 1;
    snprintf(w->exe, sizeof w->exe, "%s", cfg->exe);
    snprintf(w->data_dir, sizeof w->data_dir, "%s", cfg->data_dir);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    recover(w);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        free(w);
        return hn_errf(err, HN_EIO, "worker: cannot start thread");
    }
    *out = w;
    return HN_OK;
}

void worker_wake(worker *w) {
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->kicked = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void worker_stop(worker *w) {
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    for (int i = 0; i < w->n_kids; i++) {
        kill(w->kids[i].pid, SIGKILL);
        waitpid(w->kids[i].pid, NULL, 0);
    }
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
