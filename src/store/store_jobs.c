/* store_jobs.c — fine-tuning job rows: insert, read, list (newest first,
 * metadata filters), the status machine's atomic transitions, the control
 * column through which cancel/pause reach a running trainer, and claiming
 * the next queued job. */
#include "store/store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/file.h"

void store_job_free(store_job *j) {
    if (!j) return;
    free(j->hyperparameters);
    free(j->method);
    free(j->metadata);
    free(j->error_message);
    j->hyperparameters = j->method = j->metadata = j->error_message = NULL;
}

void store_jobs_free(store_job *v, int n) {
    for (int i = 0; i < n; i++) store_job_free(&v[i]);
    free(v);
}

#define JOB_COLS                                                                         \
    "id,created_at,finished_at,estimated_finish,model,training_file,validation_file,"    \
    "status,fine_tuned_model,suffix,seed,trained_tokens,hyperparameters,method,metadata," \
    "error_code,error_param,error_message,result_file,control,resume_dir,pid"

static void read_job_row(sqlite3_stmt *st, store_job *j) {
    memset(j, 0, sizeof *j);
    sq_col_copy(st, 0, j->id, sizeof j->id);
    j->created_at = sqlite3_column_int64(st, 1);
    j->finished_at = sqlite3_column_int64(st, 2);
    j->estimated_finish = sqlite3_column_int64(st, 3);
    sq_col_copy(st, 4, j->model, sizeof j->model);
    sq_col_copy(st, 5, j->training_file, sizeof j->training_file);
    sq_col_copy(st, 6, j->validation_file, sizeof j->validation_file);
    sq_col_copy(st, 7, j->status, sizeof j->status);
    sq_col_copy(st, 8, j->fine_tuned_model, sizeof j->fine_tuned_model);
    sq_col_copy(st, 9, j->suffix, sizeof j->suffix);
    j->seed = sqlite3_column_int64(st, 10);
    j->trained_tokens =
        sqlite3_column_type(st, 11) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 11);
    j->hyperparameters = sq_col_dup(st, 12);
    j->method = sq_col_dup(st, 13);
    j->metadata = sq_col_dup(st, 14);
    sq_col_copy(st, 15, j->error_code, sizeof j->error_code);
    sq_col_copy(st, 16, j->error_param, sizeof j->error_param);
    j->error_message = sq_col_dup(st, 17);
    sq_col_copy(st, 18, j->result_file, sizeof j->result_file);
    sq_col_copy(st, 19, j->control, sizeof j->control);
    sq_col_copy(st, 20, j->resume_dir, sizeof j->resume_dir);
    j->pid = sqlite3_column_int(st, 21);
}

static void bind_int_or_null(sqlite3_stmt *st, int i, long long v, long long null_value) {
    if (v == null_value) sqlite3_bind_null(st, i);
    else sqlite3_bind_int64(st, i, v);
}

hn_status store_job_insert(store *s, store_job *j, hn_err *err) {
    if (!j->id[0]) store_new_id("ftjob-", j->id, sizeof j->id);
    j->created_at = sq_now();
    sq_lock(s);
    sqlite3_stmt *st;
    hn_status r = sq_prep(s,
                          "INSERT INTO jobs(id,created_at,model,training_file,validation_file,"
                          "status,fine_tuned_model,suffix,seed,hyperparameters,method,metadata)"
                          " VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
                          &st, err);
    if (r == HN_OK) {
        sq_bind_text(st, 1, j->id);
        sqlite3_bind_int64(st, 2, j->created_at);
        sq_bind_text(st, 3, j->model);
        sq_bind_text(st, 4, j->training_file);
        sq_bind_opt(st, 5, j->validation_file);
        sq_bind_text(st, 6, j->status);
        sq_bind_opt(st, 7, j->fine_tuned_model);
        sq_bind_opt(st, 8, j->suffix);
        sqlite3_bind_int64(st, 9, j->seed);
        sq_bind_text(st, 10, j->hyperparameters ? j->hyperparameters : "{}");
        sq_bind_text(st, 11, j->method ? j->method : "{}");
        sq_bind_opt(st, 12, j->metadata);
        r = sq_done(s, st, err);
    }
    sq_unlock(s);
    return r;
}

hn_status store_job_get(store *s, const char *id, store_job *out, hn_err *err) {
    memset(out, 0, sizeof *out);
    sq_lock(s);
    sqlite3_stmt *st;
    hn_status r = sq_prep(s, "SELECT " JOB_COLS " FROM jobs WHERE id=?", &st, err);
    if (r == HN_OK) {
        sq_bind_text(st, 1, id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) read_job_row(st, out);
        else if (rc == SQLITE_DONE)
            r = hn_errf(err, HN_ENOTFOUND, "No such fine-tuning job: %s", id);
        else r = sq_fail(s, err, "read job");
        sqlite3_finalize(st);
    }
    sq_unlock(s);
    return r;
}

/* WHERE clause for the metadata filters: json_extract(metadata,'$."k"')=? each. */
static void metadata_where(hn_buf *sql, int n_meta) {
    for (int i = 0; i < n_meta; i++)
        hn_buf_printf(sql, " AND json_extract(metadata, '$.\"' || ?%d || '\"') = ?%d", 3 + 2 * i,
                      4 + 2 * i);
}

hn_status store_job_list(store *s, const char *after, int limit, const char *const *meta_keys,
                         const char *const *meta_vals, int n_meta, store_job **out, int *n,
                         bool *has_more, hn_err *err) {
    *n = 0;
    *has_more = false;
    *out = calloc((size_t)limit + 1, sizeof **out);
    if (!*out) return hn_errf(err, HN_ENOMEM, "store: out of memory");
    hn_buf sql;
    hn_buf_init(&sql);
    hn_buf_puts(&sql, "SELECT " JOB_COLS " FROM jobs WHERE (?1=0 OR seq < ?1)");
    metadata_where(&sql, n_meta);
    hn_buf_puts(&sql, " ORDER BY seq DESC LIMIT ?2");
    sq_lock(s);
    long long seq = sq_seq_of(s, "jobs", after);
    hn_status r = HN_OK;
    if (after && *after && !seq) r = hn_errf(err, HN_ENOTFOUND, "No such fine-tuning job: %s", after);
    sqlite3_stmt *st = NULL;
    if (r == HN_OK) r = sq_prep(s, sql.data, &st, err);
    if (r == HN_OK) {
        sqlite3_bind_int64(st, 1, seq);
        sqlite3_bind_int(st, 2, limit + 1);
        for (int i = 0; i < n_meta; i++) {
            sq_bind_text(st, 3 + 2 * i, meta_keys[i]);
            sq_bind_text(st, 4 + 2 * i, meta_vals[i]);
        }
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (*n == limit) {
                *has_more = true;
                break;
            }
            read_job_row(st, &(*out)[(*n)++]);
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) r = sq_fail(s, err, "list jobs");
        sqlite3_finalize(st);
    }
    sq_unlock(s);
    hn_buf_free(&sql);
    return r;
}

hn_status store_job_update(store *s, const store_job *j, hn_err *err) {
    return store_job_update_if(s, j, NULL, err);
}

hn_status store_job_update_if(store *s, const store_job *j, const char *expected, hn_err *err) {
    sq_lock(s);
    sqlite3_stmt *st;
    hn_status r = sq_prep(s,
                          "UPDATE jobs SET status=?,error_code=?,error_param=?,error_message=?,"
                          "finished_at=?,estimated_finish=?,trained_tokens=?,result_file=?,"
                          "hyperparameters=?,control=?,resume_dir=?,pid=? WHERE id=?13"
                          " AND (?14 IS NULL OR status=?14)",
                          &st, err);
    if (r == HN_OK) {
        sq_bind_text(st, 1, j->status);
        sq_bind_opt(st, 2, j->error_code);
        sq_bind_opt(st, 3, j->error_param);
        sq_bind_opt(st, 4, j->error_message);
        bind_int_or_null(st, 5, j->finished_at, 0);
        bind_int_or_null(st, 6, j->estimated_finish, 0);
        bind_int_or_null(st, 7, j->trained_tokens, -1);
        sq_bind_opt(st, 8, j->result_file);
        sq_bind_text(st, 9, j->hyperparameters ? j->hyperparameters : "{}");
        sq_bind_opt(st, 10, j->control);
        sq_bind_opt(st, 11, j->resume_dir);
        bind_int_or_null(st, 12, j->pid, 0);
        sq_bind_text(st, 13, j->id);
        sq_bind_opt(st, 14, expected);
        r = sq_done(s, st, err);
        if (r == HN_OK && sqlite3_changes(s->db) == 0)
            r = expected ? hn_errf(err, HN_ESTATE, "job %s is no longer %s", j->id, expected)
                         : hn_errf(err, HN_ENOTFOUND, "No such fine-tuning job: %s", j->id);
    }
    sq_unlock(s);
    return r;
}

hn_status store_job_progress(store *s, const char *id, long long trained_tokens,
                             long long estimated_finish, const char *resume_dir, hn_err *err) {
    sq_lock(s);
    sqlite3_stmt *st;
    hn_status r = sq_prep(s,
                          "UPDATE jobs SET trained_tokens=CASE WHEN ?1<0 THEN trained_tokens"
                          " ELSE ?1 END, estimated_finish=CASE WHEN ?2=0 THEN estimated_finish"
                          " ELSE ?2 END, resume_dir=COALESCE(?3,resume_dir) WHERE id=?4",
                          &st, err);
    if (r == HN_OK) {
        sqlite3_bind_int64(st, 1, trained_tokens);
        sqlite3_bind_int64(st, 2, estimated_finish);
        if (resume_dir) sq_bind_text(st, 3, resume_dir);
        else sqlite3_bind_null(st, 3);
        sq_bind_text(st, 4, id);
        r = sq_done(s, st, err);
    }
    sq_unlock(s);
    return r;
}

hn_status store_job_transition(store *s, const char *id, const char *from, const char *to,
                               hn_err *err) {
    sq_lock(s);
    sqlite3_stmt *st;
    hn_status r = sq_prep(s, "UPDATE jobs SET status=?1 WHERE id=?2 AND (?3 IS NULL OR status=?3)",
                          &st, err);
    if (r == HN_OK) {
        sq_bind_text(st, 1, to);
        sq_bind_text(st, 2, id);
        sq_bind_opt(st, 3, from);
        r = sq_done(s, st, err);
        if (r == HN_OK && sqlite3_changes(s->db) == 0)
            r = hn_errf(err, HN_ESTATE, "job %s is not %s", id, from ? from : "known");
    }
    sq_unlock(s);
    return r;
}

hn_status store_job_set_control(store *s, const char *id, const char *control, hn_err *err) {
    sq_lock(s);
    sqlite3_stmt *st;
    hn_status r = sq_prep(s, "UPDATE jobs SET control=? WHERE id=?", &st, err);
    if (r == HN_OK) {
        sq_bind_opt(st, 1, control);
        sq_bind_text(st, 2, id);
        r = sq_done(s, st, err);
    }
    sq_unlock(s);
    return r;
}

hn_status store_job_claim_next(store *s, store_job *out, hn_err *err) {
    memset(out, 0, sizeof *out);
    sq_lock(s);
    hn_status r = sq_exec(s, "BEGIN IMMEDIATE", err);
    sqlite3_stmt *st = NULL;
    if (r == HN_OK)
        r = sq_prep(s, "SELECT " JOB_COLS " FROM jobs WHERE status='queued' ORDER BY seq LIMIT 1",
                    &st, err);
    if (r == HN_OK) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) read_job_row(st, out);
        else r = rc == SQLITE_DONE ? HN_ENOTFOUND : sq_fail(s, err, "claim job");
        sqlite3_finalize(st);
    }
    if (r == HN_OK) {
        snprintf(out->status, sizeof out->status, "running");
        r = sq_prep(s, "UPDATE jobs SET status='running', control=NULL WHERE id=?", &st, err);
        if (r == HN_OK) {
            sq_bind_text(st, 1, out->id);
            r = sq_done(s, st, err);
        }
    }
    if (r == HN_OK) r = sq_exec(s, "COMMIT", err);
    else sq_exec(s, "ROLLBACK", NULL);
    sq_unlock(s);
    if (r != HN_OK) store_job_free(out);
    return r;
}

hn_status store_job_ids_with_status(store *s, const char *status, char ***ids, int *n,
                                    hn_err *err) {
    *ids = NULL;
    *n = 0;
    sq_lock(s);
    sqlite3_stmt *st;
    hn_status r = sq_prep(s, "SELECT id FROM jobs WHERE status=? ORDER BY seq", &st, err);
    if (r == HN_OK) {
        sq_bind_text(st, 1, status);
        int cap = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            if (*n == cap) {
                cap = cap ? cap * 2 : 8;
                char **nv = realloc(*ids, (size_t)cap * sizeof *nv);
                if (!nv) break;
                *ids = nv;
            }
            (*ids)[(*n)++] = sq_col_dup(st, 0);
        }
        sqlite3_finalize(st);
    }
    sq_unlock(s);
    return r;
}

hn_status store_job_dir(store *s, const char *id, char *out, size_t cap, hn_err *err) {
    snprintf(out, cap, "%s/jobs/%s", s->dir, id);
    return hn_mkdirs(out, err);
}
