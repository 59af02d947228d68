/* worker.h — runs fine-tuning jobs. In the server, a worker thread moves jobs
 * through validating_files -> queued -> running and starts each running job
 * in a child process (the hone binary re-executed with `serve --run-job`), at
 * most max_jobs at a time; it reaps children, so a crashed child becomes a
 * failed job and never takes the server down. In the child, worker_run_job
 * calls ft_run with callbacks that write events, metrics, checkpoints and
 * status to the store (its own SQLite connection) as they happen; cancel and
 * pause reach it through the job's control column, polled between steps.
 *
 * After a server restart, jobs left `running` go back to `queued` and resume
 * from their last checkpoint (or from the start if none was written). */
#ifndef HN_WORKER_H
#define HN_WORKER_H

#include <stddef.h>

#include "base/err.h"
#include "store/store.h"

/* Finds the file or directory of a base model by id. */
typedef hn_status (*worker_resolve_fn)(void *ctx, const char *model, char *path, size_t cap,
                                       hn_err *err);

typedef struct worker_config {
    store *st;
    const char *exe;      /* hone binary to re-execute for each job */
    const char *data_dir;
    int max_jobs;         /* default 1 */
    worker_resolve_fn resolve;
    void *resolve_ctx;
} worker_config;

typedef struct worker worker;

/* Recovers jobs interrupted by a restart, then starts the worker thread. */
hn_status worker_start(const worker_config *cfg, worker **out, hn_err *err);
/* Asks the thread to look at the queue now (after a create or resume). */
void worker_wake(worker *w);
/* Stops the thread and kills running children (their jobs resume on restart). */
void worker_stop(worker *w);

/* Child side: runs the (already claimed) job to the end and records it. */
hn_status worker_run_job(const char *data_dir, const char *job_id, const char *model_path,
                         hn_err *err);

/* Validation of a job's files (validating_files -> queued | failed). */
hn_status worker_validate_job(store *st, const char *job_id, hn_err *err);

/* "ft:<base>:<owner>:<suffix>:<8 chars of the job id>" */
void worker_model_name(const char *base, const char *owner, const char *suffix,
                       const char *job_id, char *out, size_t cap);

#endif
