/* jinja.h — a Jinja2-subset interpreter for chat templates (the language of
 * Hugging Face's tokenizer_config.json "chat_template" and GGUF
 * tokenizer.chat_template).
 *
 * The environment is the one transformers' apply_chat_template uses:
 * trim_blocks and lstrip_blocks on, keep_trailing_newline off, no
 * autoescaping, loop controls (break/continue), {% generation %} blocks,
 * raise_exception() and strftime_now(), and a tojson that does not sort keys
 * nor escape HTML. The supported subset is listed in docs/data.md.
 *
 * A template is parsed once (jinja_parse): syntax errors and unsupported
 * filters, tests, functions and statements are reported there, with the line
 * and column in the template ("chat template line 3, col 10: unsupported
 * filter 'wordwrap'"), so a model with a template hone cannot run is refused
 * when it is loaded, never rendered wrongly. Rendering (jinja_render) takes
 * the variables as one JSON object and bounds output size, memory, loop
 * iterations and call depth, so a hostile template cannot hang or exhaust
 * memory. */
#ifndef HN_CHAT_JINJA_H
#define HN_CHAT_JINJA_H

#include <stddef.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/err.h"

typedef struct jinja_tmpl jinja_tmpl;

typedef struct jinja_limits {
    size_t max_output;     /* bytes of rendered text */
    size_t max_memory;     /* bytes of values allocated during one render */
    size_t max_iterations; /* loop iterations, summed over all loops */
    int max_depth;         /* nested macro calls */
} jinja_limits;

/* 16 MiB output, 256 MiB memory, 10 million iterations, depth 64. */
void jinja_limits_default(jinja_limits *l);

/* Parses src[0..len). On error *out is NULL and err names line and column. */
hn_status jinja_parse(const char *src, size_t len, jinja_tmpl **out, hn_err *err);
void jinja_free(jinja_tmpl *t);

/* Renders with the variables of `vars` (a JSON object; JSON null is Python
 * None, a missing key is undefined) and appends the text to out. lim NULL =
 * defaults. Errors: HN_EINVAL for raise_exception (the template's message)
 * and runtime type errors, HN_EUNSUPPORTED for unsupported operations found
 * only at run time, HN_ENOMEM when a limit is hit. */
hn_status jinja_render(const jinja_tmpl *t, const json_t *vars, const jinja_limits *lim,
                       hn_buf *out, hn_err *err);

#endif
