/* check_json.c — the machine-readable form of the data check report
 * (`hone data check --json`, and later the server's file validation details),
 * and the marked-up text of one rendering (`--show-mask`). */
#include <string.h>

#include "chat/check.h"

/* json_object_set_new that tolerates a NULL value (allocation failure). */
static void put(json_t *o, const char *k, json_t *v) {
    if (v) json_object_set_new(o, k, v);
}

static json_t *lines_json(const chat_lines *l) {
    json_t *o = json_object(), *a = json_array();
    size_t kept = l->count < CHAT_LINES_KEPT ? l->count : CHAT_LINES_KEPT;
    for (size_t i = 0; a && i < kept; i++) json_array_append_new(a, json_integer(l->lines[i]));
    put(o, "count", json_integer((json_int_t)l->count));
    put(o, "lines", a);
    return o;
}

static json_t *dist_json(const chat_dist *d) {
    json_t *o = json_object();
    put(o, "min", json_integer((json_int_t)d->min));
    put(o, "median", json_integer((json_int_t)d->median));
    put(o, "p90", json_integer((json_int_t)d->p90));
    put(o, "max", json_integer((json_int_t)d->max));
    put(o, "mean", json_real(d->mean));
    return o;
}

static json_t *problems_json(const chat_dataset *ds) {
    json_t *o = json_object(), *counts = json_object(), *list = json_array();
    for (int k = 0; k < CHAT_P_COUNT; k++)
        if (ds->counts[k])
            put(counts, chat_problem_kind_name((chat_problem_kind)k), json_integer((json_int_t)ds->counts[k]));
    for (size_t i = 0; list && i < ds->n_problems; i++) {
        const chat_problem *p = &ds->problems[i];
        json_t *e = json_object();
        put(e, "code", json_string(chat_problem_kind_name(p->kind)));
        put(e, "level", json_string(p->warning ? "warning" : "error"));
        put(e, "line", p->line > 0 ? json_integer(p->line) : json_null());
        put(e, "message_index", p->msg_index >= 0 ? json_integer(p->msg_index) : json_null());
        put(e, "field", p->field[0] ? json_string(p->field) : json_null());
        put(e, "message", json_string(p->text));
        json_array_append_new(list, e);
    }
    put(o, "errors", json_integer((json_int_t)ds->n_errors));
    put(o, "warnings", json_integer((json_int_t)ds->n_warnings));
    put(o, "counts", counts);
    put(o, "first", list);
    return o;
}

static json_t *split_json(const chat_dataset *ds, const chat_split_stats *st) {
    json_t *o = json_object();
    put(o, "file", json_string(ds->name));
    put(o, "lines", json_integer((json_int_t)ds->n_lines));
    put(o, "examples", json_integer((json_int_t)ds->n_examples));
    put(o, "invalid_lines", json_integer((json_int_t)ds->n_invalid));
    put(o, "problems", problems_json(ds));
    put(o, "messages_per_example", dist_json(&st->msgs));
    put(o, "tokens_per_example", dist_json(&st->tokens));
    put(o, "trained_tokens_per_example", dist_json(&st->trained));
    put(o, "missing_system", lines_json(&st->missing_system));
    put(o, "missing_user", lines_json(&st->missing_user));
    put(o, "over_context", lines_json(&st->truncated));
    put(o, "trained_tokens_truncated", lines_json(&st->lost_trained));
    put(o, "dropped_no_trained_tokens", lines_json(&st->dropped));
    put(o, "duplicates", lines_json(&st->duplicates));
    json_t *eot = lines_json(&st->eot_errors);
    if (eot) put(eot, "first_message", st->eot_errors.count ? json_string(st->eot_message) : json_null());
    put(o, "end_of_turn_not_trained", eot);
    put(o, "examples_used", json_integer((json_int_t)st->n_used));
    put(o, "total_tokens", json_integer((json_int_t)st->total_tokens));
    put(o, "total_trained_tokens", json_integer((json_int_t)st->total_trained));
    return o;
}

static json_t *plan_json(const chat_plan *p) {
    json_t *o = json_object();
    put(o, "examples", json_integer((json_int_t)p->n_examples));
    put(o, "n_epochs", json_integer(p->n_epochs));
    put(o, "n_epochs_auto", json_boolean(p->epochs_auto));
    put(o, "batch_size", json_integer(p->batch_size));
    put(o, "batch_size_auto", json_boolean(p->batch_auto));
    put(o, "learning_rate_multiplier", json_real(p->lr_multiplier));
    put(o, "learning_rate_multiplier_auto", json_boolean(p->lr_auto));
    put(o, "steps", json_integer(p->steps));
    put(o, "trained_tokens", json_integer(p->trained_tokens));
    put(o, "target_tokens", json_integer(p->target_tokens));
    json_t *est = json_object();
    put(est, "seconds", json_null());
    put(est, "memory_bytes", json_null());
    /* filled by `hone data check` (train/estimate.h: it loads and benchmarks
     * the model, which file validation does not do) */
    put(est, "note", json_string("not estimated here; `hone data check` measures time and memory"));
    put(o, "estimate", est);
    return o;
}

json_t *chat_check_report_json(const chat_check_report *rep, const chat_dataset *train,
                               const chat_dataset *valid) {
    json_t *o = json_object();
    if (!o) return NULL;
    put(o, "ok", json_boolean(chat_check_ok(rep, train, valid)));
    put(o, "template", json_string(rep->template_name));
    put(o, "max_seq_len", json_integer((json_int_t)rep->max_seq_len));
    put(o, "train", split_json(train, &rep->train));
    put(o, "valid", rep->has_valid && valid ? split_json(valid, &rep->valid) : json_null());
    put(o, "train_valid_overlap", rep->has_valid ? lines_json(&rep->overlap) : json_null());
    put(o, "plan", plan_json(&rep->plan));
    return o;
}

void chat_check_format_mask(const tok *tk, const chat_render *r, bool ansi, hn_buf *out) {
    const char *on = ansi ? "\x1b[1;32m" : "[[", *off = ansi ? "\x1b[0m" : "]]";
    for (size_t i = 0; i < r->n; i++) {
        bool tr = r->trained[i], prev_tr = i > 0 && r->trained[i - 1];
        if (tr && !prev_tr) hn_buf_puts(out, on);
        if (!tr && prev_tr) hn_buf_puts(out, off);
        if (tok_is_special(tk, r->ids[i]))
            hn_buf_puts(out, tok_piece(tk, r->ids[i]));
        else
            tok_decode_piece(tk, i ? r->ids[i - 1] : -1, r->ids[i], out);
    }
    if (r->n && r->trained[r->n - 1]) hn_buf_puts(out, off);
}
