/* test_cli_generate.c — the `hone` binary as a user runs it: greedy
 * `hone generate` prints llama2.c's reference story for every fixture prompt
 * (GGUF and HF directory), `hone inspect` describes the model, and every
 * command answers --help. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "test.h"

static void check_generate(const char *bin, const char *model, json_t *res) {
    for (size_t i = 0; i < json_array_size(res); i++) {
        json_t *e = json_array_get(res, i);
        const char *prompt = json_string_value(json_object_get(e, "prompt"));
        const char *want = json_string_value(json_object_get(e, "stdout"));
        int n_new = (int)json_integer_value(json_object_get(e, "n_tokens")) -
                    (int)json_array_size(json_object_get(e, "prompt_tokens"));
        if (!*prompt) continue; /* the empty prompt has no text to echo; ids are covered by golden */
        char cmd[2048];
        snprintf(cmd, sizeof cmd,
                 "'%s' generate --model '%s' --prompt '%s' --temperature 0 --max-tokens %d 2>/dev/null",
                 bin, model, prompt, n_new);
        int st;
        char *out = test_run_cmd(cmd, &st);
        CHECK(st == 0, "%s exited %d", cmd, st);
        CHECK(out && !strcmp(out, want), "%s:\n got: %s\nwant: %s", cmd, out ? out : "", want);
        free(out);
    }
}

int main(void) {
    const char *bin = getenv("HONE_BIN");
    if (!bin) {
        fprintf(stderr, "HONE_BIN not set\n");
        return 2;
    }
    json_error_t je;
    json_t *fx = json_load_file(test_shared("fixtures/stories260K/llama2c_greedy.json"), 0, &je);
    if (!fx) return 2;
    json_t *res = json_object_get(fx, "results");
    check_generate(bin, test_shared("models/stories260K/stories260K.gguf"), res);
    check_generate(bin, test_shared("models/stories260K/hf"), res);

    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "'%s' inspect '%s' 2>&1", bin, test_shared("models/stories260K/stories260K.gguf"));
    char *out = test_run_cmd(cmd, &st);
    CHECK(st == 0 && out && strstr(out, "token_embd.weight") && strstr(out, "layers 5") &&
              strstr(out, "sentencepiece"), "inspect output:\n%s", out ? out : "");
    free(out);
    static const char *cmds[] = {"generate", "inspect", "finetune", "data", "eval", "serve"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        snprintf(cmd, sizeof cmd, "'%s' %s --help 2>&1", bin, cmds[i]);
        out = test_run_cmd(cmd, &st);
        CHECK(st == 0 && out && strstr(out, "usage"), "%s --help: exit %d\n%s", cmds[i], st, out ? out : "");
        free(out);
    }
    /* chat mode renders with the chat template: the base model rambles, but runs */
    snprintf(cmd, sizeof cmd, "'%s' generate --chat --system 'Be brief.' --prompt 'Hello' "
             "--temperature 0 --max-tokens 8 2>/dev/null", bin);
    out = test_run_cmd(cmd, &st);
    CHECK(st == 0 && out && strlen(out) > 1, "generate --chat: exit %d: %s", st, out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' generate --model /nonexistent.gguf --prompt x 2>&1", bin);
    out = test_run_cmd(cmd, &st);
    CHECK(st == 1 && out && strstr(out, "/nonexistent.gguf"), "missing model: exit %d: %s", st, out ? out : "");
    free(out);
    json_decref(fx);
    return test_finish("test_cli_generate");
}
