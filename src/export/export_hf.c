/* export_hf.c — hn_model -> a Hugging Face model directory: config.json
 * (Llama, Qwen2, Qwen3 or GPT2LMHeadModel), model.safetensors or shards + model.safetensors.index.json
 * above the shard size, generation_config.json, tokenizer.json (copied from an
 * HF source, else synthesised, SPM or byte-level), tokenizer_config.json (chat
 * template, special tokens) and special_tokens_map.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "base/num.h"
#include "chat/template.h"
#include "export/export.h"
#include "format/safetensors.h"

#define MB (1024ull * 1024ull)

static hn_status write_json(const char *dir, const char *name, json_t *j, hn_err *err) {
    char path[4096];
    hn_path_join(path, sizeof path, dir, name);
    if (!j) return hn_errf(err, HN_ENOMEM, "out of memory building %s", name);
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(j);
    if (!text) return hn_errf(err, HN_ENOMEM, "out of memory writing %s", name);
    size_t n = strlen(text);
    text[n] = '\n'; /* json_dumps leaves the NUL's byte ours to reuse */
    const void *parts[] = {text};
    size_t lens[] = {n + 1};
    hn_status s = hn_file_write_atomic(path, parts, lens, 1, err);
    free(text);
    return s;
}

static const char *torch_dtype(export_dtype d) {
    return d == EXPORT_F16 ? "float16" : d == EXPORT_BF16 ? "bfloat16" : "float32";
}

static json_t *gpt2_config(const model_config *c) {
    return json_pack("{s:[s], s:s, s:i, s:i, s:i, s:i, s:n, s:i, s:f, s:s, s:b, s:b, s:f, s:f,"
                     " s:f, s:f}",
                     "architectures", "GPT2LMHeadModel", "model_type", "gpt2", "n_embd", c->dim,
                     "n_layer", c->n_layers, "n_head", c->n_heads, "n_positions", c->max_seq_len,
                     "n_inner", "vocab_size", c->vocab_size, "layer_norm_epsilon",
                     (double)c->norm_eps, "activation_function", "gelu_new",
                     "scale_attn_weights", 1, "tie_word_embeddings", 1, "attn_pdrop", 0.0,
                     "embd_pdrop", 0.0, "resid_pdrop", 0.0, "initializer_range", 0.02);
}

/* LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM share these keys. */
static json_t *llama_config(const model_config *c) {
    static const char *archs[] = {"LlamaForCausalLM", NULL, "Qwen2ForCausalLM", "Qwen3ForCausalLM"};
    json_t *j = json_pack(
        "{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:i, s:i, s:f, s:f, s:n, s:b, s:f,"
        " s:f, s:b}",
        "architectures", archs[c->arch], "model_type", model_arch_name(c->arch), "hidden_size",
        c->dim, "intermediate_size", c->hidden_dim, "num_hidden_layers", c->n_layers,
        "num_attention_heads", c->n_heads, "num_key_value_heads", c->n_kv_heads, "head_dim",
        c->head_dim, "hidden_act", "silu", "max_position_embeddings", c->max_seq_len,
        "vocab_size", c->vocab_size, "rms_norm_eps", (double)c->norm_eps, "rope_theta",
        (double)c->rope_theta, "rope_scaling", "attention_bias", c->arch == ARCH_QWEN2,
        "attention_dropout", 0.0, "initializer_range", 0.02, "tie_word_embeddings",
        c->tied_embeddings);
    const rope_scaling *r = &c->rope_scale;
    if (j && r->llama3)
        json_object_set_new(j, "rope_scaling",
                            json_pack("{s:s, s:f, s:f, s:f, s:i}", "rope_type", "llama3", "factor",
                                      (double)r->factor, "low_freq_factor",
                                      (double)r->low_freq_factor, "high_freq_factor",
                                      (double)r->high_freq_factor,
                                      "original_max_position_embeddings", r->original_max_pos));
    if (j && c->arch != ARCH_LLAMA) json_object_set_new(j, "use_sliding_window", json_false());
    return j;
}

static hn_status write_config(const hn_model *m, const export_opts *o, const char *dir,
                              hn_err *err) {
    const model_config *c = &m->cfg;
    const tok *t = m->tok;
    if (m->rope_freqs && !c->rope_scale.llama3)
        return hn_errf(err, HN_EUNSUPPORTED, "%s: the RoPE frequency factors came from a GGUF "
                       "without llama3 scaling parameters; config.json cannot express them",
                       c->name);
    json_t *j = c->arch == ARCH_GPT2 ? gpt2_config(c) : llama_config(c);
    if (j) {
        json_object_set_new(j, "use_cache", json_true());
        json_object_set_new(j, "torch_dtype", json_string(torch_dtype(o->dtype)));
    }
    if (j && t && tok_bos(t) >= 0) json_object_set_new(j, "bos_token_id", json_integer(tok_bos(t)));
    if (j && t && tok_eos(t) >= 0) json_object_set_new(j, "eos_token_id", json_integer(tok_eos(t)));
    return write_json(dir, "config.json", j, err);
}

static hn_status write_generation_config(const hn_model *m, const char *dir, hn_err *err) {
    json_t *j = json_object();
    const tok *t = m->tok;
    if (t && tok_bos(t) >= 0) json_object_set_new(j, "bos_token_id", json_integer(tok_bos(t)));
    if (t && tok_eos(t) >= 0) json_object_set_new(j, "eos_token_id", json_integer(tok_eos(t)));
    if (t && tok_pad(t) >= 0) json_object_set_new(j, "pad_token_id", json_integer(tok_pad(t)));
    json_object_set_new(j, "do_sample", json_false());
    return write_json(dir, "generation_config.json", j, err);
}

/* ---- weights ---- */

typedef struct conv {
    st_wtensor *wt; /* one per parameter */
    void **data;    /* converted buffers (NULL for f32: the slab is used) */
    uint64_t *bytes;
    int n;
} conv;

static void conv_free(conv *c) {
    for (int i = 0; c->data && i < c->n; i++) free(c->data[i]);
    free(c->wt);
    free(c->data);
    free(c->bytes);
}

static hn_status convert_params(const hn_model *m, export_dtype d, conv *c, hn_err *err) {
    c->n = m->n_param_tensors;
    c->wt = calloc((size_t)c->n, sizeof *c->wt);
    c->data = calloc((size_t)c->n, sizeof *c->data);
    c->bytes = calloc((size_t)c->n, sizeof *c->bytes);
    if (!c->wt || !c->data || !c->bytes) return hn_errf(err, HN_ENOMEM, "out of memory");
    for (int i = 0; i < c->n; i++) {
        const model_param *p = &m->params[i];
        st_wtensor *w = &c->wt[i];
        w->name = p->name;
        w->n_dims = p->n_dims;
        w->shape[0] = p->shape[0];
        w->shape[1] = p->shape[1];
        w->dtype = d == EXPORT_F16 ? ST_F16 : d == EXPORT_BF16 ? ST_BF16 : ST_F32;
        c->bytes[i] = p->numel * st_dtype_size(w->dtype);
        if (w->dtype == ST_F32) {
            w->data = p->data;
            continue;
        }
        uint16_t *h = malloc(p->numel * sizeof *h + 1);
        if (!h) return hn_errf(err, HN_ENOMEM, "out of memory converting %s", p->name);
        for (size_t k = 0; k < p->numel; k++)
            h[k] = d == EXPORT_F16 ? hn_f32_to_f16(p->data[k]) : hn_f32_to_bf16(p->data[k]);
        c->data[i] = h;
        w->data = h;
    }
    return HN_OK;
}

static const char *const st_meta[] = {"format", "pt", NULL};

/* Shard boundaries: shard k holds tensors [start[k], start[k+1]). */
static int plan_shards(const conv *c, uint64_t limit, int *start) {
    int ns = 0;
    uint64_t acc = 0;
    start[0] = 0;
    for (int i = 0; i < c->n; i++) {
        if (acc && acc + c->bytes[i] > limit) {
            start[++ns] = i;
            acc = 0;
        }
        acc += c->bytes[i];
    }
    start[++ns] = c->n;
    return ns;
}

static hn_status write_shards(const conv *c, const int *start, int ns, const char *dir,
                              hn_err *err) {
    json_t *map = json_object();
    uint64_t total = 0;
    hn_status s = HN_OK;
    char name[64], path[4096];
    for (int k = 0; !s && k < ns; k++) {
        snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", k + 1, ns);
        hn_path_join(path, sizeof path, dir, name);
        s = st_write(path, c->wt + start[k], (size_t)(start[k + 1] - start[k]), st_meta, err);
        for (int i = start[k]; i < start[k + 1]; i++) {
            json_object_set_new(map, c->wt[i].name, json_string(name));
            total += c->bytes[i];
        }
    }
    if (s) {
        json_decref(map);
        return s;
    }
    json_t *idx = json_pack("{s:{s:I}, s:o}", "metadata", "total_size", (json_int_t)total,
                            "weight_map", map);
    hn_path_join(path, sizeof path, dir, "model.safetensors");
    unlink(path); /* a stale single file would shadow the index */
    return write_json(dir, "model.safetensors.index.json", idx, err);
}

static hn_status write_weights(const hn_model *m, const export_opts *o, const char *dir,
                               hn_err *err) {
    conv c = {0};
    hn_status s = convert_params(m, o->dtype, &c, err);
    int *start = s ? NULL : malloc(((size_t)c.n + 2) * sizeof *start);
    if (!s && !start) s = hn_errf(err, HN_ENOMEM, "out of memory");
    if (!s) {
        int ns = plan_shards(&c, o->shard_bytes ? o->shard_bytes : 2000 * MB, start);
        char path[4096];
        if (ns > 1) s = write_shards(&c, start, ns, dir, err);
        else {
            hn_path_join(path, sizeof path, dir, "model.safetensors.index.json");
            unlink(path);
            hn_path_join(path, sizeof path, dir, "model.safetensors");
            s = st_write(path, c.wt, (size_t)c.n, st_meta, err);
        }
    }
    free(start);
    conv_free(&c);
    return s;
}

/* ---- tokenizer files ---- */

static bool source_file(const hn_model *m, const char *name, char *out, size_t cap) {
    return hn_path_is_dir(m->path) && hn_path_join(out, cap, m->path, name) &&
           hn_path_exists(out);
}

static hn_status copy_file(const char *src, const char *dir, const char *name, hn_err *err) {
    char *data, path[4096];
    size_t len;
    hn_status s = hn_file_read(src, 0, &data, &len, err);
    if (s) return s;
    hn_path_join(path, sizeof path, dir, name);
    const void *parts[] = {data};
    s = hn_file_write_atomic(path, parts, &len, 1, err);
    free(data);
    return s;
}

static hn_status write_tokenizer_json(const hn_model *m, const char *dir, hn_err *err) {
    char src[4096];
    if (source_file(m, "tokenizer.json", src, sizeof src))
        return copy_file(src, dir, "tokenizer.json", err);
    json_t *j;
    hn_status s = export_tokenizer_json(m->tok, &j, err);
    return s ? s : write_json(dir, "tokenizer.json", j, err);
}

static void set_tok_str(json_t *j, const char *key, const tok *t, int id) {
    json_object_set_new(j, key, id >= 0 ? json_string(tok_piece(t, id)) : json_null());
}

static hn_status write_tokenizer_config(const hn_model *m, const char *dir, hn_err *err) {
    const tok *t = m->tok;
    char src[4096];
    json_t *j = NULL;
    if (source_file(m, "tokenizer_config.json", src, sizeof src)) j = json_load_file(src, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        j = json_pack("{s:b, s:b}", "add_bos_token", tok_default_add_bos(t), "add_eos_token", 0);
        set_tok_str(j, "bos_token", t, tok_bos(t));
        set_tok_str(j, "eos_token", t, tok_eos(t));
        set_tok_str(j, "unk_token", t, tok_unk(t));
        set_tok_str(j, "pad_token", t, tok_pad(t));
        json_object_set_new(j, "clean_up_tokenization_spaces", json_false());
        bool spm = tok_get_kind(t) == TOK_SPM;
        if (spm) json_object_set_new(j, "legacy", json_true());
        json_object_set_new(j, "model_max_length", json_integer(m->cfg.max_seq_len));
        /* byte-level: the generic fast class reads everything from tokenizer.json */
        json_object_set_new(j, "tokenizer_class", json_string(spm ? "LlamaTokenizerFast"
                                                                  : "PreTrainedTokenizerFast"));
    }
    char *baked = m->chat_template ? chat_template_bake_vars(m->chat_template, m->chat_template_vars)
                                   : NULL;
    json_object_set_new(j, "chat_template", json_string(baked ? baked : chat_template_default_jinja()));
    free(baked);
    if (!m->chat_template) json_object_set_new(j, "hone_chat_template", json_string("hone-default"));
    return write_json(dir, "tokenizer_config.json", j, err);
}

static hn_status write_special_tokens_map(const hn_model *m, const char *dir, hn_err *err) {
    const tok *t = m->tok;
    json_t *j = json_object();
    if (tok_bos(t) >= 0) set_tok_str(j, "bos_token", t, tok_bos(t));
    if (tok_eos(t) >= 0) set_tok_str(j, "eos_token", t, tok_eos(t));
    if (tok_unk(t) >= 0) set_tok_str(j, "unk_token", t, tok_unk(t));
    if (tok_pad(t) >= 0) set_tok_str(j, "pad_token", t, tok_pad(t));
    return write_json(dir, "special_tokens_map.json", j, err);
}

/* tokenizer.json (copied or synthesised), the configs, and the source's other
 * tokenizer files (SentencePiece model, GPT-2's vocab.json + merges.txt). */
static hn_status write_tokenizer(const hn_model *m, const char *dir, hn_err *err) {
    char src[4096];
    hn_status s = write_tokenizer_json(m, dir, err);
    if (!s) s = write_tokenizer_config(m, dir, err);
    if (!s) s = write_special_tokens_map(m, dir, err);
    static const char *const extra[] = {"tokenizer.model", "vocab.json", "merges.txt"};
    for (int i = 0; !s && i < 3; i++)
        if (source_file(m, extra[i], src, sizeof src)) s = copy_file(src, dir, extra[i], err);
    return s;
}

hn_status export_hf(const hn_model *m, const export_opts *o, const char *dir, hn_err *err) {
    if (o->dtype == EXPORT_Q8_0)
        return hn_errf(err, HN_EINVAL, "safetensors has no q8_0 dtype (use f32, f16 or bf16)");
    if (!m->tok) return hn_errf(err, HN_EINVAL, "export needs a model with a tokenizer");
    hn_status s = hn_mkdirs(dir, err);
    if (!s) s = write_config(m, o, dir, err);
    if (!s) s = write_generation_config(m, dir, err);
    if (!s) s = write_weights(m, o, dir, err);
    if (!s) s = write_tokenizer(m, dir, err);
    return s;
}
