/* registry.h — the models the server can name: base models found in the
 * models directories (*.gguf files, HF directories with config.json, and a
 * directory holding one GGUF, each named by its file or directory name) and
 * the fine-tuned models recorded in the store; plus a small cache of loaded
 * models shared by concurrent requests. */
#ifndef HN_REGISTRY_H
#define HN_REGISTRY_H

#include <stdbool.h>

#include "base/err.h"
#include "model/model.h"
#include "store/store.h"

typedef struct registry registry;

typedef struct reg_model {
    char id[600];
    char path[1024];   /* base: model file/dir; fine-tuned: trained output dir */
    long long created;
    char owned_by[64];
    bool fine_tuned;
    char base[256];    /* fine-tuned: base model id */
} reg_model;

hn_status registry_create(const char *const *dirs, int n_dirs, store *st, registry **out,
                          hn_err *err);
void registry_free(registry *r);
/* Models loaded from now on compute in Q8_0 (model_set_q8_0) when all is set,
 * or when auto_gguf is set and they come from a Q8_0 GGUF (default: neither). */
void registry_set_q8_0(registry *r, bool all, bool auto_gguf);
/* Every model, base models first; caller frees *out. */
hn_status registry_list(registry *r, reg_model **out, int *n, hn_err *err);
/* Resolves a model id ("stories260K", "stories260K.gguf", "ft:..."). */
hn_status registry_find(registry *r, const char *id, reg_model *out, hn_err *err);
/* A loaded model (base, or base with the fine-tune's adapter merged), shared;
 * hand it back with registry_release. */
hn_status registry_acquire(registry *r, const char *id, hn_model **out, hn_err *err);
void registry_release(registry *r, hn_model *m);
/* Drops a cached model (after its fine-tune was deleted). */
void registry_forget(registry *r, const char *id);

#endif
