/* dataset.c — reading a chat JSONL file line by line: the line reader (with a
 * per-line size limit, never a whole-file one), blank lines, UTF-8 and NUL
 * checks, JSON parsing with jansson, the problem list and the file-level
 * checks (empty file, too few examples). Per-example rules live in
 * dataset_example.c. */
#include "chat/dataset.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "chat/dataset_internal.h"

static const char *const kind_names[CHAT_P_COUNT] = {
    "data_type",          "missing_messages_list",
    "message_missing_key", "message_unrecognized_key",
    "unrecognized_role",  "missing_content",
    "example_missing_assistant_message", "invalid_json",
    "invalid_utf8",       "invalid_weight",
    "invalid_tool_calls", "invalid_tools",
    "invalid_type",       "unsupported_content",
    "blank_line",         "line_too_long",
    "empty_file",         "too_few_examples",
};
_Static_assert(sizeof kind_names / sizeof kind_names[0] == CHAT_P_COUNT, "kind names");

const char *chat_problem_kind_name(chat_problem_kind k) {
    return (unsigned)k < CHAT_P_COUNT ? kind_names[k] : "unknown";
}

void chat_dataset_opts_default(chat_dataset_opts *o) {
    memset(o, 0, sizeof *o);
    o->max_line_bytes = (size_t)16 << 20;
    o->min_examples = 10;
    o->min_examples_is_error = true;
    o->max_problems_kept = 100;
    o->keep_examples = true;
}

void chat_dataset_init(chat_dataset *ds, const chat_dataset_opts *opts) {
    memset(ds, 0, sizeof *ds);
    if (opts)
        ds->opts = *opts;
    else
        chat_dataset_opts_default(&ds->opts);
    if (ds->opts.display_name) snprintf(ds->name, sizeof ds->name, "%s", ds->opts.display_name);
    ds->opts.display_name = ds->name;
}

void chat_dataset_free(chat_dataset *ds) {
    for (size_t i = 0; i < ds->n_examples && ds->examples; i++) chat_example_free(&ds->examples[i]);
    free(ds->examples);
    free(ds->problems);
    memset(ds, 0, sizeof *ds);
}

bool chat_dataset_ok(const chat_dataset *ds) { return ds->n_errors == 0; }

const chat_problem *chat_dataset_first_error(const chat_dataset *ds) {
    for (size_t i = 0; i < ds->n_problems; i++)
        if (!ds->problems[i].warning) return &ds->problems[i];
    return NULL;
}

void ds_add_problem(chat_dataset *ds, chat_problem_kind kind, long line, int msg_index,
                    const char *field, const char *fmt, ...) {
    bool warning = kind == CHAT_P_TOO_FEW_EXAMPLES && !ds->opts.min_examples_is_error;
    ds->counts[kind]++;
    if (warning)
        ds->n_warnings++;
    else
        ds->n_errors++;
    if (ds->n_problems >= (size_t)ds->opts.max_problems_kept) return;
    if (ds->n_problems == ds->cap_problems) {
        size_t cap = ds->cap_problems ? ds->cap_problems * 2 : 16;
        chat_problem *p = realloc(ds->problems, cap * sizeof *p);
        if (!p) return; /* the count above still records it */
        ds->problems = p;
        ds->cap_problems = cap;
    }
    chat_problem *p = &ds->problems[ds->n_problems++];
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->warning = warning;
    p->line = line;
    p->msg_index = msg_index;
    snprintf(p->field, sizeof p->field, "%s", field ? field : "");
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    hn_buf b;
    hn_buf_init(&b);
    if (ds->name[0]) hn_buf_puts(&b, ds->name);
    if (line > 0) hn_buf_printf(&b, ":%ld", line);
    if (b.len) hn_buf_puts(&b, ": ");
    if (p->field[0]) hn_buf_printf(&b, "%s: ", p->field);
    hn_buf_printf(&b, "%s: %s", kind_names[kind], detail);
    snprintf(p->text, sizeof p->text, "%s", b.data ? b.data : detail);
    hn_buf_free(&b);
}

/* ---- line reader ------------------------------------------------------- */

typedef struct line_reader {
    FILE *f;
    char chunk[1 << 16];
    size_t pos, len;
    bool eof, io_error;
    hn_buf line;
} line_reader;

/* Next line without its '\n' into r->line. Returns false at end of input.
 * A line longer than max keeps no bytes; *too_long is set and *total is its length. */
static bool reader_next(line_reader *r, size_t max, bool *too_long, size_t *total) {
    hn_buf_clear(&r->line);
    *too_long = false;
    *total = 0;
    bool any = false;
    for (;;) {
        if (r->pos == r->len) {
            if (r->eof) return any;
            r->len = fread(r->chunk, 1, sizeof r->chunk, r->f);
            r->pos = 0;
            if (r->len == 0) {
                r->eof = true;
                r->io_error = ferror(r->f) != 0;
                return any;
            }
        }
        any = true;
        const char *start = r->chunk + r->pos;
        const char *nl = memchr(start, '\n', r->len - r->pos);
        size_t n = nl ? (size_t)(nl - start) : r->len - r->pos;
        *total += n;
        if (*total > max) {
            *too_long = true;
            hn_buf_clear(&r->line);
        } else {
            hn_buf_append(&r->line, start, n);
        }
        r->pos += n + (nl ? 1 : 0);
        if (nl) return true;
    }
}

/* ---- per-line checks --------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (< n bytes left), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned min, cp;
    if (c >= 0xC2 && c <= 0xDF) len = 2, min = 0x80, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, min = 0x800, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, min = 0x10000, cp = c & 0x07;
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

/* Byte offset of the first invalid UTF-8 byte, or -1. */
static long utf8_first_invalid(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len(u + i, n - i);
        if (!l) return (long)i;
        i += l;
    }
    return -1;
}

/* Character column (1-based) of byte offset off in valid UTF-8 text. */
static long char_column(const char *s, size_t off) {
    long col = 1;
    for (size_t i = 0; i < off; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) col++;
    return col;
}

static bool is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
    return true;
}

static void store_example(chat_dataset *ds, chat_example *ex) {
    if (!ds->opts.keep_examples) {
        chat_example_free(ex);
        ds->n_examples++;
        return;
    }
    if (ds->n_examples == ds->cap_examples) {
        size_t cap = ds->cap_examples ? ds->cap_examples * 2 : 64;
        chat_example *p = realloc(ds->examples, cap * sizeof *p);
        if (!p) {
            chat_example_free(ex);
            ds->oom = true;
            return;
        }
        ds->examples = p;
        ds->cap_examples = cap;
    }
    ds->examples[ds->n_examples++] = *ex;
}

/* Parses one non-blank line; returns true if it produced an example. */
static bool parse_line(chat_dataset *ds, const char *s, size_t n, long line) {
    long bad = utf8_first_invalid(s, n);
    if (bad >= 0) {
        ds_add_problem(ds, CHAT_P_INVALID_UTF8, line, -1, "",
                       "invalid UTF-8 byte 0x%02X at byte %ld of the line",
                       (unsigned char)s[bad], bad + 1);
        return false;
    }
    const char *nul = memchr(s, 0, n);
    if (nul) {
        ds_add_problem(ds, CHAT_P_INVALID_JSON, line, -1, "",
                       "NUL byte at column %ld (control characters must be escaped in JSON)",
                       char_column(s, (size_t)(nul - s)));
        return false;
    }
    json_error_t je;
    json_t *obj = json_loadb(s, n, JSON_DECODE_ANY, &je);
    if (!obj) {
        const char *what = strstr(je.text, "JSON_ALLOW_NUL")
                               ? "\\u0000 (a NUL character) is not allowed in strings"
                               : je.text;
        ds_add_problem(ds, CHAT_P_INVALID_JSON, line, -1, "", "%s at column %d", what,
                       je.column > 0 ? je.column : 1);
        return false;
    }
    chat_example ex;
    bool ok = chat_example_from_json(obj, line, ds, &ex);
    json_decref(obj);
    if (ok) store_example(ds, &ex);
    return ok;
}

static void check_counts(chat_dataset *ds) {
    if (ds->n_examples == 0 && ds->n_invalid == 0) {
        ds_add_problem(ds, CHAT_P_EMPTY_FILE, 0, -1, "", "the file has no examples");
        return;
    }
    size_t min = ds->opts.min_examples > 0 ? (size_t)ds->opts.min_examples : 0;
    if (ds->n_examples < min)
        ds_add_problem(ds, CHAT_P_TOO_FEW_EXAMPLES, 0, -1, "",
                       "%zu valid example(s), at least %zu are required", ds->n_examples, min);
}

/* Reads all lines of f into an initialised ds. */
static hn_status load_stream(FILE *f, chat_dataset *ds, hn_err *err) {
    line_reader *r = calloc(1, sizeof *r);
    if (!r) return hn_errf(err, HN_ENOMEM, "%s: out of memory", ds->name);
    r->f = f;
    hn_buf_init(&r->line);
    size_t pending_blank = 0; /* blank lines not yet known to be before content */
    bool too_long;
    size_t total;
    while (reader_next(r, ds->opts.max_line_bytes, &too_long, &total)) {
        long line = (long)++ds->n_lines;
        if (too_long) {
            ds_add_problem(ds, CHAT_P_LINE_TOO_LONG, line, -1, "",
                           "the line has %zu bytes, the limit is %zu", total,
                           ds->opts.max_line_bytes);
            ds->n_invalid++;
            continue;
        }
        const char *s = r->line.data ? r->line.data : "";
        size_t n = r->line.len;
        if (line == 1 && n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) s += 3, n -= 3; /* BOM */
        if (n && s[n - 1] == '\r') n--;
        if (is_blank(s, n)) {
            pending_blank++;
            continue;
        }
        for (; pending_blank; pending_blank--) {
            ds_add_problem(ds, CHAT_P_BLANK_LINE, line - (long)pending_blank, -1, "",
                           "empty line (every line must be one JSON object)");
            ds->n_invalid++;
        }
        if (!parse_line(ds, s, n, line)) ds->n_invalid++;
    }
    bool io = r->io_error, oom = r->line.oom;
    hn_buf_free(&r->line);
    free(r);
    if (io) return hn_errf(err, HN_EIO, "%s: read error after line %zu", ds->name, ds->n_lines);
    if (oom || ds->oom)
        return hn_errf(err, HN_ENOMEM, "%s: out of memory", ds->name);
    check_counts(ds);
    return HN_OK;
}

hn_status chat_dataset_load_fp(FILE *f, const chat_dataset_opts *opts, chat_dataset *ds,
                               hn_err *err) {
    chat_dataset_init(ds, opts);
    return load_stream(f, ds, err);
}

hn_status chat_dataset_load(const char *path, const chat_dataset_opts *opts, chat_dataset *ds,
                            hn_err *err) {
    chat_dataset_init(ds, opts);
    if (!ds->name[0]) {
        const char *slash = strrchr(path, '/');
        snprintf(ds->name, sizeof ds->name, "%s", slash ? slash + 1 : path);
    }
    FILE *f = fopen(path, "rb");
    if (!f) return hn_errf(err, HN_EIO, "%s: %s", path, strerror(errno));
    hn_status s = load_stream(f, ds, err);
    fclose(f);
    return s;
}
