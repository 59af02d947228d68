/* test_bench.c — `hone bench --quick` (path in HONE_BIN) runs every case on the
 * tiny random model and prints one JSON object per stdout line, each with the
 * fields the compare script reads and positive numbers; with --precision q8_0
 * the inference and GEMM cases run on Q8_0 weights and say so ("weights":
 * "q8_0"). Not a timed test: only the shape of the output is checked, never a
 * speed. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static bool positive(json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    return json_is_number(v) && json_number_value(v) > 0;
}

typedef struct counts {
    int train, prefill, decode, gemm;
} counts;

/* Runs `hone bench ARGS`, checks every line; weights: the "weights" every
 * train/prefill/decode/gemm line must name. */
static counts run_bench(const char *bin, const char *args, const char *weights) {
    counts c = {0};
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' bench %s 2>/dev/null", bin, args);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL, "popen %s", cmd);
    if (!p) return c;
    char line[8192];
    while (fgets(line, sizeof line, p)) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        CHECK(json_is_object(o), "not a JSON object: %s (%s)", line, je.text);
        if (!o) continue;
        const char *b = json_string_value(json_object_get(o, "bench"));
        CHECK(b != NULL, "no \"bench\" in %s", line);
        CHECK(json_is_string(json_object_get(o, "gemm")) && json_is_string(json_object_get(o, "model")),
              "%s", line);
        const char *w = json_string_value(json_object_get(o, "weights"));
        CHECK(w && !strcmp(w, weights), "bench %s: want \"weights\":\"%s\" in %s", args, weights,
              line);
        if (b && !strcmp(b, "train_step")) {
            c.train++;
            const char *m = json_string_value(json_object_get(o, "method"));
            CHECK(m && (!strcmp(m, "full") || !strcmp(m, "lora")), "%s", line);
            CHECK(positive(o, "tokens_per_s") && positive(o, "peak_rss_mb") &&
                      positive(o, "batch") && positive(o, "seq") && positive(o, "step_ms") &&
                      positive(o, "loss"),
                  "%s", line);
        } else if (b && (!strcmp(b, "prefill") || !strcmp(b, "decode"))) {
            if (*b == 'p') c.prefill++;
            else c.decode++;
            CHECK(positive(o, "tokens_per_s") && positive(o, "peak_rss_mb"), "%s", line);
        } else if (b && !strcmp(b, "gemm")) {
            c.gemm++;
            CHECK(positive(o, "gflops") && positive(o, "M") && positive(o, "N") && positive(o, "K"),
                  "%s", line);
        } else {
            CHECK(0, "unknown bench kind in %s", line);
        }
        json_decref(o);
    }
    int rc = pclose(p);
    CHECK(rc == 0, "hone bench %s exited with %d", args, rc);
    return c;
}

int main(void) {
    const char *bin = getenv("HONE_BIN");
    if (!bin) {
        fprintf(stderr, "test_bench: HONE_BIN is not set\n");
        return 1;
    }
    counts c = run_bench(bin, "--quick --warmup 0 --iters 1", "f32");
    CHECK(c.train == 4 && c.prefill == 1 && c.decode == 1 && c.gemm >= 5,
          "results: %d train, %d prefill, %d decode, %d gemm", c.train, c.prefill, c.decode, c.gemm);
    c = run_bench(bin, "--quick --warmup 0 --iters 1 --precision q8_0 --cases "
                  "prefill:1x64,decode:8,gemm", "q8_0");
    CHECK(c.train == 0 && c.prefill == 1 && c.decode == 1 && c.gemm >= 4,
          "q8_0 results: %d prefill, %d decode, %d gemm", c.prefill, c.decode, c.gemm);
    return test_finish("test_bench");
}
