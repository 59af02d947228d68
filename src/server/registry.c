/* registry.c — model discovery by directory scan (cheap; repeated on every
 * lookup so models dropped into the folder appear without a restart) and a
 * reference-counted cache of loaded models (least recently used evicted). */
#include "server/registry.h"

#include <dirent.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/file.h"
#include "model/lora.h"

#define REG_MAX_DIRS 4
#define REG_CACHE 4

typedef struct cache_entry {
    char id[600];
    hn_model *m;
    int refs;
    long long used;
} cache_entry;

struct registry {
    char dirs[REG_MAX_DIRS][1024];
    int n_dirs;
    store *st;
    pthread_mutex_t mu;
    cache_entry cache[REG_CACHE];
    long long tick;
    bool q8_all, q8_auto; /* registry_set_q8_0 */
};

hn_status registry_create(const char *const *dirs, int n_dirs, store *st, registry **out,
                          hn_err *err) {
    registry *r = calloc(1, sizeof *r);
    if (!r) return hn_errf(err, HN_ENOMEM, "registry: out of memory");
    for (int i = 0; i < n_dirs && r->n_dirs < REG_MAX_DIRS; i++)
        if (dirs[i] && *dirs[i]) snprintf(r->dirs[r->n_dirs++], sizeof r->dirs[0], "%s", dirs[i]);
    r->st = st;
    pthread_mutex_init(&r->mu, NULL);
    *out = r;
    return HN_OK;
}

void registry_set_q8_0(registry *r, bool all, bool auto_gguf) {
    r->q8_all = all;
    r->q8_auto = auto_gguf;
}

void registry_free(registry *r) {
    if (!r) return;
    for (int i = 0; i < REG_CACHE; i++) model_free(r->cache[i].m);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* snprintf into a path buffer; false if it did not fit. */
static bool pathf(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool pathf(char *out, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < cap;
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* The GGUF inside a model directory without config.json: <name>.gguf, or
 * the only *.gguf there. */
static bool gguf_in_dir(const char *dir, const char *name, char *out, size_t cap) {
    pathf(out, cap, "%s/%s.gguf", dir, name);
    if (hn_path_exists(out)) return true;
    DIR *d = opendir(dir);
    if (!d) return false;
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (ends_with(e->d_name, ".gguf") && found++ == 0) pathf(out, cap, "%s/%s", dir, e->d_name);
    closedir(d);
    return found == 1;
}

/* Fills m from directory entry `name` of dir if it is a model. */
static bool entry_model(const char *dir, const char *name, reg_model *m) {
    if (name[0] == '.') return false;
    char p[1024], q[1100];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    if (stat(p, &st) != 0) return false;
    memset(m, 0, sizeof *m);
    m->created = (long long)st.st_mtime;
    snprintf(m->owned_by, sizeof m->owned_by, "system");
    if (S_ISREG(st.st_mode) && ends_with(name, ".gguf")) {
        snprintf(m->id, sizeof m->id, "%.*s", (int)(strlen(name) - 5), name);
        snprintf(m->path, sizeof m->path, "%s", p);
        return true;
    }
    if (!S_ISDIR(st.st_mode)) return false;
    snprintf(m->id, sizeof m->id, "%s", name);
    snprintf(q, sizeof q, "%s/config.json", p);
    if (hn_path_exists(q)) {
        snprintf(m->path, sizeof m->path, "%s", p);
        return true;
    }
    if (gguf_in_dir(p, name, m->path, sizeof m->path)) return true;
    snprintf(q, sizeof q, "%s/hf/config.json", p);
    if (hn_path_exists(q)) {
        pathf(m->path, sizeof m->path, "%s/hf", p);
        return true;
    }
    return false;
}

static bool has_id(const reg_model *v, int n, const char *id) {
    for (int i = 0; i < n; i++)
        if (!strcmp(v[i].id, id)) return true;
    return false;
}

static bool push(reg_model **v, int *n, int *cap, const reg_model *m) {
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 16;
        reg_model *nv = realloc(*v, (size_t)nc * sizeof *nv);
        if (!nv) return false;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = *m;
    return true;
}

static void scan_base(registry *r, reg_model **v, int *n, int *cap) {
    for (int i = 0; i < r->n_dirs; i++) {
        DIR *d = opendir(r->dirs[i]);
        if (!d) continue;
        struct dirent *e;
        reg_model m;
        while ((e = readdir(d)))
            if (entry_model(r->dirs[i], e->d_name, &m) && !has_id(*v, *n, m.id)) push(v, n, cap, &m);
        closedir(d);
    }
}

static void from_store(const store_model *sm, reg_model *m) {
    memset(m, 0, sizeof *m);
    snprintf(m->id, sizeof m->id, "%s", sm->id);
    snprintf(m->path, sizeof m->path, "%s", sm->path);
    snprintf(m->owned_by, sizeof m->owned_by, "%s", sm->owned_by);
    snprintf(m->base, sizeof m->base, "%s", sm->base_model);
    m->created = sm->created_at;
    m->fine_tuned = true;
}

hn_status registry_list(registry *r, reg_model **out, int *n, hn_err *err) {
    *out = NULL;
    *n = 0;
    int cap = 0;
    scan_base(r, out, n, &cap);
    store_model *sm;
    int ns;
    hn_status rc = store_model_list(r->st, &sm, &ns, err);
    for (int i = 0; rc == HN_OK && i < ns; i++) {
        reg_model m;
        from_store(&sm[i], &m);
        push(out, n, &cap, &m);
    }
    free(sm);
    return rc;
}

hn_status registry_find(registry *r, const char *id, reg_model *out, hn_err *err) {
    if (!strncmp(id, "ft:", 3)) {
        store_model sm;
        if (store_model_get(r->st, id, &sm, NULL) == HN_OK) {
            from_store(&sm, out);
            return HN_OK;
        }
    } else {
        char name[600];
        snprintf(name, sizeof name, "%s", id);
        if (ends_with(name, ".gguf")) name[strlen(name) - 5] = 0;
        reg_model *v = NULL;
        int n = 0, cap = 0;
        scan_base(r, &v, &n, &cap);
        for (int i = 0; i < n; i++)
            if (!strcmp(v[i].id, name)) {
                *out = v[i];
                free(v);
                return HN_OK;
            }
        free(v);
    }
    return hn_errf(err, HN_ENOTFOUND,
                   "The model `%s` does not exist or you do not have access to it.", id);
}

/* Loads a model: a base model as is; a fine-tune as its base with the
 * adapter merged in (or, for a full fine-tune, the saved weights). */
static hn_status load_model_f32(registry *r, const reg_model *info, hn_model **out,
                                hn_err *err) {
    if (!info->fine_tuned) return model_load(info->path, out, err);
    reg_model base;
    hn_status rc = registry_find(r, info->base, &base, err);
    if (rc != HN_OK) return hn_err_prefix(err, "base of %s", info->id);
    rc = model_load(base.path, out, err);
    if (rc != HN_OK) return rc;
    rc = model_apply_finetune(*out, info->path, err);
    if (rc != HN_OK) {
        model_free(*out);
        *out = NULL;
        return hn_err_prefix(err, "fine-tune %s", info->id);
    }
    return HN_OK;
}

/* Loads a model: a base model as is; a fine-tune as its base with the
 * adapter merged in (or, for a full fine-tune, the saved weights); in Q8_0
 * as registry_set_q8_0 says (a fine-tune of a Q8_0 GGUF base too). */
static hn_status load_model(registry *r, const reg_model *info, hn_model **out, hn_err *err) {
    hn_status rc = load_model_f32(r, info, out, err);
    if (rc == HN_OK && (r->q8_all || (r->q8_auto && (*out)->gguf_q8_0)))
        rc = model_set_q8_0(*out, true, err);
    if (rc != HN_OK && *out) {
        model_free(*out);
        *out = NULL;
    }
    return rc;
}

static cache_entry *cache_slot(registry *r) {
    cache_entry *best = NULL;
    for (int i = 0; i < REG_CACHE; i++) {
        cache_entry *e = &r->cache[i];
        if (!e->m) return e;
        if (e->refs == 0 && (!best || e->used < best->used)) best = e;
    }
    if (best) {
        model_free(best->m);
        memset(best, 0, sizeof *best);
    }
    return best;
}

hn_status registry_acquire(registry *r, const char *id, hn_model **out, hn_err *err) {
    reg_model info;
    hn_status rc = registry_find(r, id, &info, err);
    if (rc != HN_OK) return rc;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < REG_CACHE; i++) {
        cache_entry *e = &r->cache[i];
        if (e->m && !strcmp(e->id, info.id)) {
            e->refs++;
            e->used = ++r->tick;
            *out = e->m;
            pthread_mutex_unlock(&r->mu);
            return HN_OK;
        }
    }
    cache_entry *slot = cache_slot(r);
    if (!slot) rc = hn_errf(err, HN_ESTATE, "too many models in use at once; try again");
    else rc = load_model(r, &info, out, err);
    if (rc == HN_OK && slot) {
        snprintf(slot->id, sizeof slot->id, "%s", info.id);
        slot->m = *out;
        slot->refs = 1;
        slot->used = ++r->tick;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void registry_release(registry *r, hn_model *m) {
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < REG_CACHE; i++)
        if (r->cache[i].m == m && r->cache[i].refs > 0) r->cache[i].refs--;
    pthread_mutex_unlock(&r->mu);
}

void registry_forget(registry *r, const char *id) {
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < REG_CACHE; i++) {
        cache_entry *e = &r->cache[i];
        if (e->m && e->refs == 0 && !strcmp(e->id, id)) {
            model_free(e->m);
            memset(e, 0, sizeof *e);
        }
    }
    pthread_mutex_unlock(&r->mu);
}
