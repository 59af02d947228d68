/* api_models.c — /v1/models: base models found in the models directories and
 * fine-tuned models from the store; delete removes a fine-tuned model;
 * /content downloads a model as GGUF. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "export/export.h"
#include "server/http.h"

static json_t *json_model(const reg_model *m) {
    json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:n}", "id", m->id, "object", "model", "created",
                          (json_int_t)m->created, "owned_by", m->owned_by, "shutdown_date");
    if (m->fine_tuned) json_object_set_new(o, "root", json_string(m->base));
    return o;
}

static enum MHD_Result model_list(http_req *r) {
    reg_model *v;
    int n;
    hn_err err;
    if (registry_list(r->srv->reg, &v, &n, &err) != HN_OK)
        return http_error(r, 500, "server_error", NULL, NULL, "%s", err.msg);
    json_t *data = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(data, json_model(&v[i]));
    free(v);
    return http_json(r, 200, json_pack("{s:s,s:o,s:b}", "object", "list", "data", data,
                                       "has_more", 0));
}

static enum MHD_Result model_not_found(http_req *r, const char *id) {
    return http_error(r, 404, "invalid_request_error", "model", "model_not_found",
                      "The model `%s` does not exist or you do not have access to it.", id);
}

static enum MHD_Result model_one(http_req *r, const char *id) {
    reg_model m;
    if (registry_find(r->srv->reg, id, &m, NULL) != HN_OK) return model_not_found(r, id);
    if (!strcmp(r->method, "GET")) return http_json(r, 200, json_model(&m));
    if (!m.fine_tuned)
        return http_error(r, 403, "invalid_request_error", "model", "model_not_deletable",
                          "Base model `%s` cannot be deleted through the API; remove it from the "
                          "models directory.",
                          id);
    hn_err err;
    if (store_model_delete(r->srv->st, m.id, &err) != HN_OK) return model_not_found(r, id);
    registry_forget(r->srv->reg, m.id);
    return http_json(r, 200, json_pack("{s:s,s:s,s:b}", "id", m.id, "object", "model", "deleted", 1));
}

/* GET /models/{id}/content?dtype=f32|f16|bf16|q8_0: the model (a fine-tune
 * merged into its base) as one GGUF file for llama.cpp / Ollama. Exports are
 * cached under DATA/exports/ (written atomically), so a repeat is a plain read. */
static enum MHD_Result model_content(http_req *r, const char *id) {
    reg_model info;
    if (registry_find(r->srv->reg, id, &info, NULL) != HN_OK) return model_not_found(r, id);
    export_opts o;
    export_opts_default(&o);
    const char *dt = http_query(r, "dtype");
    if (dt && !export_dtype_parse(dt, &o.dtype))
        return http_bad(r, "dtype", "Invalid dtype '%s': use f32, f16, bf16 or q8_0.", dt);
    char dir[1100], name[700], path[2000];
    snprintf(dir, sizeof dir, "%s/exports", r->srv->cfg.data_dir);
    snprintf(name, sizeof name, "%s", info.id);
    for (char *c = name; *c; c++)
        if (*c == '/' || *c == ':') *c = '_';
    snprintf(path, sizeof path, "%s/%s-%s.gguf", dir, name, export_dtype_name(o.dtype));
    hn_err err = {0};
    if (!hn_path_exists(path)) {
        hn_model *m;
        if (hn_mkdirs(dir, &err) != HN_OK || registry_acquire(r->srv->reg, info.id, &m, &err) != HN_OK)
            return http_error(r, 500, "server_error", NULL, NULL, "%s", err.msg);
        o.name = info.id;
        hn_status rc = export_gguf(m, &o, path, &err);
        registry_release(r->srv->reg, m);
        if (rc != HN_OK) return http_error(r, 500, "server_error", NULL, NULL, "%s", err.msg);
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0) close(fd);
        return http_error(r, 500, "server_error", NULL, NULL, "export of %s is missing", info.id);
    }
    struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
    http_add_headers(r, resp, "application/octet-stream");
    char disp[800];
    snprintf(disp, sizeof disp, "attachment; filename=\"%s-%s.gguf\"", name, export_dtype_name(o.dtype));
    MHD_add_response_header(resp, "Content-Disposition", disp);
    return http_queue(r, 200, resp);
}

enum MHD_Result api_models(http_req *r, char **seg, int nseg) {
    bool get = !strcmp(r->method, "GET"), del = !strcmp(r->method, "DELETE");
    if (nseg == 1 && get) return model_list(r);
    if (nseg == 2 && (get || del)) return model_one(r, seg[1]);
    if (nseg == 3 && get && !strcmp(seg[2], "content")) return model_content(r, seg[1]);
    return http_not_found(r, NULL, "Unknown request URL: %s /v1/models/....", r->method);
}
