/* store_events.c — the append-only records a job produces while it runs
 * (events, checkpoints) and the fine-tuned models it leaves behind. */
#include "store/store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void store_events_free(store_event *v, int n) {
    for (int i = 0; i < n; i++) {
        free(v[i].message);
        free(v[i].data);
    }
    free(v);
}

void store_ckpts_free(store_ckpt *v, int n) {
    for (int i = 0; i < n; i++) free(v[i].metrics);
    free(v);
}

hn_status store_event_add(store *s, const char *job_id, const char *level, const char *type,
                          const char *message, const char *data_json, hn_err *err) {
    char id[64];
    store_new_id("ftevent-", id, sizeof id);
    sq_lock(s);
    sqlite3_stmt *st;
    hn_status r = sq_prep(s,
                          "INSERT INTO events(id,job_id,created_at,level,type,message,data)"
                          " VALUES(?,?,?,?,?,?,?)",
                          &st, err);
    if (r == HN_OK) {
        sq_bind_text(st, 1, id);
        sq_bind_text(st, 2, job_id);
        sqlite3_bind_int64(st, 3, sq_now());
        sq_bind_text(st, 4, level);
        sq_bind_text(st, 5, type);
        sq_bind_text(st, 6, message);
        sq_bind_opt(st, 7, data_json);
        r = sq_done(s, st, err);
    }
    sq_unlock(s);
    return r;
}

static void read_event_row(sqlite3_stmt *st, store_event *e) {
    memset(e, 0, sizeof *e);
    sq_col_copy(st, 0, e->id, sizeof e->id);
    sq_col_copy(st, 1, e->job_id, sizeof e->job_id);
    e->created_at = sqlite3_column_int64(st, 2);
    sq_col_copy(st, 3, e->level, sizeof e->level);
    sq_col_copy(st, 4, e->type, sizeof e->type);
    e->message = sq_col_dup(st, 5);
    e->data = sq_col_dup(st, 6);
}

static void read_ckpt_row(sqlite3_stmt *st, store_ckpt *c) {
    memset(c, 0, sizeof *c);
    sq_col_copy(st, 0, c->id, sizeof c->id);
    sq_col_copy(st, 1, c->job_id, sizeof c->job_id);
    c->created_at = sqlite3_column_int64(st, 2);
    c->step = sqlite3_column_int(st, 3);
    sq_col_copy(st, 4, c->model_name, sizeof c->model_name);
    c->metrics = sq_col_dup(st, 5);
    sq_col_copy(st, 6, c->dir, sizeof c->dir);
}

/* Newest-first page of a job's rows from `table` (events or checkpoints). */
static hn_status list_page(store *s, const char *table, const char *cols, const char *job_id,
                           const char *after, int limit, size_t elem, void **out, int *n,
                           bool *has_more, void (*read)(sqlite3_stmt *, void *), hn_err *err) {
    *n = 0;
    *has_more = false;
    *out = calloc((size_t)limit + 1, elem);
    if (!*out) return hn_errf(err, HN_ENOMEM, "store: out of memory");
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM %s WHERE job_id=?1 AND (?2=0 OR seq < ?2) ORDER BY seq DESC LIMIT ?3",
             cols, table);
    sq_lock(s);
    long long seq = sq_seq_of(s, table, after);
    hn_status r = HN_OK;
    if (after && *after && !seq) r = hn_errf(err, HN_ENOTFOUND, "No such object: %s", after);
    sqlite3_stmt *st = NULL;
    if (r == HN_OK) r = sq_prep(s, sql, &st, err);
    if (r == HN_OK) {
        sq_bind_text(st, 1, job_id);
        sqlite3_bind_int64(st, 2, seq);
        sqlite3_bind_int(st, 3, limit + 1);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (*n == limit) {
                *has_more = true;
                break;
            }
            read(st, (char *)*out + elem * (size_t)(*n)++);
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) r = sq_fail(s, err, "list");
        sqlite3_finalize(st);
    }
    sq_unlock(s);
    return r;
}

static void read_event_v(sqlite3_stmt *st, void *p) { read_event_row(st, p); }
static void read_ckpt_v(sqlite3_stmt *st, void *p) { read_ckpt_row(st, p); }

hn_status store_event_list(store *s, const char *job_id, const char *after, int limit,
                           store_event **out, int *n, bool *has_more, hn_err *err) {
    void *v = NULL;
    hn_status r = list_page(s, "events", "id,job_id,created_at,level,type,message,data", job_id,
                            after, limit, sizeof(store_event), &v, n, has_more, read_event_v, err);
    *out = v;
    return r;
}

hn_status store_ckpt_add(store *s, store_ckpt *c, hn_err *err) {
    store_new_id("ftckpt_", c->id, sizeof c->id);
    c->created_at = sq_now();
    sq_lock(s);
    sqlite3_stmt *st;
    hn_status r = sq_prep(s,
                          "INSERT INTO checkpoints(id,job_id,created_at,step,model_name,metrics,dir)"
                          " VALUES(?,?,?,?,?,?,?)",
                          &st, err);
    if (r == HN_OK) {
        sq_bind_text(st, 1, c->id);
        sq_bind_text(st, 2, c->job_id);
        sqlite3_bind_int64(st, 3, c->created_at);
        sqlite3_bind_int(st, 4, c->step);
        sq_bind_text(st, 5, c->model_name);
        sq_bind_text(st, 6, c->metrics ? c->metrics : "{}");
        sq_bind_text(st, 7, c->dir);
        r = sq_done(s, st, err);
    }
    sq_unlock(s);
    return r;
}

hn_status store_ckpt_list(store *s, const char *job_id, const char *after, int limit,
                          store_ckpt **out, int *n, bool *has_more, hn_err *err) {
    void *v = NULL;
    hn_status r = list_page(s, "checkpoints", "id,job_id,created_at,step,model_name,metrics,dir",
                            job_id, after, limit, sizeof(store_ckpt), &v, n, has_more,
                            read_ckpt_v, err);
    *out = v;
    return r;
}

#define MODEL_COLS "id,created_at,owned_by,base_model,job_id,path"

static void read_model_row(sqlite3_stmt *st, store_model *m) {
    memset(m, 0, sizeof *m);
    sq_col_copy(st, 0, m->id, sizeof m->id);
    m->created_at = sqlite3_column_int64(st, 1);
    sq_col_copy(st, 2, m->owned_by, sizeof m->owned_by);
    sq_col_copy(st, 3, m->base_model, sizeof m->base_model);
    sq_col_copy(st, 4, m->job_id, sizeof m->job_id);
    sq_col_copy(st, 5, m->path, sizeof m->path);
}

hn_status store_model_add(store *s, store_model *m, hn_err *err) {
    m->created_at = sq_now();
    sq_lock(s);
    sqlite3_stmt *st;
    hn_status r = sq_prep(s,
                          "INSERT OR REPLACE INTO models(" MODEL_COLS ") VALUES(?,?,?,?,?,?)",
                          &st, err);
    if (r == HN_OK) {
        sq_bind_text(st, 1, m->id);
        sqlite3_bind_int64(st, 2, m->created_at);
        sq_bind_text(st, 3, m->owned_by);
        sq_bind_text(st, 4, m->base_model);
        sq_bind_opt(st, 5, m->job_id);
        sq_bind_text(st, 6, m->path);
        r = sq_done(s, st, err);
    }
    sq_unlock(s);
    return r;
}

hn_status store_model_get(store *s, const char *id, store_model *out, hn_err *err) {
    memset(out, 0, sizeof *out);
    sq_lock(s);
    sqlite3_stmt *st;
    hn_status r = sq_prep(s, "SELECT " MODEL_COLS " FROM models WHERE id=?", &st, err);
    if (r == HN_OK) {
        sq_bind_text(st, 1, id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) read_model_row(st, out);
        else if (rc == SQLITE_DONE) r = hn_errf(err, HN_ENOTFOUND, "no model %s", id);
        else r = sq_fail(s, err, "read model");
        sqlite3_finalize(st);
    }
    sq_unlock(s);
    return r;
}

hn_status store_model_list(store *s, store_model **out, int *n, hn_err *err) {
    *out = NULL;
    *n = 0;
    sq_lock(s);
    sqlite3_stmt *st;
    hn_status r = sq_prep(s, "SELECT " MODEL_COLS " FROM models ORDER BY seq", &st, err);
    int cap = 0;
    while (r == HN_OK && sqlite3_step(st) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            store_model *nv = realloc(*out, (size_t)cap * sizeof *nv);
            if (!nv) {
                r = hn_errf(err, HN_ENOMEM, "store: out of memory");
                break;
            }
            *out = nv;
        }
        read_model_row(st, &(*out)[(*n)++]);
    }
    if (st) sqlite3_finalize(st);
    sq_unlock(s);
    return r;
}

hn_status store_model_delete(store *s, const char *id, hn_err *err) {
    sq_lock(s);
    sqlite3_stmt *st;
    hn_status r = sq_prep(s, "DELETE FROM models WHERE id=?", &st, err);
    if (r == HN_OK) {
        sq_bind_text(st, 1, id);
        r = sq_done(s, st, err);
        if (r == HN_OK && sqlite3_changes(s->db) == 0)
            r = hn_errf(err, HN_ENOTFOUND, "no model %s", id);
    }
    sq_unlock(s);
    return r;
}
