/* report_internal.h — helpers shared by the text, JSON and HTML reports.
 * Private to src/eval. */
#ifndef HN_EVAL_REPORT_INTERNAL_H
#define HN_EVAL_REPORT_INTERNAL_H

#include "base/buf.h"
#include "eval/report.h"

/* "path" or "path + adapter". */
void report_describe_run(const eval_run *run, hn_buf *out);
/* A grader's summary value: "95.0%" for pass/fail graders, "0.982" for
 * similarity, "-" when not applied. */
void report_format_score(eval_grader g, double v, char *out, size_t cap);
/* The metric rows of the summary table, in order (the grader rows first). */
enum { REPORT_N_METRICS = EVAL_N_GRADERS + 4 };
const char *report_metric_name(int k);
void report_format_metric(const eval_summary *s, int k, char *out, size_t cap);
/* At most max_cp codepoints of s on one line (newlines and tabs become
 * spaces), with "…" when cut. */
void report_excerpt(const char *s, int max_cp, hn_buf *out);

#endif
