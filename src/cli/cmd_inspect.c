/* cmd_inspect.c — `hone inspect PATH`: a model's config, tokenizer summary,
 * chat template (kind, end-of-turn token, source), metadata and tensor table
 * (shape, type, bytes), for GGUF files and HF dirs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "chat/template.h"
#include "cli/cli.h"
#include "format/gguf.h"
#include "format/safetensors.h"
#include "model/model.h"

static const char *usage =
    "usage: hone inspect PATH [--all] [--template]\n"
    "\n"
    "  PATH        a GGUF file, a Hugging Face model directory or a model name\n"
    "  --all       print every metadata value and every tensor (default: abbreviated)\n"
    "  --template  print the whole chat template source (default: its first lines)\n";

enum { TEMPLATE_PREVIEW_LINES = 12 };

/* Renders a one-message serving prompt: does the template run with this
 * tokenizer? */
static hn_status try_template(const chat_template *ct, const tok *t, hn_err *err) {
    chat_message m = {.role = CHAT_USER, .content = "Hello", .content_len = 5, .weight = 1};
    chat_example ex = {.msgs = &m, .n_msgs = 1, .parallel_tool_calls = -1};
    chat_render r;
    chat_render_init(&r);
    hn_status s = chat_render_prompt(ct, t, &ex, &r, err);
    chat_render_free(&r);
    return s;
}

/* The template's kind, end-of-turn token and source (whole or the first
 * lines); a template hone cannot run says why. */
static void print_template(const char *src, const tok *t, bool whole) {
    chat_template *ct = NULL;
    hn_err err = {0};
    if (chat_template_for_model(src, &ct, &err) != HN_OK || try_template(ct, t, &err) != HN_OK) {
        printf("chat template: jinja, NOT usable by hone: %s\n", err.msg);
        chat_template_free(ct);
    } else {
        int eot = chat_template_eot(ct, t);
        printf("chat template: %s%s, end of turn %d '%s'\n", chat_template_name(ct),
               src ? "" : " (the model has none)", eot, eot >= 0 ? tok_piece(t, eot) : "");
        chat_template_free(ct);
    }
    if (!src) return;
    const char *p = src;
    for (int line = 0; *p && (whole || line < TEMPLATE_PREVIEW_LINES); line++) {
        const char *nl = strchr(p, '\n');
        p = nl ? nl + 1 : p + strlen(p);
    }
    printf("%.*s%s", (int)(p - src), src, p > src && p[-1] != '\n' ? "\n" : "");
    if (*p) printf("... (%zu more bytes; --template prints it whole)\n", strlen(p));
}

static void print_tok(const char *path, bool whole_template) {
    hn_err err = {0};
    tok *t;
    int ctx = 0;
    char *tmpl = NULL;
    if (model_load_tokenizer(path, &t, &ctx, &tmpl, &err) != HN_OK) {
        printf("tokenizer: (not loadable: %s)\n", err.msg);
        return;
    }
    printf("tokenizer: %s, %d tokens, bos %d '%s', eos %d '%s', unk %d\n",
           tok_get_kind(t) == TOK_SPM ? "sentencepiece-bpe" : "byte-level-bpe", tok_vocab_size(t),
           tok_bos(t), tok_piece(t, tok_bos(t)), tok_eos(t), tok_piece(t, tok_eos(t)), tok_unk(t));
    printf("context: %d tokens\n", ctx);
    print_template(tmpl, t, whole_template);
    free(tmpl);
    tok_free(t);
}

static void print_config(const char *path) {
    hn_err err = {0};
    hn_model *m;
    if (model_load_ex(path, MODEL_LOAD_TOKENIZER_OPTIONAL, &m, &err) != HN_OK) {
        printf("model: (not loadable: %s)\n", err.msg);
        return;
    }
    const model_config *c = &m->cfg;
    model_traits tr = model_arch_traits(c->arch);
    printf("model: %s, %s architecture\n", c->name, model_arch_name(c->arch));
    printf("  dim %d, hidden %d, layers %d, heads %d, kv heads %d, head_dim %d\n", c->dim,
           c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim);
    printf("  vocab %d, context %d, %s eps %g, ", c->vocab_size, c->max_seq_len,
           tr.layernorm ? "LayerNorm" : "RMSNorm", c->norm_eps);
    if (tr.rope)
        printf("rope theta %g%s, ", c->rope_theta, c->rope_scale.llama3 ? " (llama3 scaling)" : "");
    else
        printf("learned positions, ");
    printf("%s embeddings\n", c->tied_embeddings ? "tied" : "untied");
    printf("  %s MLP%s%s%s\n", tr.gelu ? "GELU" : "SwiGLU", tr.qkv_bias ? ", q/k/v bias" : "",
           tr.qk_norm ? ", q/k RMSNorm" : "", tr.conv1d ? ", Conv1D weights" : "");
    printf("  parameters: %zu (%.2f M)\n", m->n_params, m->n_params / 1e6);
    model_free(m);
}

static int inspect_gguf(const char *path, bool all) {
    hn_err err = {0};
    gguf_file *f;
    if (gguf_open(path, &f, &err) != HN_OK) {
        fprintf(stderr, "hone inspect: %s\n", err.msg);
        return 1;
    }
    printf("GGUF v%u, %llu metadata keys, %llu tensors, alignment %llu\n", gguf_version(f),
           (unsigned long long)gguf_n_kv(f), (unsigned long long)gguf_n_tensors(f),
           (unsigned long long)gguf_alignment(f));
    char val[512];
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        gguf_str k = gguf_kv_key(f, i);
        if (!all && k.len > 25 && !strncmp(k.p, "tokenizer.chat_template", 23)) continue;
        gguf_kv_format(f, i, val, sizeof val);
        printf("  %-44.*s %s\n", (int)k.len, k.p, val);
    }
    printf("\n%-40s %-20s %-6s %12s\n", "tensor", "shape", "type", "bytes");
    uint64_t total = 0;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char shape[64] = "";
        for (uint32_t d = 0; d < t->n_dims; d++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%llu", d ? " x " : "",
                     (unsigned long long)t->ne[t->n_dims - 1 - d]);
        if (all || i < 24)
            printf("%-40.*s %-20s %-6s %12llu\n", (int)t->name.len, t->name.p, shape,
                   gguf_ttype_name(t->type), (unsigned long long)t->nbytes);
        total += t->nbytes;
    }
    if (!all && gguf_n_tensors(f) > 24)
        printf("... (%llu more; --all shows them)\n", (unsigned long long)gguf_n_tensors(f) - 24);
    printf("total tensor bytes: %llu\n\n", (unsigned long long)total);
    gguf_close(f);
    return 0;
}

static int inspect_st(const char *path, bool all) {
    hn_err err = {0};
    st_model *st;
    if (st_open(path, &st, &err) != HN_OK) {
        fprintf(stderr, "hone inspect: %s\n", err.msg);
        return 1;
    }
    printf("safetensors: %zu tensors\n\n%-52s %-20s %-5s %12s\n", st_n_tensors(st), "tensor",
           "shape", "type", "bytes");
    uint64_t total = 0;
    for (size_t i = 0; i < st_n_tensors(st); i++) {
        const st_tensor *t = st_tensor_at(st, i);
        char shape[64] = "";
        for (int d = 0; d < t->n_dims; d++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? " x " : "",
                     (long long)t->shape[d]);
        if (all || i < 24)
            printf("%-52s %-20s %-5s %12llu\n", t->name, shape, st_dtype_name(t->dtype),
                   (unsigned long long)t->nbytes);
        total += t->nbytes;
    }
    if (!all && st_n_tensors(st) > 24) printf("... (%zu more; --all shows them)\n", st_n_tensors(st) - 24);
    printf("total tensor bytes: %llu\n\n", (unsigned long long)total);
    st_close(st);
    return 0;
}

int cmd_inspect(int argc, char **argv) {
    if (cli_want_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    const char *path = NULL;
    bool all = false, whole_template = false;
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv, i, "--all")) all = true;
        else if (cli_flag(argv, i, "--template")) whole_template = true;
        else if (!path) path = argv[i];
        else {
            fprintf(stderr, "hone inspect: unexpected argument '%s'\n%s", argv[i], usage);
            return 2;
        }
    }
    if (!path) {
        fputs(usage, stderr);
        return 2;
    }
    char resolved[4096];
    if (!cli_resolve_model(path, resolved, sizeof resolved)) return 1;
    path = resolved;
    int rc = hn_path_is_dir(path) ? inspect_st(path, all) : inspect_gguf(path, all);
    if (rc) return rc;
    print_config(path);
    print_tok(path, whole_template);
    return 0;
}
