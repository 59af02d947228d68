/* test_train_seed.c — same seed and data, same run: two fine-tunes of
 * stories260K with seed 42 write byte-identical metrics.csv files (train and
 * validation columns) and final weights; seed 43 gives another run. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "train/finetune.h"
#include "test.h"

static bool run(const char *train, const char *valid, const char *out, uint64_t seed,
                ft_method method) {
    ft_config c;
    ft_config_default(&c);
    c.model_path = test_shared("models/stories260K/stories260K.gguf");
    c.train_path = train;
    c.valid_path = valid;
    c.method = method;
    c.n_epochs = 2;
    c.batch_size = 4;
    c.eval_every = 2;
    c.seed = seed;
    c.out_dir = out;
    ft_result res;
    hn_err err = {0};
    hn_status s = ft_run(&c, NULL, &res, &err);
    CHECK(s == HN_OK, "ft_run %s: %s", out, err.msg);
    return s == HN_OK;
}

static char *read_in(const char *dir, const char *name, size_t *n) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return test_read(p, n);
}

static void check(ft_method method, const char *train, const char *valid) {
    const char *name = method == FT_LORA ? "lora" : "full";
    const char *wf = method == FT_LORA ? "final/adapter_model.safetensors" : "final/model.safetensors";
    char d[3][512];
    const uint64_t seeds[3] = {42, 42, 43};
    for (int i = 0; i < 3; i++) {
        snprintf(d[i], sizeof d[i], "%s/%s-run%d", test_tmpdir(), name, i);
        if (!run(train, valid, d[i], seeds[i], method)) return;
    }
    size_t n0, n1, n2, w0, w1;
    char *c0 = read_in(d[0], "metrics.csv", &n0), *c1 = read_in(d[1], "metrics.csv", &n1);
    char *c2 = read_in(d[2], "metrics.csv", &n2);
    char *x0 = read_in(d[0], wf, &w0), *x1 = read_in(d[1], wf, &w1);
    CHECK(n0 == n1 && !memcmp(c0, c1, n0), "%s: same seed, different metrics.csv", name);
    CHECK(w0 == w1 && !memcmp(x0, x1, w0), "%s: same seed, different final weights", name);
    CHECK(n0 != n2 || memcmp(c0, c2, n0), "%s: seed 43 gave the same metrics.csv as 42", name);
    int rows = 0, valid_rows = 0;
    for (char *p = strchr(c0, '\n'); p && p[1]; p = strchr(p + 1, '\n')) {
        rows++;
        char *e = strchr(p + 1, '\n');
        int commas = 0;
        for (char *q = p + 1; q < e; q++) commas += *q == ',';
        CHECK(commas == 4, "%s: metrics row with %d commas", name, commas);
        if (e && e[-1] != ',') valid_rows++;
    }
    CHECK(!strncmp(c0, "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n", 68),
          "%s: metrics.csv header", name);
    CHECK(rows == 20 && valid_rows == 10, "%s: %d rows, %d with validation", name, rows, valid_rows);
    printf("%s: seed 42 twice -> identical metrics.csv (%d rows, %d with validation) and weights\n",
           name, rows, valid_rows);
    free(c0), free(c1), free(c2), free(x0), free(x1);
}

int main(void) {
    const char *train = test_subset(test_shared("data/animal/train.jsonl"), 40, "train40.jsonl");
    const char *valid = test_subset(test_shared("data/animal/valid.jsonl"), 10, "valid10.jsonl");
    check(FT_FULL, train, valid);
    check(FT_LORA, train, valid);
    return test_finish("test_train_seed");
}
