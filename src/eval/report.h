/* report.h — what `hone eval` shows: the comparison of a model with a
 * baseline on one grader, and the result as a text table, as JSON (summary +
 * per-example rows) and as a self-contained HTML page (inline CSS, every
 * string HTML-escaped). The formats are documented in docs/eval.md.
 * Nothing here prints: text and HTML go into an hn_buf, files are written
 * atomically. */
#ifndef HN_EVAL_REPORT_H
#define HN_EVAL_REPORT_H

#include <jansson.h>

#include "base/buf.h"
#include "eval/eval.h"

typedef enum eval_outcome { EVAL_TIE = 0, EVAL_WIN, EVAL_LOSS } eval_outcome;

/* Per example: did the model beat the baseline on the grader? */
typedef struct eval_compare {
    eval_grader grader;
    int wins, losses, ties;   /* from the model's side */
    eval_outcome *outcome;    /* [n], owned */
    int n;
} eval_compare;

/* Both runs must cover the same set. A score that is NAN (grader not
 * applied) ties. */
hn_status eval_compare_runs(const eval_run *baseline, const eval_run *model, eval_grader g,
                            eval_compare *out, hn_err *err);
void eval_compare_free(eval_compare *c);
/* "win", "loss", "tie". */
const char *eval_outcome_name(eval_outcome o);

typedef struct eval_report {
    const eval_set *set;
    const eval_run *model;
    const eval_run *baseline; /* NULL: a single run */
    const eval_compare *cmp;  /* NULL unless baseline */
    eval_grader grader;       /* the primary grader */
    const char *regex;        /* the regex grader's pattern, or NULL */
    int max_listed;           /* text: changed examples listed at most (default 20) */
} eval_report;

/* The human-readable summary table (and comparison) appended to out. */
void eval_report_text(const eval_report *r, hn_buf *out);
/* The whole result as a new JSON object (NULL on out-of-memory). */
json_t *eval_report_json(const eval_report *r);
hn_status eval_report_write_json(const eval_report *r, const char *path, hn_err *err);
/* A self-contained HTML page appended to out. */
void eval_report_html(const eval_report *r, hn_buf *out);
hn_status eval_report_write_html(const eval_report *r, const char *path, hn_err *err);
/* Appends s with &, <, >, " and ' escaped. */
void eval_html_escape(hn_buf *out, const char *s);

#endif
