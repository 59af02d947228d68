/* test_chat_jinja.c — the Jinja interpreter against the real chat templates
 * of Qwen3 and SmolLM2: every render in fixtures/chat_templates/{qwen3,smollm2}.json
 * (from @huggingface/jinja, confirmed by Python Jinja2 as transformers
 * configures it) must be reproduced byte for byte. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chat/jinja.h"
#include "test.h"

static const json_t *find_conversation(const json_t *fx, const char *name) {
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(fx, "conversations"), i, c)
        if (!strcmp(json_string_value(json_object_get(c, "name")), name)) return c;
    return NULL;
}

/* The variables the fixture's renderer passed: messages,
 * add_generation_prompt, the special tokens and the extra kwargs. */
static json_t *render_vars(const json_t *fx, const json_t *r) {
    json_t *v = json_deep_copy(json_object_get(fx, "special_tokens_passed"));
    const json_t *conv = find_conversation(fx, json_string_value(json_object_get(r, "conversation")));
    json_object_set(v, "messages", json_object_get(conv, "messages"));
    json_object_set(v, "add_generation_prompt", json_object_get(r, "add_generation_prompt"));
    json_object_update(v, json_object_get(r, "extra_kwargs"));
    return v;
}

static void first_diff(const char *a, const char *b) {
    size_t i = 0;
    while (a[i] && a[i] == b[i]) i++;
    fprintf(stderr, "  first difference at byte %zu:\n  got:  %.60s\n  want: %.60s\n", i, a + i, b + i);
}

static void check_fixture(const char *rel) {
    json_error_t je;
    json_t *fx = json_load_file(test_shared(rel), 0, &je);
    CHECK(fx, "%s: %s", rel, je.text);
    if (!fx) return;
    const char *src = json_string_value(json_object_get(fx, "chat_template"));
    jinja_tmpl *t = NULL;
    hn_err err = {0};
    hn_status st = jinja_parse(src, strlen(src), &t, &err);
    CHECK(st == HN_OK, "%s: parse: %s", rel, err.msg);
    size_t i, n = 0;
    json_t *r;
    json_array_foreach(json_object_get(fx, "renders"), i, r) {
        if (!t) break;
        json_t *vars = render_vars(fx, r);
        hn_buf out;
        hn_buf_init(&out);
        st = jinja_render(t, vars, NULL, &out, &err);
        const char *want = json_string_value(json_object_get(r, "text"));
        const char *got = out.data ? out.data : "";
        CHECK(st == HN_OK, "%s render %zu: %s", rel, i, err.msg);
        bool same = st == HN_OK && !strcmp(got, want);
        CHECK(same, "%s render %zu (%s, add_generation_prompt %d) differs", rel, i,
              json_string_value(json_object_get(r, "conversation")),
              json_is_true(json_object_get(r, "add_generation_prompt")));
        if (!same && st == HN_OK) first_diff(got, want);
        n += same;
        hn_buf_free(&out);
        json_decref(vars);
    }
    CHECK(n == json_array_size(json_object_get(fx, "renders")) && n > 0, "%s: %zu renders matched", rel, n);
    jinja_free(t);
    json_decref(fx);
}

int main(void) {
    check_fixture("fixtures/chat_templates/qwen3.json");
    check_fixture("fixtures/chat_templates/smollm2.json");
    return test_finish("test_chat_jinja");
}
