/* store.c — opening the store: data directory, SQLite pragmas (WAL,
 * busy_timeout, foreign keys), schema migrations by PRAGMA user_version, the
 * sweep of half-written uploads after a crash, ids, and the SQL helpers the
 * other store files use. */
#include "store/store_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base/file.h"

/* Migration i takes the schema from version i to i+1. Never edit a shipped
 * entry: append a new one. */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE files(seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
    " bytes INTEGER NOT NULL, created_at INTEGER NOT NULL, filename TEXT NOT NULL,"
    " purpose TEXT NOT NULL, status TEXT NOT NULL, status_details TEXT);"
    "CREATE INDEX files_purpose ON files(purpose, seq);"
    "CREATE TABLE jobs(seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
    " created_at INTEGER NOT NULL, model TEXT NOT NULL, training_file TEXT NOT NULL,"
    " validation_file TEXT, status TEXT NOT NULL, fine_tuned_model TEXT, suffix TEXT,"
    " seed INTEGER NOT NULL, hyperparameters TEXT NOT NULL, method TEXT NOT NULL,"
    " metadata TEXT, error_code TEXT, error_param TEXT, error_message TEXT,"
    " finished_at INTEGER, estimated_finish INTEGER, trained_tokens INTEGER,"
    " result_file TEXT, control TEXT, resume_dir TEXT, pid INTEGER);"
    "CREATE INDEX jobs_status ON jobs(status, seq);"
    "CREATE TABLE events(seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
    " job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    " created_at INTEGER NOT NULL, level TEXT NOT NULL, type TEXT NOT NULL,"
    " message TEXT NOT NULL, data TEXT);"
    "CREATE INDEX events_job ON events(job_id, seq);"
    "CREATE TABLE checkpoints(seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
    " job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    " created_at INTEGER NOT NULL, step INTEGER NOT NULL, model_name TEXT NOT NULL,"
    " metrics TEXT NOT NULL, dir TEXT NOT NULL);"
    "CREATE INDEX checkpoints_job ON checkpoints(job_id, seq);"
    "CREATE TABLE models(seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
    " created_at INTEGER NOT NULL, owned_by TEXT NOT NULL, base_model TEXT NOT NULL,"
    " job_id TEXT REFERENCES jobs(id) ON DELETE SET NULL, path TEXT NOT NULL);",
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

int store_schema_latest(void) { return N_MIGRATIONS; }

void sq_lock(store *s) { pthread_mutex_lock(&s->mu); }
void sq_unlock(store *s) { pthread_mutex_unlock(&s->mu); }

hn_status sq_fail(store *s, hn_err *err, const char *what) {
    return hn_errf(err, HN_EIO, "store: %s: %s", what, sqlite3_errmsg(s->db));
}

hn_status sq_prep(store *s, const char *sql, sqlite3_stmt **st, hn_err *err) {
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) return sq_fail(s, err, "prepare");
    return HN_OK;
}

hn_status sq_exec(store *s, const char *sql, hn_err *err) {
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        hn_errf(err, HN_EIO, "store: %s", msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return HN_EIO;
    }
    return HN_OK;
}

hn_status sq_done(store *s, sqlite3_stmt *st, hn_err *err) {
    int rc = sqlite3_step(st);
    hn_status r = rc == SQLITE_DONE ? HN_OK : sq_fail(s, err, "write");
    sqlite3_finalize(st);
    return r;
}

void sq_bind_text(sqlite3_stmt *st, int i, const char *v) {
    sqlite3_bind_text(st, i, v ? v : "", -1, SQLITE_TRANSIENT);
}

void sq_bind_opt(sqlite3_stmt *st, int i, const char *v) {
    if (v && *v) sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, i);
}

void sq_col_copy(sqlite3_stmt *st, int i, char *out, size_t cap) {
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

char *sq_col_dup(sqlite3_stmt *st, int i) {
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? strdup((const char *)t) : NULL;
}

long long sq_now(void) { return (long long)time(NULL); }

long long sq_seq_of(store *s, const char *table, const char *id) {
    if (!id || !*id) return 0;
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT seq FROM %s WHERE id=?", table);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) return 0;
    sq_bind_text(st, 1, id);
    long long seq = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return seq;
}

void store_new_id(const char *prefix, char *out, size_t cap) {
    static const char b62[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    char r[STORE_ID_CHARS + 1];
    int n = 0;
    while (n < STORE_ID_CHARS) {
        unsigned char raw[64];
        ssize_t got = getrandom(raw, sizeof raw, 0);
        for (ssize_t i = 0; i < got && n < STORE_ID_CHARS; i++)
            if (raw[i] < 248) r[n++] = b62[raw[i] % 62]; /* 248 = 4*62: no bias */
    }
    r[n] = 0;
    snprintf(out, cap, "%s%s", prefix, r);
}

const char *store_data_dir(const store *s) { return s->dir; }

int store_schema_version(store *s) {
    sq_lock(s);
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    sq_unlock(s);
    return v;
}

hn_status store_check_integrity(store *s, hn_err *err) {
    sq_lock(s);
    sqlite3_stmt *st;
    hn_status r = sq_prep(s, "PRAGMA integrity_check", &st, err);
    if (r == HN_OK) {
        char res[256] = "";
        if (sqlite3_step(st) == SQLITE_ROW) sq_col_copy(st, 0, res, sizeof res);
        sqlite3_finalize(st);
        if (strcmp(res, "ok")) r = hn_errf(err, HN_EFORMAT, "store: integrity_check: %s", res);
    }
    sq_unlock(s);
    return r;
}

/* Applies the migrations past the current user_version, each in a transaction. */
static hn_status migrate(store *s, hn_err *err) {
    int v = store_schema_version(s);
    if (v < 0) return sq_fail(s, err, "reading user_version");
    if (v > N_MIGRATIONS)
        return hn_errf(err, HN_EUNSUPPORTED,
                       "store: %s/hone.db has schema version %d, newer than this hone (%d)",
                       s->dir, v, N_MIGRATIONS);
    for (; v < N_MIGRATIONS; v++) {
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version=%d;", v + 1);
        hn_status r = sq_exec(s, "BEGIN IMMEDIATE", err);
        if (r == HN_OK) r = sq_exec(s, migrations[v], err);
        if (r == HN_OK) r = sq_exec(s, bump, err);
        if (r == HN_OK) r = sq_exec(s, "COMMIT", err);
        if (r != HN_OK) {
            sq_exec(s, "ROLLBACK", NULL);
            return hn_err_prefix(err, "migration %d -> %d", v, v + 1);
        }
    }
    return HN_OK;
}

static bool file_row_exists(store *s, const char *id) { return sq_seq_of(s, "files", id) != 0; }

void store_sweep_orphans(store *s) {
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/files", s->dir);
    sq_lock(s);
    DIR *d = opendir(dir);
    if (!d) {
        sq_unlock(s);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' && strncmp(e->d_name, ".upload-", 8)) continue;
        bool orphan = !strncmp(e->d_name, ".upload-", 8) || strstr(e->d_name, ".tmp") ||
                      !file_row_exists(s, e->d_name);
        if (!orphan) continue;
        char p[1400];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    sq_unlock(s);
}

static hn_status open_db(store *s, hn_err *err) {
    char path[1100];
    snprintf(path, sizeof path, "%s/hone.db", s->dir);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK)
        return hn_errf(err, HN_EIO, "store: cannot open %s: %s", path,
                       s->db ? sqlite3_errmsg(s->db) : "out of memory");
    sqlite3_busy_timeout(s->db, 10000);
    return sq_exec(s,
                   "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                   " PRAGMA foreign_keys=ON;",
                   err);
}

hn_status store_open(const char *data_dir, store **out, hn_err *err) {
    *out = NULL;
    store *s = calloc(1, sizeof *s);
    if (!s) return hn_errf(err, HN_ENOMEM, "store: out of memory");
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&s->mu, &a);
    pthread_mutexattr_destroy(&a);
    snprintf(s->dir, sizeof s->dir, "%s", data_dir);
    char sub[1100];
    snprintf(sub, sizeof sub, "%s/files", data_dir);
    hn_status r = hn_mkdirs(sub, err);
    if (r == HN_OK) {
        snprintf(sub, sizeof sub, "%s/jobs", data_dir);
        r = hn_mkdirs(sub, err);
    }
    if (r == HN_OK) r = open_db(s, err);
    if (r == HN_OK) r = migrate(s, err);
    if (r != HN_OK) {
        store_close(s);
        return r;
    }
    *out = s;
    return HN_OK;
}

void store_close(store *s) {
    if (!s) return;
    if (s->db) sqlite3_close_v2(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
