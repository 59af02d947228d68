/* test_template_e2e.c — issue 7's end-to-end acceptance with a real chat
 * template: a tiny Qwen3 made by `hone init-model` around the real Qwen3
 * tokenizer and its Jinja template goes through `hone data check` (the
 * end-of-turn token <|im_end|> is inside the loss mask), `hone finetune`,
 * `hone eval` (the fine-tuned model ends its replies with <|im_end|> by itself;
 * the random base does not) and `hone generate --chat`. A template whose
 * assistant turns carry no end-of-turn token is refused before training.
 * Template variables: --template-var enable_thinking=false changes the mask
 * (no empty think block trained), is kept in final/hone_finetune.json and
 * reused by generate, and is fixed inside the exported GGUF's template. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "format/gguf.h"
#include "test.h"

static const char *bin;

static char *run(const char *cmd, int want_status) {
    int st;
    char *out = test_run_cmd(cmd, &st);
    CHECK(st == want_status, "%s exited %d (want %d):\n%s", cmd, st, want_status, out ? out : "");
    return out ? out : strdup("");
}

static double eos_rate(const char *report, const char *which) {
    json_error_t je;
    json_t *j = json_load_file(report, 0, &je);
    CHECK(j != NULL, "%s: %s", report, je.text);
    json_t *s = json_object_get(j, which);
    double r = json_number_value(json_object_get(s, "eos_rate"));
    json_decref(j);
    return r;
}

/* The same model directory with another chat_template in tokenizer_config.json. */
static const char *with_template(const char *model, const char *tmpl) {
    const char *dir = test_tmp_path("no-eot");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "mkdir -p %s && for f in %s/*; do ln -sf \"$f\" %s/; done && "
             "rm %s/tokenizer_config.json", dir, model, dir, dir);
    free(run(cmd, 0));
    json_t *j = json_pack("{s:s, s:s}", "eos_token", "<|im_end|>", "chat_template", tmpl);
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    CHECK(json_dump_file(j, path, 0) == 0, "writing %s", path);
    json_decref(j);
    return dir;
}

static void check_template_vars(const char *model, const char *data) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' data check '%s/train.jsonl' --model '%s' --show-mask 1 "
             "--template-var enable_thinking=false 2>&1", bin, data, model);
    char *out = run(cmd, 0);
    CHECK(strstr(out, "</think>\n\n[[horse<|im_end|>]]"), "enable_thinking=false mask:\n%s", out);
    free(out);
    char dir[1024], t40[1024];
    snprintf(dir, sizeof dir, "%s", test_tmp_path("run-nothink"));
    snprintf(t40, sizeof t40, "%s", test_tmp_path("t40.jsonl"));
    snprintf(cmd, sizeof cmd, "head -40 '%s/train.jsonl' > '%s' && '%s' finetune --model '%s' "
             "--train '%s' --out '%s' --epochs 1 --template-var enable_thinking=false --quiet 2>&1",
             data, t40, bin, model, t40, dir);
    free(run(cmd, 0));
    char path[1100];
    snprintf(path, sizeof path, "%s/final/hone_finetune.json", dir);
    json_t *j = json_load_file(path, 0, NULL);
    json_t *v = json_object_get(json_object_get(j, "chat_template_vars"), "enable_thinking");
    CHECK(json_is_false(v), "%s does not keep enable_thinking=false", path);
    json_decref(j);
    char gg[1024];
    snprintf(gg, sizeof gg, "%s", test_tmp_path("nothink.gguf"));
    snprintf(cmd, sizeof cmd, "'%s' export --model '%s' --adapter '%s/final' --format gguf "
             "--out '%s' 2>&1", bin, model, dir, gg);
    free(run(cmd, 0));
    gguf_file *f = NULL;
    hn_err err = {0};
    gguf_str t = {0};
    CHECK(gguf_open(gg, &f, &err) == HN_OK && gguf_get_str(f, "tokenizer.chat_template", &t, &err) == HN_OK,
          "%s: %s", gg, err.msg);
    const char *want = "{%- set enable_thinking = false -%}";
    CHECK(t.p && t.len > strlen(want) && !memcmp(t.p, want, strlen(want)),
          "exported template does not fix enable_thinking");
    if (f) gguf_close(f);
}

int main(void) {
    bin = getenv("HONE_BIN");
    if (!bin) return 77;
    const char *data = test_shared("data/animal");
    char model[1024], run_dir[1024]; /* test_tmp_path's buffers rotate */
    snprintf(model, sizeof model, "%s", test_tmp_path("qwen3-tiny-chat"));
    snprintf(run_dir, sizeof run_dir, "%s", test_tmp_path("run"));
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' init-model --arch qwen3 --tokenizer '%s' --out '%s' --dim 32 "
             "--layers 2 --heads 4 --kv-heads 2 --head-dim 8 --context 128 --seed 3 2>&1", bin,
             test_shared("tokenizers/qwen3"), model);
    free(run(cmd, 0));

    /* data check: the Jinja template, and <|im_end|> inside the mask */
    snprintf(cmd, sizeof cmd, "'%s' data check '%s/train.jsonl' --model '%s' --show-mask 1 2>&1",
             bin, data, model);
    char *out = run(cmd, 0);
    CHECK(strstr(out, "(jinja;"), "data check does not use the model's template:\n%s", out);
    CHECK(strstr(out, "horse<|im_end|>]]"), "<|im_end|> not inside the mask:\n%s", out);
    free(out);

    /* a template without an end-of-turn token after the answer is refused */
    const char *bad = with_template(model, "{% for m in messages %}{{ m.role }}: {{ m.content }}\n"
                                           "{% endfor %}{% if add_generation_prompt %}assistant: "
                                           "{% endif %}");
    snprintf(cmd, sizeof cmd, "'%s' finetune --model '%s' --train '%s/train.jsonl' --out '%s' 2>&1",
             bin, bad, data, test_tmp_path("bad-run"));
    out = run(cmd, 1);
    CHECK(strstr(out, "end-of-turn token '<|im_end|>'") && strstr(out, "never learn to stop"),
          "no clear refusal:\n%s", out);
    free(out);

    /* fine-tune (full: the model is small), then evaluate against the base */
    snprintf(cmd, sizeof cmd, "'%s' finetune --model '%s' --train '%s/train.jsonl' --out '%s' "
             "--batch-size 4 --epochs 4 --lr-multiplier 20 --quiet 2>&1", bin, model, data, run_dir);
    free(run(cmd, 0));
    const char *report = test_tmp_path("eval.json");
    snprintf(cmd, sizeof cmd, "'%s' eval --model '%s' --adapter '%s/final' --baseline base "
             "--data '%s/test.jsonl' --limit 30 --json '%s' 2>&1", bin, model, run_dir, data, report);
    free(run(cmd, 0));
    double tuned = eos_rate(report, "model"), base = eos_rate(report, "baseline");
    printf("replies ending with <|im_end|> by themselves: base %.0f%%, fine-tuned %.0f%%\n",
           100 * base, 100 * tuned);
    CHECK(tuned >= 0.9, "fine-tuned model stops on its own in only %.0f%% of replies", 100 * tuned);
    CHECK(base < 0.5, "the random base already stops (%.0f%%)?", 100 * base);

    /* the chat command uses the same template and stops at <|im_end|> */
    snprintf(cmd, sizeof cmd, "'%s' generate --model '%s' --adapter '%s/final' --chat --system "
             "'Name the animal in the story with one word.' --prompt 'In the park there was a "
             "frog. It liked Tom and the red ball.' --max-tokens 40 2>&1", bin, model, run_dir);
    out = run(cmd, 0);
    CHECK(strlen(out) < 60 && !strstr(out, "<|im_end|>") && !strstr(out, "<|im_start|>"),
          "reply did not stop cleanly: '%s'", out);
    printf("generate --chat: %s", out);
    free(out);
    check_template_vars(model, data);
    return test_finish("test_template_e2e");
}
