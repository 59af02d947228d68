/* check.c — the numbers behind `hone data check`: renders every example,
 * builds distributions, truncation/drop/duplicate/overlap lists, the
 * end-of-turn check and the training plan; and the JSON form of the report.
 * Printing for humans is in src/cli/cmd_data.c. */
#include "chat/check.h"

#include <stdlib.h>
#include <string.h>

#include "chat/hparams.h"

static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

chat_dist chat_dist_of(size_t *v, size_t n) {
    chat_dist d = {0};
    if (!n) return d;
    qsort(v, n, sizeof *v, cmp_size);
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)v[i];
    d.min = v[0];
    d.max = v[n - 1];
    d.median = v[(n + 1) / 2 - 1];   /* nearest rank: ceil(0.5 n) */
    d.p90 = v[(9 * n + 9) / 10 - 1]; /* ceil(0.9 n) */
    d.mean = sum / (double)n;
    return d;
}

static void lines_add(chat_lines *l, long line) {
    if (l->count < CHAT_LINES_KEPT) l->lines[l->count] = line;
    l->count++;
}

static bool has_role(const chat_example *ex, chat_role role) {
    for (int i = 0; i < ex->n_msgs; i++)
        if (ex->msgs[i].role == role) return true;
    return false;
}

/* Per-example arrays for the distributions. */
typedef struct split_acc {
    size_t *msgs, *tokens, *trained;
} split_acc;

static void check_example(const chat_template *t, const tok *tk, const chat_example *ex,
                          const chat_render *r, chat_split_stats *st) {
    if (!has_role(ex, CHAT_SYSTEM)) lines_add(&st->missing_system, ex->line);
    if (!has_role(ex, CHAT_USER)) lines_add(&st->missing_user, ex->line);
    if (r->truncated) lines_add(&st->truncated, ex->line);
    if (r->n_trained < r->n_trained_full) lines_add(&st->lost_trained, ex->line);
    hn_err e = {0};
    if (chat_render_check_eot(t, tk, r, &e) != HN_OK) {
        if (!st->eot_errors.count)
            snprintf(st->eot_message, sizeof st->eot_message, "line %ld: %.480s", ex->line, e.msg);
        lines_add(&st->eot_errors, ex->line);
    }
    if (r->n_trained == 0) {
        lines_add(&st->dropped, ex->line);
        return;
    }
    st->n_used++;
    st->total_tokens += r->n;
    st->total_trained += r->n_trained;
}

typedef struct hash_line {
    uint64_t hash;
    long line;
} hash_line;

static int cmp_hash_line(const void *a, const void *b) {
    const hash_line *x = a, *y = b;
    if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

/* Sorted (hash, line) pairs of ds's examples; NULL on OOM (n = 0 -> non-NULL). */
static hash_line *sorted_hashes(const chat_dataset *ds) {
    hash_line *h = malloc((ds->n_examples + 1) * sizeof *h);
    if (!h) return NULL;
    for (size_t i = 0; i < ds->n_examples; i++)
        h[i] = (hash_line){ds->examples[i].hash, ds->examples[i].line};
    qsort(h, ds->n_examples, sizeof *h, cmp_hash_line);
    return h;
}

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

/* Duplicates: every example whose hash equals an earlier line's. Lines are
 * reported in file order. */
static hn_status find_duplicates(const chat_dataset *ds, chat_lines *out, hn_err *err) {
    hash_line *h = sorted_hashes(ds);
    long *dup = malloc((ds->n_examples + 1) * sizeof *dup);
    if (!h || !dup) {
        free(h);
        free(dup);
        return hn_errf(err, HN_ENOMEM, "data check: out of memory");
    }
    size_t nd = 0;
    for (size_t i = 1; i < ds->n_examples; i++)
        if (h[i].hash == h[i - 1].hash) dup[nd++] = h[i].line;
    qsort(dup, nd, sizeof *dup, cmp_long);
    for (size_t i = 0; i < nd; i++) lines_add(out, dup[i]);
    free(h);
    free(dup);
    return HN_OK;
}

static hn_status find_overlap(const chat_dataset *train, const chat_dataset *valid,
                              chat_lines *out, hn_err *err) {
    hash_line *h = sorted_hashes(train);
    if (!h) return hn_errf(err, HN_ENOMEM, "data check: out of memory");
    for (size_t i = 0; i < valid->n_examples; i++) {
        hash_line key = {valid->examples[i].hash, -1};
        size_t lo = 0, hi = train->n_examples;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (h[mid].hash < key.hash) lo = mid + 1;
            else hi = mid;
        }
        if (lo < train->n_examples && h[lo].hash == key.hash) lines_add(out, valid->examples[i].line);
    }
    free(h);
    return HN_OK;
}

hn_status chat_check_split(const chat_template *t, const tok *tk, const chat_dataset *ds,
                           size_t max_seq_len, chat_split_stats *st, hn_err *err) {
    memset(st, 0, sizeof *st);
    size_t n = ds->n_examples;
    if (n && !ds->examples)
        return hn_errf(err, HN_ESTATE, "%s: examples were not kept (keep_examples)", ds->name);
    split_acc a = {malloc((n + 1) * sizeof(size_t)), malloc((n + 1) * sizeof(size_t)),
                   malloc((n + 1) * sizeof(size_t))};
    hn_status s = HN_OK;
    if (!a.msgs || !a.tokens || !a.trained) s = hn_errf(err, HN_ENOMEM, "data check: out of memory");
    chat_render r;
    chat_render_init(&r);
    for (size_t i = 0; s == HN_OK && i < n; i++) {
        const chat_example *ex = &ds->examples[i];
        s = chat_template_render(t, tk, ex, max_seq_len, &r, err);
        if (s != HN_OK) {
            hn_err_prefix(err, "%s:%ld", ds->name, ex->line);
            break;
        }
        a.msgs[i] = (size_t)ex->n_msgs;
        a.tokens[i] = r.n_full;
        a.trained[i] = r.n_trained_full;
        check_example(t, tk, ex, &r, st);
    }
    if (s == HN_OK) {
        st->n_examples = n;
        st->msgs = chat_dist_of(a.msgs, n);
        st->tokens = chat_dist_of(a.tokens, n);
        st->trained = chat_dist_of(a.trained, n);
        s = find_duplicates(ds, &st->duplicates, err);
    }
    chat_render_free(&r);
    free(a.msgs);
    free(a.tokens);
    free(a.trained);
    return s;
}

chat_plan chat_check_plan(size_t n_examples, size_t total_tokens, size_t total_trained,
                          const chat_check_opts *o) {
    chat_plan p = {0};
    p.n_examples = n_examples;
    p.epochs_auto = o->n_epochs <= 0;
    p.batch_auto = o->batch_size <= 0;
    p.lr_auto = !(o->lr_multiplier > 0);
    p.n_epochs = p.epochs_auto ? chat_auto_epochs(n_examples) : o->n_epochs;
    p.batch_size = p.batch_auto ? chat_auto_batch_size(n_examples) : o->batch_size;
    p.lr_multiplier = p.lr_auto ? chat_auto_lr_multiplier(p.batch_size) : o->lr_multiplier;
    long long per_epoch = n_examples ? (long long)((n_examples + (size_t)p.batch_size - 1) / (size_t)p.batch_size) : 0;
    p.steps = per_epoch * p.n_epochs;
    p.trained_tokens = (long long)total_tokens * p.n_epochs;
    p.target_tokens = (long long)total_trained * p.n_epochs;
    return p;
}

hn_status chat_check_run(const chat_template *t, const tok *tk, const chat_dataset *train,
                         const chat_dataset *valid, const chat_check_opts *o,
                         chat_check_report *rep, hn_err *err) {
    memset(rep, 0, sizeof *rep);
    snprintf(rep->template_name, sizeof rep->template_name, "%s", chat_template_name(t));
    rep->max_seq_len = o->max_seq_len;
    hn_status s = chat_check_split(t, tk, train, o->max_seq_len, &rep->train, err);
    if (s == HN_OK && valid) {
        rep->has_valid = true;
        s = chat_check_split(t, tk, valid, o->max_seq_len, &rep->valid, err);
        if (s == HN_OK) s = find_overlap(train, valid, &rep->overlap, err);
    }
    if (s != HN_OK) return s;
    rep->plan = chat_check_plan(rep->train.n_used, rep->train.total_tokens,
                                rep->train.total_trained, o);
    return HN_OK;
}

bool chat_check_ok(const chat_check_report *rep, const chat_dataset *train,
                   const chat_dataset *valid) {
    if (!chat_dataset_ok(train) || (valid && !chat_dataset_ok(valid))) return false;
    if (rep->train.eot_errors.count || rep->valid.eot_errors.count) return false;
    return rep->train.n_used > 0;
}
