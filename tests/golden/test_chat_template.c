/* test_chat_template.c — hone's default chat template against the PyTorch
 * training fixture (stories260K train_step_tokens.json row 0), loaded from the
 * GGUF and from the HF directory; plus weight-0 turns, multi-turn rendering,
 * tool calls, truncation, the serving prompt and the end-of-turn check. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chat/dataset.h"
#include "chat/template.h"
#include "model/model.h"
#include "test.h"

static const char *animal_line =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Name the animal in the story with "
    "one word.\"}, {\"role\": \"user\", \"content\": \"In the forest there was a horse. It liked "
    "Ben and the blue toy.\"}, {\"role\": \"assistant\", \"content\": \"horse\"}]}";

#define parse test_parse_example

static tok *load_tok(const char *rel, int *ctx) {
    tok *t = NULL;
    hn_err err = {0};
    char *tmpl = NULL;
    hn_status s = model_load_tokenizer(test_shared(rel), &t, ctx, &tmpl, &err);
    CHECK(s == HN_OK, "%s: %s", rel, err.msg);
    CHECK(tmpl == NULL, "stories260K has no chat template");
    free(tmpl);
    return s == HN_OK ? t : NULL;
}

/* Row 0 of the fixture: tokens and per-target weights. */
static void check_fixture(tok *t, chat_template *ct) {
    size_t len;
    char *txt = test_read(test_shared("fixtures/stories260K/train_step_tokens.json"), &len);
    json_t *root = json_loadb(txt, len, 0, NULL);
    free(txt);
    json_t *toks = json_array_get(json_object_get(root, "tokens"), 0);
    json_t *wts = json_array_get(json_object_get(root, "weights"), 0);
    CHECK(json_array_size(toks) == json_array_size(wts) + 1, "fixture shape");

    chat_example ex = parse(animal_line);
    chat_render r;
    chat_render_init(&r);
    hn_err err = {0};
    CHECK(chat_template_render(ct, t, &ex, 512, &r, &err) == HN_OK, "%s", err.msg);
    CHECK(r.n == json_array_size(toks), "n %zu vs fixture %zu", r.n, json_array_size(toks));
    for (size_t i = 0; i < r.n && i < json_array_size(toks); i++) {
        int want = (int)json_integer_value(json_array_get(toks, i));
        CHECK(r.ids[i] == want, "token %zu: %d vs fixture %d", i, r.ids[i], want);
        if (i > 0) {
            int w = (int)json_number_value(json_array_get(wts, i - 1));
            CHECK(r.trained[i] == w, "target %zu: trained %d vs fixture weight %d", i,
                  r.trained[i], w);
        }
    }
    CHECK(!r.trained[0], "BOS is never a target");
    CHECK(r.n_trained == 4, "\" horse\" (3 tokens) + EOS trained, got %zu", r.n_trained);
    CHECK(!strcmp(tok_piece(t, r.ids[r.n - 4]), "\xE2\x96\x81h"), "first answer token is '▁h'");
    CHECK(r.n_turns == 1 && r.turns[0].eot_index == (long)r.n - 1, "one turn ending in EOS");
    CHECK(chat_render_check_eot(ct, t, &r, &err) == HN_OK, "%s", err.msg);

    /* Serving prompt = the training tokens before the answer. */
    ex.n_msgs = 2; /* drop the assistant message (freed below via the full count) */
    chat_render p;
    chat_render_init(&p);
    CHECK(chat_render_prompt(ct, t, &ex, &p, &err) == HN_OK, "%s", err.msg);
    ex.n_msgs = 3;
    CHECK(p.n == r.n - 4, "prompt is the %zu tokens before the answer, got %zu", r.n - 4, p.n);
    CHECK(p.n <= r.n && !memcmp(p.ids, r.ids, p.n * sizeof *p.ids), "prompt = training prefix");
    CHECK(p.n_trained == 0, "no targets in a prompt");
    CHECK(!strcmp(chat_template_reply_text(ct, " horse"), "horse"), "reply text");
    chat_render_free(&p);
    chat_render_free(&r);
    chat_example_free(&ex);
    json_decref(root);
}

/* Text of tokens [a, b) of r. */
static char *text_of(tok *t, const chat_render *r, size_t a, size_t b) {
    hn_buf out;
    hn_buf_init(&out);
    for (size_t i = a; i < b; i++) tok_decode_piece(t, i ? r->ids[i - 1] : -1, r->ids[i], &out);
    return out.data ? hn_buf_take(&out) : strdup("");
}

/* Concatenated text of the trained tokens, runs separated by '|'. */
static char *trained_text(tok *t, const chat_render *r) {
    hn_buf out;
    hn_buf_init(&out);
    for (size_t i = 0; i < r->n; i++) {
        if (!r->trained[i]) continue;
        if (i > 0 && !r->trained[i - 1] && out.len) hn_buf_putc(&out, '|');
        if (r->ids[i] == tok_eos(t))
            hn_buf_puts(&out, "</s>");
        else
            tok_decode_piece(t, r->ids[i - 1], r->ids[i], &out);
    }
    return out.data ? hn_buf_take(&out) : strdup("");
}

static void check_multi_turn(tok *t, chat_template *ct) {
    chat_example ex = parse(
        "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":\"Hello\"},"
        "{\"role\":\"user\",\"content\":\"Name a cat\"},"
        "{\"role\":\"assistant\",\"content\":\"Tom\",\"weight\":0},"
        "{\"role\":\"system\",\"content\":\"Now be kind.\"},"
        "{\"role\":\"user\",\"content\":\"Again\"},{\"role\":\"assistant\",\"content\":\"Tim\"}]}");
    chat_render r;
    chat_render_init(&r);
    hn_err err = {0};
    CHECK(chat_template_render(ct, t, &ex, 0, &r, &err) == HN_OK, "%s", err.msg);
    char *tr = trained_text(t, &r);
    CHECK(!strcmp(tr, " Hello</s>| Tim</s>"), "trained: '%s'", tr);
    free(tr);
    CHECK(r.n_turns == 3, "three assistant turns");
    CHECK(r.n_turns == 3 && !r.turns[1].trained && r.turns[1].msg_index == 4, "weight-0 turn");
    CHECK(r.n_turns == 3 && r.ids[r.turns[1].eot_index] == tok_eos(t) &&
              !r.trained[r.turns[1].eot_index], "weight-0 EOS is context");
    /* The whole sequence: segments, each encoded on its own (so each starts with "▁"). */
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    const char *segs[] = {"Be brief.\nUser: Hi\nAssistant: Hello", "User: Name a cat\nAssistant: Tom",
                          "System: Now be kind.\nUser: Again\nAssistant: Tim"};
    for (int k = 0; k < 3; k++) {
        CHECK(tok_encode(t, segs[k], strlen(segs[k]), k == 0, &ids, &n, &cap, &err) == HN_OK, "%s",
              err.msg);
        if (n == cap) ids = realloc(ids, (cap = cap * 2 + 1) * sizeof *ids);
        ids[n++] = tok_eos(t);
    }
    CHECK(n == r.n && !memcmp(ids, r.ids, n * sizeof *ids), "multi-turn segments (%zu vs %zu)", n, r.n);
    free(ids);
    CHECK(chat_render_check_eot(ct, t, &r, &err) == HN_OK, "%s", err.msg);

    /* Serving the conversation after the second turn: prefix of the training tokens. */
    int full = ex.n_msgs;
    ex.n_msgs = 4;
    chat_render p;
    chat_render_init(&p);
    CHECK(chat_render_prompt(ct, t, &ex, &p, &err) == HN_OK, "%s", err.msg);
    size_t ans = r.turns[1].tok_begin;
    CHECK(p.n == ans && !memcmp(p.ids, r.ids, ans * sizeof *p.ids), "prompt = prefix (%zu vs %zu)",
          p.n, ans);
    ex.n_msgs = full;

    /* Truncation: cut inside the last answer. */
    chat_render_free(&p);
    size_t cut = r.turns[2].tok_begin + 1;
    chat_render q;
    chat_render_init(&q);
    CHECK(chat_template_render(ct, t, &ex, cut, &q, &err) == HN_OK, "%s", err.msg);
    CHECK(q.truncated && q.n == cut && q.n_full == r.n, "truncated to %zu", cut);
    CHECK(q.n_trained == r.n_trained - (r.n - cut), "lost %zu targets", q.n_trained_full - q.n_trained);
    CHECK(chat_render_check_eot(ct, t, &q, &err) == HN_OK, "a turn cut by truncation is not an EOT error");
    /* Truncation that leaves nothing to train. */
    CHECK(chat_template_render(ct, t, &ex, r.turns[0].tok_begin, &q, &err) == HN_OK, "%s", err.msg);
    CHECK(q.n_trained == 0 && q.n_trained_full == r.n_trained, "nothing left to train");

    /* A mask without its EOS is refused. */
    CHECK(chat_template_render(ct, t, &ex, 0, &q, &err) == HN_OK, "%s", err.msg);
    q.trained[q.turns[2].eot_index] = 0;
    CHECK(chat_render_check_eot(ct, t, &q, &err) == HN_EINVAL, "EOS outside the mask refused");
    CHECK(strstr(err.msg, "messages[7]") && strstr(err.msg, "never learn to stop"), "%s", err.msg);
    chat_render_free(&q);
    chat_render_free(&r);
    chat_example_free(&ex);
}

static void check_tools(tok *t, chat_template *ct) {
    chat_example ex = parse(
        "{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"find\"}}],"
        "\"messages\":[{\"role\":\"user\",\"content\":\"Where is Tom?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":"
        "\"function\",\"function\":{\"name\":\"find\",\"arguments\":\"{\\\"who\\\": \\\"Tom\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"park\"},"
        "{\"role\":\"assistant\",\"content\":\"In the park.\"}]}");
    chat_render r;
    chat_render_init(&r);
    hn_err err = {0};
    CHECK(chat_template_render(ct, t, &ex, 0, &r, &err) == HN_OK, "%s", err.msg);
    char *all = text_of(t, &r, 0, r.n);
    const char *want = "Tools: [{\"type\":\"function\",\"function\":{\"name\":\"find\"}}]\n"
                       "User: Where is Tom?\nAssistant: {\"name\":\"find\",\"arguments\":{\"who\": "
                       "\"Tom\"}} Tool: park\nAssistant: In the park.";
    CHECK(!strcmp(all, want), "tools rendering:\n%s", all);
    free(all);
    char *tr = trained_text(t, &r);
    CHECK(!strcmp(tr, " {\"name\":\"find\",\"arguments\":{\"who\": \"Tom\"}}</s>| In the park.</s>"),
          "trained: '%s'", tr);
    free(tr);
    chat_render_free(&r);
    chat_example_free(&ex);
}

static void check_empty_answer(tok *t, chat_template *ct) {
    chat_example ex = parse("{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"},"
                            "{\"role\":\"assistant\",\"content\":\"\"}]}");
    chat_render r;
    chat_render_init(&r);
    hn_err err = {0};
    CHECK(chat_template_render(ct, t, &ex, 0, &r, &err) == HN_OK, "%s", err.msg);
    char *tr = trained_text(t, &r);
    CHECK(!strcmp(tr, "</s>"), "empty answer trains only EOS: '%s'", tr);
    free(tr);
    char *all = text_of(t, &r, 0, r.n);
    CHECK(!strcmp(all, "User: Hi\nAssistant:"), "'%s'", all);
    free(all);
    chat_render_free(&r);
    chat_example_free(&ex);
}

static void run(const char *rel) {
    int ctx = 0;
    tok *t = load_tok(rel, &ctx);
    if (!t) return;
    CHECK(ctx == 512, "stories260K context %d", ctx);
    CHECK(tok_bos(t) == 1 && tok_eos(t) == 2, "BOS/EOS");
    chat_template *ct;
    hn_err err = {0};
    CHECK(chat_template_for_model(NULL, &ct, &err) == HN_OK, "%s", err.msg);
    CHECK(!strcmp(chat_template_name(ct), "hone-default"), "default template");
    check_fixture(t, ct);
    check_multi_turn(t, ct);
    check_tools(t, ct);
    check_empty_answer(t, ct);
    chat_template_free(ct);
    tok_free(t);
}

int main(void) {
    run("models/stories260K/stories260K.gguf");
    run("models/stories260K/hf");
    chat_template *ct = NULL;
    hn_err err = {0};
    /* a model's Jinja template is used (tests/golden/test_chat_jinja*.c) */
    CHECK(chat_template_for_model("{{ messages }}", &ct, &err) == HN_OK && ct &&
              !strcmp(chat_template_name(ct), "jinja"), "a Jinja template: %s", err.msg);
    chat_template_free(ct);
    return test_finish("test_chat_template");
}
