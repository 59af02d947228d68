/* test_eval_report.c — evaluation sets refuse bad input with file:line
 * messages; the comparison counts wins/losses/ties; the summary averages the
 * rows; the JSON report has the documented shape; the HTML report escapes
 * everything a model or a data file could inject. Runs are built by hand
 * here (no model): test_eval_cli drives real models. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "eval/eval.h"
#include "eval/report.h"
#include "test.h"

static bool near_eq(double a, double b) { return fabs(a - b) < 1e-9; }

static const char *write_tmp(const char *name, const char *text) {
    static char paths[4][512];
    static int k;
    char *p = paths[k++ & 3];
    snprintf(p, sizeof paths[0], "%s/%s", test_tmpdir(), name);
    FILE *f = fopen(p, "w");
    if (!f) exit(2);
    fputs(text, f);
    fclose(f);
    return p;
}

#define EX(u, a)                                                                 \
    "{\"messages\":[{\"role\":\"user\",\"content\":\"" u "\"},"                 \
    "{\"role\":\"assistant\",\"content\":\"" a "\"}]}\n"

static void expect_load_error(const char *name, const char *text, const char *want) {
    const char *path = write_tmp(name, text);
    eval_set set;
    hn_err err = {0};
    CHECK(eval_set_load(path, 0, &set, &err) == HN_EINVAL, "%s", name);
    CHECK(strstr(err.msg, want) != NULL, "%s: got '%s', want '%s'", name, err.msg, want);
    CHECK(set.n == 0 && set.examples == NULL);
}

static void test_load_errors(void) {
    char want[1024];
    snprintf(want, sizeof want, "%s/last_user.jsonl:2: messages[2]: the last message is a 'user'",
             test_tmpdir());
    expect_load_error("last_user.jsonl",
                      EX("hi", "a") "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
                      "{\"role\":\"assistant\",\"content\":\"a\"},{\"role\":\"user\",\"content\":"
                      "\"q2\"}]}\n", want);
    expect_load_error("bad_json.jsonl", EX("a", "b") EX("c", "d") "{\"messages\": [\n",
                      "bad_json.jsonl:3");
    expect_load_error("no_prompt.jsonl",
                      "{\"messages\":[{\"role\":\"assistant\",\"content\":\"x\"}]}\n",
                      "no_prompt.jsonl:1: the example has only the reference answer");
    expect_load_error("empty.jsonl", "", "empty.jsonl");
    eval_set set;
    hn_err err = {0};
    CHECK(eval_set_load("/nonexistent/eval.jsonl", 0, &set, &err) != HN_OK);
    CHECK(strstr(err.msg, "/nonexistent/eval.jsonl") != NULL, "%s", err.msg);
}

static void test_load_ok(void) {
    const char *path = write_tmp("ok.jsonl",
                                 "{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
                                 "{\"role\":\"user\",\"content\":\"first\"},"
                                 "{\"role\":\"assistant\",\"content\":\"A1\"}]}\n"
                                 EX("second", "A2") EX("third", "A3"));
    eval_set set;
    hn_err err = {0};
    CHECK(eval_set_load(path, 2, &set, &err) == HN_OK, "%s", err.msg);
    CHECK(set.n == 2);
    if (set.n == 2) {
        CHECK(!strcmp(set.prompts[0], "first") && !strcmp(set.refs[0], "A1"));
        CHECK(!strcmp(set.prompts[1], "second") && !strcmp(set.refs[1], "A2"));
        CHECK(set.examples[1].line == 2);
    }
    eval_set_free(&set);
}

/* A hand-made run: replies[i] graded against the set's references. */
static void fake_run(const eval_set *set, const char *const *replies, eval_run *run) {
    memset(run, 0, sizeof *run);
    run->rows = calloc((size_t)set->n, sizeof *run->rows);
    run->n = set->n;
    snprintf(run->model, sizeof run->model, "model<&>.gguf");
    for (int i = 0; i < set->n; i++) {
        eval_row *r = &run->rows[i];
        r->reply = strdup(replies[i]);
        r->eos = i % 2 == 0;
        r->n_generated = 4;
        r->gen_seconds = 0.01;
        r->loss = 0.5 * (i + 1);
        r->n_loss_tokens = 2;
        eval_grade_all(r->reply, set->refs[i], NULL, r->scores);
    }
    eval_summarize(run);
}

static void test_summary_and_compare(const eval_set *set, eval_run *base, eval_run *model,
                                     eval_compare *cmp) {
    CHECK(near_eq(model->sum.score[EVAL_EXACT], 2.0 / 3.0));
    CHECK(near_eq(base->sum.score[EVAL_EXACT], 1.0 / 3.0));
    CHECK(isnan(model->sum.score[EVAL_REGEX]));
    CHECK(near_eq(model->sum.eos_rate, 2.0 / 3.0));
    /* token-weighted: (0.5 + 1.0 + 1.5) * 2 / 6 */
    CHECK(near_eq(model->sum.mean_loss, 1.0));
    CHECK(model->sum.generated_tokens == 12 && near_eq(model->sum.tokens_per_second, 400.0));
    hn_err err = {0};
    CHECK(eval_compare_runs(base, model, EVAL_EXACT, cmp, &err) == HN_OK);
    CHECK(cmp->wins == 2 && cmp->losses == 1 && cmp->ties == 0, "%d %d %d", cmp->wins,
          cmp->losses, cmp->ties);
    CHECK(cmp->outcome[0] == EVAL_WIN && cmp->outcome[2] == EVAL_LOSS);
    (void)set;
}

static void test_text(const eval_report *r) {
    hn_buf b;
    hn_buf_init(&b);
    eval_report_text(r, &b);
    CHECK(b.data && strstr(b.data, "2 wins, 1 losses, 0 ties"), "%s", b.data);
    CHECK(b.data && strstr(b.data, "66.7%") && strstr(b.data, "<- primary"), "%s", b.data);
    CHECK(b.data && strstr(b.data, "changed examples (3)"));
    hn_buf_free(&b);
}

static void test_json(const eval_report *r) {
    char path[512];
    snprintf(path, sizeof path, "%s/r.json", test_tmpdir());
    hn_err err = {0};
    CHECK(eval_report_write_json(r, path, &err) == HN_OK, "%s", err.msg);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    CHECK(j != NULL, "%s", je.text);
    if (!j) return;
    CHECK(json_integer_value(json_object_get(j, "n")) == 3);
    CHECK(!strcmp(json_string_value(json_object_get(j, "grader")), "exact"));
    json_t *ms = json_object_get(json_object_get(j, "model"), "scores");
    CHECK(fabs(json_real_value(json_object_get(ms, "exact")) - 2.0 / 3.0) < 1e-6);
    CHECK(json_is_null(json_object_get(ms, "regex")));
    json_t *c = json_object_get(j, "comparison");
    CHECK(json_integer_value(json_object_get(c, "wins")) == 2);
    CHECK(json_array_size(json_object_get(c, "changed")) == 3);
    json_t *ex = json_object_get(j, "examples");
    CHECK(json_array_size(ex) == 3);
    json_t *e0 = json_array_get(ex, 0);
    CHECK(!strcmp(json_string_value(json_object_get(e0, "outcome")), "win"));
    CHECK(!strcmp(json_string_value(json_object_get(e0, "reference")), "<b>cat</b>"));
    CHECK(json_is_true(json_object_get(json_object_get(e0, "model"), "eos")));
    CHECK(!strcmp(json_string_value(json_object_get(json_object_get(e0, "baseline"), "finish")),
                  "eos"));
    json_decref(j);
}

static void test_html(const eval_report *r) {
    hn_buf b;
    hn_buf_init(&b);
    eval_report_html(r, &b);
    const char *h = b.data ? b.data : "";
    CHECK(!strncmp(h, "<!DOCTYPE html>", 15));
    CHECK(strstr(h, "<script") == NULL, "a reply's <script> must be escaped");
    CHECK(strstr(h, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;"));
    CHECK(strstr(h, "&lt;b&gt;cat&lt;/b&gt;") && !strstr(h, "<b>cat</b>"));
    CHECK(strstr(h, "model&lt;&amp;&gt;.gguf"));
    CHECK(strstr(h, "<table class=\"ex\">") && strstr(h, "</html>"));
    CHECK(strstr(h, "http") == NULL, "no external assets");
    hn_buf_free(&b);
}

static void test_reports(void) {
    const char *path = write_tmp("r.jsonl", EX("a <cat>?", "<b>cat</b>") EX("b", "dog")
                                                EX("c & d", "cow"));
    eval_set set;
    hn_err err = {0};
    CHECK(eval_set_load(path, 0, &set, &err) == HN_OK, "%s", err.msg);
    if (set.n != 3) return;
    const char *base_replies[] = {"<script>alert(\"x\")</script> & 'q'", "cat", "cow"};
    const char *model_replies[] = {"<b>cat</b>", "dog", "horse"};
    eval_run base, model;
    fake_run(&set, base_replies, &base);
    fake_run(&set, model_replies, &model);
    eval_compare cmp = {0};
    test_summary_and_compare(&set, &base, &model, &cmp);
    eval_report r = {&set, &model, &base, &cmp, EVAL_EXACT, NULL, 20};
    test_text(&r);
    test_json(&r);
    test_html(&r);
    eval_compare_free(&cmp);
    eval_run_free(&base);
    eval_run_free(&model);
    eval_set_free(&set);
}

int main(void) {
    test_load_errors();
    test_load_ok();
    test_reports();
    return test_finish("test_eval_report");
}
