/* test_bench.c — `hone bench --quick` (path in HONE_BIN) runs every case on the
 * tiny random model and prints one JSON object per stdout line, each with the
 * fields the compare script reads and positive numbers. Not a timed test: only
 * the shape of the output is checked, never a speed. */
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

int main(void) {
    const char *bin = getenv("HONE_BIN");
    if (!bin) {
        fprintf(stderr, "test_bench: HONE_BIN is not set\n");
        return 1;
    }
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' bench --quick --warmup 0 --iters 1 2>/dev/null", bin);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL, "popen %s", cmd);
    if (!p) return test_finish("test_bench");
    char line[8192];
    int n_train = 0, n_prefill = 0, n_decode = 0, n_gemm = 0;
    while (fgets(line, sizeof line, p)) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        CHECK(json_is_object(o), "not a JSON object: %s (%s)", line, je.text);
        if (!o) continue;
        const char *b = json_string_value(json_object_get(o, "bench"));
        CHECK(b != NULL, "no \"bench\" in %s", line);
        CHECK(json_is_string(json_object_get(o, "gemm")) && json_is_string(json_object_get(o, "model")),
              "%s", line);
        if (b && !strcmp(b, "train_step")) {
            n_train++;
            const char *m = json_string_value(json_object_get(o, "method"));
            CHECK(m && (!strcmp(m, "full") || !strcmp(m, "lora")), "%s", line);
            CHECK(positive(o, "tokens_per_s") && positive(o, "peak_rss_mb") &&
                      positive(o, "batch") && positive(o, "seq") && positive(o, "step_ms") &&
                      positive(o, "loss"),
                  "%s", line);
        } else if (b && (!strcmp(b, "prefill") || !strcmp(b, "decode"))) {
            if (*b == 'p') n_prefill++;
            else n_decode++;
            CHECK(positive(o, "tokens_per_s") && positive(o, "peak_rss_mb"), "%s", line);
        } else if (b && !strcmp(b, "gemm")) {
            n_gemm++;
            CHECK(positive(o, "gflops") && positive(o, "M") && positive(o, "N") && positive(o, "K"),
                  "%s", line);
        } else {
            CHECK(0, "unknown bench kind in %s", line);
        }
        json_decref(o);
    }
    int rc = pclose(p);
    CHECK(rc == 0, "hone bench --quick exited with %d", rc);
    CHECK(n_train == 4 && n_prefill == 1 && n_decode == 1 && n_gemm >= 5,
          "results: %d train, %d prefill, %d decode, %d gemm", n_train, n_prefill, n_decode, n_gemm);
    return test_finish("test_bench");
}
