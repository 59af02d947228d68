/* client_jobs.c — fine-tuning job output for `hone jobs`: the job summary,
 * event lines, and following a job (poll its status, print the events that
 * appeared since the last poll, optionally metrics as a progress bar) until
 * it succeeds, fails or is cancelled. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/client.h"

static const char *const job_fields[] = {
    "id", "status", "model", "fine_tuned_model", "training_file", "validation_file",
    "created_at", "finished_at", "estimated_finish", "trained_tokens", "seed", NULL};

static void print_hyper(const json_t *hp) {
    const char *k;
    json_t *v;
    char buf[256];
    if (!json_is_object(hp)) return;
    printf("%-18s", "hyperparameters");
    json_object_foreach((json_t *)hp, k, v) printf(" %s=%s", k, hc_str(hp, k, buf, sizeof buf));
    printf("\n");
}

static void print_ids(const char *label, const json_t *ids) {
    const json_t *v;
    size_t i;
    if (!json_array_size(ids)) return;
    printf("%-18s", label);
    json_array_foreach(ids, i, v) {
        const char *s = json_string_value(v);
        printf("%s %s", i ? "," : "", s ? s : "?");
    }
    printf("\n");
}

void hc_print_job(const json_t *job) {
    hc_print_fields(job, job_fields);
    print_hyper(json_object_get(job, "hyperparameters"));
    print_ids("result_files", json_object_get(job, "result_files"));
    const json_t *e = json_object_get(job, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (msg) {
        const char *code = json_string_value(json_object_get(e, "code"));
        printf("%-18s %s%s%s\n", "error", code ? code : "", code ? ": " : "", msg);
    }
}

void hc_print_event(const json_t *ev) {
    char t[64];
    const char *level = json_string_value(json_object_get(ev, "level"));
    const char *msg = json_string_value(json_object_get(ev, "message"));
    printf("%s  %s%s%s\n", hc_time(json_object_get(ev, "created_at"), t, sizeof t),
           level && strcmp(level, "info") ? level : "", level && strcmp(level, "info") ? ": " : "",
           msg ? msg : "");
}

/* ---- following a job ---------------------------------------------------- */

typedef struct follow {
    hc *c;
    const char *id;
    char last[256]; /* id of the newest event printed */
    bool bar, bar_open;
    bool polled; /* one poll succeeded: later connection failures are retried */
} follow;

/* Events newer than f->last, oldest first; NULL after an error (printed). */
static json_t *new_events(follow *f) {
    json_t *out = json_array();
    char after[256] = "", path[1024];
    for (bool found = false; !found;) {
        hn_buf p;
        hn_buf_init(&p);
        hc_path(path, sizeof path, "/fine_tuning/jobs/", f->id, "/events");
        hn_buf_puts(&p, path);
        hc_query(&p, "limit", "100");
        hc_query(&p, "after", *after ? after : NULL);
        json_t *page = hc_call(f->c, "GET", p.data, NULL);
        hn_buf_free(&p);
        if (!page) return json_decref(out), NULL;
        json_t *data = json_object_get(page, "data"), *ev;
        size_t i;
        json_array_foreach(data, i, ev) {
            const char *id = json_string_value(json_object_get(ev, "id"));
            if (id && !strcmp(id, f->last)) found = true;
            if (found) break;
            json_array_insert(out, 0, ev);
            snprintf(after, sizeof after, "%s", id ? id : "");
        }
        if (!json_is_true(json_object_get(page, "has_more")) || !json_array_size(data)) found = true;
        json_decref(page);
    }
    return out;
}

static void draw_bar(follow *f, const json_t *data) {
    long step = (long)json_integer_value(json_object_get(data, "step"));
    long total = (long)json_integer_value(json_object_get(data, "total_steps"));
    int fill = total > 0 ? (int)(30 * step / total) : 0;
    char bar[32];
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    printf("\r[%s] step %ld/%ld  train loss %.4f", bar, step, total,
           json_number_value(json_object_get(data, "train_loss")));
    const json_t *vl = json_object_get(data, "valid_loss");
    if (json_is_number(vl)) printf("  valid loss %.4f", json_number_value(vl));
    printf("\033[K");
    fflush(stdout);
    f->bar_open = true;
}

static void print_new(follow *f, json_t *events) {
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        const char *type = json_string_value(json_object_get(ev, "type"));
        const json_t *data = json_object_get(ev, "data");
        if (f->c->json) {
            char *s = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
            if (s) puts(s);
            free(s);
        } else if (f->bar && type && !strcmp(type, "metrics") && json_is_object(data)) {
            draw_bar(f, data);
        } else {
            if (f->bar_open) putchar('\n');
            f->bar_open = false;
            hc_print_event(ev);
        }
        const char *id = json_string_value(json_object_get(ev, "id"));
        snprintf(f->last, sizeof f->last, "%s", id ? id : "");
    }
    fflush(stdout);
}

static bool terminal(const char *status) {
    return !strcmp(status, "succeeded") || !strcmp(status, "failed") ||
           !strcmp(status, "cancelled");
}

static int finish(follow *f, json_t *job, const char *status) {
    if (f->bar_open) putchar('\n');
    if (f->c->json) hc_print_json(job);
    else {
        const char *model = json_string_value(json_object_get(job, "fine_tuned_model"));
        printf("job %s %s%s%s\n", f->id, status, model ? ": " : "", model ? model : "");
        const char *msg = json_string_value(json_object_get(json_object_get(job, "error"), "message"));
        if (msg) printf("error: %s\n", msg);
    }
    return strcmp(status, "succeeded") ? 1 : 0;
}

static double now(void);

static int timed_out(follow *f, double timeout_s, const char *status) {
    if (f->bar_open) putchar('\n');
    f->bar_open = false;
    return hc_fail(f->c, 1, "timed out after %g s; job %s is still %s", timeout_s, f->id,
                   status ? status : "?");
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A poll that got no HTTP response (server restarting, network): retried
 * quietly for up to a minute. */
static bool lost(follow *f, double *since) {
    if (!f->polled || f->c->last_status != 0) return false;
    if (*since == 0) {
        if (f->bar_open) putchar('\n');
        f->bar_open = false;
        fflush(stdout);
        fprintf(stderr, "%s: lost the connection to %s; retrying for up to 60 s\n", f->c->cmd,
                f->c->base);
        *since = now();
    }
    return now() - *since < 60;
}

int hc_follow_job(hc *c, const char *id, double timeout_s, double interval_s, bool bar) {
    follow f = {.c = c, .id = id, .bar = bar && isatty(STDOUT_FILENO)};
    double t0 = now(), down = 0;
    char path[1024];
    hc_path(path, sizeof path, "/fine_tuning/jobs/", id, NULL);
    for (int rc = -1;; usleep((useconds_t)(fmax(interval_s, 0.05) * 1e6))) {
        c->quiet_conn = down > 0;
        json_t *job = hc_call(c, "GET", path, NULL), *events = job ? new_events(&f) : NULL;
        if (!events) {
            json_decref(job);
            if (lost(&f, &down)) continue;
            if (down > 0) return hc_fail(c, 1, "no connection to %s for 60 s", c->base);
            return 1;
        }
        down = 0;
        f.polled = true;
        print_new(&f, events);
        json_decref(events);
        const char *status = json_string_value(json_object_get(job, "status"));
        if (status && terminal(status)) rc = finish(&f, job, status);
        else if (timeout_s > 0 && now() - t0 >= timeout_s) rc = timed_out(&f, timeout_s, status);
        json_decref(job);
        if (rc >= 0) return rc;
    }
}
