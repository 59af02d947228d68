/* prompt.c — message checking and prompt rendering for chat completions.
 *
 * TODO(chat/template.h): render with the shared chat-template module once it
 * lands, so serving uses exactly the template training used (pitfall #1). The
 * interim rendering below ("<role>: <content>\n" per message, then
 * "assistant: ") only lets the endpoint work end to end until then. */
#include "server/prompt.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"

/* The text of a message's content: a string, or an array of text parts. */
static bool content_text(json_t *content, hn_buf *out) {
    if (json_is_string(content)) return hn_buf_puts(out, json_string_value(content)), true;
    if (json_is_null(content)) return true;
    if (!json_is_array(content)) return false;
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        json_t *text = json_object_get(part, "text");
        if (!json_is_string(text)) return false;
        hn_buf_puts(out, json_string_value(text));
    }
    return true;
}

static hn_status encode(const hn_model *m, const char *text, size_t len, int32_t **ids, int *n,
                        hn_err *err) {
    size_t cnt = 0, cap = 0;
    *ids = NULL;
    hn_status rc = tok_encode(m->tok, text, len, true, ids, &cnt, &cap, err);
    *n = (int)cnt;
    return rc;
}

hn_status prompt_render_chat(const hn_model *m, json_t *messages, int32_t **ids, int *n,
                             hn_err *err) {
    hn_buf text;
    hn_buf_init(&text);
    size_t i;
    json_t *msg;
    hn_status rc = HN_OK;
    json_array_foreach(messages, i, msg) {
        const char *role = json_string_value(json_object_get(msg, "role"));
        if (!role) {
            rc = hn_errf(err, HN_EINVAL, "messages[%zu]: 'role' is missing", i);
            break;
        }
        hn_buf_printf(&text, "%s: ", role);
        if (!content_text(json_object_get(msg, "content"), &text)) {
            rc = hn_errf(err, HN_EINVAL, "messages[%zu]: 'content' must be a string or text parts",
                         i);
            break;
        }
        hn_buf_putc(&text, '\n');
    }
    hn_buf_puts(&text, "assistant: ");
    if (rc == HN_OK) rc = encode(m, text.data, text.len, ids, n, err);
    hn_buf_free(&text);
    return rc;
}

hn_status prompt_encode_text(const hn_model *m, const char *text, int32_t **ids, int *n,
                             hn_err *err) {
    return encode(m, text, strlen(text), ids, n, err);
}
