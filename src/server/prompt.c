/* prompt.c — chat requests -> prompt token ids, rendered with the model's chat
 * template through the same chat_template object training uses, so the text
 * served is the text trained (docs/pitfalls.md #1). */
#include "server/prompt.h"

#include <stdlib.h>
#include <string.h>

#include "chat/dataset.h"
#include "chat/template.h"

hn_status prompt_render_chat(const hn_model *m, json_t *messages, json_t *tools,
                             const char *tmpl_vars, int32_t **ids, int *n, hn_err *err) {
    *ids = NULL;
    *n = 0;
    chat_example ex;
    memset(&ex, 0, sizeof ex);
    hn_status rc = chat_example_from_request(messages, tools, &ex, err);
    if (rc != HN_OK) return rc;
    chat_template *t = NULL;
    rc = chat_template_for_model_vars(m->chat_template, tmpl_vars, &t, err);
    chat_render r;
    chat_render_init(&r);
    if (rc == HN_OK) rc = chat_render_prompt(t, m->tok, &ex, &r, err);
    if (rc == HN_OK) {
        *ids = r.ids; /* hand the buffer over */
        *n = (int)r.n;
        r.ids = NULL;
    }
    chat_render_free(&r);
    chat_template_free(t);
    chat_example_free(&ex);
    return rc;
}

hn_status prompt_encode_text(const hn_model *m, const char *text, int32_t **ids, int *n,
                             hn_err *err) {
    size_t cnt = 0, cap = 0;
    *ids = NULL;
    hn_status rc = tok_encode(m->tok, text, strlen(text), true, ids, &cnt, &cap, err);
    *n = (int)cnt;
    return rc;
}
