/* test_eval_cli.c — `hone eval` end to end with the real binary (HONE_BIN)
 * and the bundled stories260K: the base model fails the animal task, a quick
 * `hone finetune` on ../shared/data/animal passes it, the side-by-side
 * comparison says so, and the JSON and HTML reports are written and well
 * formed. Also the CLI's error paths: usage errors exit 2, bad data exits 1
 * naming file:line. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "base/file.h"
#include "test.h"

static char bin[4096], tmp[512];

/* Runs `hone ARGS` with stdout/stderr into tmp/out.txt and tmp/err.txt. */
static int hone(const char *args) {
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' %s > '%s/out.txt' 2> '%s/err.txt'", bin, args, tmp, tmp);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static char *slurp(const char *name) {
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    return test_read(path, &len);
}

static bool output_has(const char *name, const char *needle) {
    char *s = slurp(name);
    bool ok = strstr(s, needle) != NULL;
    if (!ok) fprintf(stderr, "--- %s (wanted '%s'):\n%s\n", name, needle, s);
    free(s);
    return ok;
}

/* The first n lines of the shared test set into tmp/name. */
static void head_lines(const char *name, int n) {
    size_t len;
    char *all = test_read(test_shared("data/animal/test.jsonl"), &len), *p = all;
    for (int k = 0; k < n && p; k++) p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    FILE *f = fopen(path, "w");
    if (!f) exit(2);
    fwrite(all, 1, p ? (size_t)(p - all) : len, f);
    fclose(f);
    free(all);
}

static void write_file(const char *name, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    FILE *f = fopen(path, "w");
    if (!f) exit(2);
    fputs(text, f);
    fclose(f);
}

static double score(json_t *j, const char *run, const char *grader) {
    json_t *scores = json_object_get(json_object_get(j, run), "scores");
    return json_real_value(json_object_get(scores, grader));
}

static void test_usage_and_errors(void) {
    char args[4096];
    CHECK(hone("eval --bogus") == 2 && output_has("err.txt", "unknown option '--bogus'"));
    CHECK(hone("eval") == 2 && output_has("err.txt", "--data is required"));
    snprintf(args, sizeof args, "eval --data '%s/t20.jsonl' --grader regex", tmp);
    CHECK(hone(args) == 2 && output_has("err.txt", "--grader regex needs --regex"));
    snprintf(args, sizeof args, "eval --data '%s/t20.jsonl' --grader fuzzy", tmp);
    CHECK(hone(args) == 2 && output_has("err.txt", "unknown grader 'fuzzy'"));
    snprintf(args, sizeof args, "eval --data '%s/t20.jsonl' --regex '([a-'", tmp);
    CHECK(hone(args) == 1 && output_has("err.txt", "invalid regex '([a-'"));
    snprintf(args, sizeof args, "eval --data '%s/missing.jsonl'", tmp);
    CHECK(hone(args) == 1 && output_has("err.txt", "missing.jsonl"));
    write_file("bad.jsonl", "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
                            "{\"role\":\"assistant\",\"content\":\"a\"}]}\n{not json\n");
    snprintf(args, sizeof args, "eval --data '%s/bad.jsonl'", tmp);
    CHECK(hone(args) == 1 && output_has("err.txt", "bad.jsonl:2"));
    write_file("last.jsonl", "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
                             "{\"role\":\"assistant\",\"content\":\"a\"},"
                             "{\"role\":\"user\",\"content\":\"q2\"}]}\n");
    snprintf(args, sizeof args, "eval --data '%s/last.jsonl'", tmp);
    CHECK(hone(args) == 1 && output_has("err.txt", "last.jsonl:1: messages[2]: the last message"));
    CHECK(hone("eval --help") == 0 && output_has("out.txt", "--baseline"));
}

static void test_base(void) {
    char args[4096];
    snprintf(args, sizeof args, "eval --data '%s/t20.jsonl' --json '%s/base.json' --quiet", tmp,
             tmp);
    CHECK(hone(args) == 0);
    CHECK(output_has("out.txt", "exact"));
    char path[1024];
    snprintf(path, sizeof path, "%s/base.json", tmp);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    CHECK(j != NULL, "%s", je.text);
    CHECK(json_integer_value(json_object_get(j, "n")) == 20);
    CHECK(score(j, "model", "exact") <= 0.1, "base exact %.2f", score(j, "model", "exact"));
    CHECK(json_object_get(j, "baseline") == NULL);
    json_decref(j);
}

static void test_finetuned(void) {
    char args[8192];
    snprintf(args, sizeof args, "finetune --train '%s' --out '%s/ft' --quiet",
             test_shared("data/animal/train.jsonl"), tmp);
    int rc = hone(args);
    CHECK(rc == 0, "finetune exited %d", rc);
    if (rc) return;
    snprintf(args, sizeof args,
             "eval --data '%s/t20.jsonl' --adapter '%s/ft/final' --baseline base "
             "--json '%s/cmp.json' --html '%s/cmp.html' --quiet", tmp, tmp, tmp, tmp);
    CHECK(hone(args) == 0);
    CHECK(output_has("out.txt", "comparison on exact (model vs baseline)"));
    char path[1024];
    snprintf(path, sizeof path, "%s/cmp.json", tmp);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    CHECK(j != NULL, "%s", je.text);
    double tuned = score(j, "model", "exact"), base = score(j, "baseline", "exact");
    printf("exact match on 20: base %.2f, fine-tuned %.2f\n", base, tuned);
    CHECK(tuned >= 0.9, "fine-tuned exact %.2f", tuned);
    CHECK(base <= 0.1, "base exact %.2f", base);
    json_t *m = json_object_get(j, "model"), *b = json_object_get(j, "baseline");
    CHECK(json_real_value(json_object_get(m, "eos_rate")) >= 0.9);
    CHECK(json_real_value(json_object_get(m, "mean_loss")) <
          json_real_value(json_object_get(b, "mean_loss")));
    CHECK(json_integer_value(json_object_get(json_object_get(j, "comparison"), "wins")) >= 17);
    CHECK(json_array_size(json_object_get(j, "examples")) == 20);
    json_decref(j);
    char *html = slurp("cmp.html");
    CHECK(strstr(html, "<table class=\"ex\">") && strstr(html, "<th>model reply</th>"));
    int rows = 0;
    const char *ex = strstr(html, "<table class=\"ex\">");
    for (const char *p = ex; p && (p = strstr(p, "<tr class=\"")); p++) rows++;
    CHECK(rows == 20, "%d example rows", rows);
    free(html);
}

int main(void) {
    const char *b = getenv("HONE_BIN");
    if (!b) {
        fprintf(stderr, "test_eval_cli: HONE_BIN is not set\n");
        return 1;
    }
    snprintf(bin, sizeof bin, "%s", b);
    snprintf(tmp, sizeof tmp, "%s", test_tmpdir());
    head_lines("t20.jsonl", 20);
    test_usage_and_errors();
    test_base();
    test_finetuned();
    return test_finish("test_eval_cli");
}
