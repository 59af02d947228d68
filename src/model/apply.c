/* apply.c — putting a fine-tune on a loaded base model: a PEFT LoRA adapter
 * is merged into the weights; a full fine-tune's model.safetensors replaces
 * every parameter (shapes checked by name). The chat template variables the
 * fine-tune was trained with (hone_finetune.json) come along, so it is
 * prompted as it was trained. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/file.h"
#include "format/safetensors.h"
#include "model/lora.h"

static void apply_template_vars(hn_model *m, const char *dir) {
    char path[4096];
    hn_path_join(path, sizeof path, dir, "hone_finetune.json");
    json_t *j = json_load_file(path, 0, NULL), *v = json_object_get(j, "chat_template_vars");
    if (json_is_object(v) && json_object_size(v)) {
        free(m->chat_template_vars);
        m->chat_template_vars = json_dumps(v, JSON_COMPACT);
    }
    json_decref(j);
}

hn_status model_apply_finetune(hn_model *m, const char *dir, hn_err *err) {
    char path[4096];
    apply_template_vars(m, dir);
    hn_path_join(path, sizeof path, dir, "adapter_config.json");
    if (hn_path_exists(path)) {
        lora_set *l;
        hn_status s = lora_load(m, dir, &l, err);
        if (s != HN_OK) return s;
        lora_merge(l, m);
        lora_free(l);
        return HN_OK;
    }
    hn_path_join(path, sizeof path, dir, "model.safetensors");
    if (!hn_path_exists(path))
        return hn_errf(err, HN_ENOTFOUND, "%s: neither a LoRA adapter (adapter_config.json) nor "
                       "fine-tuned weights (model.safetensors)", dir);
    st_model *st;
    hn_status s = st_open(path, &st, err);
    for (int i = 0; s == HN_OK && i < m->n_param_tensors; i++) {
        const model_param *p = &m->params[i];
        const st_tensor *t = st_find(st, p->name);
        if (!t || t->n_elems != p->numel)
            s = hn_errf(err, HN_EFORMAT, "%s: tensor '%s' missing or not the base model's shape "
                        "(fine-tuned from a different base?)", path, p->name);
        else
            s = st_tensor_to_f32(t, p->data, err);
    }
    if (st) st_close(st);
    m->weights_version++;
    return s;
}
