/* template_internal.h — what template.c (the chat_template object and the
 * default template) shares with template_jinja.c (the Jinja-backed one): the
 * object's layout and the render-buffer helpers. Not a public header. */
#ifndef HN_CHAT_TEMPLATE_INTERNAL_H
#define HN_CHAT_TEMPLATE_INTERNAL_H

#include <jansson.h>

#include "chat/jinja.h"
#include "chat/template.h"

typedef enum tmpl_kind { TMPL_DEFAULT = 0, TMPL_JINJA = 1 } tmpl_kind;

struct tj_probe; /* template_jinja.c: what three sample renders reveal */

struct chat_template {
    tmpl_kind kind;
    char *source;       /* Jinja source (TMPL_JINJA) */
    jinja_tmpl *jinja;  /* parsed once, when the template is made */
    json_t *vars;       /* extra template variables (chat_template_set_var) */
    char *reply_prefix; /* separator a reply starts with (" ", or from the probes) */
    /* the probes for probe_tk (they depend on its special tokens), computed
     * on first use and kept: every render and end-of-turn query needs them */
    struct tj_probe *probe;
    const tok *probe_tk;
};

/* Appends a token; false on out-of-memory. */
bool chat_render_push(chat_render *r, int32_t id, uint8_t trained);
/* A new zeroed turn (eot_index -1); NULL on out-of-memory. */
chat_turn *chat_render_add_turn(chat_render *r);
/* Records the counts before truncation, then truncates to max_seq_len (0: no limit). */
void chat_render_truncate(chat_render *r, size_t max_seq_len);

/* template_jinja.c: the TMPL_JINJA implementations of the public functions. */
hn_status tj_render(const chat_template *t, const tok *tk, const chat_example *ex, bool gen_prompt,
                    chat_render *r, hn_err *err);
int tj_eot(const chat_template *t, const tok *tk);
/* The probed separator between the generation prompt and the answer (malloc'd;
 * "" when the template has none or cannot be probed). */
char *tj_reply_prefix(const chat_template *t);
void tj_probe_free(struct tj_probe *p);

#endif
