/* cmd_files.c — `hone files upload|list|get|content|delete`: the Files API of
 * a running `hone serve` (or OpenAI) through the client in client.c. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char *usage =
    "usage: hone files <subcommand> [options]\n"
    "\n"
    "  upload FILE [--purpose P]     upload a file (purpose default fine-tune)\n"
    "  list [--purpose P] [--limit N] [--order asc|desc] [--after ID]\n"
    "  get ID                        show a file\n"
    "  content ID [-o OUT]           download its bytes (to stdout or OUT)\n"
    "  delete ID                     delete a file\n"
    "\n"
    "common options:\n";

static const char *const file_fields[] = {"id", "filename", "bytes", "purpose", "status",
                                          "created_at", "expires_at", NULL};

static void print_file(const json_t *f) {
    hc_print_fields(f, file_fields);
    const char *details = json_string_value(json_object_get(f, "status_details"));
    if (details) printf("%-18s %s\n", "status_details", details);
}

static int files_upload(hc *c, int argc, char **argv) {
    const char *pos[1], *purpose = "fine-tune";
    int n = 0;
    bool bad = false;
    for (int i = 1; i < argc && !bad; i++) {
        if (hc_common_opt(c, argc, argv, &i, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--purpose", &purpose, &bad)) continue;
        if (!hc_positional(c, argv, i, pos, &n, 1)) return 2;
    }
    if (bad) return 2;
    if (!n) return hc_fail(c, 2, "missing FILE");
    json_t *f = hc_upload(c, pos[0], purpose);
    if (!f) return 1;
    const char *status = json_string_value(json_object_get(f, "status"));
    bool error = status && !strcmp(status, "error");
    hc_show(c, json_incref(f), print_file);
    json_decref(f);
    if (error) return hc_fail(c, 1, "%s was stored but has errors (status \"error\")", pos[0]);
    return 0;
}

static void print_list(const json_t *page) {
    static const char *const keys[] = {"id", "bytes", "created_at", "purpose", "status",
                                       "filename", NULL};
    static const int widths[] = {30, 9, 19, 17, 9, 0};
    hc_print_table(page, keys, widths);
}

static int files_list(hc *c, int argc, char **argv) {
    const char *purpose = NULL, *limit = NULL, *order = NULL, *after = NULL;
    bool bad = false;
    for (int i = 1; i < argc && !bad; i++) {
        if (hc_common_opt(c, argc, argv, &i, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--purpose", &purpose, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--limit", &limit, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--order", &order, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--after", &after, &bad)) continue;
        if (!hc_positional(c, argv, i, NULL, &(int){0}, 0)) return 2;
    }
    if (bad) return 2;
    hn_buf p;
    hn_buf_init(&p);
    hn_buf_puts(&p, "/files");
    hc_query(&p, "purpose", purpose);
    hc_query(&p, "limit", limit);
    hc_query(&p, "order", order);
    hc_query(&p, "after", after);
    int rc = hc_show(c, hc_call(c, "GET", p.data, NULL), print_list);
    hn_buf_free(&p);
    return rc;
}

static int files_get(hc *c, int argc, char **argv) {
    const char *id;
    char path[1024];
    int rc = hc_id_args(c, argc, argv, &id);
    if (rc) return rc;
    hc_path(path, sizeof path, "/files/", id, NULL);
    return hc_show(c, hc_call(c, "GET", path, NULL), print_file);
}

static int write_out(hc *c, const char *out, const hn_buf *b) {
    FILE *f = out ? fopen(out, "wb") : stdout;
    if (!f) {
        fprintf(stderr, "%s: cannot write %s\n", c->cmd, out);
        return 1;
    }
    bool ok = fwrite(b->data ? b->data : "", 1, b->len, f) == b->len;
    if (out) ok = (fclose(f) == 0) && ok;
    else ok = (fflush(f) == 0) && ok;
    if (!ok) fprintf(stderr, "%s: writing %s failed\n", c->cmd, out ? out : "stdout");
    return ok ? 0 : 1;
}

static int files_content(hc *c, int argc, char **argv) {
    const char *pos[1], *out = NULL;
    int n = 0;
    bool bad = false;
    for (int i = 1; i < argc && !bad; i++) {
        if (hc_common_opt(c, argc, argv, &i, &bad)) continue;
        if (cli_opt(argc, argv, &i, "-o", &out, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--output", &out, &bad)) continue;
        if (!hc_positional(c, argv, i, pos, &n, 1)) return 2;
    }
    if (bad) return 2;
    if (!n) return hc_fail(c, 2, "missing ID");
    char path[1024];
    hc_path(path, sizeof path, "/files/", pos[0], "/content");
    hn_buf b;
    hn_buf_init(&b);
    int rc = hc_get_raw(c, path, &b) ? write_out(c, out, &b) : 1;
    hn_buf_free(&b);
    return rc;
}

static void print_deleted(const json_t *j) {
    char b[64];
    printf("deleted %s\n", hc_str(j, "id", b, sizeof b));
}

static int files_delete(hc *c, int argc, char **argv) {
    const char *id;
    char path[1024];
    int rc = hc_id_args(c, argc, argv, &id);
    if (rc) return rc;
    hc_path(path, sizeof path, "/files/", id, NULL);
    return hc_show(c, hc_call(c, "DELETE", path, NULL), print_deleted);
}

int cmd_files(int argc, char **argv) {
    static const hc_sub subs[] = {{"upload", files_upload}, {"list", files_list},
                                  {"get", files_get},       {"content", files_content},
                                  {"delete", files_delete}, {NULL, NULL}};
    char full[4096];
    snprintf(full, sizeof full, "%s%s", usage, hc_common_usage);
    return hc_dispatch("files", subs, full, argc, argv);
}
