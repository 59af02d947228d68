/* test_train_accum.c — gradient accumulation is one big batch: fine-tuning
 * stories260K with batch size 8 as 1, 2 and 4 micro-batches (grad_accum
 * 1/4/8 -> 8/2/1 rows) gives the same per-step losses and final weights,
 * for full fine-tuning and for LoRA. The loss is normalised by the trained
 * tokens of the whole step, so only summation order may differ (f32): the
 * losses agree to 1e-6 relative; the weights to 1e-4, because AdamW's
 * m / sqrt(v) turns f32 rounding of near-zero gradients (LoRA A after the
 * first step) into visible update differences. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "format/safetensors.h"
#include "train/finetune.h"
#include "test.h"

enum { MAX_STEPS = 256 };

typedef struct rec {
    int n;
    double loss[MAX_STEPS];
} rec;

static void on_metrics(void *ctx, const ft_metrics *m) {
    rec *r = ctx;
    if (r->n < MAX_STEPS) r->loss[r->n++] = m->train_loss;
}

static bool run(ft_config *c, rec *r) {
    ft_callbacks cb = {.ctx = r, .on_metrics = on_metrics};
    ft_result res;
    hn_err err = {0};
    memset(r, 0, sizeof *r);
    hn_status s = ft_run(c, &cb, &res, &err);
    CHECK(s == HN_OK, "ft_run (%s): %s", c->out_dir, err.msg);
    return s == HN_OK;
}

static void check_method(ft_method method, const char *train) {
    const char *name = method == FT_LORA ? "lora" : "full";
    static const int accums[3] = {1, 4, 8};
    static rec r[3];
    char out[3][512];
    for (int i = 0; i < 3; i++) {
        ft_config c;
        ft_config_default(&c);
        c.model_path = test_shared("models/stories260K/stories260K.gguf");
        c.train_path = train;
        c.method = method;
        c.n_epochs = 1;
        c.batch_size = 8;
        c.grad_accum = accums[i];
        snprintf(out[i], sizeof out[i], "%s/%s-accum%d", test_tmpdir(), name, accums[i]);
        c.out_dir = out[i];
        if (!run(&c, &r[i])) return;
    }
    for (int i = 1; i < 3; i++) {
        CHECK(r[i].n == r[0].n && r[0].n == 5, "%s: %d vs %d steps", name, r[i].n, r[0].n);
        double worst = 0;
        for (int s = 0; s < r[0].n && s < r[i].n; s++)
            worst = fmax(worst, fabs(r[i].loss[s] - r[0].loss[s]) / fabs(r[0].loss[s]));
        CHECK(worst < 1e-6, "%s grad_accum %d: loss differs by %.3g relative", name, accums[i], worst);
        double wd = test_weights_diff(out[0], out[i], method == FT_LORA ? "adapter_model.safetensors"
                                                                   : "model.safetensors");
        CHECK(wd < 1e-4, "%s grad_accum %d: final weights differ by %.3g relative", name,
              accums[i], wd);
        printf("%s: grad_accum %d vs 1 over %d steps: loss %.2e, weights %.2e relative\n", name,
               accums[i], r[0].n, worst, wd);
    }
    /* the curve moved: this is a training run, not a no-op */
    CHECK(r[0].loss[r[0].n - 1] < r[0].loss[0], "%s: loss %.4f -> %.4f", name, r[0].loss[0],
          r[0].loss[r[0].n - 1]);
}

int main(void) {
    const char *train = test_subset(test_shared("data/animal/train.jsonl"), 40, "train40.jsonl");
    check_method(FT_FULL, train);
    check_method(FT_LORA, train);
    return test_finish("test_train_accum");
}
