/* dataset_example.c — the rules for one chat example (one JSONL line): the
 * messages list, roles, content forms, names, weights, tool calls and the
 * top-level tools; and the conversion of a valid example into chat_example.
 * Every rule violation becomes a problem with its field path; validation goes
 * on after a problem so one pass reports all of them. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "chat/dataset_internal.h"

typedef struct vctx {
    chat_dataset *ds;
    long line;
    const ds_rules *rules;
    bool ok;
    const json_t *last_calls; /* tool_calls of the latest assistant message, or NULL */
    const json_t *tools;      /* top-level tools array, or NULL */
    int parallel;             /* -1 absent, 0, 1 */
} vctx;

static void problem(vctx *c, chat_problem_kind kind, int msg, const char *field,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void problem(vctx *c, chat_problem_kind kind, int msg, const char *field,
                    const char *fmt, ...) {
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    c->ok = false;
    ds_add_problem(c->ds, kind, c->line, msg, field, "%s", detail);
}

static char *dup_str(vctx *c, const char *s) {
    char *d = strdup(s ? s : "");
    if (!d) c->ds->oom = true, c->ok = false;
    return d;
}

/* A short quotable form of a user string (at most 40 bytes, cut at a character). */
static const char *quote(const char *s, char *buf, size_t cap) {
    size_t n = strlen(s);
    if (n < cap) return s;
    size_t k = cap - 4;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
    snprintf(buf, cap, "%.*s...", (int)k, s);
    return buf;
}

const char *ds_json_type(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

const char *chat_role_name(chat_role r) {
    static const char *names[] = {"system", "user", "assistant", "tool"};
    return (unsigned)r <= CHAT_TOOL ? names[r] : "unknown";
}

void chat_example_free(chat_example *ex) {
    for (int i = 0; ex->msgs && i < ex->n_msgs; i++) {
        chat_message *m = &ex->msgs[i];
        free(m->content);
        free(m->name);
        free(m->tool_call_id);
        for (int j = 0; j < m->n_tool_calls; j++) {
            free(m->tool_calls[j].id);
            free(m->tool_calls[j].name);
            free(m->tool_calls[j].arguments);
        }
        free(m->tool_calls);
    }
    free(ex->msgs);
    free(ex->tools_json);
    memset(ex, 0, sizeof *ex);
}

/* ---- top level --------------------------------------------------------- */

static void check_tools(vctx *c, const json_t *obj, chat_example *ex) {
    const json_t *tools = json_object_get(obj, "tools");
    if (tools && !json_is_null(tools)) {
        if (!json_is_array(tools)) {
            problem(c, CHAT_P_INVALID_TOOLS, -1, "tools", "tools is %s, not an array",
                    ds_json_type(tools));
        } else {
            char f[128];
            for (size_t j = 0; j < json_array_size(tools); j++) {
                const json_t *t = json_array_get(tools, j);
                const json_t *fn = json_object_get(t, "function");
                const char *type = json_string_value(json_object_get(t, "type"));
                snprintf(f, sizeof f, "tools[%zu]", j);
                if (!json_is_object(t))
                    problem(c, CHAT_P_INVALID_TOOLS, -1, f, "a tool must be an object");
                else if (!type || strcmp(type, "function"))
                    problem(c, CHAT_P_INVALID_TOOLS, -1, f, "type must be \"function\"");
                else if (!json_is_object(fn) || !json_string_length(json_object_get(fn, "name")))
                    problem(c, CHAT_P_INVALID_TOOLS, -1, f,
                            "function must be an object with a non-empty name");
            }
            c->tools = json_array_size(tools) ? tools : NULL;
            if (c->tools) {
                char *s = json_dumps(tools, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
                if (!s) c->ds->oom = true, c->ok = false;
                ex->tools_json = s;
            }
        }
    }
    const json_t *par = json_object_get(obj, "parallel_tool_calls");
    if (par && !json_is_null(par)) {
        if (!json_is_boolean(par))
            problem(c, CHAT_P_INVALID_TOOLS, -1, "parallel_tool_calls",
                    "parallel_tool_calls is %s, not a boolean", ds_json_type(par));
        else
            c->parallel = json_is_true(par);
    }
    ex->parallel_tool_calls = c->parallel;
}

/* ---- one message ------------------------------------------------------- */

static const char *const known_keys[] = {"role",   "content",    "name",
                                         "weight", "tool_calls", "tool_call_id"};

static void check_keys(vctx *c, const json_t *m, int i) {
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)m, key, v) {
        bool known = false;
        for (size_t k = 0; k < sizeof known_keys / sizeof known_keys[0]; k++)
            known = known || !strcmp(key, known_keys[k]);
        if (known || c->rules->ignore_unknown_keys) continue;
        char f[128], q[48];
        snprintf(f, sizeof f, "messages[%d].%s", i, quote(key, q, sizeof q));
        problem(c, CHAT_P_MESSAGE_UNRECOGNIZED_KEY, i, f,
                "unrecognized key '%s' (allowed: role, content, name, weight, tool_calls, "
                "tool_call_id)",
                quote(key, q, sizeof q));
    }
}

static bool check_role(vctx *c, const json_t *m, int i, chat_message *out) {
    char f[128], q[48];
    snprintf(f, sizeof f, "messages[%d].role", i);
    const json_t *v = json_object_get(m, "role");
    if (!v) {
        problem(c, CHAT_P_MESSAGE_MISSING_KEY, i, f, "missing key 'role'");
        return false;
    }
    const char *r = json_string_value(v);
    if (!r) {
        problem(c, CHAT_P_INVALID_TYPE, i, f, "role is %s, not a string", ds_json_type(v));
        return false;
    }
    static const struct { const char *name; chat_role role; } roles[] = {
        {"system", CHAT_SYSTEM}, {"developer", CHAT_SYSTEM}, {"user", CHAT_USER},
        {"assistant", CHAT_ASSISTANT}, {"tool", CHAT_TOOL}};
    for (size_t k = 0; k < sizeof roles / sizeof roles[0]; k++) {
        if (strcmp(r, roles[k].name)) continue;
        out->role = roles[k].role;
        out->developer = k == 1;
        return true;
    }
    problem(c, CHAT_P_UNRECOGNIZED_ROLE, i, f, "'%s' is not one of system, user, assistant, tool",
            quote(r, q, sizeof q));
    return false;
}

/* Joins an array of {"type":"text","text":...} parts into b. */
static void join_parts(vctx *c, const json_t *v, int i, hn_buf *b) {
    char f[128];
    if (json_array_size(v) == 0) {
        snprintf(f, sizeof f, "messages[%d].content", i);
        problem(c, CHAT_P_MISSING_CONTENT, i, f, "content is an empty array");
        return;
    }
    for (size_t j = 0; j < json_array_size(v); j++) {
        const json_t *p = json_array_get(v, j);
        const char *type = json_string_value(json_object_get(p, "type"));
        const json_t *text = json_object_get(p, "text");
        snprintf(f, sizeof f, "messages[%d].content[%zu]", i, j);
        if (!json_is_object(p) || !type) {
            problem(c, CHAT_P_MISSING_CONTENT, i, f,
                    "a content part must be an object with a \"type\"");
        } else if (strcmp(type, "text")) {
            char q[48];
            problem(c, CHAT_P_UNSUPPORTED_CONTENT, i, f,
                    "'%s' parts are not supported (only \"text\")", quote(type, q, sizeof q));
        } else if (!json_is_string(text)) {
            problem(c, CHAT_P_MISSING_CONTENT, i, f, "a text part needs a string \"text\"");
        } else {
            hn_buf_append(b, json_string_value(text), json_string_length(text));
        }
    }
}

static void check_content(vctx *c, const json_t *m, int i, bool has_calls, chat_message *out) {
    char f[128];
    snprintf(f, sizeof f, "messages[%d].content", i);
    const json_t *v = json_object_get(m, "content");
    bool may_omit = out->role == CHAT_ASSISTANT && has_calls;
    hn_buf b;
    hn_buf_init(&b);
    if (!v) {
        if (!may_omit) problem(c, CHAT_P_MESSAGE_MISSING_KEY, i, f, "missing key 'content'");
    } else if (json_is_null(v)) {
        if (!may_omit) problem(c, CHAT_P_MISSING_CONTENT, i, f, "content is null");
    } else if (json_is_string(v)) {
        hn_buf_append(&b, json_string_value(v), json_string_length(v));
    } else if (json_is_array(v)) {
        join_parts(c, v, i, &b);
    } else {
        problem(c, CHAT_P_MISSING_CONTENT, i, f,
                "content is %s, not a string or an array of text parts", ds_json_type(v));
    }
    if (b.oom) c->ds->oom = true, c->ok = false;
    out->content_len = b.len;
    out->content = b.data ? hn_buf_take(&b) : dup_str(c, "");
}

static void check_name_weight(vctx *c, const json_t *m, int i, chat_message *out) {
    char f[128];
    const json_t *name = json_object_get(m, "name");
    if (name && !json_is_null(name)) {
        snprintf(f, sizeof f, "messages[%d].name", i);
        if (!json_is_string(name))
            problem(c, CHAT_P_INVALID_TYPE, i, f, "name is %s, not a string", ds_json_type(name));
        else
            out->name = dup_str(c, json_string_value(name));
    }
    out->weight = 1;
    const json_t *w = json_object_get(m, "weight");
    if (!w) return;
    snprintf(f, sizeof f, "messages[%d].weight", i);
    if (out->role != CHAT_ASSISTANT) {
        problem(c, CHAT_P_INVALID_WEIGHT, i, f, "weight is only allowed on assistant messages");
        return;
    }
    double x = json_is_number(w) ? json_number_value(w) : -1;
    if (x != 0 && x != 1) {
        char *s = json_dumps(w, JSON_ENCODE_ANY | JSON_COMPACT);
        char q[48];
        problem(c, CHAT_P_INVALID_WEIGHT, i, f, "weight must be 0 or 1, not %s",
                s ? quote(s, q, sizeof q) : "this");
        free(s);
        return;
    }
    out->weight = (int)x;
}

static bool tool_declared(const vctx *c, const char *name) {
    if (!c->tools) return true;
    for (size_t j = 0; j < json_array_size(c->tools); j++) {
        const json_t *fn = json_object_get(json_array_get(c->tools, j), "function");
        const char *n = json_string_value(json_object_get(fn, "name"));
        if (n && !strcmp(n, name)) return true;
    }
    return false;
}

/* Checks one entry of tool_calls; returns true if it is well formed. */
static bool check_one_call(vctx *c, const json_t *tc, int i, size_t j) {
    char f[160], q[48];
    const json_t *fn = json_object_get(tc, "function");
    const char *type = json_string_value(json_object_get(tc, "type"));
    const json_t *name = json_object_get(fn, "name"), *args = json_object_get(fn, "arguments");
    const char *what = NULL, *sub = "";
    if (!json_is_object(tc)) what = "a tool call must be an object";
    else if (!json_string_length(json_object_get(tc, "id"))) sub = ".id", what = "id must be a non-empty string";
    else if (!type || strcmp(type, "function")) sub = ".type", what = "type must be \"function\"";
    else if (!json_is_object(fn)) sub = ".function", what = "function must be an object";
    else if (!json_string_length(name)) sub = ".function.name", what = "name must be a non-empty string";
    else if (!json_is_string(args)) sub = ".function.arguments", what = "arguments must be a string (JSON text)";
    snprintf(f, sizeof f, "messages[%d].tool_calls[%zu]%s", i, j, sub);
    if (what) {
        problem(c, CHAT_P_INVALID_TOOL_CALLS, i, f, "%s", what);
        return false;
    }
    if (!tool_declared(c, json_string_value(name))) {
        problem(c, CHAT_P_INVALID_TOOL_CALLS, i, f, "function '%s' is not one of the example's tools",
                quote(json_string_value(name), q, sizeof q));
        return false;
    }
    return true;
}

static void check_tool_calls(vctx *c, const json_t *m, int i, chat_message *out) {
    const json_t *v = json_object_get(m, "tool_calls");
    if (out->role == CHAT_ASSISTANT) c->last_calls = NULL;
    if (!v || json_is_null(v)) return;
    char f[128];
    snprintf(f, sizeof f, "messages[%d].tool_calls", i);
    if (out->role != CHAT_ASSISTANT) {
        problem(c, CHAT_P_INVALID_TOOL_CALLS, i, f, "tool_calls is only allowed on assistant messages");
        return;
    }
    size_t n = json_array_size(v);
    if (!json_is_array(v) || n == 0) {
        problem(c, CHAT_P_INVALID_TOOL_CALLS, i, f, "tool_calls must be a non-empty array");
        return;
    }
    if (c->parallel == 0 && n > 1)
        problem(c, CHAT_P_INVALID_TOOL_CALLS, i, f,
                "%zu tool calls in one message, but parallel_tool_calls is false", n);
    bool good = true;
    for (size_t j = 0; j < n; j++) good = check_one_call(c, json_array_get(v, j), i, j) && good;
    if (!good) return;
    c->last_calls = v;
    out->tool_calls = calloc(n, sizeof *out->tool_calls);
    if (!out->tool_calls) {
        c->ds->oom = true, c->ok = false;
        return;
    }
    out->n_tool_calls = (int)n;
    for (size_t j = 0; j < n; j++) {
        const json_t *tc = json_array_get(v, j), *fn = json_object_get(tc, "function");
        out->tool_calls[j].id = dup_str(c, json_string_value(json_object_get(tc, "id")));
        out->tool_calls[j].name = dup_str(c, json_string_value(json_object_get(fn, "name")));
        out->tool_calls[j].arguments = dup_str(c, json_string_value(json_object_get(fn, "arguments")));
    }
}

static bool call_id_known(const json_t *calls, const char *id) {
    for (size_t j = 0; j < json_array_size(calls); j++) {
        const char *k = json_string_value(json_object_get(json_array_get(calls, j), "id"));
        if (k && !strcmp(k, id)) return true;
    }
    return false;
}

static void check_tool_call_id(vctx *c, const json_t *m, int i, chat_message *out) {
    char f[128], q[48];
    snprintf(f, sizeof f, "messages[%d].tool_call_id", i);
    const json_t *v = json_object_get(m, "tool_call_id");
    if (out->role != CHAT_TOOL) {
        if (v && !json_is_null(v))
            problem(c, CHAT_P_INVALID_TOOL_CALLS, i, f, "tool_call_id is only allowed on tool messages");
        return;
    }
    if (!v) {
        problem(c, CHAT_P_MESSAGE_MISSING_KEY, i, f, "missing key 'tool_call_id'");
    } else if (!json_is_string(v)) {
        problem(c, CHAT_P_INVALID_TYPE, i, f, "tool_call_id is %s, not a string", ds_json_type(v));
    } else if (!c->last_calls) {
        problem(c, CHAT_P_INVALID_TOOL_CALLS, i, f,
                "a tool message must follow an assistant message with tool_calls");
    } else if (!call_id_known(c->last_calls, json_string_value(v))) {
        problem(c, CHAT_P_INVALID_TOOL_CALLS, i, f,
                "'%s' does not match a tool call of the preceding assistant message",
                quote(json_string_value(v), q, sizeof q));
    } else {
        out->tool_call_id = dup_str(c, json_string_value(v));
    }
}

static void check_message(vctx *c, const json_t *m, int i, chat_message *out) {
    char f[128];
    snprintf(f, sizeof f, "messages[%d]", i);
    if (!json_is_object(m)) {
        problem(c, CHAT_P_DATA_TYPE, i, f, "a message is %s, not an object", ds_json_type(m));
        out->content = dup_str(c, "");
        return;
    }
    check_keys(c, m, i);
    bool role_ok = check_role(c, m, i, out);
    const json_t *calls = json_object_get(m, "tool_calls");
    check_content(c, m, i, calls && !json_is_null(calls), out);
    if (!role_ok) return;
    check_name_weight(c, m, i, out);
    check_tool_calls(c, m, i, out);
    check_tool_call_id(c, m, i, out);
}

/* ---- whole example ----------------------------------------------------- */

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static const json_t *get_messages(vctx *c, const json_t *obj) {
    if (!json_is_object(obj)) {
        problem(c, CHAT_P_DATA_TYPE, -1, "", "the line is %s, not a JSON object", ds_json_type(obj));
        return NULL;
    }
    const json_t *msgs = json_object_get(obj, "messages");
    if (!msgs)
        problem(c, CHAT_P_MISSING_MESSAGES_LIST, -1, "messages", "no \"messages\" key");
    else if (!json_is_array(msgs))
        problem(c, CHAT_P_MISSING_MESSAGES_LIST, -1, "messages", "\"messages\" is %s, not an array",
                ds_json_type(msgs));
    else if (json_array_size(msgs) == 0)
        problem(c, CHAT_P_MISSING_MESSAGES_LIST, -1, "messages", "\"messages\" is empty");
    else
        return msgs;
    return NULL;
}

bool ds_example_convert(const json_t *obj, long line, const ds_rules *rules, chat_dataset *ds,
                        chat_example *ex) {
    vctx c = {.ds = ds, .line = line, .rules = rules, .ok = true, .parallel = -1};
    memset(ex, 0, sizeof *ex);
    ex->line = line;
    const json_t *msgs = get_messages(&c, obj);
    if (!msgs) return false;
    check_tools(&c, obj, ex);
    size_t n = json_array_size(msgs);
    ex->msgs = calloc(n, sizeof *ex->msgs);
    if (!ex->msgs) {
        ds->oom = true;
        return false;
    }
    ex->n_msgs = (int)n;
    bool has_assistant = false;
    for (size_t i = 0; i < n; i++) {
        check_message(&c, json_array_get(msgs, i), (int)i, &ex->msgs[i]);
        has_assistant = has_assistant || ex->msgs[i].role == CHAT_ASSISTANT;
    }
    if (c.ok && rules->require_assistant && !has_assistant)
        problem(&c, CHAT_P_EXAMPLE_MISSING_ASSISTANT_MESSAGE, -1, "messages",
                "the example has no assistant message");
    char *canon = c.ok ? json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (c.ok && !canon) ds->oom = true, c.ok = false;
    if (canon) ex->hash = fnv1a(canon);
    free(canon);
    if (!c.ok) chat_example_free(ex);
    return c.ok;
}

bool chat_example_from_json(const json_t *obj, long line, chat_dataset *ds, chat_example *ex) {
    static const ds_rules file_rules = {.require_assistant = true, .ignore_unknown_keys = false};
    return ds_example_convert(obj, line, &file_rules, ds, ex);
}

hn_status chat_example_from_request(const json_t *messages, const json_t *tools,
                                    chat_example *ex, hn_err *err) {
    static const ds_rules req_rules = {.require_assistant = false, .ignore_unknown_keys = true};
    chat_dataset_opts o;
    chat_dataset_opts_default(&o);
    o.max_problems_kept = 1;
    chat_dataset ds;
    chat_dataset_init(&ds, &o);
    json_t *obj = json_object();
    if (!obj) return hn_errf(err, HN_ENOMEM, "out of memory");
    if (messages) json_object_set(obj, "messages", (json_t *)messages);
    if (tools) json_object_set(obj, "tools", (json_t *)tools);
    bool ok = ds_example_convert(obj, 0, &req_rules, &ds, ex);
    json_decref(obj);
    hn_status s = HN_OK;
    if (ds.oom)
        s = hn_errf(err, HN_ENOMEM, "out of memory");
    else if (!ok)
        s = hn_errf(err, HN_EINVAL, "%s", ds.n_problems ? ds.problems[0].text : "invalid messages");
    chat_dataset_free(&ds);
    return s;
}
