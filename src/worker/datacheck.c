/* datacheck.c — the Files/Jobs API view of a training file, computed by the
 * shared validator (src/chat/dataset.c) so that uploads, `hone data check`
 * and training report the same problems in the same words. */
#include "worker/datacheck.h"

#include <stdio.h>
#include <string.h>

#include "chat/dataset.h"

static void collect(const chat_dataset *ds, data_check *out) {
    size_t used = 0;
    for (size_t i = 0; i < ds->n_problems && i < DATACHECK_MAX_PROBLEMS; i++) {
        const chat_problem *p = &ds->problems[i];
        if (p->warning) continue;
        if (!out->not_object_line && p->line > 0 &&
            (p->kind == CHAT_P_DATA_TYPE || p->kind == CHAT_P_INVALID_JSON))
            out->not_object_line = (int)p->line;
        int n = snprintf(out->problems + used, sizeof out->problems - used, "%s%s",
                         used ? "; " : "", p->text);
        if (n < 0 || (size_t)n >= sizeof out->problems - used) break;
        used += (size_t)n;
    }
}

hn_status data_check_file(const char *path, const char *display_name, data_check *out,
                          hn_err *err) {
    memset(out, 0, sizeof *out);
    chat_dataset_opts o;
    chat_dataset_opts_default(&o);
    o.display_name = display_name;
    o.keep_examples = false; /* uploads can be large: validate and count only */
    o.min_examples = 0;      /* the example count is checked when a job is created */
    o.max_problems_kept = DATACHECK_MAX_PROBLEMS;
    chat_dataset ds;
    hn_status s = chat_dataset_load(path, &o, &ds, err);
    if (s == HN_OK) {
        out->n_lines = (int)ds.n_lines;
        out->n_examples = (int)ds.n_examples;
        out->n_problems = (int)ds.n_errors;
        collect(&ds, out);
    }
    chat_dataset_free(&ds);
    return s;
}
