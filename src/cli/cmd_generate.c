/* cmd_generate.c — `hone generate`: complete a prompt with a model (and
 * optionally a LoRA adapter), streaming the text to stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chat/dataset.h"
#include "chat/template.h"
#include "cli/cli.h"
#include "infer/generate.h"
#include "model/lora.h"

static const char *usage =
    "usage: hone generate [--model PATH] [--adapter DIR] --prompt TEXT [options]\n"
    "\n"
    "  --model PATH        GGUF file, Hugging Face model directory or model name\n"
    "                      (default: $HONE_MODEL or the bundled stories260K)\n"
    "  --adapter DIR       a fine-tune of the model: a LoRA adapter (PEFT layout) or the\n"
    "                      final/ or checkpoint directory of `hone finetune`\n"
    "  --prompt TEXT       text to continue (default: empty, i.e. start from BOS)\n"
    "  --max-tokens N      new tokens at most (default 256; stops earlier at EOS)\n"
    "  --temperature T     0 = greedy (default 0.8)\n"
    "  --top-p P           nucleus sampling (default 0.9)\n"
    "  --top-k K           keep the K most likely tokens (default 0 = off)\n"
    "  --seed S            random seed (default 42): same seed, same text\n"
    "  --ids               also print the token ids\n"
    "  --chat              chat mode: the prompt is a user message, rendered with the\n"
    "                      model's chat template (the one used in fine-tuning); without\n"
    "                      --prompt, read one user message per line from stdin and keep\n"
    "                      the conversation\n"
    "  --system TEXT       system message for --chat\n"
    "  --template-var K=V  chat template variable for --chat, e.g. enable_thinking=false\n"
    "  --precision P       auto (default), f32 (exact), bf16 (faster matrix products)\n"
    "                      or q8_0 (weight products in Q8_0, llama.cpp's format:\n"
    "                      fastest decode); auto: q8_0 for a GGUF whose matrices are\n"
    "                      Q8_0, bf16 for models of hidden size >= 512 on a CPU with\n"
    "                      native bf16, else f32\n";

typedef struct chat_reply {
    const chat_template *t;
    int eot; /* the template's end-of-turn id: the reply ends there (it need not be EOS) */
    hn_buf raw;   /* everything decoded */
    long skip;    /* template separator bytes at its start; -1 while undecided */
    size_t shown; /* bytes of raw printed */
} chat_reply;

/* Streams a chat reply. Its first bytes are held back while they could still
 * be the template's separator (chat_template_reply_skip), then skipped. */
static bool print_reply(void *ctx, int32_t id, const char *text, size_t len) {
    chat_reply *r = ctx;
    if (id == r->eot) return false;
    hn_buf_append(&r->raw, text, len);
    if (r->skip < 0) {
        r->skip = chat_template_reply_skip(r->t, r->raw.data, r->raw.len);
        if (r->skip < 0) return true;
        r->shown = (size_t)r->skip;
    }
    fwrite(r->raw.data + r->shown, 1, r->raw.len - r->shown, stdout);
    fflush(stdout);
    r->shown = r->raw.len;
    return true;
}

static void add_msg(json_t *msgs, const char *role, const char *content) {
    json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", role, "content", content));
}

/* One chat turn: renders msgs with the template, generates, appends the reply. */
static hn_status chat_step(hn_model *m, const chat_template *t, json_t *msgs, const gen_params *gp,
                           hn_err *err) {
    chat_example ex;
    memset(&ex, 0, sizeof ex);
    hn_status s = chat_example_from_request(msgs, NULL, &ex, err);
    chat_render r;
    chat_render_init(&r);
    if (s == HN_OK) s = chat_render_prompt(t, m->tok, &ex, &r, err);
    chat_reply rep = {.t = t, .eot = chat_template_eot(t, m->tok), .skip = -1};
    hn_buf_init(&rep.raw);
    hn_buf_puts(&rep.raw, "");
    gen_result res;
    if (s == HN_OK) s = gen_run(m, r.ids, (int)r.n, gp, print_reply, &rep, NULL, &res, err);
    if (s == HN_OK) {
        const char *reply = rep.raw.data ? chat_template_reply_text(t, rep.raw.data) : "";
        if (rep.skip < 0) fputs(reply, stdout); /* ended while still undecided */
        fputc('\n', stdout);
        add_msg(msgs, "assistant", reply);
    }
    hn_buf_free(&rep.raw);
    chat_render_free(&r);
    chat_example_free(&ex);
    return s;
}

static int run_chat(hn_model *m, const char *system, const char *prompt, const gen_params *gp,
                    hn_err *err) {
    chat_template *t;
    if (chat_template_for_model_vars(m->chat_template, m->chat_template_vars, &t, err) != HN_OK) return 1;
    json_t *msgs = json_array();
    if (system && *system) add_msg(msgs, "system", system);
    hn_status s = HN_OK;
    if (prompt && *prompt) {
        add_msg(msgs, "user", prompt);
        s = chat_step(m, t, msgs, gp, err);
    } else {
        char line[8192];
        while (s == HN_OK && fgets(line, sizeof line, stdin)) {
            line[strcspn(line, "\r\n")] = 0;
            if (!*line) continue;
            add_msg(msgs, "user", line);
            s = chat_step(m, t, msgs, gp, err);
        }
    }
    json_decref(msgs);
    chat_template_free(t);
    return s == HN_OK ? 0 : 1;
}

static bool print_piece(void *ctx, int32_t id, const char *text, size_t len) {
    (void)ctx;
    (void)id;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return true;
}

int cmd_generate(int argc, char **argv) {
    static char tvars[2048];
    if (cli_want_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    const char *model_path = cli_default_model(), *adapter = NULL, *prompt = "", *v;
    const char *system = NULL;
    bool chat = false;
    gen_params gp;
    gen_params_default(&gp);
    gp.temperature = 0.8f;
    gp.top_p = 0.9f;
    bool bad = false, show_ids = false;
    cli_prec prec = CLI_PREC_DEFAULT;
    for (int i = 1; i < argc && !bad; i++) {
        if (cli_opt(argc, argv, &i, "--model", &model_path, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--adapter", &adapter, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--prompt", &prompt, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--max-tokens", &v, &bad)) { gp.max_tokens = atoi(v); continue; }
        if (cli_opt(argc, argv, &i, "--temperature", &v, &bad)) { gp.temperature = (float)atof(v); continue; }
        if (cli_opt(argc, argv, &i, "--top-p", &v, &bad)) { gp.top_p = (float)atof(v); continue; }
        if (cli_opt(argc, argv, &i, "--top-k", &v, &bad)) { gp.top_k = atoi(v); continue; }
        if (cli_opt(argc, argv, &i, "--seed", &v, &bad)) { gp.seed = strtoull(v, NULL, 10); continue; }
        if (cli_flag(argv, i, "--ids")) { show_ids = true; continue; }
        if (cli_flag(argv, i, "--chat")) { chat = true; continue; }
        if (cli_opt(argc, argv, &i, "--system", &system, &bad)) continue;
        if (cli_opt(argc, argv, &i, "--precision", &v, &bad)) {
            bad = !cli_precision("generate", v, false, &prec);
            continue;
        }
        if (cli_opt(argc, argv, &i, "--template-var", &v, &bad)) {
            bad = !cli_template_var("generate", v, tvars, sizeof tvars);
            continue;
        }
        fprintf(stderr, "hone generate: unknown option '%s'\n%s", argv[i], usage);
        return 2;
    }
    if (bad) return 2;
    char resolved[4096];
    if (!cli_resolve_model(model_path, resolved, sizeof resolved)) return 1;
    model_path = resolved;
    hn_err err = {0};
    hn_model *m;
    if (model_load(model_path, &m, &err) != HN_OK) {
        fprintf(stderr, "hone generate: %s\n", err.msg);
        return 1;
    }
    int rc = 1;
    int32_t *ids = NULL, *out = NULL;
    size_t n = 0, cap = 0;
    if (adapter && model_apply_finetune(m, adapter, &err) != HN_OK) goto done;
    if (!cli_precision_apply("generate", prec, m, false)) {
        model_free(m);
        return 1;
    }
    if (*tvars) { /* the command line overrides what a fine-tune brought */
        free(m->chat_template_vars);
        m->chat_template_vars = strdup(tvars);
    }
    if (chat) {
        rc = run_chat(m, system, prompt, &gp, &err);
        goto done;
    }
    if (tok_encode(m->tok, prompt, strlen(prompt), true, &ids, &n, &cap, &err) != HN_OK) goto done;
    fputs(prompt, stdout);
    gen_result res;
    if (gen_run(m, ids, (int)n, &gp, print_piece, NULL, &out, &res, &err) != HN_OK) goto done;
    fputc('\n', stdout);
    if (show_ids) {
        for (size_t i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
        for (int i = 0; i < res.n_generated; i++) printf(" %d", out[i]);
        printf("\n");
    }
    fprintf(stderr, "[%d prompt tokens, %d generated, %.1f tok/s%s, stop: %s]\n", res.n_prompt,
            res.n_generated, res.gen_seconds > 0 ? res.n_generated / res.gen_seconds : 0.0,
            m->q8_0 ? " (q8_0)" : "", res.finish == GEN_STOP_EOS ? "eos" : "length");
    rc = 0;
done:
    if (rc) fprintf(stderr, "hone generate: %s\n", err.msg);
    free(ids);
    free(out);
    model_free(m);
    return rc;
}
