/* checkpoint.c — checkpoints that resume exactly: trainable weights (PEFT
 * adapter or full safetensors), AdamW moments, and the loop position. A
 * checkpoint directory is built under a temporary name and renamed into place,
 * so a kill -9 leaves either no checkpoint or a complete one. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "format/safetensors.h"
#include "train/trainer.h"

static hn_status save_json(const char *dir, const char *name, json_t *j, hn_err *err) {
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *txt = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    if (!txt) return hn_errf(err, HN_ENOMEM, "out of memory");
    const void *parts[] = {txt};
    size_t lens[] = {strlen(txt)};
    hn_status s = hn_file_write_atomic(path, parts, lens, 1, err);
    free(txt);
    return s;
}

static hn_status save_full_weights(const hn_model *m, const char *dir, hn_err *err) {
    st_wtensor *ts = calloc((size_t)m->n_param_tensors, sizeof *ts);
    if (!ts) return hn_errf(err, HN_ENOMEM, "out of memory");
    for (int i = 0; i < m->n_param_tensors; i++) {
        const model_param *p = &m->params[i];
        ts[i] = (st_wtensor){p->name, ST_F32, p->n_dims, {p->shape[0], p->shape[1]}, p->data};
    }
    char path[1400];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    const char *meta[] = {"format", "pt", NULL};
    hn_status s = st_write(path, ts, (size_t)m->n_param_tensors, meta, err);
    free(ts);
    return s;
}

static hn_status save_weights(trainer *t, const char *dir, hn_err *err) {
    if (t->lora) return lora_save(t->lora, t->m, dir, err);
    return save_full_weights(t->m, dir, err);
}

static json_t *model_info(trainer *t) {
    json_t *j = json_object();
    json_object_set_new(j, "base_model", json_string(t->cfg.model_path));
    json_object_set_new(j, "method", json_string(t->lora ? "lora" : "full"));
    json_object_set_new(j, "n_epochs", json_integer(t->n_epochs));
    json_object_set_new(j, "batch_size", json_integer(t->batch_size));
    json_object_set_new(j, "learning_rate_multiplier", json_real(t->lr_mult));
    json_object_set_new(j, "seed", json_integer((json_int_t)t->cfg.seed));
    json_object_set_new(j, "packing", json_boolean(t->cfg.packing));
    json_object_set_new(j, "precision", json_string(model_precision_name(t->precision)));
    json_object_set_new(j, "step", json_integer(t->step));
    json_object_set_new(j, "total_steps", json_integer(t->total_steps));
    json_object_set_new(j, "valid_cursor", json_integer(t->valid_cursor));
    json_object_set_new(j, "trained_tokens", json_integer(t->trained_tokens));
    if (t->lora) {
        json_t *ids = json_array();
        for (int k = 0; k < t->tokens.n; k++) json_array_append_new(ids, json_integer(t->tokens.ids[k]));
        json_object_set_new(j, "trainable_token_indices", ids);
        if (t->tokens.n) json_object_set_new(j, "trainable_tokens_reason", json_string(t->tokens.why));
    }
    json_t *tv = t->m->chat_template_vars ? json_loads(t->m->chat_template_vars, 0, NULL) : NULL;
    if (tv) json_object_set_new(j, "chat_template_vars", tv);
    if (t->stop.done) {
        json_t *sc = json_object();
        json_object_set_new(sc, "prompts", json_integer(t->stop.n_checked));
        json_object_set_new(sc, "stopped", json_integer(t->stop.n_stopped));
        json_object_set_new(sc, "max_new_tokens", json_integer(t->stop.budget));
        json_object_set_new(sc, "ok", json_boolean(t->stop.n_stopped * 10 >= t->stop.n_checked * 8));
        json_object_set_new(j, "stop_check", sc);
    }
    return j;
}

/* The token-row deltas as trained: the adapter file holds base + delta
 * (PEFT's layout), which does not always give delta back bit for bit, and a
 * resumed run must continue exactly. */
static size_t token_floats(const trainer *t) {
    return t->lora && t->lora->n_tok ? t->lora->n_params - (size_t)(t->lora->tok_emb - t->lora->slab) : 0;
}

static hn_status swap_into_place(const char *tmp, const char *dir, hn_err *err) {
    char old[1400];
    snprintf(old, sizeof old, "%s.old", dir);
    if (hn_path_exists(dir) && rename(dir, old) != 0)
        return hn_errf(err, HN_EIO, "%s: cannot replace existing checkpoint", dir);
    if (rename(tmp, dir) != 0) return hn_errf(err, HN_EIO, "%s: rename failed", dir);
    if (hn_path_exists(old)) {
        char cmd[3000];
        snprintf(cmd, sizeof cmd, "%s", old);
        /* remove the replaced checkpoint's files (flat directory) */
        static const char *files[] = {"adapter_model.safetensors", "adapter_config.json",
                                      "model.safetensors", "optimizer.safetensors",
                                      "trainer_state.json", "hone_finetune.json"};
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            char f[3100];
            snprintf(f, sizeof f, "%s/%s", cmd, files[i]);
            unlink(f);
        }
        rmdir(old);
    }
    return HN_OK;
}

hn_status ckpt_save(trainer *t, const char *dir, hn_err *err) {
    char tmp[1400];
    snprintf(tmp, sizeof tmp, "%s.tmp", dir);
    hn_status s = hn_mkdirs(tmp, err);
    if (s == HN_OK) s = save_weights(t, tmp, err);
    if (s == HN_OK) {
        size_t nt = token_floats(t);
        st_wtensor ts[3] = {{"adam.m", ST_F32, 1, {(int64_t)t->n_train}, t->adam_m},
                            {"adam.v", ST_F32, 1, {(int64_t)t->n_train}, t->adam_v},
                            {"token_deltas", ST_F32, 1, {(int64_t)nt}, nt ? t->lora->tok_emb : NULL}};
        char path[1500];
        snprintf(path, sizeof path, "%s/optimizer.safetensors", tmp);
        s = st_write(path, ts, nt ? 3 : 2, NULL, err);
    }
    if (s == HN_OK) s = save_json(tmp, "trainer_state.json", model_info(t), err);
    if (s == HN_OK) s = swap_into_place(tmp, dir, err);
    return s;
}

hn_status ckpt_save_model(trainer *t, const char *dir, hn_err *err) {
    char tmp[1400];
    snprintf(tmp, sizeof tmp, "%s.tmp", dir);
    hn_status s = hn_mkdirs(tmp, err);
    if (s == HN_OK) s = save_weights(t, tmp, err);
    if (s == HN_OK) s = save_json(tmp, "hone_finetune.json", model_info(t), err);
    if (s == HN_OK) s = swap_into_place(tmp, dir, err);
    return s;
}

hn_status ckpt_save_info(trainer *t, const char *dir, hn_err *err) {
    return save_json(dir, "hone_finetune.json", model_info(t), err);
}

static hn_status load_state(trainer *t, const char *dir, hn_err *err) {
    char path[1400];
    snprintf(path, sizeof path, "%s/trainer_state.json", dir);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) return hn_errf(err, HN_EFORMAT, "%s: %s", path, je.text);
    int step = (int)json_integer_value(json_object_get(j, "step"));
    int total = (int)json_integer_value(json_object_get(j, "total_steps"));
    const char *method = json_string_value(json_object_get(j, "method"));
    hn_status s = HN_OK;
    if (total != t->total_steps || step < 0 || step > total || !method ||
        strcmp(method, t->lora ? "lora" : "full"))
        s = hn_errf(err, HN_EINVAL, "%s: checkpoint is from a different run (method %s, %d total "
                    "steps; this run: %s, %d)", path, method ? method : "?", total,
                    t->lora ? "lora" : "full", t->total_steps);
    /* the data order and schedule depend on these: resuming with others would
     * not continue the same run */
    json_int_t seed = json_integer_value(json_object_get(j, "seed"));
    int bs = (int)json_integer_value(json_object_get(j, "batch_size"));
    int ep = (int)json_integer_value(json_object_get(j, "n_epochs"));
    if (s == HN_OK && ((uint64_t)seed != t->cfg.seed || bs != t->batch_size || ep != t->n_epochs))
        s = hn_errf(err, HN_EINVAL, "%s: checkpoint is from a run with seed %lld, batch size %d, "
                    "%d epochs; this run has seed %llu, batch size %d, %d epochs", path,
                    (long long)seed, bs, ep, (unsigned long long)t->cfg.seed, t->batch_size,
                    t->n_epochs);
    t->step = step;
    t->valid_cursor = (int)json_integer_value(json_object_get(j, "valid_cursor"));
    t->trained_tokens = json_integer_value(json_object_get(j, "trained_tokens"));
    json_decref(j);
    return s;
}

static hn_status load_vec(const st_model *st, const char *name, float *dst, size_t n, hn_err *err) {
    const st_tensor *ten = st_find(st, name);
    if (!ten || ten->n_elems != n)
        return hn_errf(err, HN_EFORMAT, "checkpoint tensor '%s' missing or of the wrong size", name);
    return st_tensor_to_f32(ten, dst, err);
}

static hn_status load_weights(trainer *t, const char *dir, hn_err *err) {
    if (t->lora) {
        lora_set *l;
        hn_status s = lora_load(t->m, dir, &l, err);
        if (s != HN_OK) return s;
        if (l->n_params != t->lora->n_params || l->rank != t->lora->rank ||
            l->n_tok != t->lora->n_tok ||
            memcmp(l->tok_ids, t->lora->tok_ids, sizeof *l->tok_ids * (size_t)l->n_tok)) {
            lora_free(l);
            return hn_errf(err, HN_EINVAL, "%s: adapter rank/targets/trainable tokens differ from "
                           "this run", dir);
        }
        memcpy(t->lora->slab, l->slab, l->n_params * sizeof(float));
        lora_free(l);
        return HN_OK;
    }
    char path[1400];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    st_model *st;
    hn_status s = st_open(path, &st, err);
    for (int i = 0; s == HN_OK && i < t->m->n_param_tensors; i++)
        s = load_vec(st, t->m->params[i].name, t->m->params[i].data, t->m->params[i].numel, err);
    if (st) st_close(st);
    t->m->weights_version++;
    return s;
}

hn_status ckpt_load(trainer *t, const char *dir, hn_err *err) {
    hn_status s = load_state(t, dir, err);
    if (s == HN_OK) s = load_weights(t, dir, err);
    if (s != HN_OK) return s;
    char path[1400];
    snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
    st_model *st;
    if ((s = st_open(path, &st, err)) != HN_OK) return s;
    s = load_vec(st, "adam.m", t->adam_m, t->n_train, err);
    if (s == HN_OK) s = load_vec(st, "adam.v", t->adam_v, t->n_train, err);
    if (s == HN_OK && token_floats(t))
        s = load_vec(st, "token_deltas", t->lora->tok_emb, token_floats(t), err);
    st_close(st);
    return s;
}
