/* test_chat_check.c — the data check report: "auto" hyperparameter rules,
 * distributions, truncation/drop/duplicate/overlap lists, the JSON report,
 * the --show-mask markup, and `hone data check` end to end (exit codes, JSON,
 * the time/memory estimate and its cache in a private XDG_CACHE_HOME, model
 * names) when the hone binary has the data command. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "chat/check.h"
#include "chat/hparams.h"
#include "model/model.h"
#include "test.h"

static void test_hparams(void) {
    CHECK(chat_auto_epochs(10) == 10, "10 examples -> 10 epochs (OpenAI)");
    CHECK(chat_auto_epochs(1) == 25 && chat_auto_epochs(3) == 25, "capped at 25");
    CHECK(chat_auto_epochs(33) == 3 && chat_auto_epochs(34) == 3 && chat_auto_epochs(200) == 3, "3");
    CHECK(chat_auto_epochs(32) == 3, "3*32=96 < 100 -> 100/32 = 3");
    CHECK(chat_auto_epochs(20) == 5, "20 -> 5");
    CHECK(chat_auto_epochs(10000) == 2 && chat_auto_epochs(100000) == 1, "large sets");
    CHECK(chat_auto_epochs(0) == 1, "empty");
    CHECK(chat_auto_batch_size(10) == 1 && chat_auto_batch_size(200) == 1, "tiny sets: 1");
    CHECK(chat_auto_batch_size(1500) == 3 && chat_auto_batch_size(1250) == 2 &&
              chat_auto_batch_size(10000) == 20, "0.2 %%, rounded down");
    CHECK(chat_auto_batch_size(1000000) == 256, "cap 256");
    CHECK(chat_auto_lr_multiplier(1) == 1.0 && chat_auto_lr_multiplier(256) == 1.0, "lr multiplier");
    chat_check_opts o = {0};
    chat_plan p = chat_check_plan(10, 700, 40, &o);
    CHECK(p.n_epochs == 10 && p.batch_size == 1 && p.steps == 100 && p.trained_tokens == 7000 &&
              p.target_tokens == 400 && p.epochs_auto && p.batch_auto && p.lr_auto, "plan");
    o.n_epochs = 2, o.batch_size = 3, o.lr_multiplier = 0.5;
    p = chat_check_plan(10, 700, 40, &o);
    CHECK(p.n_epochs == 2 && p.batch_size == 3 && p.steps == 8 && p.lr_multiplier == 0.5 && !p.epochs_auto,
          "explicit plan");
}

static void test_dist(void) {
    size_t v[] = {5, 1, 4, 2, 3, 10, 9, 8, 7, 6};
    chat_dist d = chat_dist_of(v, 10);
    CHECK(d.min == 1 && d.max == 10 && d.median == 5 && d.p90 == 9 && d.mean == 5.5, "dist %zu %zu",
          d.median, d.p90);
    size_t one = 7;
    d = chat_dist_of(&one, 1);
    CHECK(d.min == 7 && d.median == 7 && d.p90 == 7 && d.max == 7, "one value");
}

static const char *write_tmp(const char *name, const char *data) {
    static char path[4][512];
    static int k;
    char *p = path[k++ & 3];
    snprintf(p, sizeof path[0], "%s/%s", test_tmpdir(), name);
    FILE *f = fopen(p, "wb");
    if (f) fputs(data, f), fclose(f);
    return p;
}

#define EX(u, a) "{\"messages\":[{\"role\":\"user\",\"content\":\"" u "\"},{\"role\":\"assistant\",\"content\":\"" a "\"}]}\n"
#define EXS(u, a) "{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"" u "\"},{\"role\":\"assistant\",\"content\":\"" a "\"}]}\n"

static void test_report(void) {
    tok *tk = NULL;
    int ctx = 0;
    hn_err err = {0};
    if (model_load_tokenizer(test_shared("models/stories260K/stories260K.gguf"), &tk, &ctx, NULL, &err) != HN_OK) {
        CHECK(0, "tokenizer: %s", err.msg);
        return;
    }
    chat_template *t;
    CHECK(chat_template_default(&t, &err) == HN_OK, "%s", err.msg);
    const char *train_txt = EXS("Once upon a time there was a cat", "cat") EX("A dog", "dog")
        EX("A dog", "dog") EXS("The frog sat on a very long log in the big green park", "frog")
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":\"y\",\"weight\":0}]}\n";
    const char *valid_txt = EX("A dog", "dog") EX("A bird", "bird");
    chat_dataset train, valid;
    chat_dataset_opts o;
    chat_dataset_opts_default(&o);
    o.min_examples_is_error = false;
    CHECK(chat_dataset_load(write_tmp("train.jsonl", train_txt), &o, &train, &err) == HN_OK, "%s", err.msg);
    o.min_examples = 0;
    CHECK(chat_dataset_load(write_tmp("valid.jsonl", valid_txt), &o, &valid, &err) == HN_OK, "%s", err.msg);
    chat_check_opts co = {.max_seq_len = 30};
    chat_check_report rep;
    CHECK(chat_check_run(t, tk, &train, &valid, &co, &rep, &err) == HN_OK, "%s", err.msg);
    const chat_split_stats *st = &rep.train;
    CHECK(st->n_examples == 5 && st->msgs.min == 2 && st->msgs.max == 3, "messages");
    CHECK(st->missing_system.count == 3 && st->missing_system.lines[0] == 2, "missing system");
    CHECK(st->missing_user.count == 0, "missing user");
    CHECK(st->duplicates.count == 1 && st->duplicates.lines[0] == 3, "duplicate line 3");
    CHECK(st->truncated.count == 1 && st->truncated.lines[0] == 4, "line 4 over 30 tokens");
    CHECK(st->lost_trained.count == 1 && st->lost_trained.lines[0] == 4, "line 4 loses its answer");
    CHECK(st->dropped.count == 2 && st->dropped.lines[0] == 4 && st->dropped.lines[1] == 5,
          "dropped: truncated away and weight 0");
    CHECK(st->eot_errors.count == 0, "EOS always in mask");
    CHECK(st->n_used == 3 && rep.plan.n_examples == 3, "used");
    CHECK(rep.overlap.count == 1 && rep.overlap.lines[0] == 1, "overlap valid line 1");
    CHECK(rep.plan.n_epochs == 25, "auto epochs for 3 examples");
    CHECK(chat_check_ok(&rep, &train, &valid), "warnings only");

    json_t *j = chat_check_report_json(&rep, &train, &valid);
    CHECK(j && json_is_true(json_object_get(j, "ok")), "json ok");
    json_t *tr = json_object_get(j, "train");
    CHECK(json_integer_value(json_object_get(tr, "examples")) == 5, "json examples");
    CHECK(json_integer_value(json_object_get(json_object_get(tr, "duplicates"), "count")) == 1, "json dups");
    CHECK(json_integer_value(json_object_get(json_object_get(json_object_get(tr, "problems"), "counts"),
                                             "too_few_examples")) == 1, "json too_few counted");
    CHECK(json_is_null(json_object_get(json_object_get(json_object_get(j, "plan"), "estimate"), "seconds")),
          "estimate placeholder");
    json_decref(j);

    chat_render r;
    chat_render_init(&r);
    CHECK(chat_template_render(t, tk, &train.examples[1], 0, &r, &err) == HN_OK, "%s", err.msg);
    hn_buf b;
    hn_buf_init(&b);
    chat_check_format_mask(tk, &r, false, &b);
    CHECK(b.data && !strcmp(b.data, "<s>User: A dog\nAssistant:[[ dog</s>]]"), "mask: %s", b.data);
    hn_buf_free(&b);
    chat_render_free(&r);
    chat_dataset_free(&train);
    chat_dataset_free(&valid);
    chat_template_free(t);
    tok_free(tk);
}

/* Runs `hone data check ARGS` (stdout to out_path); returns the exit code or -1. */
static int run_cli(const char *args, const char *out_path) {
    const char *bin = getenv("HONE_BIN");
    if (!bin || !*bin) return -1;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' data check %s > '%s' 2>&1", bin, args, out_path);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* --json: plan.estimate for both methods; model names resolve. */
static void test_cli_estimate_json(const char *out) {
    char args[2048];
    size_t len;
    snprintf(args, sizeof args, "'%s' --model stories260K --json", test_shared("data/animal/train.jsonl"));
    CHECK(run_cli(args, out) == 0, "--model stories260K: exit 0");
    char *txt = test_read(out, &len);
    json_t *j = json_loadb(txt, len, 0, NULL);
    json_t *est = json_object_get(json_object_get(j, "plan"), "estimate");
    json_t *full = json_object_get(est, "full"), *lora = json_object_get(est, "lora");
    CHECK(json_is_string(json_object_get(est, "auto_method")) &&
              !strcmp(json_string_value(json_object_get(est, "auto_method")), "full"), "%s", txt);
    CHECK(json_real_value(json_object_get(full, "seconds")) > 0 &&
              json_real_value(json_object_get(lora, "seconds")) > 0 &&
              json_integer_value(json_object_get(full, "memory_bytes")) >
                  json_integer_value(json_object_get(json_object_get(full, "memory"), "weights")),
          "estimate numbers: %s", txt);
    CHECK(json_integer_value(json_object_get(json_object_get(est, "shape"), "steps")) == 600, "steps");
    json_decref(j);
    free(txt);
    snprintf(args, sizeof args, "'%s' --json --no-estimate", test_shared("data/animal/train.jsonl"));
    CHECK(run_cli(args, out) == 0, "--no-estimate");
    txt = test_read(out, &len);
    j = json_loadb(txt, len, 0, NULL);
    est = json_object_get(json_object_get(j, "plan"), "estimate");
    CHECK(json_is_null(json_object_get(est, "seconds")) && json_is_string(json_object_get(est, "note")),
          "skipped estimate: %s", txt);
    json_decref(j);
    free(txt);
    snprintf(args, sizeof args, "'%s' --model no-such-model", test_shared("data/animal/train.jsonl"));
    CHECK(run_cli(args, out) == 2, "unknown model name: exit 2");
    txt = test_read(out, &len);
    CHECK(strstr(txt, "model 'no-such-model' not found") && strstr(txt, "models/no-such-model.gguf"),
          "%s", txt);
    free(txt);
}

static void test_cli(void) {
    char out[600], cmd[2048];
    snprintf(out, sizeof out, "%s/cli.out", test_tmpdir());
    const char *bin = getenv("HONE_BIN");
    if (!bin) return;
    snprintf(cmd, sizeof cmd, "'%s' data --help >/dev/null 2>&1", bin);
    int st = system(cmd);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        printf("test_chat_check: `hone data` not wired into the hone binary yet; CLI checks skipped\n");
        return;
    }
    char args[2048];
    snprintf(args, sizeof args, "'%s' --valid '%s'", test_shared("data/animal/train.jsonl"),
             test_shared("data/animal/valid.jsonl"));
    CHECK(run_cli(args, out) == 0, "animal: exit 0");
    size_t len;
    char *txt = test_read(out, &len);
    CHECK(strstr(txt, "result: ok") && strstr(txt, "n_epochs                   3 (auto)"), "%s", txt);
    CHECK(strstr(txt, "== time and memory estimate for this machine") &&
              strstr(txt, "<- auto") && strstr(txt, "full memory: weights 1.2 MB"), "%s", txt);
    free(txt);
    CHECK(run_cli(args, out) == 0, "animal again: exit 0");
    txt = test_read(out, &len);
    CHECK(strstr(txt, "threads (cached)"), "second estimate comes from the cache: %s", txt);
    free(txt);
    test_cli_estimate_json(out);
    snprintf(args, sizeof args, "'%s' --json", test_shared("data/animal/train.jsonl"));
    CHECK(run_cli(args, out) == 0, "json: exit 0");
    txt = test_read(out, &len);
    json_t *j = json_loadb(txt, len, 0, NULL);
    CHECK(j && json_integer_value(json_object_get(json_object_get(j, "train"), "examples")) == 200,
          "json report");
    json_decref(j);
    free(txt);
    snprintf(args, sizeof args, "'%s' --show-mask 1", test_shared("data/animal/train.jsonl"));
    CHECK(run_cli(args, out) == 0, "show-mask");
    txt = test_read(out, &len);
    CHECK(strstr(txt, "Assistant:[[ horse</s>]]") && strstr(txt, "tokens 70, trained 4"), "%s", txt);
    free(txt);
    CHECK(run_cli(write_tmp("bad.jsonl", "{\"messages\":[{\"role\":\"usr\",\"content\":\"x\"}]}\n"), out) == 1,
          "problems: exit 1");
    txt = test_read(out, &len);
    CHECK(strstr(txt, "bad.jsonl:1: messages[0].role: unrecognized_role: 'usr' is not one of"), "%s", txt);
    free(txt);
    CHECK(run_cli("", out) == 2 && run_cli("x.jsonl --bogus", out) == 2, "usage: exit 2");
    CHECK(run_cli("/nonexistent.jsonl", out) == 2, "unreadable: exit 2");
}

int main(void) {
    char cache[600];
    snprintf(cache, sizeof cache, "%s/cache", test_tmpdir());
    setenv("XDG_CACHE_HOME", cache, 1); /* the estimate's cache, for `hone data check` */
    test_hparams();
    test_dist();
    test_report();
    test_cli();
    return test_finish("test_chat_check");
}
