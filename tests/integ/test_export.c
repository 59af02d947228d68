/* test_export.c — `hone export` round trip (issue 8, acceptance 1 and 2):
 * fine-tune stories260K (LoRA and full) on 40 animal lines with the hone
 * binary, export to GGUF f32/f16/q8_0 and HF safetensors (sharded too), load
 * each export back and compare greedy output (30 tokens, 3 chat prompts from
 * test.jsonl) with adapter-on-base: identical for f32 and safetensors; f16 and
 * q8_0 must keep the held-out loss within the tolerance of docs/export.md.
 * Every GGUF also passes tests/integ/node/gguf_check.mjs (@huggingface/gguf),
 * and a GGUF->safetensors export of the base reproduces the team's
 * tokenizer.json (merges derived from vocab + scores). */
#include <jansson.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "base/buf.h"
#include "chat/dataset.h"
#include "chat/template.h"
#include "export/export.h"
#include "model/lora.h"
#include "test.h"

#define N_PROMPTS 3
#define N_GEN 30
#define TOL_F16 0.01  /* relative held-out loss difference allowed for f16 */
#define TOL_Q8 0.02   /* ... and for q8_0 */

static const char *bin, *base, *tmp, *valid;
static char node_dir[1024];
static bool have_node;

/* The first N_PROMPTS conversations of test.jsonl without their answers. */
static json_t *prompts_json(void) {
    size_t len;
    char *text = test_read(test_shared("data/animal/test.jsonl"), &len);
    json_t *all = json_array();
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    for (int i = 0; line && i < N_PROMPTS; i++, line = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(line, 0, NULL);
        json_t *msgs = json_object_get(j, "messages");
        json_array_remove(msgs, json_array_size(msgs) - 1);
        json_array_append(all, msgs);
        json_decref(j);
    }
    free(text);
    return all;
}

/* Greedy continuation of prompt i for m: prompt ids then N_GEN argmax ids. */
static bool greedy(const hn_model *m, json_t *msgs, int32_t *out, int *n_prompt) {
    hn_err err = {0};
    chat_template *t = NULL;
    chat_example ex;
    memset(&ex, 0, sizeof ex);
    chat_render r;
    chat_render_init(&r);
    model_state *s = NULL;
    bool ok = chat_template_for_model(m->chat_template, &t, &err) == HN_OK &&
              chat_example_from_request(msgs, NULL, &ex, &err) == HN_OK &&
              chat_render_prompt(t, m->tok, &ex, &r, &err) == HN_OK &&
              model_state_create(m, (int)r.n + N_GEN + 1, &s, &err) == HN_OK;
    const float *logits;
    if (ok) ok = model_forward(m, s, r.ids, (int)r.n, NULL, &logits, &err) == HN_OK;
    *n_prompt = ok ? (int)r.n : 0;
    for (size_t i = 0; ok && i < r.n && i < 256; i++) out[i] = r.ids[i];
    for (int g = 0; ok && g < N_GEN; g++) {
        int32_t best = 0;
        for (int v = 1; v < m->cfg.vocab_size; v++)
            if (logits[v] > logits[best]) best = v;
        out[256 + g] = best;
        ok = model_forward(m, s, &best, 1, NULL, &logits, &err) == HN_OK;
    }
    CHECK(ok, "greedy: %s", err.msg);
    model_state_free(s);
    chat_render_free(&r);
    chat_example_free(&ex);
    chat_template_free(t);
    return ok;
}

typedef struct ref_out {
    int32_t ids[N_PROMPTS][256 + N_GEN];
    int n_prompt[N_PROMPTS];
    double loss;
} ref_out;

static void reference(const char *adapter, json_t *prompts, ref_out *ref) {
    hn_err err = {0};
    hn_model *m;
    CHECK(model_load(base, &m, &err) == HN_OK, "%s", err.msg);
    CHECK(model_apply_finetune(m, adapter, &err) == HN_OK, "%s", err.msg);
    for (int i = 0; i < N_PROMPTS; i++) greedy(m, json_array_get(prompts, i), ref->ids[i], &ref->n_prompt[i]);
    long toks;
    int n;
    CHECK(export_heldout_loss(m, valid, 0, &ref->loss, &toks, &n, &err) == HN_OK, "%s", err.msg);
    model_free(m);
}

static void node_check(const char *path, const char *dtype) {
    if (!have_node) return;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "node '%s/gguf_check.mjs' '%s' %s 2>&1", node_dir, path, dtype);
    int st;
    char *out = test_run_cmd(cmd, &st);
    CHECK(st == 0, "gguf_check failed for %s:\n%s", path, out ? out : "");
    free(out);
}

/* Exports with the binary, loads the result and compares with ref. */
static void check_export(const char *adapter, const char *tag, const char *fmt, const char *dtype,
                         const char *extra, json_t *prompts, const ref_out *ref) {
    char out[1024], cmd[4096];
    bool gguf = !strcmp(fmt, "gguf");
    snprintf(out, sizeof out, "%s/%s_%s%s", tmp, tag, dtype, gguf ? ".gguf" : "_hf");
    snprintf(cmd, sizeof cmd, "'%s' export --model '%s' --adapter '%s' --format %s --dtype %s "
             "--out '%s' --valid '%s' %s 2>&1", bin, base, adapter, fmt, dtype, out, valid, extra);
    int st;
    char *text = test_run_cmd(cmd, &st);
    CHECK(st == 0, "%s exited %d:\n%s", cmd, st, text ? text : "");
    CHECK(text && strstr(text, "quality guard on") && strstr(text, "held-out loss, exported"),
          "no quality guard numbers in:\n%s", text ? text : "");
    printf("--- %s %s %s\n%s", tag, fmt, dtype, text ? text : "");
    free(text);
    if (gguf) node_check(out, dtype);
    hn_err err = {0};
    hn_model *m;
    if (model_load(out, &m, &err) != HN_OK) {
        CHECK(0, "loading %s: %s", out, err.msg);
        return;
    }
    bool exact = !strcmp(dtype, "f32");
    int same = 0;
    for (int i = 0; i < N_PROMPTS; i++) {
        int32_t ids[256 + N_GEN];
        int np;
        if (!greedy(m, json_array_get(prompts, i), ids, &np)) continue;
        CHECK(np == ref->n_prompt[i] && !memcmp(ids, ref->ids[i], sizeof(int32_t) * (size_t)(np < 256 ? np : 256)),
              "%s: prompt %d tokenises differently", out, i);
        for (int g = 0; g < N_GEN; g++) same += ids[256 + g] == ref->ids[i][256 + g];
    }
    double loss;
    long toks;
    int n;
    CHECK(export_heldout_loss(m, valid, 0, &loss, &toks, &n, &err) == HN_OK, "%s", err.msg);
    double rel = fabs(loss - ref->loss) / ref->loss;
    printf("    %s: %d/%d greedy tokens equal, loss %.4f vs %.4f (%.3f%%)\n", out, same,
           N_PROMPTS * N_GEN, loss, ref->loss, rel * 100);
    if (exact) {
        CHECK(same == N_PROMPTS * N_GEN, "%s: greedy output differs (%d equal)", out, same);
        CHECK(rel < 1e-5, "%s: loss %.6f vs %.6f", out, loss, ref->loss);
    } else {
        double tol = !strcmp(dtype, "q8_0") ? TOL_Q8 : TOL_F16;
        CHECK(rel <= tol, "%s: loss differs by %.3f%% (tolerance %.1f%%)", out, rel * 100, tol * 100);
    }
    model_free(m);
}

static void finetune(const char *method, const char *train, char *dir, size_t cap) {
    char cmd[4096];
    snprintf(dir, cap, "%s/%s", tmp, method);
    snprintf(cmd, sizeof cmd, "'%s' finetune --model '%s' --train '%s' --out '%s' --epochs 1 "
             "--method %s --quiet 2>&1", bin, base, train, dir, method);
    int st;
    char *out = test_run_cmd(cmd, &st);
    CHECK(st == 0, "%s:\n%s", cmd, out ? out : "");
    free(out);
    strncat(dir, "/final", cap - strlen(dir) - 1);
}

/* A GGUF -> safetensors export of the base gives the team's tokenizer.json. */
static void check_tokenizer_json(void) {
    char out[1024], cmd[4096], path[1200];
    snprintf(out, sizeof out, "%s/base_hf", tmp);
    snprintf(cmd, sizeof cmd, "'%s' export --model '%s' --format safetensors --out '%s' 2>&1", bin,
             base, out);
    int st;
    char *text = test_run_cmd(cmd, &st);
    CHECK(st == 0 && text && strstr(text, "quality guard: skipped"), "%s:\n%s", cmd, text ? text : "");
    free(text);
    snprintf(path, sizeof path, "%s/tokenizer.json", out);
    json_t *got = json_load_file(path, 0, NULL);
    json_t *want = json_load_file(test_shared("models/stories260K/hf/tokenizer.json"), 0, NULL);
    CHECK(got && want && json_equal(got, want), "synthesised tokenizer.json differs from hf/");
    json_decref(got);
    json_decref(want);
}

static void setup_node(void) {
    char src[1024], mod[1200];
    snprintf(src, sizeof src, "%s", __FILE__);
    snprintf(node_dir, sizeof node_dir, "%s/node", dirname(src));
    snprintf(mod, sizeof mod, "%s/node_modules/@huggingface/gguf/package.json", node_dir);
    FILE *f = fopen(mod, "r");
    have_node = f && system("node --version > /dev/null 2>&1") == 0;
    if (f) fclose(f);
    if (!have_node)
        printf("NOTE: node or @huggingface/gguf missing (npm ci in tests/integ/node): "
               "structural GGUF check skipped\n");
}

int main(void) {
    bin = getenv("HONE_BIN");
    if (!bin) {
        printf("SKIP test_export: HONE_BIN not set\n");
        return 77;
    }
    base = test_shared("models/stories260K/stories260K.gguf");
    tmp = test_tmpdir();
    setup_node();
    const char *train = test_subset(test_shared("data/animal/train.jsonl"), 40, "train40.jsonl");
    valid = test_subset(test_shared("data/animal/valid.jsonl"), 40, "valid40.jsonl");
    json_t *prompts = prompts_json();
    CHECK(json_array_size(prompts) == N_PROMPTS, "test.jsonl prompts");
    static ref_out ref;
    static const char *methods[] = {"lora", "full"};
    for (int k = 0; k < 2; k++) {
        char dir[1024];
        finetune(methods[k], train, dir, sizeof dir);
        reference(dir, prompts, &ref);
        check_export(dir, methods[k], "gguf", "f32", "", prompts, &ref);
        check_export(dir, methods[k], "gguf", "f16", "", prompts, &ref);
        check_export(dir, methods[k], "gguf", "q8_0", "", prompts, &ref);
        check_export(dir, methods[k], "safetensors", "f32", k ? "--shard-mb 1" : "", prompts, &ref);
    }
    check_tokenizer_json();
    json_decref(prompts);
    return test_finish("test_export");
}
