/* test_store.c — the store: schema migrations, files/jobs/events/checkpoints/
 * models round trips and cursor paging, and that a kill -9 in the middle of
 * uploads never leaves a row without its bytes or a corrupt database. */
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/file.h"
#include "store/store.h"
#include "test.h"

static store *open_at(const char *dir) {
    store *s = NULL;
    hn_err err;
    hn_status r = store_open(dir, &s, &err);
    CHECK(r == HN_OK, "store_open %s: %s", dir, err.msg);
    if (!s) exit(2);
    return s;
}

static void subdir(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", test_tmpdir(), name);
}

static void test_migrations(void) {
    char dir[512];
    subdir(dir, sizeof dir, "mig");
    store *s = open_at(dir);
    CHECK(store_schema_version(s) == store_schema_latest(), " ");
    CHECK(store_schema_latest() >= 1, " ");
    hn_err err;
    CHECK(store_check_integrity(s, &err) == HN_OK, "%s", err.msg);
    store_close(s);
    s = open_at(dir); /* reopening is a no-op */
    CHECK(store_schema_version(s) == store_schema_latest(), " ");
    store_close(s);

    /* A database from a newer hone is refused with a clear message. */
    char db[600];
    snprintf(db, sizeof db, "%s/hone.db", dir);
    sqlite3 *raw;
    CHECK(sqlite3_open(db, &raw) == SQLITE_OK, " ");
    sqlite3_exec(raw, "PRAGMA user_version=999", NULL, NULL, NULL);
    sqlite3_close(raw);
    store *s2 = NULL;
    CHECK(store_open(dir, &s2, &err) == HN_EUNSUPPORTED, " ");
    CHECK(strstr(err.msg, "newer") != NULL, "%s", err.msg);
    CHECK(s2 == NULL, " ");
}

static void test_ids(void) {
    char a[64], b[64];
    store_new_id("file-", a, sizeof a);
    store_new_id("file-", b, sizeof b);
    CHECK(strlen(a) == 5 + STORE_ID_CHARS, " ");
    CHECK(strcmp(a, b) != 0, " ");
    for (const char *p = a + 5; *p; p++)
        CHECK((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'), " ");
}

static hn_status put_text(store *s, const char *text, const char *purpose, store_file *f) {
    hn_err err;
    memset(f, 0, sizeof *f);
    snprintf(f->filename, sizeof f->filename, "t.jsonl");
    snprintf(f->purpose, sizeof f->purpose, "%s", purpose);
    snprintf(f->status, sizeof f->status, "processed");
    hn_status r = store_file_put(s, text, strlen(text), f, &err);
    CHECK(r == HN_OK, "%s", err.msg);
    return r;
}

static void test_files(void) {
    char dir[512];
    subdir(dir, sizeof dir, "files");
    store *s = open_at(dir);
    store_file made[5];
    for (int i = 0; i < 5; i++) put_text(s, "{\"a\":1}\n", i == 2 ? "batch" : "fine-tune", &made[i]);
    hn_err err;
    store_file g;
    CHECK(store_file_get(s, made[1].id, &g, &err) == HN_OK, " ");
    CHECK(g.bytes == 8 && !strcmp(g.purpose, "fine-tune") && !strcmp(g.filename, "t.jsonl"), " ");
    store_file_free(&g);
    char path[1200];
    store_file_path(s, made[1].id, path, sizeof path);
    size_t len;
    char *bytes = test_read(path, &len);
    CHECK(len == 8 && !memcmp(bytes, "{\"a\":1}\n", 8), " ");
    free(bytes);

    /* Newest first, pages of 2 following `after`. */
    store_file *v;
    int n;
    bool more;
    CHECK(store_file_list(s, NULL, NULL, 2, false, &v, &n, &more, &err) == HN_OK, " ");
    CHECK(n == 2 && more && !strcmp(v[0].id, made[4].id) && !strcmp(v[1].id, made[3].id), " ");
    char last[64];
    snprintf(last, sizeof last, "%s", v[1].id);
    store_files_free(v, n);
    CHECK(store_file_list(s, NULL, last, 2, false, &v, &n, &more, &err) == HN_OK, " ");
    CHECK(n == 2 && more && !strcmp(v[0].id, made[2].id), " ");
    store_files_free(v, n);
    CHECK(store_file_list(s, "fine-tune", NULL, 10, true, &v, &n, &more, &err) == HN_OK, " ");
    CHECK(n == 4 && !more && !strcmp(v[0].id, made[0].id) && !strcmp(v[3].id, made[4].id), " ");
    store_files_free(v, n);
    CHECK(store_file_list(s, NULL, "file-nope", 10, true, &v, &n, &more, &err) == HN_ENOTFOUND, " ");
    store_files_free(v, n);

    CHECK(store_file_delete(s, made[0].id, &err) == HN_OK, " ");
    CHECK(store_file_get(s, made[0].id, &g, &err) == HN_ENOTFOUND, " ");
    CHECK(strstr(err.msg, made[0].id) != NULL, " ");
    store_file_path(s, made[0].id, path, sizeof path);
    CHECK(!hn_path_exists(path), " ");
    CHECK(store_file_delete(s, made[0].id, &err) == HN_ENOTFOUND, " ");
    store_close(s);
}

static void test_jobs(void) {
    char dir[512];
    subdir(dir, sizeof dir, "jobs");
    store *s = open_at(dir);
    hn_err err;
    char ids[3][64];
    for (int i = 0; i < 3; i++) {
        store_job j = {0};
        snprintf(j.model, sizeof j.model, "stories260K");
        snprintf(j.training_file, sizeof j.training_file, "file-x");
        snprintf(j.status, sizeof j.status, "queued");
        j.hyperparameters = "{\"n_epochs\":\"auto\"}";
        j.metadata = i == 1 ? "{\"team\":\"blue\"}" : NULL;
        CHECK(store_job_insert(s, &j, &err) == HN_OK, "%s", err.msg);
        snprintf(ids[i], sizeof ids[i], "%s", j.id);
    }
    store_job *v;
    int n;
    bool more;
    CHECK(store_job_list(s, NULL, 2, NULL, NULL, 0, &v, &n, &more, &err) == HN_OK, " ");
    CHECK(n == 2 && more && !strcmp(v[0].id, ids[2]) && v[0].trained_tokens == -1, " ");
    store_jobs_free(v, n);
    const char *k[] = {"team"}, *val[] = {"blue"};
    CHECK(store_job_list(s, NULL, 10, k, val, 1, &v, &n, &more, &err) == HN_OK, "%s", err.msg);
    CHECK(n == 1 && !more && !strcmp(v[0].id, ids[1]), " ");
    store_jobs_free(v, n);

    store_job c;
    CHECK(store_job_claim_next(s, &c, &err) == HN_OK, " ");
    CHECK(!strcmp(c.id, ids[0]) && !strcmp(c.status, "running"), " ");
    snprintf(c.status, sizeof c.status, "succeeded");
    c.trained_tokens = 1234;
    c.finished_at = 99;
    CHECK(store_job_update(s, &c, &err) == HN_OK, "%s", err.msg);
    store_job_free(&c);
    CHECK(store_job_get(s, ids[0], &c, &err) == HN_OK, " ");
    CHECK(c.trained_tokens == 1234 && c.finished_at == 99 && !strcmp(c.status, "succeeded"), " ");
    CHECK(!strcmp(c.hyperparameters, "{\"n_epochs\":\"auto\"}"), " ");
    store_job_free(&c);
    CHECK(store_job_transition(s, ids[0], "running", "cancelled", &err) == HN_ESTATE, " ");
    CHECK(store_job_transition(s, ids[1], "queued", "cancelled", &err) == HN_OK, " ");
    CHECK(store_job_claim_next(s, &c, &err) == HN_OK && !strcmp(c.id, ids[2]), " ");
    store_job_free(&c);
    CHECK(store_job_claim_next(s, &c, &err) == HN_ENOTFOUND, " ");

    /* Events: newest first, cursor paging. */
    for (int i = 0; i < 5; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "event %d", i);
        CHECK(store_event_add(s, ids[0], "info", "message", msg, NULL, &err) == HN_OK, " ");
    }
    store_event *ev;
    CHECK(store_event_list(s, ids[0], NULL, 3, &ev, &n, &more, &err) == HN_OK, " ");
    CHECK(n == 3 && more && !strcmp(ev[0].message, "event 4") && !ev[0].data, " ");
    char after[64];
    snprintf(after, sizeof after, "%s", ev[2].id);
    store_events_free(ev, n);
    CHECK(store_event_list(s, ids[0], after, 3, &ev, &n, &more, &err) == HN_OK, " ");
    CHECK(n == 2 && !more && !strcmp(ev[1].message, "event 0"), " ");
    store_events_free(ev, n);
    /* Events of a job need the job (foreign keys are on). */
    CHECK(store_event_add(s, "ftjob-missing", "info", "message", "x", NULL, &err) != HN_OK, " ");

    store_ckpt ck = {0};
    snprintf(ck.job_id, sizeof ck.job_id, "%s", ids[0]);
    ck.step = 10;
    snprintf(ck.model_name, sizeof ck.model_name, "ft:m:personal::abc:ckpt-step-10");
    ck.metrics = "{\"step\":10}";
    snprintf(ck.dir, sizeof ck.dir, "/x");
    CHECK(store_ckpt_add(s, &ck, &err) == HN_OK && !strncmp(ck.id, "ftckpt_", 7), " ");
    store_ckpt *cv;
    CHECK(store_ckpt_list(s, ids[0], NULL, 10, &cv, &n, &more, &err) == HN_OK, " ");
    CHECK(n == 1 && cv[0].step == 10 && !strcmp(cv[0].metrics, "{\"step\":10}"), " ");
    store_ckpts_free(cv, n);

    store_model m = {0};
    snprintf(m.id, sizeof m.id, "ft:stories260K:personal:x:abc");
    snprintf(m.owned_by, sizeof m.owned_by, "personal");
    snprintf(m.base_model, sizeof m.base_model, "stories260K");
    snprintf(m.job_id, sizeof m.job_id, "%s", ids[0]);
    snprintf(m.path, sizeof m.path, "/y");
    CHECK(store_model_add(s, &m, &err) == HN_OK, "%s", err.msg);
    store_model *mv;
    CHECK(store_model_list(s, &mv, &n, &err) == HN_OK && n == 1, " ");
    free(mv);
    store_model g;
    CHECK(store_model_get(s, m.id, &g, &err) == HN_OK && !strcmp(g.path, "/y"), " ");
    CHECK(store_model_delete(s, m.id, &err) == HN_OK, " ");
    CHECK(store_model_get(s, m.id, &g, &err) == HN_ENOTFOUND, " ");
    store_close(s);
}

/* Counts directory entries of <dir>/files that are not "." or "..". */
static int count_files(const char *dir) {
    char p[600];
    snprintf(p, sizeof p, "%s/files", dir);
    DIR *d = opendir(p);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    if (d) closedir(d);
    return n;
}

/* Orphans left by a crash between the rename and the INSERT are swept. */
static void test_sweep(void) {
    char dir[512];
    subdir(dir, sizeof dir, "sweep");
    store *s = open_at(dir);
    store_file f;
    put_text(s, "kept\n", "fine-tune", &f);
    char p[1200];
    snprintf(p, sizeof p, "%s/files/file-orphanAAAAAAAAAAAAAAAAAAAA", dir);
    const void *parts[1] = {"x"};
    size_t lens[1] = {1};
    hn_err err;
    hn_file_write_atomic(p, parts, lens, 1, &err);
    snprintf(p, sizeof p, "%s/files/.upload-half", dir);
    hn_file_write_atomic(p, parts, lens, 1, &err);
    CHECK(count_files(dir) == 3, " ");
    store_sweep_orphans(s);
    CHECK(count_files(dir) == 1, " ");
    store_file g;
    CHECK(store_file_get(s, f.id, &g, &err) == HN_OK, " ");
    store_file_free(&g);
    store_close(s);
}

/* A child uploads in a loop; we kill -9 it at several points and check that
 * every row has its complete bytes and the database is intact. */
static void test_kill9(void) {
    char dir[512];
    subdir(dir, sizeof dir, "kill9");
    static const char body[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}\n";
    for (int round = 0; round < 4; round++) {
        pid_t pid = fork();
        if (pid == 0) {
            store *s = NULL;
            hn_err err;
            if (store_open(dir, &s, &err) != HN_OK) _exit(3);
            for (;;) {
                store_file f = {0};
                snprintf(f.filename, sizeof f.filename, "x.jsonl");
                snprintf(f.purpose, sizeof f.purpose, "fine-tune");
                snprintf(f.status, sizeof f.status, "processed");
                store_file_put(s, body, sizeof body - 1, &f, &err);
            }
        }
        usleep(150000 + 100000 * (useconds_t)round);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    store *s = open_at(dir);
    hn_err err;
    CHECK(store_check_integrity(s, &err) == HN_OK, "%s", err.msg);
    store_sweep_orphans(s);
    store_file *v;
    int n;
    bool more;
    CHECK(store_file_list(s, NULL, NULL, 100000, true, &v, &n, &more, &err) == HN_OK, " ");
    CHECK(n > 0, "the child committed nothing");
    for (int i = 0; i < n; i++) {
        char path[1200];
        store_file_path(s, v[i].id, path, sizeof path);
        size_t len;
        char *data = test_read(path, &len);
        CHECK(len == sizeof body - 1 && !memcmp(data, body, len), "%s damaged", v[i].id);
        free(data);
    }
    CHECK(count_files(dir) == n, "%d files on disk, %d rows", count_files(dir), n);
    store_files_free(v, n);
    store_close(s);
}

int main(void) {
    test_migrations();
    test_ids();
    test_files();
    test_jobs();
    test_sweep();
    test_kill9();
    return test_finish("test_store");
}
