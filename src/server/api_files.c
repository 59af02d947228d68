/* api_files.c — /v1/files: multipart upload (streamed to a temp file by the
 * HTTP layer, checked, then committed by the store), list with cursor paging,
 * retrieve, raw content and delete. Fine-tune uploads are checked on arrival:
 * a file that is not JSONL is refused (400); one with bad examples is stored
 * with status "error" and the first problems, by line, in status_details. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/http.h"
#include "worker/datacheck.h"

static const char *const upload_purposes[] = {"assistants", "batch", "fine-tune", "vision",
                                              "user_data", "evals"};

json_t *json_file(const store_file *f) {
    json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:n,s:s,s:s,s:s}", "id", f->id, "object", "file",
                          "bytes", (json_int_t)f->bytes, "created_at", (json_int_t)f->created_at,
                          "expires_at", "filename", f->filename, "purpose", f->purpose, "status",
                          f->status);
    json_object_set_new(o, "status_details",
                        f->status_details ? json_string(f->status_details) : json_null());
    return o;
}

static bool valid_purpose(const char *p) {
    for (size_t i = 0; i < sizeof upload_purposes / sizeof upload_purposes[0]; i++)
        if (!strcmp(p, upload_purposes[i])) return true;
    return false;
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Checks a fine-tune upload; false after replying 400 in *res. */
static bool check_finetune(http_req *r, store_file *f, enum MHD_Result *res) {
    if (!ends_with(f->filename, ".jsonl")) {
        *res = http_bad(r, "file", "Invalid file format for Fine-Tuning API. Must be .jsonl");
        return false;
    }
    data_check dc;
    hn_err err;
    if (data_check_file(r->up_tmp, f->filename, &dc, &err) != HN_OK) {
        *res = http_error(r, 500, "server_error", NULL, NULL, "%s", err.msg);
        return false;
    }
    if (dc.not_object_line) {
        *res = http_bad(r, "file",
                        "Expected file to have JSONL format, where every line is a JSON "
                        "dictionary. Line %d is not a dictionary.",
                        dc.not_object_line);
        return false;
    }
    if (dc.n_problems) {
        snprintf(f->status, sizeof f->status, "error");
        char details[2200];
        snprintf(details, sizeof details, "%d problem(s) in %d example line(s): %s", dc.n_problems,
                 dc.n_lines, dc.problems);
        f->status_details = strdup(details);
    }
    return true;
}

static enum MHD_Result file_create(http_req *r) {
    if (!r->pp)
        return http_bad(r, NULL, "Expected a multipart/form-data body with 'file' and 'purpose'.");
    const char *purpose = r->up_purpose.data ? r->up_purpose.data : "";
    if (!*purpose) return http_bad(r, "purpose", "Missing required parameter: 'purpose'.");
    if (!valid_purpose(purpose))
        return http_bad(r, "purpose",
                        "'%s' is not one of ['assistants', 'batch', 'fine-tune', 'vision', "
                        "'user_data', 'evals'] - 'purpose'",
                        purpose);
    if (!r->up_seen_file && !r->up_file_part)
        return http_bad(r, "file", "Missing required parameter: 'file'.");
    if (r->up_write_failed)
        return http_error(r, 500, "server_error", NULL, NULL, "Could not store the upload.");
    if (r->up_bytes == 0 || !r->up_seen_file) return http_bad(r, "file", "File is empty: the upload has 0 bytes.");
    store_file f = {0};
    f.bytes = r->up_bytes;
    snprintf(f.filename, sizeof f.filename, "%s", r->up_filename);
    snprintf(f.purpose, sizeof f.purpose, "%s", purpose);
    snprintf(f.status, sizeof f.status, "processed");
    enum MHD_Result res;
    if (!strcmp(purpose, "fine-tune") && !check_finetune(r, &f, &res)) {
        store_file_free(&f);
        return res;
    }
    hn_err err;
    if (store_file_commit(r->srv->st, r->up_tmp, &f, &err) != HN_OK) {
        store_file_free(&f);
        return http_error(r, 500, "server_error", NULL, NULL, "%s", err.msg);
    }
    r->up_tmp[0] = 0; /* renamed: nothing to clean up */
    res = http_json(r, 200, json_file(&f));
    store_file_free(&f);
    return res;
}

static enum MHD_Result file_list(http_req *r) {
    int limit;
    enum MHD_Result res;
    if (!http_query_limit(r, 10000, 10000, &limit, &res)) return res;
    const char *order = http_query(r, "order");
    if (order && strcmp(order, "asc") && strcmp(order, "desc"))
        return http_bad(r, "order", "Invalid 'order': expected 'asc' or 'desc'.");
    store_file *v;
    int n;
    bool more;
    hn_err err;
    hn_status rc = store_file_list(r->srv->st, http_query(r, "purpose"), http_query(r, "after"),
                                   limit, order && !strcmp(order, "asc"), &v, &n, &more, &err);
    if (rc == HN_ENOTFOUND) return http_bad(r, "after", "%s", err.msg);
    if (rc != HN_OK) return http_error(r, 500, "server_error", NULL, NULL, "%s", err.msg);
    json_t *data = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(data, json_file(&v[i]));
    json_t *o = json_pack("{s:s,s:o,s:b}", "object", "list", "data", data, "has_more", more);
    json_object_set_new(o, "first_id", n ? json_string(v[0].id) : json_null());
    json_object_set_new(o, "last_id", n ? json_string(v[n - 1].id) : json_null());
    store_files_free(v, n);
    return http_json(r, 200, o);
}

static enum MHD_Result file_content(http_req *r, const store_file *f) {
    char path[1200];
    store_file_path(r->srv->st, f->id, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0) close(fd);
        return http_error(r, 500, "server_error", NULL, NULL, "The bytes of %s are missing.",
                          f->id);
    }
    struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
    http_add_headers(r, resp, "application/octet-stream");
    return http_queue(r, 200, resp);
}

static enum MHD_Result file_one(http_req *r, const char *id, const char *sub) {
    store_file f;
    hn_err err;
    hn_status rc = store_file_get(r->srv->st, id, &f, &err);
    if (rc == HN_ENOTFOUND) return http_not_found(r, "id", "No such File object: %s", id);
    if (rc != HN_OK) return http_error(r, 500, "server_error", NULL, NULL, "%s", err.msg);
    enum MHD_Result res;
    if (sub && !strcmp(r->method, "GET")) {
        res = file_content(r, &f);
    } else if (!strcmp(r->method, "DELETE") && !sub) {
        rc = store_file_delete(r->srv->st, id, &err);
        res = rc == HN_OK ? http_json(r, 200, json_pack("{s:s,s:s,s:b}", "id", id, "object", "file",
                                                        "deleted", 1))
                          : http_not_found(r, "id", "No such File object: %s", id);
    } else {
        res = http_json(r, 200, json_file(&f));
    }
    store_file_free(&f);
    return res;
}

enum MHD_Result api_files(http_req *r, char **seg, int nseg) {
    const char *m = r->method;
    if (nseg == 1 && !strcmp(m, "POST")) return file_create(r);
    if (nseg == 1 && !strcmp(m, "GET")) return file_list(r);
    if (nseg == 2 && (!strcmp(m, "GET") || !strcmp(m, "DELETE"))) return file_one(r, seg[1], NULL);
    if (nseg == 3 && !strcmp(seg[2], "content") && !strcmp(m, "GET"))
        return file_one(r, seg[1], "content");
    return http_not_found(r, NULL, "Unknown request URL: %s /v1/files/...", m);
}
