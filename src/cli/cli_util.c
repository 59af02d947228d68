/* cli_util.c — option parsing helpers shared by the subcommands, the default
 * model and the resolution of a bare model name to a path. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/file.h"
#include "cli/cli.h"
#include "model/model.h"
#include "model/precision.h"
#include "tensor/gemm.h"

bool cli_opt(int argc, char **argv, int *i, const char *name, const char **val, bool *bad) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n)) return false;
    if (a[n] == '=') {
        *val = a + n + 1;
        return true;
    }
    if (a[n] != 0) return false;
    if (*i + 1 >= argc) {
        fprintf(stderr, "hone: option %s needs a value\n", name);
        *bad = true;
        return true;
    }
    *val = argv[++*i];
    return true;
}

bool cli_flag(char **argv, int i, const char *name) { return !strcmp(argv[i], name); }

bool cli_want_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return true;
    return false;
}

const char *cli_default_model(void) {
    static char path[4096];
    const char *env = getenv("HONE_MODEL");
    if (env && *env) return env;
    const char *shared = getenv("HONE_SHARED");
    snprintf(path, sizeof path, "%s/models/stories260K/stories260K.gguf",
             shared && *shared ? shared : HONE_DEFAULT_SHARED);
    return path;
}

/* ---- model names --------------------------------------------------------- */

#define MODEL_TRIED 12

typedef struct model_search {
    char tried[MODEL_TRIED][4096];
    int n_tried;
} model_search;

/* True if path exists (recording it as a place looked at otherwise). */
static bool try_path(model_search *ms, const char *path) {
    if (hn_path_exists(path)) return true;
    if (ms->n_tried < MODEL_TRIED) snprintf(ms->tried[ms->n_tried++], sizeof ms->tried[0], "%s", path);
    return false;
}

/* A model named `name` inside directory dir: dir/name/name.gguf, dir/name
 * with config.json, dir/name/hf, or dir/name.gguf. */
static bool find_in(model_search *ms, const char *dir, const char *name, char *out, size_t cap) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s/%s.gguf", dir, name, name);
    if (try_path(ms, p)) return snprintf(out, cap, "%s", p) < (int)cap;
    snprintf(p, sizeof p, "%s/%s/config.json", dir, name);
    if (try_path(ms, p)) return snprintf(out, cap, "%s/%s", dir, name) < (int)cap;
    snprintf(p, sizeof p, "%s/%s/hf/config.json", dir, name);
    if (hn_path_exists(p)) return snprintf(out, cap, "%s/%s/hf", dir, name) < (int)cap;
    snprintf(p, sizeof p, "%s/%s.gguf", dir, name);
    if (try_path(ms, p)) return snprintf(out, cap, "%s", p) < (int)cap;
    return false;
}

static bool search_env_dirs(model_search *ms, const char *name, char *out, size_t cap) {
    const char *env = getenv("HONE_MODELS");
    if (!env || !*env) return false;
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s", env);
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save))
        if (*d && find_in(ms, d, name, out, cap)) return true;
    return false;
}

bool cli_resolve_model(const char *name_or_path, char *out, size_t cap) {
    if (hn_path_exists(name_or_path) || strchr(name_or_path, '/')) {
        if (!hn_path_exists(name_or_path)) {
            fprintf(stderr, "hone: model %s: no such file or directory\n", name_or_path);
            return false;
        }
        return snprintf(out, cap, "%s", name_or_path) < (int)cap;
    }
    model_search ms = {.n_tried = 0};
    const char *shared = getenv("HONE_SHARED");
    char models[4096];
    snprintf(models, sizeof models, "%s/models", shared && *shared ? shared : HONE_DEFAULT_SHARED);
    if (search_env_dirs(&ms, name_or_path, out, cap) || find_in(&ms, models, name_or_path, out, cap)) {
        char real[PATH_MAX]; /* "/a/b/../shared/x" -> "/a/shared/x" in reports */
        if (realpath(out, real) && strlen(real) < cap) memcpy(out, real, strlen(real) + 1);
        return true;
    }
    fprintf(stderr, "hone: model '%s' not found: it is not a file or directory here, and none of\n"
                    "these exist ($HONE_MODELS, then $HONE_SHARED/models):\n", name_or_path);
    for (int i = 0; i < ms.n_tried; i++) fprintf(stderr, "  %s\n", ms.tried[i]);
    return false;
}

bool cli_template_var(const char *cmd, const char *arg, char *vars, size_t cap) {
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        fprintf(stderr, "hone %s: --template-var wants NAME=VALUE, got '%s'\n", cmd, arg);
        return false;
    }
    json_t *obj = *vars ? json_loads(vars, 0, NULL) : json_object();
    json_t *val = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
    if (!val) val = json_string(eq + 1);
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(eq - arg), arg);
    json_object_set_new(obj, name, val);
    char *txt = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    bool ok = txt && strlen(txt) < cap;
    if (ok) memcpy(vars, txt, strlen(txt) + 1);
    else fprintf(stderr, "hone %s: --template-var: too many or too long variables\n", cmd);
    free(txt);
    return ok;
}

bool cli_precision(const char *cmd, const char *v, bool training, cli_prec *out) {
    if (!strcmp(v, "auto")) { /* decided per model (cli_precision_apply) */
        *out = CLI_PREC_DEFAULT;
        return true;
    }
    if (!strcmp(v, "f32")) { /* the default backend ($HONE_GEMM or the build's) */
        *out = CLI_PREC_F32;
        return true;
    }
    if (!strcmp(v, "q8_0")) {
        if (training) {
            fprintf(stderr, "hone %s: q8_0 is an inference precision; use f32 or bf16 for "
                            "training\n", cmd);
            return false;
        }
        *out = CLI_PREC_Q8_0; /* per model, once it is loaded (cli_precision_apply) */
        return true;
    }
    if (strcmp(v, "bf16")) {
        fprintf(stderr, "hone %s: --precision is auto, f32, bf16%s, not '%s'\n", cmd,
                training ? "" : " or q8_0", v);
        return false;
    }
    if (!gemm_backend_available(GEMM_DNNL_BF16)) {
        fprintf(stderr, "hone %s: --precision bf16 needs hone built with oneDNN\n", cmd);
        return false;
    }
    gemm_set_backend(GEMM_DNNL_BF16);
    *out = CLI_PREC_BF16;
    return true;
}

bool cli_precision_apply(const char *cmd, cli_prec p, struct hn_model *m, bool quiet) {
    bool q8 = p == CLI_PREC_Q8_0 || (p == CLI_PREC_DEFAULT && m->gguf_q8_0);
    hn_err err = {0};
    if (!q8 && p == CLI_PREC_DEFAULT) { /* auto: bf16 for wide models on native-bf16 CPUs */
        model_precision used;
        if (model_precision_apply(m, PREC_AUTO, &used, &err) != HN_OK) {
            fprintf(stderr, "hone %s: %s\n", cmd, err.msg);
            return false;
        }
        if (used == PREC_BF16 && !quiet)
            fprintf(stderr, "hone %s: computing in bf16 (auto: this CPU computes bf16 natively; "
                            "--precision f32 for exact f32)\n", cmd);
        return true;
    }
    if (!q8) return true;
    if (model_set_q8_0(m, true, &err) != HN_OK) {
        fprintf(stderr, "hone %s: %s\n", cmd, err.msg);
        return false;
    }
    if (p == CLI_PREC_DEFAULT && !quiet)
        fprintf(stderr, "hone %s: %s has Q8_0 matrices: computing in q8_0 (--precision f32 for "
                        "f32)\n", cmd, m->cfg.name);
    return true;
}
