/* client_fmt.c — human-readable output and argument parsing shared by the
 * API client commands (files, jobs, models, chat). */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/client.h"

void hc_print_json(const json_t *j) {
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s) puts(s);
    free(s);
}

int hc_show(const hc *c, json_t *j, void (*human)(const json_t *)) {
    if (!j) return 1;
    if (c->json) hc_print_json(j);
    else human(j);
    json_decref(j);
    return 0;
}

const char *hc_time(const json_t *t, char *buf, size_t cap) {
    time_t v = (time_t)json_integer_value(t);
    struct tm tm;
    if (!json_is_integer(t) || v <= 0 || !localtime_r(&v, &tm)) return "-";
    strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

static bool is_time_key(const char *key) {
    size_t n = strlen(key);
    return !strcmp(key, "created") || !strcmp(key, "estimated_finish") ||
           (n > 3 && !strcmp(key + n - 3, "_at"));
}

const char *hc_str(const json_t *obj, const char *key, char *buf, size_t cap) {
    const json_t *v = json_object_get(obj, key);
    if (is_time_key(key)) return hc_time(v, buf, cap);
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_integer(v)) snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v)) snprintf(buf, cap, "%g", json_real_value(v));
    else if (json_is_boolean(v)) snprintf(buf, cap, "%s", json_is_true(v) ? "true" : "false");
    else if (json_is_object(v) || json_is_array(v)) {
        char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
        snprintf(buf, cap, "%s", s ? s : "?");
        free(s);
    } else return "-";
    return buf;
}

void hc_print_fields(const json_t *obj, const char *const *fields) {
    char buf[2048];
    for (int i = 0; fields[i]; i++)
        printf("%-18s %s\n", fields[i], hc_str(obj, fields[i], buf, sizeof buf));
}

/* One row of the table; the header (keys in capitals) when row is NULL. */
static void table_row(const json_t *row, const char *const *keys, const int *widths) {
    char buf[2048];
    for (int i = 0; keys[i]; i++) {
        const char *v = row ? hc_str(row, keys[i], buf, sizeof buf) : keys[i];
        if (!row) {
            size_t k = 0;
            for (; v[k] && k + 1 < sizeof buf; k++) buf[k] = (char)toupper((unsigned char)v[k]);
            buf[k] = 0;
            v = buf;
        }
        if (keys[i + 1]) printf("%-*s ", widths[i], v);
        else printf("%s\n", v);
    }
}

void hc_print_table(const json_t *page, const char *const *keys, const int *widths) {
    size_t i;
    json_t *row;
    table_row(NULL, keys, widths);
    json_array_foreach(json_object_get(page, "data"), i, row) table_row(row, keys, widths);
    if (json_is_true(json_object_get(page, "has_more")))
        printf("(more: pass --after with the last ID)\n");
}

int hc_fail(const hc *c, int rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", c->cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return rc;
}

bool hc_parse_int(const hc *c, const char *name, const char *v, long lo, long hi, long *out) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*v && !*end && x >= lo && x <= hi) {
        *out = x;
        return true;
    }
    fprintf(stderr, "%s: %s needs an integer in %ld..%ld, not '%s'\n", c->cmd, name, lo, hi, v);
    return false;
}

bool hc_parse_double(const hc *c, const char *name, const char *v, double *out) {
    char *end;
    double x = strtod(v, &end);
    if (*v && !*end && x >= 0) {
        *out = x;
        return true;
    }
    fprintf(stderr, "%s: %s needs a non-negative number, not '%s'\n", c->cmd, name, v);
    return false;
}

bool hc_positional(const hc *c, char **argv, int i, const char **pos, int *n, int max) {
    if (argv[i][0] == '-' && argv[i][1]) {
        fprintf(stderr, "%s: unknown option '%s'\n", c->cmd, argv[i]);
        return false;
    }
    if (*n >= max) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", c->cmd, argv[i]);
        return false;
    }
    pos[(*n)++] = argv[i];
    return true;
}

int hc_dispatch(const char *group, const hc_sub *subs, const char *usage, int argc,
                char **argv) {
    static char cmd[128];
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 0; subs[i].name; i++) {
        if (strcmp(argv[1], subs[i].name)) continue;
        for (int k = 2; k < argc; k++)
            if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) {
                fputs(usage, stdout);
                return 0;
            }
        snprintf(cmd, sizeof cmd, "hone %s %s", group, subs[i].name);
        hc c;
        hc_init(&c, cmd);
        int rc = subs[i].fn(&c, argc - 1, argv + 1);
        hc_close(&c);
        return rc;
    }
    fprintf(stderr, "hone %s: unknown subcommand '%s'\n\n%s", group, argv[1], usage);
    return 2;
}

int hc_id_args(hc *c, int argc, char **argv, const char **id) {
    bool bad = false;
    int n = 0;
    for (int i = 1; i < argc && !bad; i++) {
        if (hc_common_opt(c, argc, argv, &i, &bad)) continue;
        if (!hc_positional(c, argv, i, id, &n, 1)) return 2;
    }
    if (bad) return 2;
    return n ? 0 : hc_fail(c, 2, "missing ID");
}
