/* test_chat_default_jinja.c — hone's default template written in Jinja (what
 * exports of default-template models carry as their chat_template, so that
 * llama.cpp, Ollama and transformers format conversations as training did).
 * With a byte-level tokenizer (Qwen3's: its EOS <|im_end|> is a special token,
 * so the default template's per-segment encoding and one encoding of the Jinja
 * text must agree token for token), every conversation in the example
 * datasets renders to the same ids AND the same loss mask through the C
 * default template and through the Jinja one, for training and for the
 * serving prompt; and the Jinja source maps back to the default template. */
#include <stdlib.h>
#include <string.h>

#include "chat/dataset.h"
#include "chat/template.h"
#include "test.h"

static int compared, skipped;

static void compare(const chat_template *c, const chat_template *j, const tok *tk,
                    const chat_example *ex, const char *where) {
    bool tools = ex->tools_json != NULL;
    for (int i = 0; i < ex->n_msgs; i++) tools |= ex->msgs[i].n_tool_calls > 0;
    chat_render a, b;
    chat_render_init(&a), chat_render_init(&b);
    hn_err err = {0};
    for (int gen = 0; gen < 2; gen++) {
        hn_status sa = gen ? chat_render_prompt(c, tk, ex, &a, &err)
                           : chat_template_render(c, tk, ex, 0, &a, &err);
        CHECK(sa == HN_OK, "%s: default: %s", where, err.msg);
        hn_status sb = gen ? chat_render_prompt(j, tk, ex, &b, &err)
                           : chat_template_render(j, tk, ex, 0, &b, &err);
        CHECK(sb == HN_OK, "%s: jinja: %s", where, err.msg);
        if (sa != HN_OK || sb != HN_OK) break;
        if (tools) { /* tojson spaces tool JSON differently: rendered, not compared */
            skipped++;
            continue;
        }
        bool same = a.n == b.n && !memcmp(a.ids, b.ids, a.n * sizeof *a.ids) &&
                    (gen || !memcmp(a.trained, b.trained, a.n));
        CHECK(same, "%s (%s): default and Jinja renderings differ (%zu vs %zu tokens)", where,
              gen ? "prompt" : "training", a.n, b.n);
        compared++;
    }
    chat_render_free(&a), chat_render_free(&b);
}

static void compare_file(const chat_template *c, const chat_template *j, const tok *tk,
                         const char *path) {
    chat_dataset ds;
    chat_dataset_opts o;
    chat_dataset_opts_default(&o);
    o.min_examples = 0;
    hn_err err = {0};
    CHECK(chat_dataset_load(path, &o, &ds, &err) == HN_OK, "%s: %s", path, err.msg);
    for (size_t i = 0; i < ds.n_examples; i++) {
        char where[600];
        snprintf(where, sizeof where, "%s:%ld", path, ds.examples[i].line);
        compare(c, j, tk, &ds.examples[i], where);
    }
    chat_dataset_free(&ds);
}

#define parse test_parse_example

int main(void) {
    hn_err err = {0};
    tok *tk = NULL;
    chat_template *c = NULL, *j = NULL, *back = NULL;
    CHECK(tok_from_hf_json(test_shared("tokenizers/qwen3/tokenizer.json"), &tk, &err) == HN_OK,
          "%s", err.msg);
    CHECK(chat_template_default(&c, &err) == HN_OK, "%s", err.msg);
    CHECK(chat_template_from_jinja(chat_template_default_jinja(), &j, &err) == HN_OK,
          "the default template's Jinja is outside the supported subset: %s", err.msg);
    CHECK(chat_template_for_model(chat_template_default_jinja(), &back, &err) == HN_OK &&
              !strcmp(chat_template_name(back), "hone-default"),
          "the exported default template does not map back to hone-default");
    if (!tk || !c || !j) return test_finish("test_chat_default_jinja");
    static const char *files[] = {"data/animal/train.jsonl", "data/animal/valid.jsonl",
                                  "data/animal/test.jsonl"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) compare_file(c, j, tk, test_shared(files[i]));
    /* multi-turn with weights, later system and tool messages, tool calls */
    static const char *convs[] = {
        "{\"messages\":[{\"role\":\"system\",\"content\":\"S1\"},{\"role\":\"developer\",\"content\":\"S2\"},"
        "{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":\"Hello there\",\"weight\":0},"
        "{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Why?\"},"
        "{\"role\":\"assistant\",\"content\":\"Because.\"}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"2+2?\"},{\"role\":\"assistant\",\"content\":\"4\"},"
        "{\"role\":\"user\",\"content\":\"  spaces\\n\\tand tabs  \"},{\"role\":\"assistant\",\"content\":\"ok \u00e9\u4e2d\"}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"},{\"role\":\"assistant\",\"content\":null,"
        "\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"get\",\"arguments\":\"{\\\"q\\\": 1}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"sunny\"},{\"role\":\"assistant\",\"content\":\"Sunny.\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get\",\"parameters\":{}}}]}",
    };
    for (size_t i = 0; i < sizeof convs / sizeof *convs; i++) {
        chat_example ex = parse(convs[i]);
        char where[32];
        snprintf(where, sizeof where, "conversation %zu", i);
        compare(c, j, tk, &ex, where);
        chat_example_free(&ex);
    }
    printf("default template vs its Jinja: %d renderings identical (ids and mask), %d with "
           "tools rendered only\n", compared, skipped);
    CHECK(compared > 600, "only %d renderings compared", compared);
    chat_template_free(c), chat_template_free(j), chat_template_free(back);
    tok_free(tk);
    return test_finish("test_chat_default_jinja");
}
