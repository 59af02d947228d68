/* test_cli_client.c — the OpenAI fine-tuning flow through the CLI client
 * (`hone files|jobs|models|chat`) against a real `hone serve` (HONE_BIN) on a
 * free loopback port with a fresh data directory and an API key: upload the
 * animal train/valid files, create a job on stories260K with a suffix, `jobs
 * wait` for it, list events and checkpoints, answer the first 20 test prompts
 * with the ft: model (plain and a few --stream), find it in `models list`,
 * check the errors (cancel of a finished job, unknown ids, wrong key, no
 * server), and delete the model. The server is stopped at exit, on a signal
 * and by the watchdog; it also dies with this process (PR_SET_PDEATHSIG). */
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

#define KEY "sk-cli-test"

static const char *bin;
static char tmp[512], base[128];
static pid_t server_pid;

/* ---- the server --------------------------------------------------------- */

static void stop_server(void) {
    if (server_pid <= 0) return;
    kill(server_pid, SIGTERM);
    for (int i = 0; i < 100 && waitpid(server_pid, NULL, WNOHANG) == 0; i++) usleep(50000);
    if (waitpid(server_pid, NULL, WNOHANG) == 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
    }
    server_pid = 0;
}

static void on_signal(int sig) {
    if (server_pid > 0) kill(server_pid, SIGKILL);
    static const char msg[] = "test_cli_client: killed by a signal or the watchdog\n";
    if (write(2, msg, sizeof msg - 1) < 0) {}
    _exit(128 + sig);
}

static void spawn_server(const char *data, const char *out) {
    fflush(NULL); /* or the child would write our buffered output again */
    server_pid = fork();
    if (server_pid < 0) exit(2);
    if (server_pid > 0) return;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (!freopen(out, "w", stdout)) _exit(127);
    char err[600];
    snprintf(err, sizeof err, "%s/server.err", tmp);
    if (!freopen(err, "w", stderr)) _exit(127);
    execl(bin, "hone", "serve", "--port", "0", "--data", data, (char *)NULL);
    _exit(127);
}

/* Starts the server and waits (<= 15 s) for `hone: serving http://HOST:PORT/v1`. */
static bool start_server(void) {
    char data[600], out[600];
    snprintf(data, sizeof data, "%s/data", tmp);
    snprintf(out, sizeof out, "%s/server.out", tmp);
    spawn_server(data, out);
    for (int i = 0; i < 300; i++) {
        usleep(50000);
        FILE *f = fopen(out, "r");
        char line[512] = "";
        bool got = f && fgets(line, sizeof line, f);
        if (f) fclose(f);
        const char *u = got ? strstr(line, "http://") : NULL, *v = u ? strstr(u, "/v1") : NULL;
        if (v) {
            snprintf(base, sizeof base, "%.*s", (int)(v + 3 - u), u);
            return true;
        }
        if (waitpid(server_pid, NULL, WNOHANG) == server_pid) break;
    }
    fprintf(stderr, "test_cli_client: the server did not start (see %s/server.err)\n", tmp);
    return false;
}

/* ---- running the CLI ---------------------------------------------------- */

/* Runs `hone ARGS... NULL`, stdout/stderr into tmp/out.txt, tmp/err.txt. */
static int hone(const char *first, ...) {
    const char *argv[64] = {"hone", first};
    int n = 2;
    va_list ap;
    va_start(ap, first);
    while (n < 63 && (argv[n] = va_arg(ap, const char *))) n++;
    va_end(ap);
    argv[n] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char out[600], err[600];
        snprintf(out, sizeof out, "%s/out.txt", tmp);
        snprintf(err, sizeof err, "%s/err.txt", tmp);
        if (!freopen(out, "w", stdout) || !freopen(err, "w", stderr)) _exit(127);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    return test_read(path, NULL);
}

static bool has(const char *name, const char *needle) {
    char *s = slurp(name);
    bool ok = strstr(s, needle) != NULL;
    if (!ok) fprintf(stderr, "--- %s (wanted '%s'):\n%.2000s\n", name, needle, s);
    free(s);
    return ok;
}

/* stdout of the last run as JSON (NULL, reported, if it is not). */
static json_t *out_json(void) {
    char *s = slurp("out.txt");
    json_error_t je;
    json_t *j = json_loads(s, 0, &je);
    if (!j) fprintf(stderr, "out.txt is not JSON (%s):\n%.500s\n", je.text, s);
    free(s);
    return j;
}

static const char *jstr(const json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* stdout of the last run without trailing whitespace, in buf. */
static const char *out_trimmed(char *buf, size_t cap) {
    char *s = slurp("out.txt");
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' ')) s[--n] = 0;
    snprintf(buf, cap, "%s", s);
    free(s);
    return buf;
}

/* ---- the flow ----------------------------------------------------------- */

static void upload(const char *name, char *id, size_t cap) {
    CHECK(hone("files", "upload", test_shared(name), "--json", NULL) == 0);
    json_t *f = out_json();
    CHECK(!strcmp(jstr(f, "status"), "processed"), "%s", jstr(f, "status"));
    snprintf(id, cap, "%s", jstr(f, "id"));
    json_decref(f);
}

static void test_files(const char *train, const char *valid) {
    CHECK(hone("files", "list", NULL) == 0 && has("out.txt", train) && has("out.txt", valid));
    CHECK(has("out.txt", "train.jsonl") && has("out.txt", "processed"));
    char copy[600];
    snprintf(copy, sizeof copy, "%s/train.copy", tmp);
    CHECK(hone("files", "content", train, "-o", copy, NULL) == 0);
    size_t a, b;
    char *orig = test_read(test_shared("data/animal/train.jsonl"), &a), *got = test_read(copy, &b);
    CHECK(a == b && !memcmp(orig, got, a), "downloaded bytes differ");
    free(orig);
    free(got);
    CHECK(hone("files", "get", valid, NULL) == 0 && has("out.txt", "valid.jsonl"));
}

static size_t find(const char *s, const char *needle) {
    const char *p = strstr(s, needle);
    return p ? (size_t)(p - s) : (size_t)-1;
}

/* `jobs wait` printed the whole history in order and exited 0. */
static void test_wait(const char *job) {
    CHECK(hone("jobs", "wait", job, "--timeout", "240", "--interval", "0.25", NULL) == 0);
    char *out = slurp("out.txt");
    size_t created = find(out, "Created fine-tuning job: "), queued = find(out, "moving job to queued"),
           started = find(out, "Fine-tuning job started"), step = find(out, "Step 1/"),
           done = find(out, "The job has successfully completed"),
           last = find(out, "succeeded: ft:stories260K:personal:clitest:");
    CHECK(created < queued && queued < started && started < step && step < done && done < last,
          "events out of order:\n%.3000s", out);
    free(out);
}

static void test_job_details(const char *job, const char *model) {
    CHECK(hone("jobs", "get", job, NULL) == 0 && has("out.txt", "succeeded") && has("out.txt", model));
    CHECK(hone("jobs", "events", job, NULL) == 0);
    char *out = slurp("out.txt");
    CHECK(find(out, "Created fine-tuning job") < find(out, "Step 1/") &&
          find(out, "Step 1/") < find(out, "The job has successfully completed"), "%.2000s", out);
    free(out);
    CHECK(hone("jobs", "events", job, "--json", NULL) == 0);
    json_t *ev = out_json(), *e;
    size_t i, metrics = 0;
    json_array_foreach(json_object_get(ev, "data"), i, e) {
        json_t *loss = json_object_get(json_object_get(e, "data"), "train_loss");
        metrics += !strcmp(jstr(e, "type"), "metrics") && json_is_number(loss);
    }
    CHECK(metrics > 0 && !json_is_true(json_object_get(ev, "has_more")), "%zu metrics events", metrics);
    json_decref(ev);
    CHECK(hone("jobs", "checkpoints", job, "--json", NULL) == 0);
    json_t *ck = out_json(), *data = json_object_get(ck, "data");
    CHECK(json_array_size(data) >= 1);
    json_array_foreach(data, i, e) {
        char want[600];
        snprintf(want, sizeof want, "%s:ckpt-step-%lld", model,
                 (long long)json_integer_value(json_object_get(e, "step_number")));
        CHECK(!strcmp(jstr(e, "fine_tuned_model_checkpoint"), want), "%s", want);
    }
    json_decref(ck);
    CHECK(hone("jobs", "checkpoints", job, NULL) == 0 && has("out.txt", ":ckpt-step-"));
    CHECK(hone("jobs", "list", NULL) == 0 && has("out.txt", job));
}

/* Asks the model the first 20 test prompts (system + user); the first 5 also
 * with --stream, which must print the same text. */
static void test_chat(const char *model) {
    size_t len;
    char *all = test_read(test_shared("data/animal/test.jsonl"), &len), *line = all, got[4096];
    int right = 0, asked = 0, streamed_same = 0;
    for (; asked < 20 && line && *line; asked++) {
        char *nl = strchr(line, '\n');
        json_t *ex = json_loadb(line, nl ? (size_t)(nl - line) : strlen(line), 0, NULL);
        line = nl ? nl + 1 : NULL;
        json_t *msgs = json_object_get(ex, "messages");
        const char *sys = jstr(json_array_get(msgs, 0), "content");
        const char *user = jstr(json_array_get(msgs, 1), "content");
        const char *want = jstr(json_array_get(msgs, 2), "content");
        int rc = hone("chat", "--model", model, "--temperature", "0", "--max-tokens", "16",
                      "--system", sys, user, NULL);
        CHECK(rc == 0, "chat failed");
        out_trimmed(got, sizeof got);
        right += !strcmp(got, want);
        if (asked < 5) {
            char plain[4096];
            snprintf(plain, sizeof plain, "%s", got);
            rc = hone("chat", "--model", model, "--temperature", "0", "--max-tokens", "16",
                      "--stream", "--system", sys, user, NULL);
            streamed_same += rc == 0 && !strcmp(out_trimmed(got, sizeof got), plain);
        }
        json_decref(ex);
    }
    free(all);
    printf("chat: %d/%d exact, %d/5 streamed replies identical\n", right, asked, streamed_same);
    CHECK(asked == 20 && right >= 18, "%d/%d right", right, asked);
    CHECK(streamed_same == 5, "%d/5 streamed replies match", streamed_same);
}

static void test_errors(const char *job) {
    CHECK(hone("jobs", "cancel", job, NULL) == 1 && has("err.txt", "hone jobs cancel: HTTP 400: ") &&
          has("err.txt", job));
    CHECK(hone("jobs", "get", "ftjob-doesnotexist", NULL) == 1 &&
          has("err.txt", "HTTP 404: No such fine-tuning job: ftjob-doesnotexist"));
    CHECK(hone("files", "get", "file-nope", NULL) == 1 &&
          has("err.txt", "HTTP 404: No such File object: file-nope"));
    CHECK(hone("chat", "--model", "nope", "hi", NULL) == 1 && has("err.txt", "model_not_found"));
    CHECK(hone("chat", "--model", "nope", "--stream", "hi", NULL) == 1 && has("err.txt", "HTTP 404"));
    CHECK(hone("models", "list", "--api-key", "sk-wrong", NULL) == 1 && has("err.txt", "HTTP 401"));
    CHECK(hone("models", "list", "--base-url", "http://127.0.0.1:1/v1", NULL) == 1 &&
          has("err.txt", "http://127.0.0.1:1/v1/models"));
    CHECK(hone("jobs", "create", "--model", "stories260K", NULL) == 2 && has("err.txt", "--train"));
    CHECK(hone("jobs", "frobnicate", NULL) == 2 && has("err.txt", "unknown subcommand"));
}

/* --train with a local path uploads it first; the new job can be cancelled. */
static void test_local_create_and_cancel(void) {
    CHECK(hone("jobs", "create", "--model", "stories260K", "--train",
               test_shared("data/animal/train.jsonl"), "--epochs", "3", "--json", NULL) == 0);
    CHECK(has("err.txt", "uploaded ") && has("err.txt", " as file-"));
    json_t *j = out_json();
    char id[128];
    snprintf(id, sizeof id, "%s", jstr(j, "id"));
    json_decref(j);
    CHECK(hone("jobs", "cancel", id, NULL) == 0 && has("out.txt", "cancelled"));
    CHECK(hone("jobs", "wait", id, "--timeout", "30", "--interval", "0.2", NULL) == 1 &&
          has("out.txt", "cancelled"));
}

static void test_models(const char *model) {
    CHECK(hone("models", "list", NULL) == 0 && has("out.txt", model) && has("out.txt", "stories260K"));
    CHECK(hone("models", "get", model, NULL) == 0 && has("out.txt", model));
    CHECK(hone("models", "delete", model, NULL) == 0 && has("out.txt", "deleted"));
    CHECK(hone("models", "get", model, NULL) == 1 && has("err.txt", "HTTP 404"));
}

static void flow(void) {
    char train[128], valid[128];
    upload("data/animal/train.jsonl", train, sizeof train);
    upload("data/animal/valid.jsonl", valid, sizeof valid);
    test_files(train, valid);
    CHECK(hone("jobs", "create", "--model", "stories260K", "--train", train, "--valid", valid,
               "--suffix", "clitest", "--epochs", "1", "--seed", "42", "--json", NULL) == 0);
    json_t *j = out_json();
    char job[128], model[512];
    snprintf(job, sizeof job, "%s", jstr(j, "id"));
    json_decref(j);
    CHECK(!strncmp(job, "ftjob-", 6), "%s", job);
    test_wait(job);
    CHECK(hone("jobs", "get", job, "--json", NULL) == 0);
    j = out_json();
    snprintf(model, sizeof model, "%s", jstr(j, "fine_tuned_model"));
    CHECK(!strcmp(jstr(j, "status"), "succeeded") &&
              !strncmp(model, "ft:stories260K:personal:clitest:", 32),
          "%s %s", jstr(j, "status"), model);
    json_decref(j);
    test_job_details(job, model);
    test_chat(model);
    test_errors(job);
    test_local_create_and_cancel();
    test_models(model);
}

int main(void) {
    bin = getenv("HONE_BIN");
    if (!bin) {
        fprintf(stderr, "test_cli_client: HONE_BIN is not set\n");
        return 1;
    }
    snprintf(tmp, sizeof tmp, "%s", test_tmpdir());
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGALRM, on_signal);
    alarm(300); /* watchdog: never leave a server behind */
    atexit(stop_server);
    setenv("HONE_API_KEY", KEY, 1); /* the server requires it, the CLI sends it */
    unsetenv("OPENAI_API_KEY");
    unsetenv("OPENAI_BASE_URL");
    time_t t0 = time(NULL);
    if (!start_server()) return 1;
    setenv("HONE_BASE_URL", base, 1);
    flow();
    stop_server();
    printf("test_cli_client: %ld s\n", (long)(time(NULL) - t0));
    return test_finish("test_cli_client");
}
