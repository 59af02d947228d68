/* stopcheck.c — the post-training stop check: greedy generation on data
 * prompts through the same template and inference code as serving. */
#include "train/stopcheck.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat/dataset.h"
#include "chat/template.h"
#include "infer/generate.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct stop_ctx {
    int eot;
    bool hit;
} stop_ctx;

/* A template whose end-of-turn token is not EOS stops at it here. */
static bool on_token(void *p, int32_t id, const char *text, size_t len) {
    (void)text, (void)len;
    stop_ctx *c = p;
    c->hit = id == c->eot;
    return !c->hit;
}

/* One reply: *outcome 1 when generation ended with EOT (or EOS) by itself,
 * 0 when it ran into the budget, -1 when the context has no room for it. */
static hn_status answer(const hn_model *m, const chat_template *t, const chat_example *ex,
                        const gen_params *gp, chat_render *r, int *outcome, hn_err *err) {
    *outcome = -1;
    hn_status s = chat_render_prompt(t, m->tok, ex, r, err);
    if (s != HN_OK || (int)r->n + gp->max_tokens > m->cfg.max_seq_len) return s;
    stop_ctx c = {chat_template_eot(t, m->tok), false};
    gen_result res;
    s = gen_run(m, r->ids, (int)r->n, gp, on_token, &c, NULL, &res, err);
    *outcome = s == HN_OK && (res.finish == GEN_STOP_EOS || c.hit);
    return s;
}

hn_status ft_stop_check_run(const hn_model *m, const char *path, int max_prompts, int budget,
                            double max_seconds, ft_stop_check *out, hn_err *err) {
    memset(out, 0, sizeof *out);
    out->budget = budget;
    chat_dataset_opts o;
    chat_dataset_opts_default(&o);
    o.min_examples = 0;
    chat_dataset ds;
    hn_status s = chat_dataset_load(path, &o, &ds, err);
    if (s != HN_OK) return s;
    chat_template *t = NULL;
    s = chat_template_for_model_vars(m->chat_template, m->chat_template_vars, &t, err);
    chat_render r;
    chat_render_init(&r);
    gen_params gp;
    gen_params_default(&gp);
    gp.temperature = 0;
    gp.max_tokens = budget;
    double t0 = now();
    for (size_t i = 0; s == HN_OK && i < ds.n_examples && out->n_checked < max_prompts; i++) {
        if (out->n_checked > 0 && now() - t0 > max_seconds) break;
        chat_example ex = ds.examples[i];
        if (ex.n_msgs < 2 || ex.msgs[ex.n_msgs - 1].role != CHAT_ASSISTANT) continue;
        ex.n_msgs--; /* the conversation up to its last answer */
        int outcome;
        s = answer(m, t, &ex, &gp, &r, &outcome, err);
        out->n_checked += outcome >= 0;
        out->n_stopped += outcome > 0;
    }
    out->seconds = now() - t0;
    out->done = s == HN_OK;
    chat_render_free(&r);
    chat_template_free(t);
    chat_dataset_free(&ds);
    return s;
}
