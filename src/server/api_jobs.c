/* api_jobs.c — /v1/fine_tuning/jobs: create (checked here: model, files,
 * hyperparameters, suffix, seed, metadata; the files' contents are checked by
 * the worker in validating_files), list (newest first, metadata filters),
 * retrieve, cancel, pause, resume, events and checkpoints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "server/http.h"

/* ---- JSON views --------------------------------------------------------- */

json_t *json_text(const char *text) {
    json_t *j = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    return j ? j : json_null();
}

static json_t *nullable_str(const char *s) { return s && *s ? json_string(s) : json_null(); }
static json_t *nullable_int(long long v, long long null_value) {
    return v == null_value ? json_null() : json_integer(v);
}

static json_t *job_error(const store_job *j) {
    if (strcmp(j->status, "failed")) return json_null();
    return json_pack("{s:o,s:o,s:o}", "code", nullable_str(j->error_code), "message",
                     nullable_str(j->error_message), "param", nullable_str(j->error_param));
}

json_t *json_job(const store_job *j) {
    bool done = !strcmp(j->status, "succeeded");
    json_t *hp = json_text(j->hyperparameters);
    json_t *o = json_object();
    json_object_set_new(o, "object", json_string("fine_tuning.job"));
    json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "model", json_string(j->model));
    json_object_set_new(o, "created_at", json_integer(j->created_at));
    json_object_set_new(o, "finished_at", nullable_int(j->finished_at, 0));
    json_object_set_new(o, "fine_tuned_model", done ? nullable_str(j->fine_tuned_model) : json_null());
    json_object_set_new(o, "organization_id", json_string("org-hone"));
    json_t *rf = json_array();
    if (j->result_file[0]) json_array_append_new(rf, json_string(j->result_file));
    json_object_set_new(o, "result_files", rf);
    json_object_set_new(o, "status", json_string(j->status));
    json_object_set_new(o, "validation_file", nullable_str(j->validation_file));
    json_object_set_new(o, "training_file", json_string(j->training_file));
    json_object_set_new(o, "hyperparameters", json_incref(hp));
    json_object_set_new(o, "trained_tokens", done ? nullable_int(j->trained_tokens, -1) : json_null());
    json_object_set_new(o, "error", job_error(j));
    json_object_set_new(o, "user_provided_suffix", nullable_str(j->suffix));
    json_object_set_new(o, "seed", json_integer(j->seed));
    json_object_set_new(o, "estimated_finish", nullable_int(j->estimated_finish, 0));
    json_object_set_new(o, "integrations", json_array());
    json_object_set_new(o, "metadata", json_text(j->metadata));
    json_object_set_new(o, "method", json_pack("{s:s,s:{s:o}}", "type", "supervised", "supervised",
                                               "hyperparameters", hp));
    return o;
}

static json_t *json_event(const store_event *e) {
    json_t *data = e->data ? json_text(e->data) : json_object();
    return json_pack("{s:s,s:s,s:I,s:s,s:s,s:s,s:o}", "object", "fine_tuning.job.event", "id",
                     e->id, "created_at", (json_int_t)e->created_at, "level", e->level, "message",
                     e->message ? e->message : "", "type", e->type, "data", data);
}

static json_t *json_ckpt(const store_ckpt *c) {
    return json_pack("{s:s,s:s,s:I,s:s,s:s,s:i,s:o}", "object", "fine_tuning.job.checkpoint", "id",
                     c->id, "created_at", (json_int_t)c->created_at,
                     "fine_tuned_model_checkpoint", c->model_name, "fine_tuning_job_id",
                     c->job_id, "step_number", c->step, "metrics", json_text(c->metrics));
}

/* ---- create --------------------------------------------------------------- */

/* Checks one hyperparameter ("auto" or a number in range) and copies it to out. */
static bool hp_check(http_req *r, json_t *in, json_t *out, const char *key, bool integer,
                     double lo, double hi, enum MHD_Result *res) {
    json_t *v = json_object_get(in, key);
    char param[80];
    snprintf(param, sizeof param, "hyperparameters.%s", key);
    if (!v || json_is_null(v) || (json_is_string(v) && !strcmp(json_string_value(v), "auto"))) {
        json_object_set_new(out, key, json_string("auto"));
        return true;
    }
    bool ok = integer ? json_is_integer(v) : json_is_number(v);
    double x = ok ? json_number_value(v) : 0;
    if (!ok || x < lo || x > hi || (!integer && x <= 0)) {
        if (integer)
            *res = http_bad(r, param, "Invalid '%s': expected \"auto\" or an integer from %g to %g.",
                            param, lo, hi);
        else
            *res = http_bad(r, param, "Invalid '%s': expected \"auto\" or a number greater than 0.",
                            param);
        return false;
    }
    json_object_set(out, key, v);
    return true;
}

static json_t *parse_hyperparameters(http_req *r, json_t *body, enum MHD_Result *res) {
    json_t *hp = json_object_get(body, "hyperparameters");
    json_t *method = json_object_get(body, "method");
    if (method && !json_is_null(method)) {
        json_t *type = json_object_get(method, "type");
        if (!json_is_object(method) || (type && !json_is_string(type))) {
            *res = http_bad(r, "method", "Invalid 'method': expected an object with a 'type'.");
            return NULL;
        }
        if (type && strcmp(json_string_value(type), "supervised")) {
            *res = http_bad(r, "method.type",
                            "Fine-tuning method '%s' is not supported by this server; use "
                            "'supervised'.",
                            json_string_value(type));
            return NULL;
        }
        json_t *mhp = json_object_get(json_object_get(method, "supervised"), "hyperparameters");
        if (mhp && !json_is_null(mhp)) hp = mhp;
    }
    if (hp && !json_is_null(hp) && !json_is_object(hp)) {
        *res = http_bad(r, "hyperparameters", "Invalid 'hyperparameters': expected an object.");
        return NULL;
    }
    json_t *out = json_object();
    if (!hp_check(r, hp, out, "batch_size", true, 1, 256, res) ||
        !hp_check(r, hp, out, "learning_rate_multiplier", false, 0, 1e6, res) ||
        !hp_check(r, hp, out, "n_epochs", true, 1, 50, res)) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static bool check_suffix(http_req *r, json_t *v, enum MHD_Result *res) {
    if (!v || json_is_null(v)) return true;
    const char *s = json_string_value(v);
    size_t n = s ? strlen(s) : 0;
    bool ok = s && n >= 1 && n <= 64;
    for (size_t i = 0; ok && i < n; i++)
        ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
             (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.';
    if (!ok)
        *res = http_bad(r, "suffix",
                        "Invalid 'suffix': expected 1 to 64 characters from a-z, A-Z, 0-9, '-', "
                        "'_' and '.'.");
    return ok;
}

static bool check_metadata(http_req *r, json_t *v, enum MHD_Result *res) {
    if (!v || json_is_null(v)) return true;
    bool ok = json_is_object(v) && json_object_size(v) <= 16;
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
        if (!ok) break;
        ok = strlen(k) <= 64 && json_is_string(x) && strlen(json_string_value(x)) <= 512;
    }
    if (!ok)
        *res = http_bad(r, "metadata",
                        "Invalid 'metadata': expected an object of at most 16 string values "
                        "(keys up to 64 characters, values up to 512).");
    return ok;
}

/* A file id field: present (if required), a fine-tune file that exists. */
static bool check_file_field(http_req *r, json_t *body, const char *key, bool required,
                             const char **id, enum MHD_Result *res) {
    json_t *v = json_object_get(body, key);
    *id = NULL;
    if (!v || json_is_null(v)) {
        if (required) *res = http_bad(r, key, "Missing required parameter: '%s'.", key);
        return !required;
    }
    if (!json_is_string(v)) {
        *res = http_bad(r, key, "Invalid '%s': expected a file ID string.", key);
        return false;
    }
    *id = json_string_value(v);
    store_file f;
    if (store_file_get(r->srv->st, *id, &f, NULL) != HN_OK) {
        *res = http_bad(r, key, "invalid %s: %s (no such file)", key, *id);
        return false;
    }
    bool ok = !strcmp(f.purpose, "fine-tune");
    if (!ok)
        *res = http_bad(r, key, "invalid %s: %s has purpose '%s'; fine-tuning needs 'fine-tune'.",
                        key, *id, f.purpose);
    store_file_free(&f);
    return ok;
}

static bool check_model(http_req *r, json_t *body, const char **model, enum MHD_Result *res) {
    json_t *v = json_object_get(body, "model");
    *model = json_string_value(v);
    if (!*model) {
        *res = http_bad(r, "model", v ? "Invalid 'model': expected a string."
                                      : "Missing required parameter: 'model'.");
        return false;
    }
    reg_model info;
    hn_err err;
    if (registry_find(r->srv->reg, *model, &info, &err) != HN_OK || info.fine_tuned) {
        *res = http_error(r, 400, "invalid_request_error", "model", "model_not_found",
                          "Model %s is not available for fine-tuning or does not exist.", *model);
        return false;
    }
    return true;
}

static bool check_seed(http_req *r, json_t *v, long long *seed, enum MHD_Result *res) {
    if (!v || json_is_null(v)) {
        unsigned u = 0;
        if (getrandom(&u, sizeof u, 0) != sizeof u) u = (unsigned)time(NULL);
        *seed = u & 0x7fffffff;
        return true;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 2147483647) {
        *res = http_bad(r, "seed", "Invalid 'seed': expected an integer from 0 to 2147483647.");
        return false;
    }
    *seed = json_integer_value(v);
    return true;
}

static void add_created_events(store *st, const store_job *j) {
    char msg[300];
    snprintf(msg, sizeof msg, "Created fine-tuning job: %s", j->id);
    store_event_add(st, j->id, "info", "message", msg, NULL, NULL);
    if (j->validation_file[0])
        snprintf(msg, sizeof msg, "Validating training file: %s and validation file: %s",
                 j->training_file, j->validation_file);
    else snprintf(msg, sizeof msg, "Validating training file: %s", j->training_file);
    store_event_add(st, j->id, "info", "message", msg, NULL, NULL);
}

static enum MHD_Result job_insert(http_req *r, json_t *body, const char *model, const char *train,
                                  const char *valid, json_t *hp, long long seed) {
    store_job j = {0};
    store_new_id("ftjob-", j.id, sizeof j.id);
    snprintf(j.model, sizeof j.model, "%s", model);
    snprintf(j.training_file, sizeof j.training_file, "%s", train);
    snprintf(j.validation_file, sizeof j.validation_file, "%s", valid ? valid : "");
    snprintf(j.status, sizeof j.status, "validating_files");
    const char *suffix = json_string_value(json_object_get(body, "suffix"));
    snprintf(j.suffix, sizeof j.suffix, "%s", suffix ? suffix : "");
    worker_model_name(model, r->srv->cfg.owner, j.suffix, j.id, j.fine_tuned_model,
                      sizeof j.fine_tuned_model);
    j.seed = seed;
    j.hyperparameters = json_dumps(hp, JSON_COMPACT);
    j.method = json_dumps(json_pack("{s:s}", "type", "supervised"), JSON_COMPACT);
    json_t *meta = json_object_get(body, "metadata");
    j.metadata = json_is_object(meta) ? json_dumps(meta, JSON_COMPACT) : NULL;
    j.trained_tokens = -1;
    hn_err err;
    enum MHD_Result res;
    if (store_job_insert(r->srv->st, &j, &err) != HN_OK) {
        res = http_error(r, 500, "server_error", NULL, NULL, "%s", err.msg);
    } else {
        add_created_events(r->srv->st, &j);
        res = http_json(r, 200, json_job(&j));
        worker_wake(r->srv->wk);
    }
    store_job_free(&j);
    return res;
}

static enum MHD_Result job_create(http_req *r) {
    enum MHD_Result res;
    json_t *body = http_body_json(r, &res);
    if (!body) return res;
    const char *model, *train, *valid;
    long long seed = 0;
    json_t *hp = NULL;
    bool ok = check_model(r, body, &model, &res) &&
              check_file_field(r, body, "training_file", true, &train, &res) &&
              check_file_field(r, body, "validation_file", false, &valid, &res) &&
              check_suffix(r, json_object_get(body, "suffix"), &res) &&
              check_metadata(r, json_object_get(body, "metadata"), &res) &&
              check_seed(r, json_object_get(body, "seed"), &seed, &res) &&
              (hp = parse_hyperparameters(r, body, &res)) != NULL;
    if (ok) res = job_insert(r, body, model, train, valid, hp, seed);
    json_decref(hp);
    json_decref(body);
    return res;
}

/* ---- list, retrieve ------------------------------------------------------- */

typedef struct meta_filter {
    char keys[16][72];
    char vals[16][520];
    int n;
} meta_filter;

static enum MHD_Result collect_meta(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value) {
    (void)kind;
    meta_filter *f = cls;
    size_t n = strlen(key);
    if (strncmp(key, "metadata[", 9) || n < 11 || key[n - 1] != ']' || f->n == 16) return MHD_YES;
    snprintf(f->keys[f->n], sizeof f->keys[0], "%.*s", (int)(n - 10), key + 9);
    snprintf(f->vals[f->n], sizeof f->vals[0], "%s", value ? value : "");
    f->n++;
    return MHD_YES;
}

static enum MHD_Result job_list(http_req *r) {
    int limit;
    enum MHD_Result res;
    if (!http_query_limit(r, 20, 10000, &limit, &res)) return res;
    meta_filter mf = {0};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_meta, &mf);
    const char *keys[16], *vals[16];
    for (int i = 0; i < mf.n; i++) keys[i] = mf.keys[i], vals[i] = mf.vals[i];
    store_job *v;
    int n;
    bool more;
    hn_err err;
    hn_status rc = store_job_list(r->srv->st, http_query(r, "after"), limit, keys, vals, mf.n, &v,
                                  &n, &more, &err);
    if (rc == HN_ENOTFOUND) return http_bad(r, "after", "%s", err.msg);
    if (rc != HN_OK) return http_error(r, 500, "server_error", NULL, NULL, "%s", err.msg);
    json_t *data = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(data, json_job(&v[i]));
    store_jobs_free(v, n);
    return http_json(r, 200, json_pack("{s:s,s:o,s:b}", "object", "list", "data", data,
                                       "has_more", more));
}

static enum MHD_Result job_reply(http_req *r, const char *id) {
    store_job j;
    hn_err err;
    hn_status rc = store_job_get(r->srv->st, id, &j, &err);
    if (rc != HN_OK) return http_error(r, 500, "server_error", NULL, NULL, "%s", err.msg);
    enum MHD_Result res = http_json(r, 200, json_job(&j));
    store_job_free(&j);
    return res;
}

/* ---- cancel, pause, resume ------------------------------------------------ */

static bool terminal(const char *status) {
    return !strcmp(status, "succeeded") || !strcmp(status, "failed") ||
           !strcmp(status, "cancelled");
}

static enum MHD_Result job_cancel(http_req *r, store_job *j) {
    if (terminal(j->status))
        return http_bad(r, NULL, "Job %s has already %s and cannot be cancelled.", j->id,
                        !strcmp(j->status, "succeeded") ? "completed" : j->status);
    store *st = r->srv->st;
    if (!strcmp(j->status, "running")) store_job_set_control(st, j->id, "cancel", NULL);
    snprintf(j->error_code, sizeof j->error_code, "%s", ""); /* keep fields; status below */
    char from[24];
    snprintf(from, sizeof from, "%s", j->status);
    snprintf(j->status, sizeof j->status, "cancelled");
    j->finished_at = (long long)time(NULL);
    j->estimated_finish = 0;
    if (store_job_update_if(st, j, from, NULL) != HN_OK)
        return http_bad(r, NULL, "Job %s changed state; retry.", j->id);
    store_event_add(st, j->id, "info", "message", "Fine-tuning job cancelled", NULL, NULL);
    return job_reply(r, j->id);
}

/* Waits (up to ~10 s) for a running job's trainer to reach its next step and
 * write the pause checkpoint. */
static void wait_while_running(store *st, const char *id) {
    for (int i = 0; i < 200; i++) {
        store_job j;
        if (store_job_get(st, id, &j, NULL) != HN_OK) return;
        bool running = !strcmp(j.status, "running");
        store_job_free(&j);
        if (!running) return;
        usleep(50000);
    }
}

static enum MHD_Result job_pause(http_req *r, store_job *j) {
    if (strcmp(j->status, "running"))
        return http_bad(r, NULL, "Job %s is %s; only a running job can be paused.", j->id,
                        j->status);
    store_job_set_control(r->srv->st, j->id, "pause", NULL);
    wait_while_running(r->srv->st, j->id);
    return job_reply(r, j->id);
}

static enum MHD_Result job_resume(http_req *r, store_job *j) {
    if (strcmp(j->status, "paused") || j->pid)
        return http_bad(r, NULL, "Job %s is %s; only a paused job can be resumed.", j->id,
                        j->status);
    if (store_job_transition(r->srv->st, j->id, "paused", "queued", NULL) != HN_OK)
        return http_bad(r, NULL, "Job %s changed state; retry.", j->id);
    store_event_add(r->srv->st, j->id, "info", "message",
                    "Fine-tuning job resumed, moving job to queued state", NULL, NULL);
    worker_wake(r->srv->wk);
    return job_reply(r, j->id);
}

/* ---- events, checkpoints ---------------------------------------------------- */

static enum MHD_Result job_events(http_req *r, const char *id) {
    int limit;
    enum MHD_Result res;
    if (!http_query_limit(r, 20, 10000, &limit, &res)) return res;
    store_event *v;
    int n;
    bool more;
    hn_err err;
    hn_status rc = store_event_list(r->srv->st, id, http_query(r, "after"), limit, &v, &n, &more,
                                    &err);
    if (rc == HN_ENOTFOUND) return http_bad(r, "after", "%s", err.msg);
    if (rc != HN_OK) return http_error(r, 500, "server_error", NULL, NULL, "%s", err.msg);
    json_t *data = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(data, json_event(&v[i]));
    store_events_free(v, n);
    return http_json(r, 200, json_pack("{s:s,s:o,s:b}", "object", "list", "data", data,
                                       "has_more", more));
}

static enum MHD_Result job_checkpoints(http_req *r, const char *id) {
    int limit;
    enum MHD_Result res;
    if (!http_query_limit(r, 10, 10000, &limit, &res)) return res;
    store_ckpt *v;
    int n;
    bool more;
    hn_err err;
    hn_status rc = store_ckpt_list(r->srv->st, id, http_query(r, "after"), limit, &v, &n, &more,
                                   &err);
    if (rc == HN_ENOTFOUND) return http_bad(r, "after", "%s", err.msg);
    if (rc != HN_OK) return http_error(r, 500, "server_error", NULL, NULL, "%s", err.msg);
    json_t *data = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(data, json_ckpt(&v[i]));
    json_t *o = json_pack("{s:s,s:o,s:b}", "object", "list", "data", data, "has_more", more);
    json_object_set_new(o, "first_id", n ? json_string(v[0].id) : json_null());
    json_object_set_new(o, "last_id", n ? json_string(v[n - 1].id) : json_null());
    store_ckpts_free(v, n);
    return http_json(r, 200, o);
}

static enum MHD_Result job_one(http_req *r, const char *id, const char *action) {
    store_job j;
    hn_err err;
    hn_status rc = store_job_get(r->srv->st, id, &j, &err);
    if (rc == HN_ENOTFOUND)
        return http_not_found(r, "id", "No such fine-tuning job: %s", id);
    if (rc != HN_OK) return http_error(r, 500, "server_error", NULL, NULL, "%s", err.msg);
    bool post = !strcmp(r->method, "POST");
    enum MHD_Result res;
    if (!action && !post) res = http_json(r, 200, json_job(&j));
    else if (action && post && !strcmp(action, "cancel")) res = job_cancel(r, &j);
    else if (action && post && !strcmp(action, "pause")) res = job_pause(r, &j);
    else if (action && post && !strcmp(action, "resume")) res = job_resume(r, &j);
    else if (action && !post && !strcmp(action, "events")) res = job_events(r, id);
    else if (action && !post && !strcmp(action, "checkpoints")) res = job_checkpoints(r, id);
    else res = http_not_found(r, NULL, "Unknown request URL: %s /v1/fine_tuning/jobs/%s/%s.",
                              r->method, id, action ? action : "");
    store_job_free(&j);
    return res;
}

enum MHD_Result api_jobs(http_req *r, char **seg, int nseg) {
    bool post = !strcmp(r->method, "POST"), get = !strcmp(r->method, "GET");
    if (nseg >= 2 && !strcmp(seg[1], "jobs")) {
        if (nseg == 2 && post) return job_create(r);
        if (nseg == 2 && get) return job_list(r);
        if (nseg == 3 || nseg == 4) return job_one(r, seg[2], nseg == 4 ? seg[3] : NULL);
    }
    return http_not_found(r, NULL, "Unknown request URL: %s /v1/fine_tuning/....", r->method);
}
