/* template.c — the chat_template object and hone's DEFAULT template (the
 * Jinja-backed kind lives in template_jinja.c).
 *
 * The default template (docs/data.md has the normative text) renders a
 * conversation as plain text segments, each encoded with one tok_encode call:
 *
 *   [BOS] <leading system contents, each + "\n"> ["Tools: " <tools JSON> "\n"]
 *         "User: " <content> "\n"  |  "Tool: " <content> "\n"  |  "System: " <content> "\n"
 *         "Assistant:" [" " <answer>]  -> end of segment, then EOS
 *   next segment: "User: ..." ... "Assistant: ..." EOS ...
 *
 * The answer span (" " + answer) and the EOS of each weight-1 assistant
 * message are the targets: a token is a target when the byte offset where it
 * starts (tok_encode_spans) lies inside an answer span. */
#include "chat/template.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "chat/template_internal.h"

hn_status chat_template_default(chat_template **out, hn_err *err) {
    *out = calloc(1, sizeof **out);
    if (!*out) return hn_errf(err, HN_ENOMEM, "chat template: out of memory");
    (*out)->kind = TMPL_DEFAULT;
    (*out)->reply_prefix = strdup(" ");
    if (!(*out)->reply_prefix) {
        free(*out);
        *out = NULL;
        return hn_errf(err, HN_ENOMEM, "chat template: out of memory");
    }
    return HN_OK;
}

hn_status chat_template_from_jinja(const char *src, chat_template **out, hn_err *err) {
    *out = NULL;
    chat_template *t = calloc(1, sizeof *t);
    if (!t || !(t->source = strdup(src)) || !(t->vars = json_object())) {
        chat_template_free(t);
        return hn_errf(err, HN_ENOMEM, "chat template: out of memory");
    }
    t->kind = TMPL_JINJA;
    hn_status st = jinja_parse(src, strlen(src), &t->jinja, err);
    if (st == HN_OK && !(t->reply_prefix = tj_reply_prefix(t)))
        st = hn_errf(err, HN_ENOMEM, "chat template: out of memory");
    if (st != HN_OK) {
        chat_template_free(t);
        return st;
    }
    *out = t;
    return HN_OK;
}

hn_status chat_template_set_var(chat_template *t, const char *name, const char *json_value,
                                hn_err *err) {
    if (t->kind != TMPL_JINJA)
        return hn_errf(err, HN_EINVAL, "chat template variable '%s': hone's default template has "
                       "no variables", name);
    json_error_t je;
    json_t *v = json_loads(json_value, JSON_DECODE_ANY, &je);
    if (!v)
        return hn_errf(err, HN_EINVAL, "chat template variable '%s': value is not JSON (%s): %s",
                       name, je.text, json_value);
    if (json_object_set_new(t->vars, name, v))
        return hn_errf(err, HN_ENOMEM, "chat template: out of memory");
    /* a variable can change every render, so what the probes found too */
    tj_probe_free(t->probe);
    t->probe = NULL;
    free(t->reply_prefix);
    if (!(t->reply_prefix = tj_reply_prefix(t)))
        return hn_errf(err, HN_ENOMEM, "chat template: out of memory");
    return HN_OK;
}

const char *chat_template_source(const chat_template *t) { return t->source; }

/* The default template written in Jinja, for exports: llama.cpp, Ollama and
 * transformers then format conversations as training did (for text messages
 * exactly; tool JSON may differ in spacing). */
static const char default_jinja[] =
    "{#- hone-default: hone's chat template for models without one (hone docs/data.md) -#}\n"
    "{{- bos_token -}}\n"
    "{%- set ns = namespace(lead=true, body='') -%}\n"
    "{%- for m in messages -%}\n"
    "{%- if ns.lead and m.role in ['system', 'developer'] -%}\n"
    "{{- m.content ~ '\\n' -}}\n"
    "{%- else -%}\n"
    "{%- if ns.lead -%}\n"
    "{%- set ns.lead = false -%}\n"
    "{%- if tools -%}{{- 'Tools: ' ~ (tools | tojson) ~ '\\n' -}}{%- endif -%}\n"
    "{%- endif -%}\n"
    "{%- if m.role == 'user' -%}{{- 'User: ' ~ m.content ~ '\\n' -}}\n"
    "{%- elif m.role == 'tool' -%}{{- 'Tool: ' ~ m.content ~ '\\n' -}}\n"
    "{%- elif m.role in ['system', 'developer'] -%}{{- 'System: ' ~ m.content ~ '\\n' -}}\n"
    "{%- elif m.role == 'assistant' -%}\n"
    "{%- set ns.body = m.content if m.content else '' -%}\n"
    "{%- for tc in (m.tool_calls or []) -%}\n"
    "{%- set args = tc.function.arguments if tc.function.arguments is string else (tc.function.arguments | tojson) -%}\n"
    "{%- set ns.body = ns.body ~ ('\\n' if ns.body else '') ~ '{\"name\":' ~ (tc.function.name | tojson) ~ ',\"arguments\":' ~ args ~ '}' -%}\n"
    "{%- endfor -%}\n"
    "{{- 'Assistant:' ~ (' ' ~ ns.body if ns.body else '') ~ eos_token -}}\n"
    "{%- endif -%}\n"
    "{%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- if ns.lead and tools -%}{{- 'Tools: ' ~ (tools | tojson) ~ '\\n' -}}{%- endif -%}\n"
    "{%- if add_generation_prompt -%}{{- 'Assistant:' -}}{%- endif -%}\n";

const char *chat_template_default_jinja(void) { return default_jinja; }

hn_status chat_template_for_model(const char *jinja_src, chat_template **out, hn_err *err) {
    /* an export of a default-template model carries default_jinja: same template */
    if (!jinja_src || !*jinja_src || !strcmp(jinja_src, default_jinja))
        return chat_template_default(out, err);
    return chat_template_from_jinja(jinja_src, out, err);
}

hn_status chat_template_for_model_vars(const char *jinja_src, const char *vars_json,
                                       chat_template **out, hn_err *err) {
    hn_status s = chat_template_for_model(jinja_src, out, err);
    if (s != HN_OK || !vars_json) return s;
    json_error_t je;
    json_t *v = json_loads(vars_json, 0, &je), *val;
    const char *key;
    if (!json_is_object(v)) s = hn_errf(err, HN_EINVAL, "chat template variables: not a JSON object: %s", vars_json);
    json_object_foreach(s == HN_OK ? v : NULL, key, val) {
        bool ident = (key[0] == '_' || (key[0] | 32) >= 'a') && (key[0] | 32) <= 'z';
        for (const char *c = key; ident && *c; c++)
            ident = *c == '_' || ((*c | 32) >= 'a' && (*c | 32) <= 'z') || (*c >= '0' && *c <= '9');
        if (!ident) {
            s = hn_errf(err, HN_EINVAL, "chat template variable '%s': not a name", key);
            break;
        }
        char *txt = json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT);
        s = txt ? chat_template_set_var(*out, key, txt, err) : hn_errf(err, HN_ENOMEM, "out of memory");
        free(txt);
        if (s != HN_OK) break;
    }
    json_decref(v);
    if (s != HN_OK) {
        chat_template_free(*out);
        *out = NULL;
    }
    return s;
}

char *chat_template_bake_vars(const char *jinja_src, const char *vars_json) {
    json_t *v = vars_json ? json_loads(vars_json, 0, NULL) : NULL, *val;
    hn_buf b;
    hn_buf_init(&b);
    const char *key;
    json_object_foreach(json_is_object(v) ? v : NULL, key, val) {
        char *txt = json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT);
        /* JSON true/false/null are Jinja true/false/none */
        hn_buf_printf(&b, "{%%- set %s = %s -%%}\n", key, txt ? txt : "none");
        free(txt);
    }
    json_decref(v);
    hn_buf_puts(&b, jinja_src ? jinja_src : "");
    if (b.oom) {
        hn_buf_free(&b);
        return NULL;
    }
    return b.data;
}

void chat_template_free(chat_template *t) {
    if (!t) return;
    free(t->source);
    jinja_free(t->jinja);
    json_decref(t->vars);
    free(t->reply_prefix);
    tj_probe_free(t->probe);
    free(t);
}

const char *chat_template_name(const chat_template *t) {
    return t->kind == TMPL_DEFAULT ? "hone-default" : "jinja";
}

int chat_template_eot(const chat_template *t, const tok *tk) {
    return t->kind == TMPL_JINJA ? tj_eot(t, tk) : tok_eos(tk);
}

long chat_template_reply_skip(const chat_template *t, const char *text, size_t len) {
    size_t n = strlen(t->reply_prefix);
    if (memcmp(text, t->reply_prefix, len < n ? len : n)) return 0;
    return len < n ? -1 : (long)n;
}

const char *chat_template_reply_text(const chat_template *t, const char *decoded) {
    size_t len = strlen(decoded);
    long k = chat_template_reply_skip(t, decoded, len);
    return decoded + (k < 0 ? (long)len : k);
}

/* ---- render buffers ---------------------------------------------------- */

void chat_render_init(chat_render *r) { memset(r, 0, sizeof *r); }

void chat_render_free(chat_render *r) {
    free(r->ids);
    free(r->trained);
    free(r->turns);
    memset(r, 0, sizeof *r);
}

static void render_reset(chat_render *r) {
    r->n = r->n_trained = r->n_full = r->n_trained_full = 0;
    r->n_turns = 0;
    r->truncated = false;
}

bool chat_render_push(chat_render *r, int32_t id, uint8_t trained) {
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        int32_t *ids = realloc(r->ids, cap * sizeof *ids);
        if (ids) r->ids = ids;
        uint8_t *tr = realloc(r->trained, cap);
        if (tr) r->trained = tr;
        if (!ids || !tr) return false;
        r->cap = cap;
    }
    r->ids[r->n] = id;
    r->trained[r->n++] = trained;
    r->n_trained += trained;
    return true;
}

chat_turn *chat_render_add_turn(chat_render *r) {
    if (r->n_turns == r->cap_turns) {
        int cap = r->cap_turns ? r->cap_turns * 2 : 8;
        chat_turn *t = realloc(r->turns, (size_t)cap * sizeof *t);
        if (!t) return NULL;
        r->turns = t;
        r->cap_turns = cap;
    }
    chat_turn *t = &r->turns[r->n_turns++];
    memset(t, 0, sizeof *t);
    t->eot_index = -1;
    return t;
}

/* ---- default template -------------------------------------------------- */

/* The text of the segment being built and the answer span inside it. */
typedef struct seg {
    hn_buf text;
    size_t ans_begin, ans_end; /* byte span of " " + answer */
    int msg_index;
    bool trained;
    /* scratch for tok_encode_spans */
    int32_t *ids;
    uint32_t *starts;
    size_t n, cap;
} seg;

/* Appends `{"name":NAME,"arguments":ARGS}`; ARGS verbatim when it is valid
 * JSON (so the user's spelling is kept), else as a JSON string. */
static void put_tool_call(hn_buf *b, const chat_tool_call *tc) {
    json_t *name = json_string(tc->name);
    char *qn = name ? json_dumps(name, JSON_ENCODE_ANY) : NULL;
    json_t *parsed = json_loads(tc->arguments, JSON_DECODE_ANY, NULL);
    json_t *astr = parsed ? NULL : json_string(tc->arguments);
    char *qa = astr ? json_dumps(astr, JSON_ENCODE_ANY) : NULL;
    hn_buf_printf(b, "{\"name\":%s,\"arguments\":%s}", qn ? qn : "\"\"",
                  parsed ? tc->arguments : qa ? qa : "\"\"");
    if (!qn || (!parsed && !qa)) b->oom = true;
    free(qn);
    free(qa);
    json_decref(name);
    json_decref(parsed);
    json_decref(astr);
}

/* The answer body: content, then one JSON line per tool call. */
static void put_answer(hn_buf *b, const chat_message *m) {
    size_t start = b->len;
    hn_buf_append(b, m->content, m->content_len);
    for (int j = 0; j < m->n_tool_calls; j++) {
        if (b->len > start) hn_buf_putc(b, '\n');
        put_tool_call(b, &m->tool_calls[j]);
    }
}

static void put_line(hn_buf *b, const char *prefix, const chat_message *m) {
    hn_buf_puts(b, prefix);
    hn_buf_append(b, m->content, m->content_len);
    hn_buf_putc(b, '\n');
}

/* Encodes the segment, appends its tokens (targets: tokens starting inside
 * the answer span of a trained message), then EOS if end_turn. */
static hn_status seg_flush(seg *s, const tok *tk, chat_render *r, bool end_turn, hn_err *err) {
    if (s->text.oom) return hn_errf(err, HN_ENOMEM, "chat template: out of memory");
    bool bos = r->n == 0 && tok_default_add_bos(tk);
    s->n = 0;
    hn_status st = tok_encode_spans(tk, s->text.data ? s->text.data : "", s->text.len, bos,
                                    &s->ids, &s->starts, &s->n, &s->cap, err);
    if (st != HN_OK) return st;
    chat_turn *turn = end_turn ? chat_render_add_turn(r) : NULL;
    if (end_turn && !turn) return hn_errf(err, HN_ENOMEM, "chat template: out of memory");
    if (turn) turn->msg_index = s->msg_index, turn->trained = s->trained, turn->tok_begin = SIZE_MAX;
    for (size_t k = 0; k < s->n; k++) {
        bool in = turn && !(bos && k == 0) && s->starts[k] >= s->ans_begin &&
                  s->starts[k] < s->ans_end;
        if (in && turn->tok_begin == SIZE_MAX) turn->tok_begin = r->n;
        if (!chat_render_push(r, s->ids[k], in && s->trained))
            return hn_errf(err, HN_ENOMEM, "chat template: out of memory");
    }
    if (end_turn) {
        if (turn->tok_begin == SIZE_MAX) turn->tok_begin = r->n;
        turn->eot_index = (long)r->n;
        if (!chat_render_push(r, tok_eos(tk), s->trained))
            return hn_errf(err, HN_ENOMEM, "chat template: out of memory");
        turn->tok_end = r->n;
    }
    hn_buf_clear(&s->text);
    return HN_OK;
}

/* Adds message i to the segment; flushes after an assistant message. */
static hn_status put_message(seg *s, const tok *tk, const chat_example *ex, int i, bool leading,
                             chat_render *r, hn_err *err) {
    const chat_message *m = &ex->msgs[i];
    switch (m->role) {
    case CHAT_SYSTEM:
        if (leading) {
            hn_buf_append(&s->text, m->content, m->content_len);
            hn_buf_putc(&s->text, '\n');
        } else {
            put_line(&s->text, "System: ", m);
        }
        return HN_OK;
    case CHAT_USER: put_line(&s->text, "User: ", m); return HN_OK;
    case CHAT_TOOL: put_line(&s->text, "Tool: ", m); return HN_OK;
    case CHAT_ASSISTANT: break;
    }
    hn_buf_puts(&s->text, "Assistant:");
    hn_buf body;
    hn_buf_init(&body);
    put_answer(&body, m);
    s->msg_index = i;
    s->trained = m->weight != 0;
    s->ans_begin = s->ans_end = s->text.len;
    if (body.len) {
        hn_buf_putc(&s->text, ' ');
        hn_buf_append(&s->text, body.data, body.len);
        s->ans_end = s->text.len;
    }
    if (body.oom) s->text.oom = true;
    hn_buf_free(&body);
    return seg_flush(s, tk, r, true, err);
}

/* Renders all messages; with gen_prompt, ends with "Assistant:" (no EOS). */
static hn_status render_default(const tok *tk, const chat_example *ex, bool gen_prompt,
                                chat_render *r, hn_err *err) {
    if (tok_eos(tk) < 0)
        return hn_errf(err, HN_EUNSUPPORTED,
                       "chat template: the tokenizer has no EOS token to end assistant turns");
    seg s = {0};
    hn_buf_init(&s.text);
    hn_status st = HN_OK;
    int i = 0;
    for (; st == HN_OK && i < ex->n_msgs && ex->msgs[i].role == CHAT_SYSTEM; i++)
        st = put_message(&s, tk, ex, i, true, r, err);
    if (ex->tools_json) {
        hn_buf_puts(&s.text, "Tools: ");
        hn_buf_puts(&s.text, ex->tools_json);
        hn_buf_putc(&s.text, '\n');
    }
    for (; st == HN_OK && i < ex->n_msgs; i++) st = put_message(&s, tk, ex, i, false, r, err);
    if (st == HN_OK && gen_prompt) hn_buf_puts(&s.text, "Assistant:");
    if (st == HN_OK && (s.text.len || r->n == 0)) st = seg_flush(&s, tk, r, false, err);
    hn_buf_free(&s.text);
    free(s.ids);
    free(s.starts);
    return st;
}

void chat_render_truncate(chat_render *r, size_t max_seq_len) {
    r->n_full = r->n;
    r->n_trained_full = r->n_trained;
    if (!max_seq_len || r->n <= max_seq_len) return;
    for (size_t k = max_seq_len; k < r->n; k++) r->n_trained -= r->trained[k];
    r->n = max_seq_len;
    r->truncated = true;
}

hn_status chat_template_render(const chat_template *t, const tok *tk, const chat_example *ex,
                               size_t max_seq_len, chat_render *r, hn_err *err) {
    render_reset(r);
    hn_status st = t->kind == TMPL_JINJA ? tj_render(t, tk, ex, false, r, err)
                                         : render_default(tk, ex, false, r, err);
    if (st != HN_OK) return st;
    chat_render_truncate(r, max_seq_len);
    return HN_OK;
}

hn_status chat_render_prompt(const chat_template *t, const tok *tk, const chat_example *ex,
                             chat_render *r, hn_err *err) {
    render_reset(r);
    hn_status st = t->kind == TMPL_JINJA ? tj_render(t, tk, ex, true, r, err)
                                         : render_default(tk, ex, true, r, err);
    if (st != HN_OK) return st;
    memset(r->trained, 0, r->n);
    r->n_trained = 0;
    chat_render_truncate(r, 0);
    return HN_OK;
}

hn_status chat_render_check_eot(const chat_template *t, const tok *tk, const chat_render *r,
                                hn_err *err) {
    int eot = chat_template_eot(t, tk);
    for (int k = 0; k < r->n_turns; k++) {
        const chat_turn *turn = &r->turns[k];
        if (!turn->trained || turn->tok_begin >= r->n) continue; /* context, or cut away */
        long e = turn->eot_index;
        if (e >= (long)r->n) continue; /* the turn's end was truncated away */
        if (e < 0 || r->ids[e] != eot || !r->trained[e])
            return hn_errf(err, HN_EINVAL,
                           "messages[%d]: the end-of-turn token '%s' (id %d) of this trained "
                           "assistant message is not in the loss mask with template %s; the "
                           "model would never learn to stop",
                           turn->msg_index, tok_piece(tk, eot), eot, chat_template_name(t));
    }
    return HN_OK;
}
