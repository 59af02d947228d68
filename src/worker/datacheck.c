/* datacheck.c — an interim structural check of chat / prompt-completion JSONL
 * (see datacheck.h): roles, contents, an assistant turn to learn from. */
#include "worker/datacheck.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"

static void problem(data_check *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(data_check *c, int line, const char *fmt, ...) {
    if (c->n_problems++ >= DATACHECK_MAX_PROBLEMS) return;
    size_t used = strlen(c->problems);
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->problems + used, sizeof c->problems - used, "%sline %d: %s", used ? "; " : "",
             line, msg);
}

static bool known_role(const char *r) {
    static const char *roles[] = {"system", "user", "assistant", "tool", "function", "developer"};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (!strcmp(r, roles[i])) return true;
    return false;
}

/* Returns true if message i of a chat example is well formed. */
static bool check_message(data_check *c, int line, size_t i, json_t *m, bool *assistant) {
    if (!json_is_object(m)) {
        problem(c, line, "messages[%zu] is not an object", i);
        return false;
    }
    json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
    if (!json_is_string(role)) {
        problem(c, line, "messages[%zu]: 'role' is missing", i);
        return false;
    }
    const char *r = json_string_value(role);
    if (!known_role(r)) {
        problem(c, line, "messages[%zu]: unknown role '%s'", i, r);
        return false;
    }
    bool calls = json_object_get(m, "tool_calls") || json_object_get(m, "function_call");
    if (!json_is_string(content) && !json_is_array(content) && !(calls && json_is_null(content)) &&
        !(calls && !content)) {
        problem(c, line, "messages[%zu]: 'content' must be a string", i);
        return false;
    }
    json_t *w = json_object_get(m, "weight");
    if (w && !(json_is_integer(w) && (json_integer_value(w) == 0 || json_integer_value(w) == 1))) {
        problem(c, line, "messages[%zu]: 'weight' must be 0 or 1", i);
        return false;
    }
    if (!strcmp(r, "assistant")) *assistant = true;
    return true;
}

static void check_example(data_check *c, int line, json_t *ex) {
    json_t *msgs = json_object_get(ex, "messages");
    if (!msgs) {
        if (json_is_string(json_object_get(ex, "prompt")) &&
            json_is_string(json_object_get(ex, "completion"))) {
            c->n_examples++;
            return;
        }
        problem(c, line, "'messages' is missing (expected chat messages or prompt/completion)");
        return;
    }
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        problem(c, line, "'messages' must be a non-empty array");
        return;
    }
    bool assistant = false;
    for (size_t i = 0; i < json_array_size(msgs); i++)
        if (!check_message(c, line, i, json_array_get(msgs, i), &assistant)) return;
    if (!assistant) {
        problem(c, line, "no assistant message to learn from");
        return;
    }
    c->n_examples++;
}

static bool blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
    return true;
}

hn_status data_check_file(const char *path, data_check *out, hn_err *err) {
    memset(out, 0, sizeof *out);
    char *data;
    size_t len;
    hn_status rc = hn_file_read(path, 0, &data, &len, err);
    if (rc != HN_OK) return rc;
    int line = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - data) : len;
        line++;
        if (!blank(data + pos, end - pos)) {
            out->n_lines++;
            json_t *ex = json_loadb(data + pos, end - pos, 0, NULL);
            if (!json_is_object(ex)) {
                if (!out->not_object_line) out->not_object_line = line;
                problem(out, line, "not a JSON object");
            } else {
                check_example(out, line, ex);
            }
            json_decref(ex);
        }
        pos = end + 1;
    }
    free(data);
    return HN_OK;
}
