/* store_internal.h — what the store's .c files share: the handle, its lock,
 * and small SQLite helpers. Not part of the public API. */
#ifndef HN_STORE_INTERNAL_H
#define HN_STORE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>

#include "store/store.h"

struct store {
    sqlite3 *db;
    pthread_mutex_t mu; /* recursive: one operation at a time on db */
    char dir[1024];
};

void sq_lock(store *s);
void sq_unlock(store *s);
/* Prepares sql; on failure fills err with SQLite's message. */
hn_status sq_prep(store *s, const char *sql, sqlite3_stmt **st, hn_err *err);
/* Runs statements without results. */
hn_status sq_exec(store *s, const char *sql, hn_err *err);
/* Steps a statement that returns no rows and finalizes it. */
hn_status sq_done(store *s, sqlite3_stmt *st, hn_err *err);
hn_status sq_fail(store *s, hn_err *err, const char *what);
/* Binds text, or NULL when v is NULL or "". */
void sq_bind_opt(sqlite3_stmt *st, int i, const char *v);
void sq_bind_text(sqlite3_stmt *st, int i, const char *v);
/* Copies column i into a fixed buffer ("" for NULL). */
void sq_col_copy(sqlite3_stmt *st, int i, char *out, size_t cap);
/* malloc'd copy of column i, NULL for NULL. */
char *sq_col_dup(sqlite3_stmt *st, int i);
long long sq_now(void);
/* The seq of row `id` in table, or 0 (id may be NULL/""). For `after` cursors. */
long long sq_seq_of(store *s, const char *table, const char *id);

#endif
