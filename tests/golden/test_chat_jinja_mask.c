/* test_chat_jinja_mask.c — Jinja chat templates behind chat_template, with
 * the real Qwen3 tokenizer and its template (tokenizer_config.json):
 * rendered ids equal the tokenization of the fixture's render text; the loss
 * mask holds exactly the weight-1 assistant answers and their <|im_end|>
 * (Qwen3's final-turn empty <think></think> included unless
 * enable_thinking=false); weight-0 turns are context; the end-of-turn check
 * passes, survives truncation and refuses a template without an end-of-turn
 * token; the serving prompt; reply text; loading the template from a model
 * directory (string, list form, chat_template.jinja). */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chat/dataset.h"
#include "chat/template.h"
#include "model/model.h"
#include "test.h"

#define parse test_parse_example

static char *qwen3_template(void) {
    json_t *j = json_load_file(test_shared("tokenizers/qwen3/tokenizer_config.json"), 0, NULL);
    const char *s = json_string_value(json_object_get(j, "chat_template"));
    char *r = s ? strdup(s) : NULL;
    json_decref(j);
    return r;
}

static const char *fixture_text(json_t *fx, const char *conv, bool gen, bool no_think) {
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(fx, "renders"), i, r) {
        bool nt = json_object_size(json_object_get(r, "extra_kwargs")) > 0;
        if (!strcmp(json_string_value(json_object_get(r, "conversation")), conv) &&
            json_is_true(json_object_get(r, "add_generation_prompt")) == gen && nt == no_think)
            return json_string_value(json_object_get(r, "text"));
    }
    return NULL;
}

/* ids of r equal the tokenization (special tokens parsed, no BOS) of text. */
static void check_ids(const tok *tk, const chat_render *r, const char *text, const char *what) {
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    hn_err err = {0};
    hn_status s = tok_encode_ex(tk, text, strlen(text), false, true, &ids, NULL, &n, &cap, &err);
    bool same = s == HN_OK && n == r->n && !memcmp(ids, r->ids, n * sizeof *ids);
    CHECK(same, "%s: ids differ from the tokenization of the fixture text (%zu vs %zu tokens)", what, r->n, n);
    free(ids);
}

/* The text of the target tokens, in order. */
static char *trained_text(const tok *tk, const chat_render *r) {
    hn_buf b;
    hn_buf_init(&b);
    hn_buf_puts(&b, "");
    for (size_t i = 0; i < r->n; i++)
        if (r->trained[i]) tok_decode_ex(tk, &r->ids[i], 1, false, &b);
    return hn_buf_take(&b);
}

static void check_mask(const tok *tk, chat_template *t, const chat_example *ex, const char *want,
                       const char *what) {
    chat_render r;
    chat_render_init(&r);
    hn_err err = {0};
    hn_status s = chat_template_render(t, tk, ex, 0, &r, &err);
    CHECK(s == HN_OK, "%s: render: %s", what, err.msg);
    char *got = trained_text(tk, &r);
    CHECK(!strcmp(got, want), "%s: trained text\n  got:  [%s]\n  want: [%s]", what, got, want);
    s = chat_render_check_eot(t, tk, &r, &err);
    CHECK(s == HN_OK, "%s: eot check: %s", what, err.msg);
    free(got);
    chat_render_free(&r);
}

static const char *multi =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"You are terse.\"},"
    "{\"role\": \"user\", \"content\": \"Hi\"},"
    "{\"role\": \"assistant\", \"content\": \"<think>\\nGreet back.\\n</think>\\n\\nHello!\"},"
    "{\"role\": \"user\", \"content\": \"2+2?\"},"
    "{\"role\": \"assistant\", \"content\": \"4\", \"weight\": 0},"
    "{\"role\": \"user\", \"content\": \"Thanks\"},"
    "{\"role\": \"assistant\", \"content\": \"You're welcome.\"}]}";

static void check_qwen3(const tok *tk, json_t *fx) {
    char *src = qwen3_template();
    chat_template *t = NULL;
    hn_err err = {0};
    CHECK(src && chat_template_from_jinja(src, &t, &err) == HN_OK, "qwen3 template: %s", err.msg);
    if (!t) return;
    CHECK(!strcmp(chat_template_name(t), "jinja") && !strcmp(chat_template_source(t), src), "name/source");
    int eot = chat_template_eot(t, tk);
    CHECK(eot == tok_find(tk, "<|im_end|>", 10) && eot >= 0, "eot %d", eot);

    /* the fixture conversation: same ids as the fixture text */
    chat_example ex = parse("{\"messages\": [{\"role\": \"system\", \"content\": \"You are a concise "
                            "assistant.\"}, {\"role\": \"user\", \"content\": \"What is the capital of "
                            "France?\"}, {\"role\": \"assistant\", \"content\": \"The capital of France "
                            "is Paris.\"}]}");
    chat_render r;
    chat_render_init(&r);
    CHECK(chat_template_render(t, tk, &ex, 0, &r, &err) == HN_OK, "render: %s", err.msg);
    check_ids(tk, &r, fixture_text(fx, "system_user_assistant", false, false), "system_user_assistant");
    CHECK(r.n_turns == 1 && r.turns[0].msg_index == 2 && r.turns[0].eot_index == (long)r.n - 2,
          "turn: %d turns, eot at %ld of %zu", r.n_turns, r.n_turns ? r.turns[0].eot_index : -9, r.n);
    check_mask(tk, t, &ex, "<think>\n\n</think>\n\nThe capital of France is Paris.<|im_end|>", "qwen3 1 turn");

    chat_example_free(&ex);

    /* serving prompt: the fixture's add_generation_prompt renders */
    size_t i;
    json_t *conv;
    json_array_foreach(json_object_get(fx, "conversations"), i, conv) {
        const char *name = json_string_value(json_object_get(conv, "name"));
        CHECK(chat_example_from_request(json_object_get(conv, "messages"), NULL, &ex, &err) == HN_OK, "%s", err.msg);
        CHECK(chat_render_prompt(t, tk, &ex, &r, &err) == HN_OK && r.n_trained == 0, "prompt: %s", err.msg);
        check_ids(tk, &r, fixture_text(fx, name, true, false), name);
        chat_example_free(&ex);
    }

    /* multi-turn with weights; earlier <think> dropped by the template */
    ex = parse(multi);
    check_mask(tk, t, &ex, "Hello!<|im_end|><think>\n\n</think>\n\nYou're welcome.<|im_end|>", "qwen3 multi");
    CHECK(chat_render_prompt(t, tk, &ex, &r, &err) == HN_OK, "prompt: %s", err.msg);
    CHECK(chat_template_render(t, tk, &ex, 0, &r, &err) == HN_OK && r.n_turns == 3 && !r.turns[1].trained &&
          r.turns[0].trained && r.turns[2].trained, "turns");

    /* truncation: the last turn's end is cut; the check skips it */
    size_t full = r.n, cut = (size_t)r.turns[2].tok_begin + 2;
    CHECK(chat_template_render(t, tk, &ex, cut, &r, &err) == HN_OK && r.truncated && r.n == cut &&
          r.n_trained < r.n_trained_full && r.n_full == full, "truncation");
    CHECK(chat_render_check_eot(t, tk, &r, &err) == HN_OK, "eot check after truncation: %s", err.msg);

    /* enable_thinking=false: exactly the answers and their <|im_end|> */
    CHECK(chat_template_set_var(t, "enable_thinking", "false", &err) == HN_OK, "set_var: %s", err.msg);
    check_mask(tk, t, &ex, "Hello!<|im_end|>You're welcome.<|im_end|>", "qwen3 no thinking");
    CHECK(chat_template_set_var(t, "x", "{bad", &err) == HN_EINVAL && strstr(err.msg, "not JSON"), "bad var: %s", err.msg);
    CHECK(!strcmp(chat_template_reply_text(t, "Hi there"), "Hi there"), "reply text");
    chat_example_free(&ex);
    chat_render_free(&r);
    chat_template_free(t);
    free(src);
}

/* Reply text drops the fixed text between generation prompt and answer. */
static void check_reply_text(void) {
    char *src = qwen3_template();
    chat_template *t = NULL;
    hn_err err = {0};
    if (chat_template_from_jinja(src, &t, &err) == HN_OK) {
        CHECK(!strcmp(chat_template_reply_text(t, "<think>\n\n</think>\n\nHi"), "Hi"), "qwen3 reply");
        /* streaming: undecided while the reply may still become the separator */
        CHECK(chat_template_reply_skip(t, "<think>", 7) == -1, "qwen3 skip of a partial separator");
        CHECK(chat_template_reply_skip(t, "<think>\n\n</think>\n\nH", 20) == 19, "qwen3 skip");
        CHECK(chat_template_reply_skip(t, "Hi", 2) == 0, "qwen3 skip without separator");
        /* with enable_thinking=false the prompt holds the think block: no separator */
        CHECK(chat_template_set_var(t, "enable_thinking", "false", &err) == HN_OK, "%s", err.msg);
        CHECK(chat_template_reply_skip(t, "<think>", 7) == 0, "no-think separator not re-probed");
        CHECK(!strcmp(chat_template_reply_text(t, "<think>\nhmm\n</think>\n\nHi"), "<think>\nhmm\n</think>\n\nHi"),
              "qwen3 reply with thoughts is kept");
    }
    chat_template_free(t);
    free(src);
    const char *mistral = "{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}{{ '[INST] ' + "
                          "m.content + ' [/INST]' }}{% else %}{{ ' ' + m.content + eos_token }}{% endif %}{% endfor %}";
    CHECK(chat_template_from_jinja(mistral, &t, &err) == HN_OK, "mistral-style: %s", err.msg);
    CHECK(t && !strcmp(chat_template_reply_text(t, " Paris."), "Paris."), "mistral reply");
    chat_template_free(t);
}

/* SmolLM2 (default system prompt inserted) and a Mistral-style template
 * (no generation header; answers end with EOS) with the same tokenizer. */
static void check_other_templates(const tok *tk) {
    json_t *fx = json_load_file(test_shared("fixtures/chat_templates/smollm2.json"), 0, NULL);
    chat_template *t = NULL;
    hn_err err = {0};
    CHECK(chat_template_from_jinja(json_string_value(json_object_get(fx, "chat_template")), &t, &err) == HN_OK,
          "smollm2: %s", err.msg);
    chat_example ex = parse(multi);
    if (t) check_mask(tk, t, &ex, "<think>\nGreet back.\n</think>\n\nHello!<|im_end|>You're welcome.<|im_end|>", "smollm2");
    chat_template_free(t);
    json_decref(fx);
    const char *mistral = "{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}{{ '[INST] ' + "
                          "m.content + ' [/INST]' }}{% elif m.role == 'assistant' %}{{ ' ' + m.content + "
                          "eos_token }}{% endif %}{% endfor %}";
    CHECK(chat_template_from_jinja(mistral, &t, &err) == HN_OK, "mistral-style: %s", err.msg);
    if (t) check_mask(tk, t, &ex, " <think>\nGreet back.\n</think>\n\nHello!<|im_end|> You're welcome.<|im_end|>", "mistral-style");
    chat_template_free(t);
    chat_example_free(&ex);
}

/* A template that never renders an end-of-turn token is refused. */
static void check_no_eot(const tok *tk) {
    const char *src = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
                      "{% if add_generation_prompt %}assistant: {% endif %}";
    chat_template *t = NULL;
    hn_err err = {0};
    CHECK(chat_template_from_jinja(src, &t, &err) == HN_OK, "no-eot template: %s", err.msg);
    chat_example ex = parse(multi);
    chat_render r;
    chat_render_init(&r);
    hn_status s = t ? chat_template_render(t, tk, &ex, 0, &r, &err) : HN_EINVAL;
    CHECK(s == HN_OK && r.n_trained > 0, "no-eot render: %s", err.msg);
    s = t ? chat_render_check_eot(t, tk, &r, &err) : HN_OK;
    CHECK(s == HN_EINVAL && strstr(err.msg, "messages[2]") && strstr(err.msg, "never learn to stop"),
          "no-eot check: %s", err.msg);
    chat_render_free(&r);
    chat_example_free(&ex);
    chat_template_free(t);
}

static void check_errors(const tok *tk) {
    chat_template *t = NULL;
    hn_err err = {0};
    hn_status s = chat_template_for_model("{% for m in messages %}\n{{ m.content | wordwrap }}{% endfor %}", &t, &err);
    CHECK(s == HN_EUNSUPPORTED && !t && strstr(err.msg, "line 2, col 16: unsupported filter 'wordwrap'"), "%s", err.msg);
    CHECK(chat_template_default(&t, &err) == HN_OK, "default");
    CHECK(chat_template_set_var(t, "enable_thinking", "false", &err) == HN_EINVAL, "default has no vars");
    chat_template_free(t);
    /* a template that hides the content cannot be masked: refused, not guessed */
    CHECK(chat_template_from_jinja("{% for m in messages %}<|im_start|>{{ m.role }}<|im_end|>{% endfor %}", &t, &err) == HN_OK, "x");
    chat_example ex = parse(multi);
    chat_render r;
    chat_render_init(&r);
    s = chat_template_render(t, tk, &ex, 0, &r, &err);
    CHECK(s == HN_EUNSUPPORTED && strstr(err.msg, "verbatim"), "hidden content: %s", err.msg);
    chat_render_free(&r);
    chat_example_free(&ex);
    chat_template_free(t);
}

/* model_load_tokenizer finds the template of a HF directory in its three forms. */
static void check_model_dir(void) {
    char *src = qwen3_template();
    const char *dir = test_tmpdir();
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp %s %s/config.json && ln -sf %s %s/tokenizer.json", test_shared("models/stories260K/hf/config.json"),
             dir, test_shared("tokenizers/qwen3/tokenizer.json"), dir);
    int status;
    free(test_run_cmd(cmd, &status));
    CHECK(status == 0, "setup: %s", cmd);
    json_t *cfg = json_load_file(test_shared("tokenizers/qwen3/tokenizer_config.json"), 0, NULL);
    for (int form = 0; form < 3; form++) {
        json_t *c = json_deep_copy(cfg);
        if (form == 1) json_object_set_new(c, "chat_template", json_pack("[{s:s,s:s},{s:s,s:s}]", "name", "tool_use", "template", "x",
                                                                       "name", "default", "template", src));
        if (form == 2) {
            json_object_del(c, "chat_template");
            test_write_file(test_tmp_path("chat_template.jinja"), src, strlen(src));
        }
        json_dump_file(c, test_tmp_path("tokenizer_config.json"), 0);
        json_decref(c);
        tok *tk = NULL;
        char *got = NULL;
        hn_err err = {0};
        hn_status s = model_load_tokenizer(dir, &tk, NULL, &got, &err);
        CHECK(s == HN_OK && got && !strcmp(got, src), "template form %d: %s", form, err.msg);
        free(got);
        tok_free(tk);
    }
    json_decref(cfg);
    free(src);
}

int main(void) {
    tok *tk = NULL;
    hn_err err = {0};
    if (tok_from_hf_json(test_shared("tokenizers/qwen3/tokenizer.json"), &tk, &err) != HN_OK) {
        fprintf(stderr, "qwen3 tokenizer: %s\n", err.msg);
        return 1;
    }
    json_t *fx = json_load_file(test_shared("fixtures/chat_templates/qwen3.json"), 0, NULL);
    CHECK(fx, "qwen3 fixture");
    check_qwen3(tk, fx);
    check_reply_text();
    check_other_templates(tk);
    check_no_eot(tk);
    check_errors(tk);
    check_model_dir();
    json_decref(fx);
    tok_free(tk);
    return test_finish("test_chat_jinja_mask");
}
