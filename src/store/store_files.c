/* store_files.c — uploaded files: bytes on disk under <data>/files, metadata
 * in the files table. The bytes are durable at their final name before the
 * row is committed; a delete removes the row before the bytes. */
#include "store/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"

void store_file_free(store_file *f) {
    if (!f) return;
    free(f->status_details);
    f->status_details = NULL;
}

void store_files_free(store_file *v, int n) {
    for (int i = 0; i < n; i++) store_file_free(&v[i]);
    free(v);
}

void store_file_temp_path(store *s, char *out, size_t cap) {
    char rnd[64];
    store_new_id("", rnd, sizeof rnd);
    snprintf(out, cap, "%s/files/.upload-%s", s->dir, rnd);
}

void store_file_path(store *s, const char *id, char *out, size_t cap) {
    snprintf(out, cap, "%s/files/%s", s->dir, id);
}

static hn_status fsync_path(const char *path, bool dir, hn_err *err) {
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) return hn_errf(err, HN_EIO, "%s: cannot open: %s", path, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    if (rc != 0) return hn_errf(err, HN_EIO, "%s: fsync failed: %s", path, strerror(errno));
    return HN_OK;
}

static hn_status insert_file_row(store *s, const store_file *f, hn_err *err) {
    sqlite3_stmt *st;
    hn_status r = sq_prep(s,
                          "INSERT INTO files(id,bytes,created_at,filename,purpose,status,"
                          "status_details) VALUES(?,?,?,?,?,?,?)",
                          &st, err);
    if (r != HN_OK) return r;
    sq_bind_text(st, 1, f->id);
    sqlite3_bind_int64(st, 2, f->bytes);
    sqlite3_bind_int64(st, 3, f->created_at);
    sq_bind_text(st, 4, f->filename);
    sq_bind_text(st, 5, f->purpose);
    sq_bind_text(st, 6, f->status);
    sq_bind_opt(st, 7, f->status_details);
    return sq_done(s, st, err);
}

hn_status store_file_commit(store *s, const char *tmp_path, store_file *f, hn_err *err) {
    store_new_id("file-", f->id, sizeof f->id);
    f->created_at = sq_now();
    char final[1200], dir[1100];
    store_file_path(s, f->id, final, sizeof final);
    snprintf(dir, sizeof dir, "%s/files", s->dir);
    hn_status r = fsync_path(tmp_path, false, err);
    if (r == HN_OK && rename(tmp_path, final) != 0)
        r = hn_errf(err, HN_EIO, "%s: rename failed: %s", final, strerror(errno));
    if (r == HN_OK) r = fsync_path(dir, true, err);
    if (r != HN_OK) {
        unlink(tmp_path);
        return r;
    }
    sq_lock(s);
    r = insert_file_row(s, f, err);
    sq_unlock(s);
    if (r != HN_OK) unlink(final);
    return r;
}

hn_status store_file_put(store *s, const void *data, size_t len, store_file *f, hn_err *err) {
    char tmp[1200];
    store_file_temp_path(s, tmp, sizeof tmp);
    const void *parts[1] = {data};
    size_t lens[1] = {len};
    /* write_atomic leaves the bytes at tmp (fsynced); commit renames them on. */
    hn_status r = hn_file_write_atomic(tmp, parts, lens, 1, err);
    if (r != HN_OK) return r;
    f->bytes = (long long)len;
    return store_file_commit(s, tmp, f, err);
}

#define FILE_COLS "id,bytes,created_at,filename,purpose,status,status_details"

static void read_file_row(sqlite3_stmt *st, store_file *f) {
    memset(f, 0, sizeof *f);
    sq_col_copy(st, 0, f->id, sizeof f->id);
    f->bytes = sqlite3_column_int64(st, 1);
    f->created_at = sqlite3_column_int64(st, 2);
    sq_col_copy(st, 3, f->filename, sizeof f->filename);
    sq_col_copy(st, 4, f->purpose, sizeof f->purpose);
    sq_col_copy(st, 5, f->status, sizeof f->status);
    f->status_details = sq_col_dup(st, 6);
}

hn_status store_file_get(store *s, const char *id, store_file *out, hn_err *err) {
    memset(out, 0, sizeof *out);
    sq_lock(s);
    sqlite3_stmt *st;
    hn_status r = sq_prep(s, "SELECT " FILE_COLS " FROM files WHERE id=?", &st, err);
    if (r == HN_OK) {
        sq_bind_text(st, 1, id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) read_file_row(st, out);
        else if (rc == SQLITE_DONE) r = hn_errf(err, HN_ENOTFOUND, "No such File object: %s", id);
        else r = sq_fail(s, err, "read file");
        sqlite3_finalize(st);
    }
    sq_unlock(s);
    return r;
}

/* Collects up to limit rows from st into *out and looks one further for has_more. */
static hn_status collect_files(store *s, sqlite3_stmt *st, int limit, store_file **out, int *n,
                               bool *has_more, hn_err *err) {
    *out = calloc((size_t)limit + 1, sizeof **out);
    *n = 0;
    *has_more = false;
    if (!*out) return hn_errf(err, HN_ENOMEM, "store: out of memory");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == limit) {
            *has_more = true;
            break;
        }
        read_file_row(st, &(*out)[(*n)++]);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sq_fail(s, err, "list files");
    return HN_OK;
}

hn_status store_file_list(store *s, const char *purpose, const char *after, int limit,
                          bool asc, store_file **out, int *n, bool *has_more, hn_err *err) {
    *out = NULL;
    *n = 0;
    *has_more = false;
    sq_lock(s);
    long long seq = sq_seq_of(s, "files", after);
    hn_status r = HN_OK;
    if (after && *after && !seq) r = hn_errf(err, HN_ENOTFOUND, "No such File object: %s", after);
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT " FILE_COLS " FROM files WHERE (?1 IS NULL OR purpose=?1) AND"
             " (?2=0 OR seq %s ?2) ORDER BY seq %s LIMIT ?3",
             asc ? ">" : "<", asc ? "ASC" : "DESC");
    sqlite3_stmt *st = NULL;
    if (r == HN_OK) r = sq_prep(s, sql, &st, err);
    if (r == HN_OK) {
        sq_bind_opt(st, 1, purpose);
        sqlite3_bind_int64(st, 2, seq);
        sqlite3_bind_int(st, 3, limit + 1);
        r = collect_files(s, st, limit, out, n, has_more, err);
        sqlite3_finalize(st);
    }
    sq_unlock(s);
    if (r != HN_OK) {
        store_files_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return r;
}

hn_status store_file_delete(store *s, const char *id, hn_err *err) {
    sq_lock(s);
    sqlite3_stmt *st;
    hn_status r = sq_prep(s, "DELETE FROM files WHERE id=?", &st, err);
    if (r == HN_OK) {
        sq_bind_text(st, 1, id);
        r = sq_done(s, st, err);
        if (r == HN_OK && sqlite3_changes(s->db) == 0)
            r = hn_errf(err, HN_ENOTFOUND, "No such File object: %s", id);
    }
    sq_unlock(s);
    if (r == HN_OK) {
        char path[1200];
        store_file_path(s, id, path, sizeof path);
        unlink(path);
    }
    return r;
}
