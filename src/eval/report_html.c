/* report_html.c — the self-contained HTML report: one page, inline CSS, no
 * scripts and no external assets, so it can be attached or archived as is.
 * Every string that comes from data or a model goes through
 * eval_html_escape. A CSS-only checkbox hides the unchanged rows. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "eval/report.h"
#include "eval/report_internal.h"

static const char *const css =
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}"
    "h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}"
    ".meta{color:#555;margin:2px 0}code{background:#f3f3f3;padding:0 3px}"
    "table{border-collapse:collapse;margin:8px 0}"
    "th,td{border:1px solid #ddd;padding:4px 8px;vertical-align:top;text-align:left}"
    "th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "tr.primary td{font-weight:600}"
    ".cards{display:flex;gap:12px}.card{border:1px solid #ddd;border-radius:6px;padding:8px 16px}"
    ".card b{display:block;font-size:22px}.win b{color:#1a7f37}.loss b{color:#cf222e}"
    "table.ex td.text{white-space:pre-wrap;max-width:28em;overflow-wrap:anywhere}"
    "tr.win td.out{background:#dafbe1}tr.loss td.out{background:#ffebe9}"
    ".score{color:#666;font-size:12px}.noeos{color:#9a6700;font-size:12px}"
    ".err{color:#cf222e;font-size:12px}"
    "#only:checked~table.ex tr.tie{display:none}";

void eval_html_escape(hn_buf *out, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': hn_buf_puts(out, "&amp;"); break;
        case '<': hn_buf_puts(out, "&lt;"); break;
        case '>': hn_buf_puts(out, "&gt;"); break;
        case '"': hn_buf_puts(out, "&quot;"); break;
        case '\'': hn_buf_puts(out, "&#39;"); break;
        default: hn_buf_putc(out, *s);
        }
    }
}

static void describe_escaped(const eval_run *run, hn_buf *o) {
    hn_buf d;
    hn_buf_init(&d);
    report_describe_run(run, &d);
    eval_html_escape(o, d.data ? d.data : "");
    if (d.oom) o->oom = true;
    hn_buf_free(&d);
}

static void html_head(const eval_report *r, hn_buf *o) {
    hn_buf_puts(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                   "<meta name=\"viewport\" content=\"width=device-width\"><title>hone eval: ");
    eval_html_escape(o, r->set->path);
    hn_buf_printf(o, "</title><style>%s</style></head><body>\n<h1>hone eval</h1>\n", css);
    hn_buf_puts(o, "<p class=\"meta\">data: <code>");
    eval_html_escape(o, r->set->path);
    hn_buf_printf(o, "</code>, %d examples, primary grader: <b>%s</b></p>\n", r->set->n,
                  eval_grader_name(r->grader));
    hn_buf_puts(o, "<p class=\"meta\">model: <code>");
    describe_escaped(r->model, o);
    hn_buf_puts(o, "</code></p>\n");
    if (r->baseline) {
        hn_buf_puts(o, "<p class=\"meta\">baseline: <code>");
        describe_escaped(r->baseline, o);
        hn_buf_puts(o, "</code></p>\n");
    }
    if (r->regex) {
        hn_buf_puts(o, "<p class=\"meta\">regex: <code>");
        eval_html_escape(o, r->regex);
        hn_buf_puts(o, "</code></p>\n");
    }
}

static void html_summary(const eval_report *r, hn_buf *o) {
    hn_buf_puts(o, "<h2>Summary</h2>\n<table class=\"summary\"><tr><th>metric</th>");
    if (r->baseline) hn_buf_puts(o, "<th>baseline</th>");
    hn_buf_puts(o, "<th>model</th></tr>\n");
    for (int m = 0; m < REPORT_N_METRICS; m++) {
        if (m == EVAL_REGEX && !r->regex) continue;
        hn_buf_printf(o, "<tr%s><td>%s</td>", m == (int)r->grader ? " class=\"primary\"" : "",
                      report_metric_name(m));
        const eval_run *runs[2] = {r->baseline, r->model};
        for (int k = r->baseline ? 0 : 1; k < 2; k++) {
            char v[32];
            report_format_metric(&runs[k]->sum, m, v, sizeof v);
            hn_buf_printf(o, "<td class=\"num\">%s</td>", v);
        }
        hn_buf_puts(o, "</tr>\n");
    }
    hn_buf_puts(o, "</table>\n");
}

static void html_comparison(const eval_report *r, hn_buf *o) {
    const eval_compare *c = r->cmp;
    hn_buf_printf(o, "<h2>Model vs baseline on %s</h2>\n<div class=\"cards\">"
                     "<div class=\"card win\"><b>%d</b>wins</div>"
                     "<div class=\"card loss\"><b>%d</b>losses</div>"
                     "<div class=\"card\"><b>%d</b>ties</div></div>\n",
                  eval_grader_name(c->grader), c->wins, c->losses, c->ties);
}

static void html_reply_cell(const eval_report *r, const eval_row *row, hn_buf *o) {
    char v[32];
    double sc = row->scores[r->grader];
    if (r->grader == EVAL_SIMILARITY || isnan(sc)) report_format_score(r->grader, sc, v, sizeof v);
    else snprintf(v, sizeof v, "%s", sc >= 1.0 ? "pass" : "fail");
    hn_buf_puts(o, "<td class=\"text\">");
    eval_html_escape(o, row->reply ? row->reply : "");
    hn_buf_printf(o, "<div class=\"score\">%s: %s</div>", eval_grader_name(r->grader), v);
    if (row->error) {
        hn_buf_puts(o, "<div class=\"err\">");
        eval_html_escape(o, row->error);
        hn_buf_puts(o, "</div>");
    } else if (!row->eos) {
        hn_buf_puts(o, "<div class=\"noeos\">no end-of-turn (stopped at the token limit)</div>");
    }
    hn_buf_puts(o, "</td>");
}

static void html_example_row(const eval_report *r, int i, hn_buf *o) {
    const char *out = r->cmp ? eval_outcome_name(r->cmp->outcome[i]) : "tie";
    hn_buf_printf(o, "<tr class=\"%s\"><td class=\"num\">%d</td><td class=\"num\">%ld</td>", out,
                  i + 1, r->set->examples[i].line);
    hn_buf_puts(o, "<td class=\"text\">");
    eval_html_escape(o, r->set->prompts[i]);
    hn_buf_puts(o, "</td><td class=\"text\">");
    eval_html_escape(o, r->set->refs[i]);
    hn_buf_puts(o, "</td>");
    if (r->baseline) html_reply_cell(r, &r->baseline->rows[i], o);
    html_reply_cell(r, &r->model->rows[i], o);
    if (r->cmp) hn_buf_printf(o, "<td class=\"out\">%s</td>", out);
    hn_buf_puts(o, "</tr>\n");
}

static void html_examples(const eval_report *r, hn_buf *o) {
    hn_buf_puts(o, "<h2>Examples</h2>\n");
    if (r->cmp)
        hn_buf_puts(o, "<input type=\"checkbox\" id=\"only\">"
                       "<label for=\"only\"> show only changed examples</label>\n");
    hn_buf_puts(o, "<table class=\"ex\"><tr><th>#</th><th>line</th><th>prompt</th>"
                   "<th>reference</th>");
    if (r->baseline) hn_buf_puts(o, "<th>baseline reply</th>");
    hn_buf_puts(o, r->baseline ? "<th>model reply</th>" : "<th>reply</th>");
    if (r->cmp) hn_buf_puts(o, "<th>outcome</th>");
    hn_buf_puts(o, "</tr>\n");
    for (int i = 0; i < r->model->n; i++) html_example_row(r, i, o);
    hn_buf_puts(o, "</table>\n");
}

void eval_report_html(const eval_report *r, hn_buf *out) {
    html_head(r, out);
    html_summary(r, out);
    if (r->cmp) html_comparison(r, out);
    html_examples(r, out);
    hn_buf_puts(out, "</body></html>\n");
}
