/* cmd_chat.c — `hone chat`: one chat completion from a running `hone serve`
 * (or OpenAI) — the reply printed whole, or streamed over SSE as the deltas
 * arrive with --stream. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char *usage =
    "usage: hone chat --model M [options] MESSAGE\n"
    "\n"
    "  --model M          model ID, e.g. a fine-tune ft:stories260K:personal:x:abcd1234\n"
    "  --system S         system message sent before MESSAGE\n"
    "  --stream           print the reply as it is generated (SSE)\n"
    "  --temperature T    0 = greedy (default: the server's, 1)\n"
    "  --max-tokens N     reply length limit\n"
    "  --seed N           sampling seed\n"
    "  MESSAGE            the user message; `-` (or nothing, with a pipe) reads stdin\n"
    "\n"
    "common options:\n";

typedef struct chat_args {
    const char *model, *system, *message, *temperature, *max_tokens, *seed;
    bool stream;
} chat_args;

static bool chat_opt(int argc, char **argv, int *i, chat_args *a, bool *bad) {
    if (cli_opt(argc, argv, i, "--model", &a->model, bad)) return true;
    if (cli_opt(argc, argv, i, "--system", &a->system, bad)) return true;
    if (cli_opt(argc, argv, i, "--temperature", &a->temperature, bad)) return true;
    if (cli_opt(argc, argv, i, "--max-tokens", &a->max_tokens, bad)) return true;
    if (cli_opt(argc, argv, i, "--seed", &a->seed, bad)) return true;
    if (cli_flag(argv, *i, "--stream")) return a->stream = true;
    return false;
}

static char *read_stdin(void) {
    hn_buf b;
    char chunk[4096];
    size_t n;
    hn_buf_init(&b);
    hn_buf_puts(&b, "");
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) hn_buf_append(&b, chunk, n);
    if (b.len && b.data[b.len - 1] == '\n') b.data[--b.len] = 0; /* echo's newline */
    return hn_buf_take(&b);
}

static json_t *chat_body(hc *c, const chat_args *a, const char *message) {
    json_t *msgs = json_array();
    if (a->system)
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", a->system));
    json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", message));
    json_t *b = json_pack("{s:s,s:o}", "model", a->model, "messages", msgs);
    double t;
    long n;
    bool ok = true;
    if (a->temperature && (ok = hc_parse_double(c, "--temperature", a->temperature, &t)))
        json_object_set_new(b, "temperature", json_real(t));
    if (ok && a->max_tokens && (ok = hc_parse_int(c, "--max-tokens", a->max_tokens, 1, 1 << 30, &n)))
        json_object_set_new(b, "max_tokens", json_integer(n));
    if (ok && a->seed && (ok = hc_parse_int(c, "--seed", a->seed, 0, 2147483647L, &n)))
        json_object_set_new(b, "seed", json_integer(n));
    if (a->stream) json_object_set_new(b, "stream", json_true());
    if (!ok) json_decref(b);
    return ok ? b : NULL;
}

typedef struct stream_out {
    const hc *c;
    bool printed; /* some text went to stdout (then end the line) */
} stream_out;

static bool print_delta(void *ctx, json_t *chunk) {
    stream_out *o = ctx;
    const hc *c = o->c;
    if (c->json) {
        char *s = json_dumps(chunk, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s) puts(s);
        free(s);
    } else {
        json_t *delta = json_object_get(json_array_get(json_object_get(chunk, "choices"), 0), "delta");
        const char *text = json_string_value(json_object_get(delta, "content"));
        if (text && *text) o->printed = fputs(text, stdout) >= 0;
    }
    fflush(stdout);
    return true;
}

static int run_chat(hc *c, json_t *body, bool stream) {
    if (stream) {
        stream_out o = {c, false};
        bool ok = hc_stream(c, "/chat/completions", body, print_delta, &o);
        if (!c->json && (ok || o.printed)) putchar('\n');
        return ok ? 0 : 1;
    }
    json_t *r = hc_call(c, "POST", "/chat/completions", body);
    if (!r) return 1;
    json_t *msg = json_object_get(json_array_get(json_object_get(r, "choices"), 0), "message");
    const char *text = json_string_value(json_object_get(msg, "content"));
    if (c->json) hc_print_json(r);
    else printf("%s\n", text ? text : "");
    json_decref(r);
    return 0;
}

static int chat_main(hc *c, int argc, char **argv) {
    chat_args a = {0};
    const char *pos[1];
    int np = 0;
    bool bad = false;
    for (int i = 1; i < argc && !bad; i++) {
        if (hc_common_opt(c, argc, argv, &i, &bad)) continue;
        if (chat_opt(argc, argv, &i, &a, &bad)) continue;
        if (!hc_positional(c, argv, i, pos, &np, 1)) return 2;
    }
    if (bad) return 2;
    if (!a.model) return hc_fail(c, 2, "--model is required");
    bool from_stdin = np ? !strcmp(pos[0], "-") : !isatty(STDIN_FILENO);
    if (!np && !from_stdin) return hc_fail(c, 2, "missing MESSAGE");
    char *input = from_stdin ? read_stdin() : NULL;
    json_t *body = chat_body(c, &a, input ? input : pos[0]);
    free(input);
    if (!body) return 2;
    int rc = run_chat(c, body, a.stream);
    json_decref(body);
    return rc;
}

int cmd_chat(int argc, char **argv) {
    if (cli_want_help(argc, argv)) {
        printf("%s%s", usage, hc_common_usage);
        return 0;
    }
    hc c;
    hc_init(&c, "hone chat");
    int rc = chat_main(&c, argc, argv);
    hc_close(&c);
    return rc;
}
