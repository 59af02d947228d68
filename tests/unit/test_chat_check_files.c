/* test_chat_check_files.c — `hone data check --json` (HONE_BIN) on the
 * hand-written files in tests/data: one file per problem kind in
 * tests/data/bad/ must report exactly that kind, once, at the expected line,
 * message index and field; tests/data/good/valid.jsonl must report the
 * statistics computed here independently — messages, system/user presence and
 * duplicates by parsing the file with jansson, tokens and trained tokens by
 * rendering hone's default template (docs/data.md) with tok_encode_spans
 * directly. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "model/model.h"
#include "test.h"
#include "tokenizer/tok.h"

static char bin[4096], data_dir[4096], out_path[600];

/* tests/data, found from this source file's path. */
static void find_data_dir(void) {
    snprintf(data_dir, sizeof data_dir, "%s", __FILE__);
    for (int k = 0; k < 2; k++) {
        char *slash = strrchr(data_dir, '/');
        if (slash) *slash = 0;
    }
    strncat(data_dir, "/data", sizeof data_dir - strlen(data_dir) - 1);
}

/* Runs `hone data check PATH --json --no-estimate`; returns the parsed report
 * (NULL on failure) and the exit code. */
static json_t *check_json(const char *path, int *rc) {
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' data check '%s' --json --no-estimate > '%s' 2>&1", bin, path,
             out_path);
    int st = system(cmd);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    json_error_t je;
    json_t *j = json_load_file(out_path, 0, &je);
    if (!j) {
        char *text = test_read(out_path, NULL);
        fprintf(stderr, "%s: not JSON (%s):\n%s\n", path, je.text, text);
        free(text);
    }
    return j;
}

typedef struct bad_case {
    const char *file, *kind;
    long line;       /* 0 = whole-file problem (JSON null) */
    int msg_index;   /* -1 = JSON null */
    const char *field; /* NULL = JSON null */
    const char *level;
} bad_case;

static const bad_case bad_cases[] = {
    {"data_type.jsonl", "data_type", 3, -1, NULL, "error"},
    {"data_type_message.jsonl", "data_type", 7, 1, "messages[1]", "error"},
    {"missing_messages_list.jsonl", "missing_messages_list", 5, -1, "messages", "error"},
    {"missing_messages_list_empty.jsonl", "missing_messages_list", 2, -1, "messages", "error"},
    {"message_missing_key.jsonl", "message_missing_key", 4, 1, "messages[1].role", "error"},
    {"message_unrecognized_key.jsonl", "message_unrecognized_key", 6, 2, "messages[2].confidence", "error"},
    {"unrecognized_role.jsonl", "unrecognized_role", 8, 1, "messages[1].role", "error"},
    {"missing_content.jsonl", "missing_content", 9, 1, "messages[1].content", "error"},
    {"example_missing_assistant_message.jsonl", "example_missing_assistant_message", 11, -1,
     "messages", "error"},
    {"invalid_json.jsonl", "invalid_json", 2, -1, NULL, "error"},
    {"invalid_utf8.jsonl", "invalid_utf8", 5, -1, NULL, "error"},
    {"invalid_weight.jsonl", "invalid_weight", 10, 2, "messages[2].weight", "error"},
    {"invalid_weight_user.jsonl", "invalid_weight", 3, 1, "messages[1].weight", "error"},
    {"invalid_tool_calls.jsonl", "invalid_tool_calls", 5, 2, "messages[2].tool_calls", "error"},
    {"invalid_tool_call_id.jsonl", "invalid_tool_calls", 2, 2, "messages[2].tool_call_id", "error"},
    {"invalid_tools.jsonl", "invalid_tools", 4, -1, "tools", "error"},
    {"invalid_type.jsonl", "invalid_type", 6, 1, "messages[1].name", "error"},
    {"unsupported_content.jsonl", "unsupported_content", 7, 1, "messages[1].content[0]", "error"},
    {"blank_line.jsonl", "blank_line", 5, -1, NULL, "error"},
    {"empty_file.jsonl", "empty_file", 0, -1, NULL, "error"},
    {"too_few_examples.jsonl", "too_few_examples", 0, -1, NULL, "warning"},
};

static void check_bad(const bad_case *c) {
    char path[4400], prefix[600];
    snprintf(path, sizeof path, "%s/bad/%s", data_dir, c->file);
    int rc;
    json_t *j = check_json(path, &rc);
    CHECK(j != NULL, "%s", c->file);
    if (!j) return;
    bool is_error = !strcmp(c->level, "error");
    CHECK(rc == (is_error ? 1 : 0), "%s: exit %d", c->file, rc);
    CHECK(json_is_true(json_object_get(j, "ok")) == !is_error, "%s: ok", c->file);
    json_t *pr = json_object_get(json_object_get(j, "train"), "problems");
    json_t *counts = json_object_get(pr, "counts"), *first = json_array_get(json_object_get(pr, "first"), 0);
    CHECK(json_object_size(counts) == 1 && json_integer_value(json_object_get(counts, c->kind)) == 1,
          "%s: counts are not {%s: 1}", c->file, c->kind);
    CHECK(json_array_size(json_object_get(pr, "first")) == 1, "%s: one problem", c->file);
    const char *code = json_string_value(json_object_get(first, "code"));
    CHECK(code && !strcmp(code, c->kind), "%s: code %s", c->file, code ? code : "(none)");
    json_t *line = json_object_get(first, "line"), *mi = json_object_get(first, "message_index"),
           *field = json_object_get(first, "field");
    CHECK(c->line ? json_integer_value(line) == c->line : json_is_null(line), "%s: line", c->file);
    CHECK(c->msg_index >= 0 ? json_integer_value(mi) == c->msg_index : json_is_null(mi),
          "%s: message_index", c->file);
    CHECK(c->field ? json_is_string(field) && !strcmp(json_string_value(field), c->field)
                   : json_is_null(field), "%s: field", c->file);
    const char *level = json_string_value(json_object_get(first, "level"));
    CHECK(level && !strcmp(level, c->level), "%s: level", c->file);
    /* the message starts with file:line: [field: ]kind: */
    if (c->line && c->field) snprintf(prefix, sizeof prefix, "%s:%ld: %s: %s: ", c->file, c->line, c->field, c->kind);
    else if (c->line) snprintf(prefix, sizeof prefix, "%s:%ld: %s: ", c->file, c->line, c->kind);
    else snprintf(prefix, sizeof prefix, "%s: %s: ", c->file, c->kind);
    const char *msg = json_string_value(json_object_get(first, "message"));
    CHECK(msg && !strncmp(msg, prefix, strlen(prefix)), "%s: message '%s', wanted '%s...'", c->file,
          msg ? msg : "", prefix);
    json_decref(j);
}

/* ---- the valid file, counted independently ---------------------------------- */

enum { MAX_EX = 64 };

typedef struct expect {
    int n;
    size_t msgs[MAX_EX], tokens[MAX_EX], trained[MAX_EX];
    size_t total_tokens, total_trained;
    long no_system[MAX_EX], no_user[MAX_EX], dups[MAX_EX];
    int n_no_system, n_no_user, n_dups;
} expect;

/* content as text: a string, or text parts joined. */
static void content_text(json_t *c, char *out, size_t cap) {
    out[0] = 0;
    if (json_is_string(c)) {
        snprintf(out, cap, "%s", json_string_value(c));
        return;
    }
    size_t i;
    json_t *part;
    json_array_foreach(c, i, part) strncat(out, json_string_value(json_object_get(part, "text")),
                                           cap - strlen(out) - 1);
}

typedef struct seg_state {
    const tok *tk;
    char text[8192];
    long answer_at; /* byte offset of " answer" in text, -1 if none */
    bool first;
    size_t tokens, trained;
} seg_state;

/* Encodes the pending segment (the BOS on the first one); counts trained
 * tokens (start offset inside the answer) when trained. */
static void flush(seg_state *s, bool eos, bool trained) {
    if (!s->text[0] && !eos) return;
    int32_t *ids = NULL;
    uint32_t *starts = NULL;
    size_t n = 0, cap = 0;
    hn_err err;
    if (tok_encode_spans(s->tk, s->text, strlen(s->text), s->first && tok_default_add_bos(s->tk),
                         &ids, &starts, &n, &cap, &err) != HN_OK)
        fprintf(stderr, "encode: %s\n", err.msg), exit(2);
    s->tokens += n + (eos ? 1 : 0);
    for (size_t i = 0; trained && s->answer_at >= 0 && i < n; i++)
        if ((long)starts[i] >= s->answer_at && !(s->first && i == 0)) s->trained++;
    if (eos && trained) s->trained++;
    free(ids);
    free(starts);
    s->first = false;
    s->text[0] = 0;
    s->answer_at = -1;
}

static void append(seg_state *s, const char *a, const char *b, const char *c) {
    size_t cap = sizeof s->text;
    strncat(s->text, a, cap - strlen(s->text) - 1);
    strncat(s->text, b, cap - strlen(s->text) - 1);
    strncat(s->text, c, cap - strlen(s->text) - 1);
}

/* hone-default rendering of one example (no tools): tokens and trained. */
static void render_count(const tok *tk, json_t *msgs, size_t *tokens, size_t *trained) {
    seg_state s = {.tk = tk, .answer_at = -1, .first = true};
    bool leading = true;
    size_t i;
    json_t *m;
    char content[4096];
    json_array_foreach(msgs, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        bool sys = !strcmp(role, "system") || !strcmp(role, "developer");
        content_text(json_object_get(m, "content"), content, sizeof content);
        if (sys && leading) append(&s, content, "\n", "");
        else if (sys) append(&s, "System: ", content, "\n");
        if (sys) continue;
        leading = false;
        if (!strcmp(role, "user")) append(&s, "User: ", content, "\n");
        if (strcmp(role, "assistant")) continue;
        append(&s, "Assistant:", "", "");
        if (content[0]) {
            s.answer_at = (long)strlen(s.text);
            append(&s, " ", content, "");
        }
        json_t *w = json_object_get(m, "weight");
        flush(&s, true, !w || json_number_value(w) != 0);
    }
    flush(&s, false, false);
    *tokens = s.tokens;
    *trained = s.trained;
}

static bool has_role(json_t *msgs, const char *a, const char *b) {
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        const char *r = json_string_value(json_object_get(m, "role"));
        if (!strcmp(r, a) || (b && !strcmp(r, b))) return true;
    }
    return false;
}

static void count_valid(const tok *tk, const char *path, expect *e) {
    memset(e, 0, sizeof *e);
    char *text = test_read(path, NULL), *save = NULL;
    char *canon[MAX_EX] = {0};
    for (char *l = strtok_r(text, "\n", &save); l && e->n < MAX_EX; l = strtok_r(NULL, "\n", &save)) {
        long line = e->n + 1; /* the file has no blank lines */
        json_t *j = json_loads(l, 0, NULL), *msgs = json_object_get(j, "messages");
        e->msgs[e->n] = json_array_size(msgs);
        if (!has_role(msgs, "system", "developer")) e->no_system[e->n_no_system++] = line;
        if (!has_role(msgs, "user", NULL)) e->no_user[e->n_no_user++] = line;
        canon[e->n] = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
        for (int k = 0; k < e->n; k++)
            if (!strcmp(canon[k], canon[e->n])) {
                e->dups[e->n_dups++] = line;
                break;
            }
        render_count(tk, msgs, &e->tokens[e->n], &e->trained[e->n]);
        e->total_tokens += e->tokens[e->n];
        e->total_trained += e->trained[e->n];
        e->n++;
        json_decref(j);
    }
    for (int k = 0; k < e->n; k++) free(canon[k]);
    free(text);
}

static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* min / median / p90 / max (nearest rank) and mean of v against the report's. */
static void check_dist(const char *what, size_t *v, int n, json_t *d) {
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (double)v[i];
    qsort(v, (size_t)n, sizeof *v, cmp_size);
    size_t med = v[(n + 1) / 2 - 1], p90 = v[(9 * n + 9) / 10 - 1];
    CHECK(json_integer_value(json_object_get(d, "min")) == (json_int_t)v[0] &&
              json_integer_value(json_object_get(d, "max")) == (json_int_t)v[n - 1] &&
              json_integer_value(json_object_get(d, "median")) == (json_int_t)med &&
              json_integer_value(json_object_get(d, "p90")) == (json_int_t)p90,
          "%s: min %zu median %zu p90 %zu max %zu", what, v[0], med, p90, v[n - 1]);
    double mean = json_real_value(json_object_get(d, "mean"));
    CHECK(mean > sum / n - 1e-9 && mean < sum / n + 1e-9, "%s: mean %g vs %g", what, mean, sum / n);
}

static void check_lines(const char *what, json_t *o, const long *lines, int n) {
    json_t *arr = json_object_get(o, "lines");
    bool ok = json_integer_value(json_object_get(o, "count")) == n && (int)json_array_size(arr) == n;
    for (int i = 0; ok && i < n; i++) ok = json_integer_value(json_array_get(arr, (size_t)i)) == lines[i];
    CHECK(ok, "%s: %d line(s) expected", what, n);
}

static void test_valid(void) {
    char path[4400];
    snprintf(path, sizeof path, "%s/good/valid.jsonl", data_dir);
    tok *tk = NULL;
    int ctx = 0;
    char *jinja = NULL;
    hn_err err;
    if (model_load_tokenizer(test_shared("models/stories260K/stories260K.gguf"), &tk, &ctx, &jinja,
                             &err) != HN_OK) {
        CHECK(0, "tokenizer: %s", err.msg);
        return;
    }
    expect e;
    count_valid(tk, path, &e);
    int rc;
    json_t *j = check_json(path, &rc), *tr = json_object_get(j, "train");
    CHECK(j && rc == 0 && json_is_true(json_object_get(j, "ok")), "valid file: exit %d", rc);
    CHECK(e.n == 12 && json_integer_value(json_object_get(tr, "examples")) == e.n, "examples");
    CHECK(json_integer_value(json_object_get(json_object_get(tr, "problems"), "errors")) == 0);
    check_dist("messages", e.msgs, e.n, json_object_get(tr, "messages_per_example"));
    check_dist("tokens", e.tokens, e.n, json_object_get(tr, "tokens_per_example"));
    check_dist("trained", e.trained, e.n, json_object_get(tr, "trained_tokens_per_example"));
    CHECK(json_integer_value(json_object_get(tr, "total_tokens")) == (json_int_t)e.total_tokens,
          "total tokens %zu", e.total_tokens);
    CHECK(json_integer_value(json_object_get(tr, "total_trained_tokens")) == (json_int_t)e.total_trained,
          "total trained %zu", e.total_trained);
    check_lines("missing_system", json_object_get(tr, "missing_system"), e.no_system, e.n_no_system);
    check_lines("missing_user", json_object_get(tr, "missing_user"), e.no_user, e.n_no_user);
    check_lines("duplicates", json_object_get(tr, "duplicates"), e.dups, e.n_dups);
    CHECK(e.n_no_system == 3 && e.n_no_user == 1 && e.n_dups == 1, "the file's own shape");
    json_t *plan = json_object_get(j, "plan");
    /* OpenAI's rule: 3 * 12 < 100 -> min(25, 100 / 12) = 8 epochs; batch 1 */
    CHECK(json_integer_value(json_object_get(plan, "n_epochs")) == 8 &&
              json_integer_value(json_object_get(plan, "batch_size")) == 1 &&
              json_integer_value(json_object_get(plan, "steps")) == 8 * 12 &&
              json_integer_value(json_object_get(plan, "trained_tokens")) == 8 * (json_int_t)e.total_tokens,
          "plan");
    printf("valid.jsonl: %d examples, %zu tokens, %zu trained (counted independently)\n", e.n,
           e.total_tokens, e.total_trained);
    json_decref(j);
    free(jinja);
    tok_free(tk);
}

int main(void) {
    const char *b = getenv("HONE_BIN");
    if (!b) {
        fprintf(stderr, "test_chat_check_files: HONE_BIN is not set\n");
        return 1;
    }
    snprintf(bin, sizeof bin, "%s", b);
    snprintf(out_path, sizeof out_path, "%s/out.json", test_tmpdir());
    find_data_dir();
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) check_bad(&bad_cases[i]);
    test_valid();
    return test_finish("test_chat_check_files");
}
