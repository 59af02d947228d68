/* tokens.c — choosing the trainable token rows of a LoRA fine-tune: the
 * untrained-row heuristics and the --train-tokens list. */
#include "train/tokens.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/template.h"

/* Rows of W (V, D) within 1e-3 (Euclidean) of row id: an untrained token's
 * rows are often left at one shared initial value (stories260K: 167 twins). */
static int count_twins(const float *W, int V, int D, int id) {
    const float *row = W + (size_t)id * D;
    int twins = 0;
    for (int v = 0; v < V; v++) {
        if (v == id) continue;
        const float *o = W + (size_t)v * D;
        double d = 0;
        for (int i = 0; i < D && d < 1e-6; i++) d += (double)(row[i] - o[i]) * (row[i] - o[i]);
        twins += d < 1e-6;
    }
    return twins;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Row id's norm over the median row norm of W (1 when it cannot be told). */
static double norm_ratio(const float *W, int V, int D, int id) {
    float *norms = malloc(sizeof(float) * (size_t)V);
    if (!norms) return 1.0;
    for (int v = 0; v < V; v++) {
        const float *r = W + (size_t)v * D;
        double s = 0;
        for (int i = 0; i < D; i++) s += (double)r[i] * r[i];
        norms[v] = (float)sqrt(s);
    }
    double mine = norms[id];
    qsort(norms, (size_t)V, sizeof *norms, cmp_float);
    double median = norms[V / 2];
    free(norms);
    return median > 0 ? mine / median : 1.0;
}

/* One matrix: twins, else a norm far below the median (Llama-3 base leaves
 * its unused special tokens near zero). */
static bool row_untrained(const float *W, const char *what, const hn_model *m, int id, char *why,
                          size_t cap) {
    int V = m->cfg.vocab_size, D = m->cfg.dim;
    int twins = count_twins(W, V, D, id);
    if (twins >= 8) {
        if (why) snprintf(why, cap, "its %s row equals %d other rows", what, twins);
        return true;
    }
    double ratio = norm_ratio(W, V, D, id);
    if (ratio < 0.1) {
        if (why) snprintf(why, cap, "its %s row's norm is %.3g of the median row's", what, ratio);
        return true;
    }
    return false;
}

bool ft_token_untrained(const hn_model *m, int id, char *why, size_t cap) {
    if (id < 0 || id >= m->cfg.vocab_size) return false;
    if (row_untrained(m->w.lm_head, "output", m, id, why, cap)) return true;
    return m->w.tok_emb != m->w.lm_head && row_untrained(m->w.tok_emb, "embedding", m, id, why, cap);
}

static hn_status add_id(ft_tokens *out, int id, const char *item, const hn_model *m, hn_err *err) {
    if (id < 0 || id >= m->cfg.vocab_size)
        return hn_errf(err, HN_EINVAL, "--train-tokens: '%s' is not a token of this model%s", item,
                       !strcmp(item, "eot") ? " (the template has no end-of-turn token)" : "");
    for (int k = 0; k < out->n; k++)
        if (out->ids[k] == id) return HN_OK;
    if (out->n == FT_MAX_TOKENS)
        return hn_errf(err, HN_EINVAL, "--train-tokens: at most %d tokens", FT_MAX_TOKENS);
    out->ids[out->n++] = id;
    return HN_OK;
}

/* "eot", a decimal id, or an exact token piece. */
static int item_id(const hn_model *m, const ft_tokens *out, const char *item) {
    if (!strcmp(item, "eot")) return out->eot;
    char *end;
    long v = strtol(item, &end, 10);
    if (*item && !*end) return v >= 0 && v < m->cfg.vocab_size ? (int)v : -1;
    return m->tok ? tok_find(m->tok, item, strlen(item)) : -1;
}

static hn_status parse_list(const hn_model *m, const char *spec, ft_tokens *out, hn_err *err) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", spec);
    hn_status s = HN_OK;
    for (char *save = NULL, *it = strtok_r(buf, ",", &save); it && s == HN_OK;
         it = strtok_r(NULL, ",", &save))
        s = add_id(out, item_id(m, out, it), it, m, err);
    return s;
}

static void describe(const hn_model *m, ft_tokens *out, const char *why) {
    size_t len = 0;
    for (int k = 0; k < out->n && len < sizeof out->names; k++)
        len += (size_t)snprintf(out->names + len, sizeof out->names - len, "%s'%s' (id %d)",
                                k ? ", " : "", m->tok ? tok_piece(m->tok, out->ids[k]) : "?",
                                out->ids[k]);
    snprintf(out->why, sizeof out->why, "%s", why);
}

hn_status ft_tokens_choose(const hn_model *m, const char *spec, ft_tokens *out, hn_err *err) {
    memset(out, 0, sizeof *out);
    out->eot = -1;
    chat_template *t;
    hn_status s = chat_template_for_model_vars(m->chat_template, m->chat_template_vars, &t, err);
    if (s != HN_OK) return s;
    out->eot = m->tok ? chat_template_eot(t, m->tok) : -1;
    chat_template_free(t);
    char untrained[200] = "";
    out->eot_untrained = ft_token_untrained(m, out->eot, untrained, sizeof untrained);
    bool is_auto = !spec || !*spec || !strcmp(spec, "auto");
    if (is_auto && out->eot_untrained) {
        out->ids[out->n++] = out->eot;
        char why[320];
        snprintf(why, sizeof why, "the base model never trained this end-of-turn token (%s), and "
                 "LoRA alone could not teach the model to stop", untrained);
        describe(m, out, why);
        return HN_OK;
    }
    if (is_auto || !strcmp(spec, "none")) return HN_OK;
    s = parse_list(m, spec, out, err);
    if (s == HN_OK) describe(m, out, "chosen with --train-tokens");
    return s;
}
