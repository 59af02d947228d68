/* prompt.h — turns a chat request's messages into the token ids a model is
 * prompted with, using the model's chat template — the one training uses —
 * ending with the assistant's generation prompt. Private to the server. */
#ifndef HN_PROMPT_H
#define HN_PROMPT_H

#include <jansson.h>
#include <stdint.h>

#include "base/err.h"
#include "model/model.h"

/* messages: the request's array (checked here: role and content of each).
 * On HN_EINVAL, err names the offending message ("messages[1]: ..."). */
/* tools: the request's "tools" (or NULL); tmpl_vars: JSON object text of chat
 * template variables (the request's chat_template_kwargs, else the model's). */
hn_status prompt_render_chat(const hn_model *m, json_t *messages, json_t *tools,
                             const char *tmpl_vars, int32_t **ids, int *n, hn_err *err);
/* A legacy completions prompt: the text as is, with BOS. */
hn_status prompt_encode_text(const hn_model *m, const char *text, int32_t **ids, int *n,
                             hn_err *err);

#endif
