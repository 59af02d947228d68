/* seqs.c — chat JSONL -> training sequences with the model's chat template.
 * Validation is the shared dataset validator, so a bad file stops training
 * with the same "file:line: field: kind" message as upload and `data check`. */
#include "train/seqs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/dataset.h"
#include "chat/template.h"

void ft_seqs_free(ft_seqs *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->v[i].ids);
        free(s->v[i].trained);
    }
    free(s->v);
    memset(s, 0, sizeof *s);
}

static hn_status validation_error(const chat_dataset *ds, const char *path, hn_err *err) {
    const chat_problem *p = chat_dataset_first_error(ds);
    if (ds->n_errors > 1)
        return hn_errf(err, HN_EINVAL, "%s (and %zu more problems; `hone data check %s` lists them)",
                       p ? p->text : "invalid file", ds->n_errors - 1, path);
    return hn_errf(err, HN_EINVAL, "%s", p ? p->text : "invalid file");
}

static hn_status take_render(ft_seqs *out, chat_render *r, long line, hn_err *err) {
    ft_seq *s = &out->v[out->n];
    s->ids = malloc(sizeof(int32_t) * r->n);
    s->trained = malloc(r->n);
    if (!s->ids || !s->trained) {
        free(s->ids);
        free(s->trained);
        return hn_errf(err, HN_ENOMEM, "out of memory");
    }
    memcpy(s->ids, r->ids, sizeof(int32_t) * r->n);
    memcpy(s->trained, r->trained, r->n);
    s->n = (int)r->n;
    s->n_trained = (int)r->n_trained;
    s->line = line;
    out->n++;
    out->total_tokens += s->n;
    out->trained_tokens += s->n_trained;
    if (s->n > out->max_len) out->max_len = s->n;
    return HN_OK;
}

static hn_status render_all(const hn_model *m, const chat_dataset *ds, const char *path,
                            int max_len, ft_seqs *out, ft_warn_fn warn, void *ctx, hn_err *err) {
    chat_template *tmpl;
    hn_status s = chat_template_for_model_vars(m->chat_template, m->chat_template_vars, &tmpl, err);
    if (s != HN_OK) return s;
    out->v = calloc(ds->n_examples ? ds->n_examples : 1, sizeof *out->v);
    if (!out->v) s = hn_errf(err, HN_ENOMEM, "out of memory");
    chat_render r;
    chat_render_init(&r);
    for (size_t i = 0; s == HN_OK && i < ds->n_examples; i++) {
        const chat_example *ex = &ds->examples[i];
        s = chat_template_render(tmpl, m->tok, ex, (size_t)max_len, &r, err);
        if (s != HN_OK) {
            hn_err_prefix(err, "%s:%ld", path, ex->line);
            break;
        }
        if (r.truncated) out->n_truncated++;
        if (r.n_trained == 0) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s:%ld: example dropped: no trained token left%s", path,
                     ex->line, r.truncated ? " after truncation to the context" : "");
            if (warn) warn(ctx, msg);
            out->n_dropped++;
            continue;
        }
        s = chat_render_check_eot(tmpl, m->tok, &r, err);
        if (s == HN_OK) s = take_render(out, &r, ex->line, err);
        else hn_err_prefix(err, "%s:%ld", path, ex->line);
    }
    chat_render_free(&r);
    chat_template_free(tmpl);
    return s;
}

hn_status ft_seqs_load(const hn_model *m, const char *path, int max_len, int min_examples,
                       ft_seqs *out, ft_warn_fn warn, void *ctx, hn_err *err) {
    memset(out, 0, sizeof *out);
    chat_dataset_opts o;
    chat_dataset_opts_default(&o);
    o.min_examples = min_examples;
    chat_dataset ds;
    hn_status s = chat_dataset_load(path, &o, &ds, err);
    if (s == HN_OK && !chat_dataset_ok(&ds)) s = validation_error(&ds, path, err);
    if (s == HN_OK) s = render_all(m, &ds, path, max_len, out, warn, ctx, err);
    chat_dataset_free(&ds);
    if (s != HN_OK) ft_seqs_free(out);
    return s;
}
