/* test_eval_acceptance.c — issue 5's acceptance 3, literally: fine-tune
 * stories260K on ../shared/data/animal with the defaults (`hone finetune
 * --model stories260K`), then
 *   hone eval --model stories260K --adapter <tuned> --baseline stories260K
 *             --data ../shared/data/animal/test.jsonl --grader exact
 * on all 100 test examples: the base model is near 0 %, the tuned one
 * >= 95 %, and the side-by-side table is printed. Model names go through
 * cli_resolve_model (HONE_SHARED/models). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "test.h"

static char bin[4096], tmp[512];

static int sh(const char *cmd) {
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static double exact(json_t *j, const char *run) {
    return json_real_value(json_object_get(json_object_get(json_object_get(j, run), "scores"), "exact"));
}

int main(void) {
    const char *b = getenv("HONE_BIN");
    if (!b) {
        fprintf(stderr, "test_eval_acceptance: HONE_BIN is not set\n");
        return 1;
    }
    snprintf(bin, sizeof bin, "%s", b);
    snprintf(tmp, sizeof tmp, "%s", test_tmpdir());
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' finetune --model stories260K --train '%s' --valid '%s' "
             "--out '%s/ft' --quiet > '%s/ft.log' 2>&1", bin, test_shared("data/animal/train.jsonl"),
             test_shared("data/animal/valid.jsonl"), tmp, tmp);
    int rc = sh(cmd);
    CHECK(rc == 0, "finetune exited %d (see %s/ft.log)", rc, tmp);
    if (rc) return test_finish("test_eval_acceptance");
    snprintf(cmd, sizeof cmd, "'%s' eval --model stories260K --adapter '%s/ft/final' "
             "--baseline stories260K --data '%s' --grader exact --json '%s/r.json' "
             "--html '%s/r.html' --quiet > '%s/out.txt' 2> '%s/err.txt'", bin, tmp,
             test_shared("data/animal/test.jsonl"), tmp, tmp, tmp, tmp);
    rc = sh(cmd);
    CHECK(rc == 0, "eval exited %d (see %s/err.txt)", rc, tmp);
    char path[600];
    snprintf(path, sizeof path, "%s/out.txt", tmp);
    char *out = test_read(path, NULL);
    CHECK(strstr(out, "baseline        model") && strstr(out, "comparison on exact (model vs baseline)"),
          "no side-by-side table:\n%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/r.json", tmp);
    json_t *j = json_load_file(path, 0, NULL);
    CHECK(j && json_integer_value(json_object_get(j, "n")) == 100, "100 examples");
    double base = exact(j, "baseline"), tuned = exact(j, "model");
    printf("acceptance 3 on animal/test.jsonl (100): base exact %.1f%%, fine-tuned exact %.1f%%\n",
           base * 100, tuned * 100);
    CHECK(base <= 0.05, "base exact %.2f", base);
    CHECK(tuned >= 0.95, "fine-tuned exact %.2f", tuned);
    json_decref(j);
    return test_finish("test_eval_acceptance");
}
