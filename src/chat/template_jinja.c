/* template_jinja.c — a model's Jinja chat template behind the chat_template
 * functions: the conversation becomes the template's variables, the rendered
 * text is tokenized with special-token parsing (as transformers'
 * apply_chat_template(tokenize=True): no BOS added, the template writes it),
 * and the loss mask comes from the assistant spans found in that very text.
 *
 * Finding the spans. A template is a program, so hone learns its shape from
 * three probe conversations with marker contents (U, X, V):
 *   [user U] + generation prompt        -> Hgen  = the text after U
 *   [user U, assistant X]               -> Hlast = the text between U and X;
 *                                          EOT  = the first special token after X
 *   [user U, assistant X, user V]       -> Hmid  = the text between U and X
 * (Hlast and Hmid differ when a template renders the final turn differently,
 * e.g. Qwen3's empty <think></think>). In the real rendering, assistant
 * message k's span starts after the earliest occurrence of one of these
 * headers at or after the previous span's start (on a tie Hgen wins, since
 * the serving prompt ends with it, so what follows is what the model must
 * learn to write) and ends just after the first EOT text that follows, if it
 * comes before the next header. The spans are searched in the final text, so
 * templates that rewrite earlier turns (Qwen3 drops old <think> parts) are
 * handled. A message that cannot be located is an error, never a guess. A
 * token is a target when its first byte lies in a weight-1 span (the default
 * template's rule). */
#include <stdlib.h>
#include <string.h>

#include "chat/template_internal.h"

#define PROBE_U "hone-probe-user-7d1e"
#define PROBE_X "hone-probe-answer-7d1e"
#define PROBE_V "hone-probe-user-next-7d1e"

/* ---- the template's variables ---- */

static json_t *tool_call_json(const chat_tool_call *tc) {
    json_t *args = json_loads(tc->arguments, 0, NULL); /* HF passes parsed arguments */
    if (args && !json_is_object(args)) json_decref(args), args = NULL;
    if (!args) args = json_string(tc->arguments);
    json_t *fn = json_pack("{s:s, s:o}", "name", tc->name, "arguments", args);
    json_t *call = json_pack("{s:s}", "type", "function");
    if (call && tc->id && *tc->id) json_object_set_new(call, "id", json_string(tc->id));
    if (call) json_object_set_new(call, "function", fn);
    return call;
}

static json_t *message_json(const chat_message *m) {
    json_t *o = json_object();
    json_object_set_new(o, "role", json_string(chat_role_name(m->role)));
    json_object_set_new(o, "content", json_stringn(m->content, m->content_len));
    if (m->name) json_object_set_new(o, "name", json_string(m->name));
    if (m->n_tool_calls) {
        json_t *calls = json_array();
        for (int j = 0; j < m->n_tool_calls; j++) json_array_append_new(calls, tool_call_json(&m->tool_calls[j]));
        json_object_set_new(o, "tool_calls", calls);
    }
    if (m->tool_call_id) json_object_set_new(o, "tool_call_id", json_string(m->tool_call_id));
    return o;
}

/* Without a tokenizer (reply text probes) the tokens are "", so that
 * templates concatenating them still render. */
static void set_token(json_t *o, const char *name, const tok *tk, int id) {
    if (!tk || id >= 0) json_object_set_new(o, name, json_string(tk ? tok_piece(tk, id) : ""));
}

/* messages, tools, add_generation_prompt, the special tokens, extra vars —
 * what transformers passes (tools and documents None when absent). */
static json_t *context_json(const chat_template *t, const tok *tk, const chat_example *ex, bool gen_prompt) {
    json_t *o = json_object(), *msgs = json_array();
    for (int i = 0; i < ex->n_msgs; i++) json_array_append_new(msgs, message_json(&ex->msgs[i]));
    json_object_set_new(o, "messages", msgs);
    json_t *tools = ex->tools_json ? json_loads(ex->tools_json, 0, NULL) : NULL;
    json_object_set_new(o, "tools", tools ? tools : json_null());
    json_object_set_new(o, "documents", json_null());
    json_object_set_new(o, "add_generation_prompt", json_boolean(gen_prompt));
    set_token(o, "bos_token", tk, tk ? tok_bos(tk) : -1);
    set_token(o, "eos_token", tk, tk ? tok_eos(tk) : -1);
    set_token(o, "pad_token", tk, tk ? tok_pad(tk) : -1);
    set_token(o, "unk_token", tk, tk ? tok_unk(tk) : -1);
    json_object_update(o, t->vars);
    return o;
}

static hn_status render_text(const chat_template *t, const tok *tk, const chat_example *ex,
                             bool gen_prompt, hn_buf *out, hn_err *err) {
    json_t *ctx = context_json(t, tk, ex, gen_prompt);
    if (!ctx) return hn_errf(err, HN_ENOMEM, "chat template: out of memory");
    hn_buf_clear(out);
    hn_status st = jinja_render(t->jinja, ctx, NULL, out, err);
    json_decref(ctx);
    if (st == HN_OK && out->oom) st = hn_errf(err, HN_ENOMEM, "chat template: out of memory");
    if (st == HN_OK && !out->data) hn_buf_puts(out, "");
    return st;
}

/* ---- probing the template's shape ---- */

typedef struct tj_probe {
    char *hdr[3]; /* header candidates; hdr[0] is Hgen when non-empty */
    int nhdr;
    bool has_gen;
    char *prefix; /* Hlast minus Hgen: fixed text before an answer ("" if none) */
    int eot;      /* end-of-turn id (needs a tokenizer), -1 if none */
} probe;

static void probe_free(probe *p) {
    for (int k = 0; k < p->nhdr; k++) free(p->hdr[k]);
    free(p->prefix);
}

static hn_status render_probe(const chat_template *t, const tok *tk, int n, bool gen_prompt,
                              hn_buf *out, hn_err *err) {
    chat_message m[3] = {
        {.role = CHAT_USER, .content = PROBE_U, .content_len = sizeof PROBE_U - 1, .weight = 1},
        {.role = CHAT_ASSISTANT, .content = PROBE_X, .content_len = sizeof PROBE_X - 1, .weight = 1},
        {.role = CHAT_USER, .content = PROBE_V, .content_len = sizeof PROBE_V - 1, .weight = 1},
    };
    chat_example ex = {.msgs = m, .n_msgs = n, .parallel_tool_calls = -1};
    hn_status st = render_text(t, tk, &ex, gen_prompt, out, err);
    if (st != HN_OK) hn_err_prefix(err, "probing the chat template with a sample conversation");
    return st;
}

/* In the text of a probe: the end of U and the start of X (X after U). */
static hn_status probe_find(const char *text, bool want_x, const char **u_end, const char **x, hn_err *err) {
    const char *u = strstr(text, PROBE_U);
    *x = u && want_x ? strstr(u + sizeof PROBE_U - 1, PROBE_X) : NULL;
    if (!u || (want_x && !*x))
        return hn_errf(err, HN_EUNSUPPORTED, "chat template: it does not render message contents "
                       "verbatim, so hone cannot tell where assistant turns are (needed for the "
                       "loss mask)");
    *u_end = u + sizeof PROBE_U - 1;
    return HN_OK;
}

static bool add_hdr(probe *p, const char *b, size_t n) {
    for (int k = 0; k < p->nhdr; k++)
        if (strlen(p->hdr[k]) == n && !memcmp(p->hdr[k], b, n)) return true;
    if (!n) return true;
    return (p->hdr[p->nhdr++] = strndup(b, n)) != NULL;
}

/* The first special (control) token of text, -1 if none. */
static hn_status first_special(const tok *tk, const char *text, int *out, hn_err *err) {
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    *out = -1;
    hn_status st = tok_encode_ex(tk, text, strlen(text), false, true, &ids, NULL, &n, &cap, err);
    for (size_t i = 0; st == HN_OK && i < n && *out < 0; i++)
        if (tok_is_special(tk, ids[i]) && ids[i] != tok_unk(tk)) *out = ids[i];
    free(ids);
    return st;
}

/* Fills p from the three probes. tk may be NULL (no EOT then). */
static hn_status probe_template(const chat_template *t, const tok *tk, probe *p, hn_err *err) {
    memset(p, 0, sizeof *p);
    p->eot = -1;
    hn_buf gen, last, mid;
    hn_buf_init(&gen), hn_buf_init(&last), hn_buf_init(&mid);
    const char *ug, *ul, *um, *xl, *xm, *none;
    hn_status st = render_probe(t, tk, 1, true, &gen, err);
    if (st == HN_OK) st = render_probe(t, tk, 2, false, &last, err);
    if (st == HN_OK) st = render_probe(t, tk, 3, false, &mid, err);
    if (st == HN_OK) st = probe_find(gen.data, false, &ug, &none, err);
    if (st == HN_OK) st = probe_find(last.data, true, &ul, &xl, err);
    if (st == HN_OK) st = probe_find(mid.data, true, &um, &xm, err);
    if (st == HN_OK) {
        size_t ngen = strlen(ug), nlast = (size_t)(xl - ul);
        p->has_gen = ngen > 0;
        bool ok = add_hdr(p, ug, ngen) && add_hdr(p, um, (size_t)(xm - um)) && add_hdr(p, ul, nlast);
        bool pre = nlast >= ngen && !memcmp(ul, ug, ngen);
        p->prefix = pre ? strndup(ul + ngen, nlast - ngen) : strdup("");
        if (!ok || !p->prefix) st = hn_errf(err, HN_ENOMEM, "chat template: out of memory");
    }
    if (st == HN_OK && tk) st = first_special(tk, xl + sizeof PROBE_X - 1, &p->eot, err);
    if (st == HN_OK && tk && p->eot < 0) p->eot = tok_eos(tk);
    hn_buf_free(&gen), hn_buf_free(&last), hn_buf_free(&mid);
    if (st != HN_OK) {
        probe_free(p);
        memset(p, 0, sizeof *p);
    }
    return st;
}

void tj_probe_free(probe *p) {
    if (!p) return;
    probe_free(p);
    free(p);
}

/* The template's probes for tk: cached on t (the cache is not part of the
 * template's value, hence the cast), recomputed only for another tokenizer. */
static hn_status get_probe(const chat_template *t, const tok *tk, const probe **out, hn_err *err) {
    chat_template *mt = (chat_template *)t;
    if (mt->probe && mt->probe_tk == tk) {
        *out = mt->probe;
        return HN_OK;
    }
    probe *p = malloc(sizeof *p);
    if (!p) return hn_errf(err, HN_ENOMEM, "chat template: out of memory");
    hn_status st = probe_template(t, tk, p, err);
    if (st != HN_OK) {
        free(p);
        return st;
    }
    tj_probe_free(mt->probe);
    mt->probe = p;
    mt->probe_tk = tk;
    *out = p;
    return HN_OK;
}

int tj_eot(const chat_template *t, const tok *tk) {
    const probe *p;
    hn_err err;
    return get_probe(t, tk, &p, &err) == HN_OK ? p->eot : tok_eos(tk);
}

char *tj_reply_prefix(const chat_template *t) {
    const probe *p;
    hn_err err;
    return strdup(get_probe(t, NULL, &p, &err) == HN_OK ? p->prefix : "");
}

/* ---- locating assistant spans ---- */

typedef struct span {
    int msg_index;
    bool trained;
    size_t begin, end; /* bytes of the rendered text */
    size_t eot_at;     /* byte offset of the EOT text, SIZE_MAX if none */
} span;

/* Earliest header occurrence at or after pos; on a tie Hgen wins, else the
 * longer header. NULL if none. */
static const char *next_header(const probe *p, const char *text, size_t pos, size_t *hlen) {
    const char *best = NULL;
    int best_k = -1;
    for (int k = 0; k < p->nhdr; k++) {
        const char *h = strstr(text + pos, p->hdr[k]);
        if (!h) continue;
        size_t n = strlen(p->hdr[k]);
        bool better = !best || h < best || (h == best && !(best_k == 0 && p->has_gen) && n > *hlen);
        if (better) best = h, *hlen = n, best_k = k;
    }
    return best;
}

static hn_status find_spans(const probe *p, const tok *tk, const chat_example *ex, const char *text,
                            span *spans, int *nspans, hn_err *err) {
    const char *eot_text = p->eot >= 0 ? tok_piece(tk, p->eot) : "";
    size_t eot_len = strlen(eot_text), pos = 0;
    *nspans = 0;
    for (int i = 0; i < ex->n_msgs; i++) {
        if (ex->msgs[i].role != CHAT_ASSISTANT) continue;
        size_t hlen = 0, nlen = 0;
        const char *h = next_header(p, text, pos, &hlen);
        if (!h)
            return hn_errf(err, HN_EUNSUPPORTED, "messages[%d]: cannot find this assistant message "
                           "in the text the chat template rendered (the template renders it unlike "
                           "its sample conversations), so its loss mask cannot be built", i);
        span *s = &spans[(*nspans)++];
        s->msg_index = i;
        s->trained = ex->msgs[i].weight != 0;
        s->begin = (size_t)(h - text) + hlen;
        const char *next = next_header(p, text, s->begin, &nlen);
        const char *e = eot_len ? strstr(text + s->begin, eot_text) : NULL;
        bool has_eot = e && (!next || e <= next);
        s->eot_at = has_eot ? (size_t)(e - text) : SIZE_MAX;
        s->end = has_eot ? (size_t)(e - text) + eot_len : next ? (size_t)(next - text) : strlen(text);
        pos = s->begin;
    }
    return HN_OK;
}

/* ---- tokens and mask ---- */

/* Appends the tokens of text; those starting inside a trained span are
 * targets; fills one turn per span. */
static hn_status push_tokens(int eot, const span *spans, int ns, const int32_t *ids,
                             const uint32_t *starts, size_t n, chat_render *r, hn_err *err) {
    int first = r->n_turns;
    for (int k = 0; k < ns; k++) {
        chat_turn *t = chat_render_add_turn(r);
        if (!t) return hn_errf(err, HN_ENOMEM, "chat template: out of memory");
        t->msg_index = spans[k].msg_index;
        t->trained = spans[k].trained;
        t->tok_begin = SIZE_MAX;
    }
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t s = starts[i];
        while (k < ns && s >= spans[k].end) k++;
        bool in = i > 0 && k < ns && s >= spans[k].begin;
        if (in) {
            chat_turn *t = &r->turns[first + k];
            if (t->tok_begin == SIZE_MAX) t->tok_begin = r->n;
            if (s == spans[k].eot_at && ids[i] == eot) t->eot_index = (long)r->n;
            t->tok_end = r->n + 1;
        }
        if (!chat_render_push(r, ids[i], in && spans[k].trained))
            return hn_errf(err, HN_ENOMEM, "chat template: out of memory");
    }
    for (int j = first; j < r->n_turns; j++)
        if (r->turns[j].tok_begin == SIZE_MAX) r->turns[j].tok_begin = r->turns[j].tok_end = r->n;
    return HN_OK;
}

static hn_status encode(const tok *tk, const char *text, size_t len, int32_t **ids, uint32_t **starts,
                        size_t *n, hn_err *err) {
    size_t cap = 0;
    *n = 0;
    if (tok_get_kind(tk) == TOK_SPM)
        return hn_errf(err, HN_EUNSUPPORTED, "chat template: Jinja templates with a SentencePiece "
                       "tokenizer are not supported yet (use a byte-level BPE model, or none)");
    return tok_encode_ex(tk, text, len, false, true, ids, starts, n, &cap, err);
}

hn_status tj_render(const chat_template *t, const tok *tk, const chat_example *ex, bool gen_prompt,
                    chat_render *r, hn_err *err) {
    const probe *p = NULL;
    hn_buf text;
    hn_buf_init(&text);
    int32_t *ids = NULL;
    uint32_t *starts = NULL;
    size_t n = 0;
    int ns = 0;
    span *spans = calloc((size_t)ex->n_msgs + 1, sizeof *spans);
    hn_status st = spans ? HN_OK : hn_errf(err, HN_ENOMEM, "chat template: out of memory");
    if (st == HN_OK) st = render_text(t, tk, ex, gen_prompt, &text, err);
    if (st == HN_OK) st = encode(tk, text.data, text.len, &ids, &starts, &n, err);
    if (st == HN_OK && !gen_prompt) st = get_probe(t, tk, &p, err);
    if (st == HN_OK && !gen_prompt) st = find_spans(p, tk, ex, text.data, spans, &ns, err);
    if (st == HN_OK) st = push_tokens(p ? p->eot : -1, spans, ns, ids, starts, n, r, err);
    free(spans);
    free(ids);
    free(starts);
    hn_buf_free(&text);
    return st;
}
