/* cmd_jobs.c — `hone jobs create|list|get|cancel|pause|resume|events|
 * checkpoints|wait|follow`: the fine-tuning jobs API of a running `hone serve`
 * (or OpenAI) through the client in client.c. */
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "cli/cli.h"
#include "cli/client.h"

static const char *usage =
    "usage: hone jobs <subcommand> [options]\n"
    "\n"
    "  create --model M --train FILE [options]   start a fine-tuning job\n"
    "      --train FILE        training file: an uploaded file ID, or a local .jsonl\n"
    "                          path (uploaded first)\n"
    "      --valid FILE        validation file (same)\n"
    "      --suffix S          goes into the model name ft:<model>:<owner>:<S>:<id>\n"
    "      --epochs N  --batch-size N  --lr-multiplier X  --seed S\n"
    "      --metadata K=V      (repeatable)\n"
    "      --wait              then follow it like `jobs wait`\n"
    "  list [--limit N] [--after ID]             newest first\n"
    "  get ID | cancel ID | pause ID | resume ID\n"
    "  events ID [--limit N]                     oldest first (all unless --limit)\n"
    "  checkpoints ID\n"
    "  wait ID [--timeout S] [--interval S]      print new events until the job ends;\n"
    "                                            exit 0 if it succeeded, 1 otherwise\n"
    "  follow ID [--timeout S] [--interval S]    the same, metrics as a progress bar\n"
    "\n"
    "common options:\n";

/* ---- create ------------------------------------------------------------- */

typedef struct create_args {
    const char *model, *train, *valid, *suffix, *epochs, *batch, *lr, *seed;
    json_t *metadata;
    bool wait;
} create_args;

/* A local file is uploaded and replaced by its ID; anything else is an ID. */
static bool resolve_file(hc *c, const char **arg, char *id, size_t cap) {
    if (!*arg || !hn_path_exists(*arg) || hn_path_is_dir(*arg)) return true;
    json_t *f = hc_upload(c, *arg, "fine-tune");
    const char *fid = json_string_value(json_object_get(f, "id"));
    const char *status = json_string_value(json_object_get(f, "status"));
    if (fid) {
        fprintf(stderr, "%s: uploaded %s as %s\n", c->cmd, *arg, fid);
        if (status && !strcmp(status, "error"))
            fprintf(stderr, "%s: warning: %s has errors: %s\n", c->cmd, *arg,
                    json_string_value(json_object_get(f, "status_details")));
        snprintf(id, cap, "%s", fid);
        *arg = id;
    }
    json_decref(f);
    return fid != NULL;
}

static bool add_number(hc *c, json_t *o, const char *key, const char *opt, const char *v,
                       bool integer) {
    long n;
    double x;
    if (!v) return true;
    if (!strcmp(v, "auto")) return json_object_set_new(o, key, json_string("auto")) == 0;
    if (integer) return hc_parse_int(c, opt, v, 0, 2147483647L, &n) &&
                        json_object_set_new(o, key, json_integer(n)) == 0;
    return hc_parse_double(c, opt, v, &x) && json_object_set_new(o, key, json_real(x)) == 0;
}

static json_t *create_body(hc *c, const create_args *a) {
    json_t *b = json_pack("{s:s,s:s}", "model", a->model, "training_file", a->train);
    json_t *hp = json_object();
    bool ok = add_number(c, hp, "n_epochs", "--epochs", a->epochs, true) &&
              add_number(c, hp, "batch_size", "--batch-size", a->batch, true) &&
              add_number(c, hp, "learning_rate_multiplier", "--lr-multiplier", a->lr, false) &&
              add_number(c, b, "seed", "--seed", a->seed, true);
    if (a->valid) json_object_set_new(b, "validation_file", json_string(a->valid));
    if (a->suffix) json_object_set_new(b, "suffix", json_string(a->suffix));
    if (json_object_size(a->metadata)) json_object_set(b, "metadata", a->metadata);
    if (json_object_size(hp))
        json_object_set_new(b, "method", json_pack("{s:s,s:{s:O}}", "type", "supervised",
                                                   "supervised", "hyperparameters", hp));
    json_decref(hp);
    if (!ok) json_decref(b);
    return ok ? b : NULL;
}

static bool metadata_opt(hc *c, json_t *md, const char *kv) {
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) return hc_fail(c, 0, "--metadata needs KEY=VALUE, not '%s'", kv) != 0;
    char key[128];
    snprintf(key, sizeof key, "%.*s", (int)(eq - kv), kv);
    return json_object_set_new(md, key, json_string(eq + 1)) == 0;
}

static bool create_opt(hc *c, int argc, char **argv, int *i, create_args *a, bool *bad) {
    const char *v;
    if (cli_opt(argc, argv, i, "--model", &a->model, bad)) return true;
    if (cli_opt(argc, argv, i, "--train", &a->train, bad)) return true;
    if (cli_opt(argc, argv, i, "--valid", &a->valid, bad)) return true;
    if (cli_opt(argc, argv, i, "--suffix", &a->suffix, bad)) return true;
    if (cli_opt(argc, argv, i, "--epochs", &a->epochs, bad)) return true;
    if (cli_opt(argc, argv, i, "--batch-size", &a->batch, bad)) return true;
    if (cli_opt(argc, argv, i, "--lr-multiplier", &a->lr, bad)) return true;
    if (cli_opt(argc, argv, i, "--seed", &a->seed, bad)) return true;
    if (cli_opt(argc, argv, i, "--metadata", &v, bad)) {
        if (!*bad && !metadata_opt(c, a->metadata, v)) *bad = true;
        return true;
    }
    if (cli_flag(argv, *i, "--wait")) return a->wait = true;
    return false;
}

static int create_run(hc *c, create_args *a) {
    char tid[256], vid[256];
    if (!a->model || !a->train) return hc_fail(c, 2, "--model and --train are required");
    if (!resolve_file(c, &a->train, tid, sizeof tid) || !resolve_file(c, &a->valid, vid, sizeof vid))
        return 1;
    json_t *body = create_body(c, a);
    if (!body) return 2;
    json_t *job = hc_call(c, "POST", "/fine_tuning/jobs", body);
    json_decref(body);
    if (!job) return 1;
    char id[256];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(job, "id")));
    hc_show(c, job, hc_print_job);
    if (!a->wait) return 0;
    fflush(stdout);
    return hc_follow_job(c, id, 0, 1.0, true);
}

static int jobs_create(hc *c, int argc, char **argv) {
    create_args a = {.metadata = json_object()};
    bool bad = false;
    for (int i = 1; i < argc && !bad; i++) {
        if (hc_common_opt(c, argc, argv, &i, &bad)) continue;
        if (create_opt(c, argc, argv, &i, &a, &bad)) continue;
        if (!hc_positional(c, argv, i, NULL, &(int){0}, 0)) bad = true;
    }
    int rc = bad ? 2 : create_run(c, &a);
    json_decref(a.metadata);
    return rc;
}

/* ---- list, get, cancel/pause/resume ------------------------------------- */

static void print_jobs(const json_t *page) {
    static const char *const keys[] = {"id", "status", "model", "created_at", "fine_tuned_model",
                                       NULL};
    static const int widths[] = {30, 16, 14, 19, 0};
    hc_print_table(page, keys, widths);
}

static int jobs_list(hc *c, int argc, char **argv) {
    const char *limit = NULL, *after = NULL;
    bool bad = false;
    for (int i = 1; i < argc && !bad; i++) {
        if (hc_common_opt(c, argc, argv, &i, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--limit", &limit, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--after", &after, &bad)) continue;
        if (!hc_positional(c, argv, i, NULL, &(int){0}, 0)) return 2;
    }
    if (bad) return 2;
    hn_buf p;
    hn_buf_init(&p);
    hn_buf_puts(&p, "/fine_tuning/jobs");
    hc_query(&p, "limit", limit);
    hc_query(&p, "after", after);
    int rc = hc_show(c, hc_call(c, "GET", p.data, NULL), print_jobs);
    hn_buf_free(&p);
    return rc;
}

static int jobs_get(hc *c, int argc, char **argv) {
    const char *id;
    char path[1024];
    int rc = hc_id_args(c, argc, argv, &id);
    if (rc) return rc;
    hc_path(path, sizeof path, "/fine_tuning/jobs/", id, NULL);
    return hc_show(c, hc_call(c, "GET", path, NULL), hc_print_job);
}

static void print_status(const json_t *job) {
    char a[256], b[64];
    printf("%s %s\n", hc_str(job, "id", a, sizeof a), hc_str(job, "status", b, sizeof b));
}

/* cancel, pause and resume: bodiless POST /fine_tuning/jobs/ID/<action>. */
static int jobs_action(hc *c, int argc, char **argv) {
    const char *id;
    char path[1024], action[32];
    int rc = hc_id_args(c, argc, argv, &id);
    if (rc) return rc;
    snprintf(action, sizeof action, "/%s", argv[0]);
    hc_path(path, sizeof path, "/fine_tuning/jobs/", id, action);
    return hc_show(c, hc_call(c, "POST", path, NULL), print_status);
}

/* ---- events, checkpoints, wait ------------------------------------------ */

/* All pages (or the first `limit` events) of `path`, newest first. */
static json_t *all_pages(hc *c, const char *path, long limit) {
    json_t *all = json_array();
    char after[256] = "", n[32];
    snprintf(n, sizeof n, "%ld", limit > 0 && limit < 100 ? limit : 100);
    for (;;) {
        hn_buf p;
        hn_buf_init(&p);
        hn_buf_puts(&p, path);
        hc_query(&p, "limit", n);
        hc_query(&p, "after", *after ? after : NULL);
        json_t *page = hc_call(c, "GET", p.data, NULL);
        hn_buf_free(&p);
        if (!page) return json_decref(all), NULL;
        json_t *data = json_object_get(page, "data");
        json_array_extend(all, data);
        json_t *tail = json_array_get(data, json_array_size(data) - 1);
        const char *last = json_string_value(json_object_get(tail, "id"));
        snprintf(after, sizeof after, "%s", last ? last : "");
        bool more = json_is_true(json_object_get(page, "has_more")) && last &&
                    (limit <= 0 || (long)json_array_size(all) < limit);
        json_decref(page);
        if (!more) return all;
    }
}

static int list_cmd(hc *c, int argc, char **argv, const char *suffix,
                    void (*human)(const json_t *all)) {
    const char *pos[1], *lim = NULL;
    long limit = 0;
    int np = 0;
    bool bad = false;
    for (int i = 1; i < argc && !bad; i++) {
        if (hc_common_opt(c, argc, argv, &i, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--limit", &lim, &bad)) continue;
        if (!hc_positional(c, argv, i, pos, &np, 1)) return 2;
    }
    if (bad || (lim && !hc_parse_int(c, "--limit", lim, 1, 10000, &limit))) return 2;
    if (!np) return hc_fail(c, 2, "missing ID");
    char path[1024];
    hc_path(path, sizeof path, "/fine_tuning/jobs/", pos[0], suffix);
    json_t *all = all_pages(c, path, limit);
    if (!all) return 1;
    while (limit > 0 && (long)json_array_size(all) > limit)
        json_array_remove(all, json_array_size(all) - 1);
    json_t *page = json_pack("{s:s,s:o,s:b}", "object", "list", "data", all, "has_more", 0);
    if (c->json) hc_print_json(page);
    else human(page);
    json_decref(page);
    return 0;
}

static void print_events(const json_t *page) {
    const json_t *data = json_object_get(page, "data");
    for (size_t i = json_array_size(data); i-- > 0;) hc_print_event(json_array_get(data, i));
}

static void print_ckpts(const json_t *page) {
    static const char *const keys[] = {"step_number", "train_loss", "valid_loss", "created_at",
                                       "fine_tuned_model_checkpoint", NULL};
    static const int widths[] = {11, 10, 10, 19, 0};
    json_t *flat = json_pack("{s:[]}", "data"), *ck;
    size_t i;
    json_array_foreach(json_object_get(page, "data"), i, ck) {
        json_t *row = json_deep_copy(ck);
        json_object_update(row, json_object_get(ck, "metrics"));
        json_array_append_new(json_object_get(flat, "data"), row);
    }
    hc_print_table(flat, keys, widths);
    json_decref(flat);
}

static int jobs_events(hc *c, int argc, char **argv) {
    return list_cmd(c, argc, argv, "/events", print_events);
}

static int jobs_checkpoints(hc *c, int argc, char **argv) {
    return list_cmd(c, argc, argv, "/checkpoints", print_ckpts);
}

static int jobs_wait(hc *c, int argc, char **argv) {
    const char *pos[1], *v;
    double timeout = 0, interval = 1;
    int np = 0;
    bool bad = false;
    for (int i = 1; i < argc && !bad; i++) {
        if (hc_common_opt(c, argc, argv, &i, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--timeout", &v, &bad)) {
            bad = bad || !hc_parse_double(c, "--timeout", v, &timeout);
            continue;
        }
        if (cli_opt(argc, argv, &i, "--interval", &v, &bad)) {
            bad = bad || !hc_parse_double(c, "--interval", v, &interval);
            continue;
        }
        if (!hc_positional(c, argv, i, pos, &np, 1)) return 2;
    }
    if (bad) return 2;
    if (!np) return hc_fail(c, 2, "missing ID");
    return hc_follow_job(c, pos[0], timeout, interval, !strcmp(argv[0], "follow"));
}

int cmd_jobs(int argc, char **argv) {
    static const hc_sub subs[] = {
        {"create", jobs_create},   {"list", jobs_list},     {"get", jobs_get},
        {"cancel", jobs_action},   {"pause", jobs_action},  {"resume", jobs_action},
        {"events", jobs_events},   {"checkpoints", jobs_checkpoints},
        {"wait", jobs_wait},       {"follow", jobs_wait},   {NULL, NULL}};
    char full[4096];
    snprintf(full, sizeof full, "%s%s", usage, hc_common_usage);
    return hc_dispatch("jobs", subs, full, argc, argv);
}
