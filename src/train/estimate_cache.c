/* estimate_cache.c — the estimate's measurement cache (a small JSON file,
 * one entry per model + shape + method + thread count + GEMM backend) and the
 * estimate as JSON. Cache problems are never errors: an unreadable file is a
 * miss, an unwritable one is skipped. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/file.h"
#include "tensor/gemm.h"
#include "train/estimate_internal.h"

/* Bumped when what a cached entry measured changes, so older entries are
 * re-measured, not reused. 2: wide models measured with the auto precision
 * (bf16); 3: tiled attention (the activations no longer hold B*Hq*T*T
 * probabilities per layer, and the step time changed). */
#define EST_CACHE_VERSION 3
#define EST_CACHE_MAX 200 /* entries kept; the oldest go first */

bool ft_estimate_cache_path(char *out, size_t cap) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (xdg && *xdg) n = snprintf(out, cap, "%s/hone/estimates.json", xdg);
    else if (home && *home) n = snprintf(out, cap, "%s/.cache/hone/estimates.json", home);
    else return false;
    return n > 0 && (size_t)n < cap;
}

bool est_model_id(const char *path, char *out, size_t cap) {
    char real[PATH_MAX];
    struct stat st;
    if (!realpath(path, real) || stat(real, &st) != 0) return false;
    long long size = (long long)st.st_size, mtime = (long long)st.st_mtime;
    if (S_ISDIR(st.st_mode)) { /* an HF directory: its weights identify it */
        char p[PATH_MAX + 32];
        snprintf(p, sizeof p, "%s/model.safetensors", real);
        if (stat(p, &st) == 0) size = (long long)st.st_size, mtime = (long long)st.st_mtime;
    }
    int n = snprintf(out, cap, "%s|%lld|%lld", real, size, mtime);
    return n > 0 && (size_t)n < cap;
}

static void cache_key(const ft_estimate *e, const char *id, ft_method method, char *out,
                      size_t cap) {
    const ft_estimate_in *in = &e->in;
    snprintf(out, cap, "%s|%s|B%d|T%d|V%d|M%d|f%.2f|r%d|threads%d|%s", id,
             method == FT_LORA ? "lora" : "full", in->batch_size, in->train_len,
             in->n_valid ? in->valid_len : 0, in->max_len, in->trained_frac,
             method == FT_LORA ? in->lora_rank : 0, e->threads,
             gemm_backend_name(gemm_get_backend()));
}

/* The cache's "entries" object (borrowed from *root, which the caller frees). */
static json_t *load_entries(const char *path, json_t **root) {
    *root = json_load_file(path, 0, NULL);
    json_t *ent = json_object_get(*root, "entries");
    if (!json_is_object(*root) ||
        json_integer_value(json_object_get(*root, "version")) != EST_CACHE_VERSION ||
        !json_is_object(ent)) {
        json_decref(*root);
        *root = json_object();
        ent = json_object();
        json_object_set_new(*root, "version", json_integer(EST_CACHE_VERSION));
        json_object_set_new(*root, "entries", ent);
    }
    return ent;
}

static double num(const json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

bool est_cache_get(const ft_estimate *e, const char *model_id, ft_method method, est_record *r) {
    if (!e->cache_path[0]) return false;
    char key[2048];
    cache_key(e, model_id, method, key, sizeof key);
    json_t *root, *v = json_object_get(load_entries(e->cache_path, &root), key);
    bool ok = json_is_object(v) && num(v, "step_seconds") > 0 && num(v, "n_params") > 0;
    if (ok) {
        r->step_seconds = num(v, "step_seconds");
        r->eval_seconds = num(v, "eval_seconds");
        r->load_seconds = num(v, "load_seconds");
        r->bench_steps = (int)num(v, "bench_steps");
        r->n_params = (size_t)num(v, "n_params");
        r->lora_params = (size_t)num(v, "lora_params");
        r->activations = (size_t)num(v, "activation_bytes");
    }
    json_decref(root);
    return ok;
}

/* Drops the oldest entries beyond EST_CACHE_MAX. */
static void trim(json_t *ent) {
    while (json_object_size(ent) > EST_CACHE_MAX) {
        const char *k, *oldest = NULL;
        json_t *v;
        double t_old = 0;
        json_object_foreach(ent, k, v) {
            double t = num(v, "saved");
            if (!oldest || t < t_old) oldest = k, t_old = t;
        }
        if (!oldest || json_object_del(ent, oldest) != 0) break;
    }
}

bool est_cache_put(const ft_estimate *e, const char *model_id, ft_method method,
                   const est_record *r) {
    if (!e->cache_path[0]) return false;
    char key[2048], dir[1024];
    cache_key(e, model_id, method, key, sizeof key);
    json_t *root, *ent = load_entries(e->cache_path, &root);
    json_t *v = json_pack("{s:f,s:f,s:f,s:i,s:I,s:I,s:I,s:I}", "step_seconds", r->step_seconds,
                          "eval_seconds", r->eval_seconds, "load_seconds", r->load_seconds,
                          "bench_steps", r->bench_steps, "n_params", (json_int_t)r->n_params,
                          "lora_params", (json_int_t)r->lora_params, "activation_bytes",
                          (json_int_t)r->activations, "saved", (json_int_t)time(NULL));
    bool ok = v && json_object_set_new(ent, key, v) == 0;
    trim(ent);
    char *txt = ok ? json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
    json_decref(root);
    snprintf(dir, sizeof dir, "%s", e->cache_path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    hn_err err = {0};
    ok = txt && hn_mkdirs(dir, &err) == HN_OK;
    const void *parts[] = {txt};
    size_t lens[] = {txt ? strlen(txt) : 0};
    ok = ok && hn_file_write_atomic(e->cache_path, parts, lens, 1, &err) == HN_OK;
    free(txt);
    return ok;
}

/* ---- JSON ------------------------------------------------------------------ */

static void put(json_t *o, const char *k, json_t *v) {
    if (v) json_object_set_new(o, k, v);
}

static json_t *mem_json(const ft_estimate_mem *m) {
    json_t *o = json_object();
    put(o, "weights", json_integer((json_int_t)m->weights));
    put(o, "trainable_parameters", json_integer((json_int_t)m->trainable));
    put(o, "gradients", json_integer((json_int_t)m->grads));
    put(o, "adam_moments", json_integer((json_int_t)m->adam));
    put(o, "activations", json_integer((json_int_t)m->activations));
    put(o, "process_tokenizer_data", json_integer((json_int_t)m->runtime));
    return o;
}

static json_t *method_json(const ft_estimate_method *m) {
    json_t *o = json_object();
    json_t *t = m->measured ? json_real(m->total_seconds) : json_null();
    put(o, "seconds", t);
    put(o, "memory_bytes", json_integer((json_int_t)m->mem.total));
    put(o, "memory", mem_json(&m->mem));
    put(o, "measured", json_boolean(m->measured));
    put(o, "cached", json_boolean(m->cached));
    if (m->measured) {
        put(o, "seconds_per_step", json_real(m->step_seconds));
        put(o, "seconds_per_validation_batch", json_real(m->eval_seconds));
        put(o, "benchmark_steps", json_integer(m->bench_steps));
        put(o, "train_seconds", json_real(m->train_seconds));
        put(o, "validation_seconds", json_real(m->valid_seconds));
        put(o, "checkpoint_seconds", json_real(m->checkpoint_seconds));
        put(o, "setup_seconds", json_real(m->setup_seconds));
    }
    put(o, "note", m->note[0] ? json_string(m->note) : json_null());
    return o;
}

static json_t *shape_json(const ft_estimate_in *in) {
    json_t *o = json_object();
    put(o, "batch_size", json_integer(in->batch_size));
    put(o, "tokens_per_row", json_integer(in->train_len));
    put(o, "validation_tokens_per_row", in->n_valid ? json_integer(in->valid_len) : json_null());
    put(o, "max_tokens_per_row", json_integer(in->max_len));
    put(o, "steps", json_integer(in->steps));
    put(o, "lora_rank", json_integer(in->lora_rank));
    return o;
}

json_t *ft_estimate_json(const ft_estimate *e) {
    json_t *o = json_object();
    if (!o) return NULL;
    put(o, "auto_method", json_string(e->auto_method == FT_LORA ? "lora" : "full"));
    put(o, "threads", json_integer(e->threads));
    put(o, "parameters", json_integer((json_int_t)e->n_params));
    put(o, "lora_parameters", json_integer((json_int_t)e->lora_params));
    put(o, "shape", shape_json(&e->in));
    put(o, "lora", method_json(&e->lora));
    put(o, "full", method_json(&e->full));
    put(o, "cache_file", e->cache_path[0] ? json_string(e->cache_path) : json_null());
    return o;
}
