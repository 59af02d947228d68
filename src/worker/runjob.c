/* runjob.c — the training child: runs one claimed job with ft_run and writes
 * everything it learns to the store as it happens — events, one `metrics`
 * event per step, checkpoints, progress (trained tokens, estimated finish) —
 * then the outcome: succeeded (fine-tuned model row, results file with the
 * base64 metrics CSV, resolved hyperparameters), paused (resumable from the
 * checkpoint written on stop), cancelled, or failed with an error code.
 * Final writes are conditional on the job still being `running`, so a cancel
 * that raced the end of training wins. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "train/finetune.h"
#include "worker/worker.h"

typedef struct run_ctx {
    store *st;
    store_job job;
    char ft_name[512];
    time_t started;
    int first_step; /* step at (re)start, for the time estimate */
    time_t last_poll;
    bool stop_requested;
} run_ctx;

static void on_event(void *p, const char *level, const char *msg) {
    run_ctx *c = p;
    store_event_add(c->st, c->job.id, level, "message", msg, NULL, NULL);
}

static void put_metric(json_t *o, const char *k, double v) {
    if (!isnan(v)) json_object_set_new(o, k, json_real(v));
}

/* The metrics object OpenAI puts in events and checkpoints. */
static json_t *metrics_json(const ft_metrics *m, bool with_total) {
    json_t *o = json_object();
    json_object_set_new(o, "step", json_integer(m->step));
    if (with_total) json_object_set_new(o, "total_steps", json_integer(m->total_steps));
    put_metric(o, "train_loss", m->train_loss);
    put_metric(o, "train_mean_token_accuracy", m->train_accuracy);
    put_metric(o, "valid_loss", m->valid_loss);
    put_metric(o, "valid_mean_token_accuracy", m->valid_mean_token_accuracy);
    put_metric(o, "full_valid_loss", m->full_valid_loss);
    put_metric(o, "full_valid_mean_token_accuracy", m->full_valid_mean_token_accuracy);
    return o;
}

static void on_metrics(void *p, const ft_metrics *m) {
    run_ctx *c = p;
    hn_buf msg;
    hn_buf_init(&msg);
    hn_buf_printf(&msg, "Step %d/%d: training loss=%.2f", m->step, m->total_steps, m->train_loss);
    if (!isnan(m->valid_loss)) hn_buf_printf(&msg, ", validation loss=%.2f", m->valid_loss);
    if (!isnan(m->full_valid_loss))
        hn_buf_printf(&msg, ", full validation loss=%.2f", m->full_valid_loss);
    json_t *mj = metrics_json(m, true);
    char *data = json_dumps(mj, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(mj);
    store_event_add(c->st, c->job.id, "info", "metrics", msg.data, data, NULL);
    free(data);
    hn_buf_free(&msg);
    if (c->first_step < 0) c->first_step = m->step - 1;
    time_t now = time(NULL);
    int done = m->step - c->first_step;
    long long eta = 0;
    if (done > 0 && m->total_steps > m->step)
        eta = (long long)now + (long long)((double)(now - c->started) / done *
                                           (m->total_steps - m->step)) + 1;
    store_job_progress(c->st, c->job.id, m->trained_tokens, eta, NULL, NULL);
}

static void on_checkpoint(void *p, int step, int epoch, const char *dir, const ft_metrics *m) {
    (void)epoch;
    run_ctx *c = p;
    store_ckpt ck = {0};
    snprintf(ck.job_id, sizeof ck.job_id, "%s", c->job.id);
    ck.step = step;
    snprintf(ck.model_name, sizeof ck.model_name, "%s:ckpt-step-%d", c->ft_name, step);
    json_t *mj = metrics_json(m, false);
    ck.metrics = json_dumps(mj, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(mj);
    snprintf(ck.dir, sizeof ck.dir, "%s", dir);
    if (store_ckpt_add(c->st, &ck, NULL) == HN_OK) {
        char msg[800];
        snprintf(msg, sizeof msg, "Checkpoint created at step %d with Snapshot ID: %s", step,
                 ck.model_name);
        store_event_add(c->st, c->job.id, "info", "message", msg, NULL, NULL);
    }
    free(ck.metrics);
    store_job_progress(c->st, c->job.id, m->trained_tokens, 0, dir, NULL);
}

/* Polls the job row (at most every 100 ms): a cancel or pause request, or a
 * status that is no longer running, stops training. */
static bool should_stop(void *p, bool *checkpoint_on_stop) {
    run_ctx *c = p;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    time_t now_ms = ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (!c->stop_requested && now_ms - c->last_poll < 100) return false;
    c->last_poll = now_ms;
    store_job j;
    if (store_job_get(c->st, c->job.id, &j, NULL) != HN_OK) return false;
    bool pause = !strcmp(j.control, "pause");
    bool stop = pause || !strcmp(j.control, "cancel") || strcmp(j.status, "running");
    store_job_free(&j);
    *checkpoint_on_stop = pause;
    c->stop_requested = stop;
    return stop;
}

/* "auto" or a number from a hyperparameters object. */
static double hp_num(json_t *hp, const char *key) {
    json_t *v = json_object_get(hp, key);
    return json_is_number(v) ? json_number_value(v) : 0;
}

static void fill_config(run_ctx *c, const char *data_dir, const char *model_path, ft_config *cfg,
                        char *paths, size_t cap) {
    ft_config_default(cfg);
    char *train = paths, *valid = paths + cap, *out = paths + 2 * cap;
    store_file_path(c->st, c->job.training_file, train, cap);
    if (c->job.validation_file[0]) store_file_path(c->st, c->job.validation_file, valid, cap);
    snprintf(out, cap, "%s/jobs/%s", data_dir, c->job.id);
    cfg->model_path = model_path;
    cfg->train_path = train;
    cfg->valid_path = c->job.validation_file[0] ? valid : NULL;
    cfg->out_dir = out;
    cfg->resume_dir = c->job.resume_dir[0] ? c->job.resume_dir : NULL;
    json_t *hp = json_loads(c->job.hyperparameters ? c->job.hyperparameters : "{}", 0, NULL);
    cfg->n_epochs = (int)hp_num(hp, "n_epochs");
    cfg->batch_size = (int)hp_num(hp, "batch_size");
    cfg->lr_multiplier = hp_num(hp, "learning_rate_multiplier");
    json_decref(hp);
    cfg->seed = (uint64_t)c->job.seed;
    cfg->quiet = true;
}

static void base64(const unsigned char *in, size_t n, hn_buf *out) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        char q[4] = {t[v >> 18 & 63], t[v >> 12 & 63], i + 1 < n ? t[v >> 6 & 63] : '=',
                     i + 2 < n ? t[v & 63] : '='};
        hn_buf_append(out, q, 4);
    }
}

static void csv_cell(hn_buf *b, json_t *data, const char *key) {
    json_t *v = json_object_get(data, key);
    hn_buf_putc(b, ',');
    if (json_is_number(v)) hn_buf_printf(b, "%.5f", json_number_value(v));
}

/* OpenAI's results CSV from the job's metrics events, oldest step first. */
static void build_csv(run_ctx *c, hn_buf *csv) {
    hn_buf_puts(csv, "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n");
    store_event *ev;
    int n;
    bool more;
    if (store_event_list(c->st, c->job.id, NULL, 1000000, &ev, &n, &more, NULL) != HN_OK) return;
    for (int i = n - 1; i >= 0; i--) {
        if (strcmp(ev[i].type, "metrics") || !ev[i].data) continue;
        json_t *d = json_loads(ev[i].data, 0, NULL);
        hn_buf_printf(csv, "%lld", (long long)json_integer_value(json_object_get(d, "step")));
        csv_cell(csv, d, "train_loss");
        csv_cell(csv, d, "train_mean_token_accuracy");
        csv_cell(csv, d, "valid_loss");
        csv_cell(csv, d, "valid_mean_token_accuracy");
        hn_buf_putc(csv, '\n');
        json_decref(d);
    }
    store_events_free(ev, n);
}

static void put_results_file(run_ctx *c, store_job *j) {
    hn_buf csv, b64;
    hn_buf_init(&csv);
    hn_buf_init(&b64);
    build_csv(c, &csv);
    base64((const unsigned char *)csv.data, csv.len, &b64);
    store_file f = {0};
    snprintf(f.filename, sizeof f.filename, "step_metrics.csv");
    snprintf(f.purpose, sizeof f.purpose, "fine-tune-results");
    snprintf(f.status, sizeof f.status, "processed");
    if (store_file_put(c->st, b64.data ? b64.data : "", b64.len, &f, NULL) == HN_OK)
        snprintf(j->result_file, sizeof j->result_file, "%s", f.id);
    hn_buf_free(&csv);
    hn_buf_free(&b64);
}

static void record_success(run_ctx *c, const ft_result *res, const char *model_path) {
    store_job j;
    if (store_job_get(c->st, c->job.id, &j, NULL) != HN_OK) return;
    put_results_file(c, &j);
    snprintf(j.status, sizeof j.status, "succeeded");
    j.finished_at = (long long)time(NULL);
    j.estimated_finish = 0;
    j.trained_tokens = res->trained_tokens;
    j.pid = 0;
    free(j.hyperparameters);
    json_t *hp = json_pack("{s:i,s:i,s:f}", "n_epochs", res->n_epochs, "batch_size",
                           res->batch_size, "learning_rate_multiplier", res->lr_multiplier);
    j.hyperparameters = json_dumps(hp, JSON_COMPACT);
    json_decref(hp);
    store_model m = {0};
    snprintf(m.id, sizeof m.id, "%s", c->ft_name);
    snprintf(m.owned_by, sizeof m.owned_by, "%s", strchr(c->ft_name + 3, ':') + 1);
    *strchr(m.owned_by, ':') = 0;
    snprintf(m.base_model, sizeof m.base_model, "%s", j.model);
    snprintf(m.job_id, sizeof m.job_id, "%s", j.id);
    snprintf(m.path, sizeof m.path, "%s", res->final_dir);
    (void)model_path;
    if (store_model_add(c->st, &m, NULL) == HN_OK &&
        store_job_update_if(c->st, &j, "running", NULL) == HN_OK) {
        char msg[700];
        snprintf(msg, sizeof msg, "New fine-tuned model created: %s", c->ft_name);
        store_event_add(c->st, j.id, "info", "message", msg, NULL, NULL);
        store_event_add(c->st, j.id, "info", "message", "The job has successfully completed",
                        NULL, NULL);
    }
    store_job_free(&j);
}

/* Training stopped on request: paused (resumable) or cancelled. */
static void record_stop(run_ctx *c) {
    store_job j;
    if (store_job_get(c->st, c->job.id, &j, NULL) != HN_OK) return;
    bool pause = !strcmp(j.control, "pause");
    snprintf(j.status, sizeof j.status, pause ? "paused" : "cancelled");
    j.control[0] = 0;
    j.pid = 0;
    j.estimated_finish = 0;
    if (!pause) j.finished_at = (long long)time(NULL);
    if (store_job_update_if(c->st, &j, "running", NULL) == HN_OK)
        store_event_add(c->st, j.id, "info", "message",
                        pause ? "Fine-tuning job paused" : "Fine-tuning job cancelled", NULL,
                        NULL);
    store_job_free(&j);
}

static void record_failure(run_ctx *c, const hn_err *e) {
    store_job j;
    if (store_job_get(c->st, c->job.id, &j, NULL) != HN_OK) return;
    bool data = e->code == HN_EFORMAT || e->code == HN_EINVAL;
    snprintf(j.status, sizeof j.status, "failed");
    snprintf(j.error_code, sizeof j.error_code, "%s",
             data ? "invalid_training_file" : "server_error");
    snprintf(j.error_param, sizeof j.error_param, "%s", data ? "training_file" : "");
    free(j.error_message);
    j.error_message = strdup(e->msg);
    j.finished_at = (long long)time(NULL);
    j.pid = 0;
    if (store_job_update_if(c->st, &j, "running", NULL) == HN_OK)
        store_event_add(c->st, j.id, "error", "message", e->msg, NULL, NULL);
    store_job_free(&j);
}

static void announce_start(run_ctx *c) {
    char msg[1400];
    if (c->job.resume_dir[0])
        snprintf(msg, sizeof msg, "Fine-tuning job resumed from checkpoint %s", c->job.resume_dir);
    else snprintf(msg, sizeof msg, "Fine-tuning job started");
    store_event_add(c->st, c->job.id, "info", "message", msg, NULL, NULL);
}

hn_status worker_run_job(const char *data_dir, const char *job_id, const char *model_path,
                         hn_err *err) {
    run_ctx c = {0};
    c.first_step = -1;
    c.started = time(NULL);
    hn_status rc = store_open(data_dir, &c.st, err);
    if (rc != HN_OK) return rc;
    rc = store_job_get(c.st, job_id, &c.job, err);
    if (rc == HN_OK && strcmp(c.job.status, "running"))
        rc = hn_errf(err, HN_ESTATE, "job %s is %s, not running", job_id, c.job.status);
    if (rc != HN_OK) {
        store_close(c.st);
        return rc;
    }
    snprintf(c.ft_name, sizeof c.ft_name, "%s", c.job.fine_tuned_model);
    announce_start(&c);
    static char paths[3][1200];
    ft_config cfg;
    fill_config(&c, data_dir, model_path, &cfg, paths[0], sizeof paths[0]);
    ft_callbacks cb = {&c, on_event, on_metrics, on_checkpoint, should_stop};
    ft_result res = {0};
    hn_err terr = {0};
    rc = ft_run(&cfg, &cb, &res, &terr);
    if (rc == HN_OK) record_success(&c, &res, model_path);
    else if (rc == HN_ECANCELLED) record_stop(&c);
    else record_failure(&c, &terr);
    store_job_free(&c.job);
    store_close(c.st);
    return HN_OK;
}
