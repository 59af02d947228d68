/* export.c — export options and the quality guard: held-out loss of the
 * in-memory model (base + merged fine-tune) against the exported files loaded
 * back by hone's own loader. */
#include <math.h>
#include <string.h>

#include "eval/eval.h"
#include "export/export.h"

void export_opts_default(export_opts *o) {
    memset(o, 0, sizeof *o);
    o->format = EXPORT_GGUF;
    o->dtype = EXPORT_F32;
}

bool export_format_parse(const char *s, export_format *out) {
    if (!strcmp(s, "gguf")) *out = EXPORT_GGUF;
    else if (!strcmp(s, "safetensors") || !strcmp(s, "hf")) *out = EXPORT_SAFETENSORS;
    else if (!strcmp(s, "gguf-adapter")) *out = EXPORT_GGUF_ADAPTER;
    else return false;
    return true;
}

static const char *const dtype_names[] = {"f32", "f16", "bf16", "q8_0"};

bool export_dtype_parse(const char *s, export_dtype *out) {
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, dtype_names[i])) {
            *out = (export_dtype)i;
            return true;
        }
    return false;
}

const char *export_dtype_name(export_dtype d) {
    return (unsigned)d < 4 ? dtype_names[d] : "?";
}

hn_status export_heldout_loss(const hn_model *m, const char *valid, int limit, double *loss,
                              long *tokens, int *examples, hn_err *err) {
    eval_set set;
    hn_status s = eval_set_load(valid, limit, &set, err);
    if (s) return s;
    eval_opts o;
    eval_opts_default(&o);
    o.max_tokens = 1; /* the loss is what matters; keep generation minimal */
    o.loss = true;
    eval_run run;
    memset(&run, 0, sizeof run);
    s = eval_run_model(m, &set, &o, NULL, NULL, &run, err);
    if (!s) {
        *loss = run.sum.mean_loss;
        *tokens = run.sum.loss_tokens;
        *examples = run.sum.n;
    }
    eval_run_free(&run);
    eval_set_free(&set);
    return s;
}

hn_status export_guard_run(const hn_model *ref, const char *exported, const char *valid,
                           int limit, export_guard *out, hn_err *err) {
    memset(out, 0, sizeof *out);
    if (!valid) return HN_OK;
    hn_status s = export_heldout_loss(ref, valid, limit, &out->loss_ref, &out->tokens,
                                      &out->examples, err);
    if (s) return s;
    hn_model *m;
    s = model_load(exported, &m, err);
    if (s) return hn_err_prefix(err, "loading the export back");
    long tokens;
    int n;
    s = export_heldout_loss(m, valid, limit, &out->loss_export, &tokens, &n, err);
    model_free(m);
    if (s) return s;
    out->ran = true;
    out->rel_diff = out->loss_ref > 0 ? fabs(out->loss_export - out->loss_ref) / out->loss_ref
                                      : fabs(out->loss_export - out->loss_ref);
    return HN_OK;
}
