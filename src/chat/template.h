/* template.h — chat templates: a conversation -> token ids + a per-token loss
 * mask (training), or -> a prompt ending in the generation prompt (serving).
 *
 * Training and serving go through the same chat_template object, so the text
 * the model is trained on and the prompt it is served with cannot drift apart
 * (docs/pitfalls.md #1). Two implementations sit behind the same functions:
 * hone's DEFAULT template for base models without a chat template, and the
 * model's own Jinja template (chat_template_from_jinja, run by the
 * interpreter in jinja.h). Exact rules, and how the loss mask of a Jinja
 * template is derived, are in docs/data.md.
 *
 * Mask convention: trained[i] = 1 means token i is a target (its logit at
 * position i-1 enters the loss). Token 0 is never a target. */
#ifndef HN_CHAT_TEMPLATE_H
#define HN_CHAT_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "chat/dataset.h"
#include "tokenizer/tok.h"

typedef struct chat_template chat_template;

/* hone's default template (fails only on out-of-memory). */
hn_status chat_template_default(chat_template **out, hn_err *err);
/* A model's Jinja template, parsed now: syntax errors and constructs hone does
 * not implement are refused here, naming line and column. */
hn_status chat_template_from_jinja(const char *src, chat_template **out, hn_err *err);
/* What a model asks for: jinja_src NULL (no template in the model) -> the
 * default template, else chat_template_from_jinja. */
hn_status chat_template_for_model(const char *jinja_src, chat_template **out, hn_err *err);
/* chat_template_for_model, then every key of vars_json (a JSON object text,
 * e.g. {"enable_thinking": false}; NULL or "{}" = none) as a template variable. */
hn_status chat_template_for_model_vars(const char *jinja_src, const char *vars_json,
                                       chat_template **out, hn_err *err);
/* jinja_src with vars_json's variables fixed inside it ({%- set k = v -%}
 * lines first), for exports: other tools then render as hone did. malloc'd;
 * NULL on out-of-memory. With no variables, a copy of jinja_src. */
char *chat_template_bake_vars(const char *jinja_src, const char *vars_json);
void chat_template_free(chat_template *t);
/* hone's default template as Jinja source, written into exports of models
 * that have no template of their own; chat_template_for_model maps it back
 * to the default template. */
const char *chat_template_default_jinja(void);
/* "hone-default" or "jinja". */
const char *chat_template_name(const chat_template *t);
/* The Jinja source; NULL for the default template. */
const char *chat_template_source(const chat_template *t);
/* Sets an extra variable every rendering sees, its value given as JSON text:
 * chat_template_set_var(t, "enable_thinking", "false", err). HN_EINVAL for
 * the default template (it has no variables) or a value that is not JSON. */
hn_status chat_template_set_var(chat_template *t, const char *name, const char *json_value,
                                hn_err *err);
/* The token that ends an assistant turn (EOS for the default template; for a
 * Jinja template the first special token it renders after an assistant
 * message, else EOS): it is trained at the end of every trained turn and
 * stops generation. -1 if none. */
int chat_template_eot(const chat_template *t, const tok *tk);

/* One assistant message of a rendering, in full-sequence token indices. */
typedef struct chat_turn {
    int msg_index;
    bool trained;        /* weight 1 */
    size_t tok_begin;    /* first token of the answer */
    size_t tok_end;      /* one past its end-of-turn token */
    long eot_index;      /* index of the end-of-turn token, -1 if the template has none */
} chat_turn;

typedef struct chat_render {
    int32_t *ids;
    uint8_t *trained;      /* 1 = token is a target */
    size_t n, cap;         /* tokens kept (after truncation) */
    size_t n_trained;      /* targets kept */
    size_t n_full;         /* tokens before truncation */
    size_t n_trained_full; /* targets before truncation */
    bool truncated;        /* n_full > max_seq_len: tokens were cut from the end */
    chat_turn *turns;      /* assistant messages, in order */
    int n_turns, cap_turns;
} chat_render;

void chat_render_init(chat_render *r);
void chat_render_free(chat_render *r);

/* Renders a training example. max_seq_len > 0 truncates the sequence from the
 * end to at most that many tokens (OpenAI truncates long examples the same
 * way); r->truncated and r->n_trained_full - r->n_trained then tell what was
 * lost, and r->n_trained == 0 means nothing is left to train on (drop it).
 * r is reset first. */
hn_status chat_template_render(const chat_template *t, const tok *tk, const chat_example *ex,
                               size_t max_seq_len, chat_render *r, hn_err *err);

/* Renders a conversation so far plus the generation prompt, for serving
 * (no mask: all trained flags 0). The continuation the model was trained to
 * produce starts right after these tokens and ends with chat_template_eot. */
hn_status chat_render_prompt(const chat_template *t, const tok *tk, const chat_example *ex,
                             chat_render *r, hn_err *err);

/* The assistant text of a generated reply: the decoded continuation with the
 * template's separator removed (the default template drops one leading space;
 * a Jinja template drops the fixed text it puts between its generation prompt
 * and an answer, e.g. Mistral's space, when the reply starts with it). */
const char *chat_template_reply_text(const chat_template *t, const char *decoded);
/* For a reply decoded so far (text[0..len)): how many leading bytes are the
 * template's separator rather than assistant text (" " for the default
 * template; "<think>\n\n</think>\n\n" after Qwen3's generation prompt; usually
 * 0), or -1 while the text is still a proper prefix of that separator — a
 * streaming client holds such bytes back until it knows. */
long chat_template_reply_skip(const chat_template *t, const char *text, size_t len);

/* Refuses (HN_EINVAL, clear message) a rendering in which a trained assistant
 * turn that survived truncation does not have its end-of-turn token inside the
 * loss mask: the model would never learn to stop (docs/pitfalls.md #2). */
hn_status chat_render_check_eot(const chat_template *t, const tok *tk, const chat_render *r,
                                hn_err *err);

#endif
