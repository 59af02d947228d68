/* store.h — hone's durable state: one SQLite database (WAL) plus the bytes of
 * uploaded files under a data directory.
 *
 *   <data>/hone.db               files, jobs, events, checkpoints, models
 *   <data>/files/file-<id>       uploaded bytes (temp name, fsync, rename, then row)
 *   <data>/jobs/ftjob-<id>/      training output (metrics.csv, checkpoints/, final/)
 *
 * Write order makes a kill -9 harmless: bytes reach their final name before the
 * row that points at them is committed, and a row is deleted before its bytes;
 * store_sweep_orphans removes temp files and bytes no row points at. The schema is
 * versioned with PRAGMA user_version and migrated forward on open.
 *
 * A store handle may be shared by threads (every call takes the handle's lock);
 * another process (the training worker) opens its own handle on the same dir.
 * Records are plain structs; char* fields are malloc'd and owned by the record
 * (free with the matching _free); "" in a fixed field means SQL NULL. */
#ifndef HN_STORE_H
#define HN_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

typedef struct store store;

#define STORE_ID_CHARS 24 /* random base62 characters after the prefix */

hn_status store_open(const char *data_dir, store **out, hn_err *err);
void store_close(store *s);
const char *store_data_dir(const store *s);
int store_schema_version(store *s);
/* The newest schema version this build knows. */
int store_schema_latest(void);
/* Removes upload temp files and bytes no row points at (a crash between the
 * rename and the INSERT, or between a row's DELETE and the unlink). Only the
 * one process that owns the data dir (the server, at start) may call it. */
void store_sweep_orphans(store *s);
/* Runs PRAGMA integrity_check; HN_OK when it answers "ok". */
hn_status store_check_integrity(store *s, hn_err *err);

/* prefix + STORE_ID_CHARS random base62 characters from the kernel RNG. */
void store_new_id(const char *prefix, char *out, size_t cap);

/* ---- files -------------------------------------------------------------- */

typedef struct store_file {
    char id[64];
    long long bytes, created_at;
    char filename[256];
    char purpose[32];
    char status[16];      /* uploaded | processed | error */
    char *status_details; /* NULL or text */
} store_file;

void store_file_free(store_file *f);
void store_files_free(store_file *v, int n);

/* A fresh temp path under <data>/files/ to stream an upload into. */
void store_file_temp_path(store *s, char *out, size_t cap);
/* Path of a committed file's bytes. */
void store_file_path(store *s, const char *id, char *out, size_t cap);
/* Makes tmp_path the bytes of a new file: fsyncs it, renames it to
 * files/<f->id> (f->id is assigned here; created_at too), fsyncs the directory,
 * then commits the row. On failure the temp file is removed. */
hn_status store_file_commit(store *s, const char *tmp_path, store_file *f, hn_err *err);
/* Stores bytes already in memory as a new file (results files). */
hn_status store_file_put(store *s, const void *data, size_t len, store_file *f, hn_err *err);
hn_status store_file_get(store *s, const char *id, store_file *out, hn_err *err);
/* purpose may be NULL; after is an id or NULL; asc = oldest first. */
hn_status store_file_list(store *s, const char *purpose, const char *after, int limit,
                          bool asc, store_file **out, int *n, bool *has_more, hn_err *err);
/* Deletes the row, then the bytes. HN_ENOTFOUND if absent. */
hn_status store_file_delete(store *s, const char *id, hn_err *err);

/* ---- fine-tuning jobs --------------------------------------------------- */

typedef struct store_job {
    char id[64];
    long long created_at, finished_at, estimated_finish; /* 0 = null */
    char model[256];
    char training_file[64], validation_file[64];
    char status[24]; /* validating_files queued running paused succeeded failed cancelled */
    char fine_tuned_model[512]; /* the name it gets; shown once succeeded */
    char suffix[80];
    long long seed;
    long long trained_tokens; /* -1 = null */
    char *hyperparameters;    /* JSON object text */
    char *method;             /* JSON object text */
    char *metadata;           /* JSON object text or NULL */
    char error_code[64], error_param[64];
    char *error_message;      /* NULL unless failed */
    char result_file[64];
    char control[16];         /* "" | cancel | pause : a request for the runner */
    char resume_dir[1024];    /* checkpoint to resume from, "" = start */
    int pid;                  /* runner process, 0 if none */
} store_job;

void store_job_free(store_job *j);
void store_jobs_free(store_job *v, int n);

/* Inserts j (created_at assigned here; id too unless already set). */
hn_status store_job_insert(store *s, store_job *j, hn_err *err);
hn_status store_job_get(store *s, const char *id, store_job *out, hn_err *err);
/* Newest first. meta_keys/meta_vals: n_meta pairs every listed job must have. */
hn_status store_job_list(store *s, const char *after, int limit, const char *const *meta_keys,
                         const char *const *meta_vals, int n_meta, store_job **out, int *n,
                         bool *has_more, hn_err *err);
/* Rewrites the mutable columns of j (status, error, finished_at, estimated_finish,
 * trained_tokens, result_file, hyperparameters, control, resume_dir, pid). */
hn_status store_job_update(store *s, const store_job *j, hn_err *err);
/* As store_job_update, only while the job's status is still `expected`
 * (HN_ESTATE otherwise): a runner finishing never overwrites a cancel. */
hn_status store_job_update_if(store *s, const store_job *j, const char *expected, hn_err *err);
/* Progress while running: trained tokens so far (-1 = keep), estimated finish
 * (0 = keep), checkpoint to resume from (NULL = keep). */
hn_status store_job_progress(store *s, const char *id, long long trained_tokens,
                             long long estimated_finish, const char *resume_dir, hn_err *err);
/* Sets status only if it is currently `from` (NULL = any). HN_ESTATE otherwise. */
hn_status store_job_transition(store *s, const char *id, const char *from, const char *to,
                               hn_err *err);
/* Sets the control request column (NULL clears it). */
hn_status store_job_set_control(store *s, const char *id, const char *control, hn_err *err);
/* Oldest queued job becomes running (atomically); HN_ENOTFOUND if none. */
hn_status store_job_claim_next(store *s, store_job *out, hn_err *err);
/* Ids of jobs in a status (oldest first); caller frees each and the array. */
hn_status store_job_ids_with_status(store *s, const char *status, char ***ids, int *n,
                                    hn_err *err);
/* Directory for a job's training output: <data>/jobs/<id> (created). */
hn_status store_job_dir(store *s, const char *id, char *out, size_t cap, hn_err *err);

/* ---- job events --------------------------------------------------------- */

typedef struct store_event {
    char id[64];
    char job_id[64];
    long long created_at;
    char level[8];  /* info | warn | error */
    char type[16];  /* message | metrics */
    char *message;
    char *data;     /* JSON text or NULL */
} store_event;

void store_events_free(store_event *v, int n);
/* data_json may be NULL. */
hn_status store_event_add(store *s, const char *job_id, const char *level, const char *type,
                          const char *message, const char *data_json, hn_err *err);
/* Newest first; after = an event id (older events than it). */
hn_status store_event_list(store *s, const char *job_id, const char *after, int limit,
                           store_event **out, int *n, bool *has_more, hn_err *err);

/* ---- checkpoints -------------------------------------------------------- */

typedef struct store_ckpt {
    char id[64];
    char job_id[64];
    long long created_at;
    int step;
    char model_name[600]; /* fine_tuned_model_checkpoint */
    char *metrics;        /* JSON object text */
    char dir[1024];       /* on-disk checkpoint directory */
} store_ckpt;

void store_ckpts_free(store_ckpt *v, int n);
hn_status store_ckpt_add(store *s, store_ckpt *c, hn_err *err); /* id, created_at set */
/* Newest first. */
hn_status store_ckpt_list(store *s, const char *job_id, const char *after, int limit,
                          store_ckpt **out, int *n, bool *has_more, hn_err *err);

/* ---- fine-tuned models -------------------------------------------------- */

typedef struct store_model {
    char id[600]; /* ft:<base>:<owner>:<suffix>:<id> */
    long long created_at;
    char owned_by[64];
    char base_model[256];
    char job_id[64];
    char path[1024]; /* trained output (adapter or weights directory) */
} store_model;

hn_status store_model_add(store *s, store_model *m, hn_err *err); /* created_at set */
hn_status store_model_get(store *s, const char *id, store_model *out, hn_err *err);
/* Oldest first; caller frees *out. */
hn_status store_model_list(store *s, store_model **out, int *n, hn_err *err);
hn_status store_model_delete(store *s, const char *id, hn_err *err);

#endif
