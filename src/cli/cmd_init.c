/* cmd_init.c — `hone init-model`: a new, randomly initialised model of any
 * supported family around an existing tokenizer, written as a Hugging Face
 * directory (config.json, model.safetensors, tokenizer files with the
 * tokenizer's chat template). For experiments that train from scratch, for
 * tests that need a small model with a real tokenizer and template, and for
 * benchmarks. Initialisation follows HF's: matrices N(0, 0.02)-like (uniform
 * of that std), norm weights 1, biases 0. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/rng.h"
#include "cli/cli.h"
#include "export/export.h"
#include "model/llama.h"

static void usage(void) {
    printf("usage: hone init-model --tokenizer DIR --out DIR [options]\n\n"
           "A randomly initialised model around an existing tokenizer, as an HF directory.\n\n"
           "  --tokenizer DIR     tokenizer.json (or vocab.json + merges.txt) and\n"
           "                      tokenizer_config.json (its chat_template is kept)\n"
           "  --arch NAME         llama, qwen2, qwen3 (default) or gpt2\n"
           "  --dim N             hidden size (default 64)\n"
           "  --layers N          default 2\n"
           "  --heads N           default 4\n"
           "  --kv-heads N        default = heads (gpt2: always = heads)\n"
           "  --head-dim N        default dim / heads\n"
           "  --hidden N          FFN size (default 4 * dim for gpt2, else 2 * dim)\n"
           "  --context N         max positions (default 512)\n"
           "  --vocab N           default: the tokenizer's size rounded up to 64\n"
           "  --untied            separate output head (gpt2 is always tied)\n"
           "  --rope-theta X      default 10000\n"
           "  --seed S            default 1\n");
}

typedef struct init_args {
    const char *tokenizer, *out, *arch;
    model_config cfg;
    unsigned long long seed;
} init_args;

static bool parse_int(const char *v, int *out) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || x <= 0 || x > 1 << 24) return false;
    *out = (int)x;
    return true;
}

static int parse_args(int argc, char **argv, init_args *a) {
    model_config *c = &a->cfg;
    *c = (model_config){.dim = 64, .n_layers = 2, .n_heads = 4, .max_seq_len = 512,
                        .norm_eps = 1e-6f, .rope_theta = 10000.0f, .tied_embeddings = true};
    a->arch = "qwen3";
    a->seed = 1;
    static const char *ints[] = {"--dim", "--layers", "--heads", "--kv-heads", "--head-dim",
                                 "--hidden", "--context", "--vocab"};
    int *dst[] = {&c->dim, &c->n_layers, &c->n_heads, &c->n_kv_heads, &c->head_dim,
                  &c->hidden_dim, &c->max_seq_len, &c->vocab_size};
    for (int i = 1; i < argc; i++) {
        const char *v;
        bool bad = false, done = false;
        if (cli_opt(argc, argv, &i, "--tokenizer", &a->tokenizer, &bad) ||
            cli_opt(argc, argv, &i, "--out", &a->out, &bad) ||
            cli_opt(argc, argv, &i, "--arch", &a->arch, &bad)) {
            done = true;
        } else if (cli_opt(argc, argv, &i, "--seed", &v, &bad)) {
            a->seed = strtoull(v, NULL, 10);
            done = true;
        } else if (cli_opt(argc, argv, &i, "--rope-theta", &v, &bad)) {
            c->rope_theta = strtof(v, NULL);
            done = c->rope_theta > 0;
            if (!done) fprintf(stderr, "hone init-model: bad --rope-theta '%s'\n", v);
            bad |= !done;
        } else if (cli_flag(argv, i, "--untied")) {
            c->tied_embeddings = false;
            done = true;
        }
        for (size_t k = 0; !done && !bad && k < sizeof ints / sizeof *ints; k++)
            if (cli_opt(argc, argv, &i, ints[k], &v, &bad)) {
                done = true;
                if (!parse_int(v, dst[k])) {
                    fprintf(stderr, "hone init-model: %s needs a positive integer, got '%s'\n",
                            ints[k], v);
                    bad = true;
                }
            }
        if (bad) return 2;
        if (!done) {
            fprintf(stderr, "hone init-model: unknown option '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (!a->tokenizer || !a->out) {
        fprintf(stderr, "hone init-model: --tokenizer and --out are required (see --help)\n");
        return 2;
    }
    return 0;
}

static int finish_config(init_args *a, const tok *t) {
    model_config *c = &a->cfg;
    c->arch = ARCH_N;
    for (int i = 0; i < ARCH_N; i++)
        if (!strcmp(a->arch, model_arch_name((model_arch)i))) c->arch = (model_arch)i;
    if (c->arch == ARCH_N) {
        fprintf(stderr, "hone init-model: unknown --arch '%s' (llama, qwen2, qwen3, gpt2)\n", a->arch);
        return 2;
    }
    bool gpt2 = c->arch == ARCH_GPT2;
    if (!c->n_kv_heads || gpt2) c->n_kv_heads = c->n_heads;
    if (!c->head_dim || gpt2) c->head_dim = c->dim / c->n_heads;
    if (!c->hidden_dim) c->hidden_dim = (gpt2 ? 4 : 2) * c->dim;
    if (gpt2) c->tied_embeddings = true, c->norm_eps = 1e-5f;
    int need = tok_vocab_size(t);
    if (!c->vocab_size) c->vocab_size = (need + 63) / 64 * 64;
    if (c->vocab_size < need) {
        fprintf(stderr, "hone init-model: --vocab %d is smaller than the tokenizer's %d tokens\n",
                c->vocab_size, need);
        return 2;
    }
    snprintf(c->name, sizeof c->name, "%s-random-%llu", a->arch, a->seed);
    return 0;
}

/* HF's initialisation: matrices of std 0.02, norm weights 1, biases 0. */
static void init_weights(hn_model *m, unsigned long long seed) {
    hn_rng rng;
    hn_rng_seed(&rng, seed);
    const float bound = 0.02f * sqrtf(3.0f);
    for (int i = 0; i < m->n_param_tensors; i++) {
        model_param *p = &m->params[i];
        bool vec = p->n_dims == 1, bias = vec && strstr(p->name, ".bias");
        for (size_t k = 0; k < p->numel; k++)
            p->data[k] = vec ? (bias ? 0.0f : 1.0f) : (2.0f * hn_rng_uniform(&rng) - 1.0f) * bound;
    }
}

int cmd_init_model(int argc, char **argv) {
    if (cli_want_help(argc, argv)) {
        usage();
        return 0;
    }
    init_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc;
    hn_err err = {0};
    tok *t = NULL;
    hn_model *m = NULL;
    if (tok_from_hf_dir(a.tokenizer, &t, &err) != HN_OK) {
        fprintf(stderr, "hone init-model: %s\n", err.msg);
        return 1;
    }
    rc = finish_config(&a, t);
    if (!rc && model_create_random(&a.cfg, a.seed, &m, &err) != HN_OK) rc = 1;
    if (!rc) {
        init_weights(m, a.seed);
        m->tok = t;
        t = NULL;
        m->chat_template = model_hf_chat_template(a.tokenizer);
        /* tokenizer files are copied from here by the HF writer */
        snprintf(m->path, sizeof m->path, "%s", a.tokenizer);
        export_opts o;
        export_opts_default(&o);
        o.format = EXPORT_SAFETENSORS;
        o.name = m->cfg.name;
        if (hn_mkdirs(a.out, &err) != HN_OK || export_hf(m, &o, a.out, &err) != HN_OK) rc = 1;
    }
    if (rc == 1) fprintf(stderr, "hone init-model: %s\n", err.msg);
    if (!rc)
        printf("%s: %s model, %zu parameters (%.2f M), vocab %d, chat template: %s\n", a.out,
               model_arch_name(m->cfg.arch), m->n_params, m->n_params / 1e6, m->cfg.vocab_size,
               m->chat_template ? "the tokenizer's" : "none (hone's default)");
    if (t) tok_free(t);
    model_free(m);
    return rc;
}
