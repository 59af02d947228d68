/* test_train_resume.c — a resumed run continues the same run exactly.
 * stories260K on 40 animal examples, 2 epochs of 10 steps, with validation:
 *   LoRA: stopped after the epoch-1 checkpoint (step 10), resumed from
 *         checkpoints/step-10 into the same directory;
 *   full: stopped mid-epoch at step 13 with a checkpoint-on-stop, resumed.
 * Each is compared with an uninterrupted run: every metrics row after the
 * resume point bit-identical (the logged doubles and the metrics.csv text),
 * and the final weights byte-identical. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "train/finetune.h"
#include "test.h"

enum { MAX_STEPS = 256 };

typedef struct runctx {
    int n, first_step;
    double loss[MAX_STEPS], valid[MAX_STEPS];
    int stop_after;      /* stop once this many steps are done (0 = never) */
    bool ckpt_on_stop;
} runctx;

static void on_metrics(void *ctx, const ft_metrics *m) {
    runctx *r = ctx;
    if (r->n == 0) r->first_step = m->step;
    if (r->n >= MAX_STEPS) return;
    r->valid[r->n] = !isnan(m->full_valid_loss) ? m->full_valid_loss : m->valid_loss;
    r->loss[r->n++] = m->train_loss;
}

static bool should_stop(void *ctx, bool *ckpt) {
    runctx *r = ctx;
    *ckpt = r->ckpt_on_stop;
    return r->stop_after > 0 && r->n > 0 && r->first_step + r->n - 1 >= r->stop_after;
}

static hn_status run(ft_method method, const char *train, const char *valid, const char *out,
                     const char *resume, runctx *r, hn_err *err) {
    ft_config c;
    ft_config_default(&c);
    c.model_path = test_shared("models/stories260K/stories260K.gguf");
    c.train_path = train;
    c.valid_path = valid;
    c.method = method;
    c.n_epochs = 2;
    c.batch_size = 4;
    c.eval_every = 3;
    c.out_dir = out;
    c.resume_dir = resume;
    ft_callbacks cb = {.ctx = r, .on_metrics = on_metrics, .should_stop = should_stop};
    ft_result res;
    return ft_run(&c, &cb, &res, err);
}

static bool same_file(const char *a, const char *b) {
    size_t na, nb;
    char *x = test_read(a, &na), *y = test_read(b, &nb);
    bool same = na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

static void check(ft_method method, const char *train, const char *valid, int stop_after,
                  bool ckpt_on_stop) {
    const char *name = method == FT_LORA ? "lora" : "full";
    char dir_a[512], dir_b[512], ckpt[600];
    snprintf(dir_a, sizeof dir_a, "%s/%s-straight", test_tmpdir(), name);
    snprintf(dir_b, sizeof dir_b, "%s/%s-resumed", test_tmpdir(), name);
    static runctx a, b1, b2;
    memset(&a, 0, sizeof a), memset(&b1, 0, sizeof b1), memset(&b2, 0, sizeof b2);
    hn_err err = {0};
    hn_status s = run(method, train, valid, dir_a, NULL, &a, &err);
    CHECK(s == HN_OK && a.n == 20, "%s uninterrupted: %s (%d steps)", name, err.msg, a.n);
    b1.stop_after = stop_after;
    b1.ckpt_on_stop = ckpt_on_stop;
    s = run(method, train, valid, dir_b, NULL, &b1, &err);
    CHECK(s == HN_ECANCELLED && b1.n == stop_after, "%s stop at %d: %s (%d steps)", name,
          stop_after, err.msg, b1.n);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoints/step-%d", dir_b, stop_after);
    s = run(method, train, valid, dir_b, ckpt, &b2, &err);
    CHECK(s == HN_OK, "%s resume from %s: %s", name, ckpt, err.msg);
    CHECK(b2.first_step == stop_after + 1 && b2.n == 20 - stop_after,
          "%s resumed run did steps %d.. (%d)", name, b2.first_step, b2.n);
    int diff = 0;
    for (int i = 0; i < b2.n && stop_after + i < a.n; i++) {
        int j = stop_after + i;
        bool same = a.loss[j] == b2.loss[i] &&
                    (a.valid[j] == b2.valid[i] || (isnan(a.valid[j]) && isnan(b2.valid[i])));
        if (!same) {
            diff++;
            fprintf(stderr, "%s step %d: loss %.17g vs resumed %.17g, valid %.17g vs %.17g\n", name,
                    j + 1, a.loss[j], b2.loss[i], a.valid[j], b2.valid[i]);
        }
    }
    CHECK(diff == 0, "%s: %d metrics rows differ after resuming at step %d", name, diff, stop_after);
    char ca[600], cb[600];
    snprintf(ca, sizeof ca, "%s/metrics.csv", dir_a);
    snprintf(cb, sizeof cb, "%s/metrics.csv", dir_b);
    CHECK(same_file(ca, cb), "%s: metrics.csv of the resumed run differs", name);
    const char *wf = method == FT_LORA ? "adapter_model.safetensors" : "model.safetensors";
    snprintf(ca, sizeof ca, "%s/final/%s", dir_a, wf);
    snprintf(cb, sizeof cb, "%s/final/%s", dir_b, wf);
    CHECK(same_file(ca, cb), "%s: final weights of the resumed run differ", name);
    printf("%s: stopped after step %d%s, resumed: %d later rows and final weights identical\n",
           name, stop_after, ckpt_on_stop ? " (checkpoint on stop)" : " (epoch checkpoint)", b2.n);
}

int main(void) {
    const char *train = test_subset(test_shared("data/animal/train.jsonl"), 40, "train40.jsonl");
    const char *valid = test_subset(test_shared("data/animal/valid.jsonl"), 10, "valid10.jsonl");
    check(FT_LORA, train, valid, 10, false);
    check(FT_FULL, train, valid, 13, true);
    /* a checkpoint of a different run is refused, not silently continued */
    char ckpt[600], out[600];
    snprintf(ckpt, sizeof ckpt, "%s/lora-resumed/checkpoints/step-10", test_tmpdir());
    snprintf(out, sizeof out, "%s/wrong", test_tmpdir());
    ft_config c;
    ft_config_default(&c);
    c.model_path = test_shared("models/stories260K/stories260K.gguf");
    c.train_path = train;
    c.method = FT_LORA;
    c.n_epochs = 2;
    c.batch_size = 4;
    c.seed = 7;
    c.out_dir = out;
    c.resume_dir = ckpt;
    ft_result res;
    hn_err err = {0};
    CHECK(ft_run(&c, NULL, &res, &err) == HN_EINVAL && strstr(err.msg, "seed"),
          "resume with another seed: %s", err.msg);
    return test_finish("test_train_resume");
}
