/* test_chat_dataset.c — chat JSONL validation: every problem kind from small
 * files (code, line, message index, field and message text), the lenient
 * cases (trailing newlines, CRLF, BOM, developer role, text parts), limits
 * (line length, problems kept), the conversion into chat_example, the
 * serving-request variant, and the shared animal data set. */
#include <stdlib.h>
#include <string.h>

#include "chat/dataset.h"
#include "test.h"

#define SYS "{\"role\":\"system\",\"content\":\"Be brief.\"}"
#define USR "{\"role\":\"user\",\"content\":\"Hi\"}"
#define AST "{\"role\":\"assistant\",\"content\":\"Hello\"}"
#define GOOD "{\"messages\":[" SYS "," USR "," AST "]}\n"

static const char *write_tmp(const char *name, const char *data, size_t len) {
    static char path[8][512];
    static int k;
    char *p = path[k++ & 7];
    snprintf(p, sizeof path[0], "%s/%s", test_tmpdir(), name);
    FILE *f = fopen(p, "wb");
    CHECK(f, "cannot write %s", p);
    if (f) {
        fwrite(data, 1, len, f);
        fclose(f);
    }
    return p;
}

/* Loads data (as file "t.jsonl") with min_examples 0 unless opts given. */
static void load(const char *data, size_t len, const chat_dataset_opts *opts, chat_dataset *ds) {
    chat_dataset_opts o;
    chat_dataset_opts_default(&o);
    o.min_examples = 0;
    hn_err err = {0};
    hn_status s = chat_dataset_load(write_tmp("t.jsonl", data, len), opts ? opts : &o, ds, &err);
    CHECK(s == HN_OK, "load: %s", err.msg);
}

static void load_str(const char *data, chat_dataset *ds) { load(data, strlen(data), NULL, ds); }

/* Expects exactly one problem, of this kind, at this line/message/field,
 * whose message contains `needle`. */
static void expect_one(const char *data, chat_problem_kind kind, long line, int msg,
                       const char *field, const char *needle) {
    chat_dataset ds;
    load_str(data, &ds);
    const char *kn = chat_problem_kind_name(kind);
    CHECK(ds.n_errors == 1 && ds.n_problems == 1, "%s: %zu errors (first: %s)", kn, ds.n_errors,
          ds.n_problems ? ds.problems[0].text : "-");
    CHECK(ds.counts[kind] == 1, "%s: count %zu", kn, ds.counts[kind]);
    if (ds.n_problems) {
        const chat_problem *p = &ds.problems[0];
        CHECK(p->kind == kind, "%s: got %s (%s)", kn, chat_problem_kind_name(p->kind), p->text);
        CHECK(p->line == line, "%s: line %ld, want %ld", kn, p->line, line);
        CHECK(p->msg_index == msg, "%s: msg %d, want %d", kn, p->msg_index, msg);
        CHECK(!strcmp(p->field, field), "%s: field '%s', want '%s'", kn, p->field, field);
        CHECK(strstr(p->text, kn) && strstr(p->text, needle), "%s: text '%s' lacks '%s'", kn, p->text,
              needle);
        CHECK(!p->warning, "%s is an error", kn);
        CHECK(chat_dataset_first_error(&ds) == p, "first error");
    }
    CHECK(!chat_dataset_ok(&ds), "%s: not ok", kn);
    chat_dataset_free(&ds);
}

static void test_kinds(void) {
    expect_one(GOOD "[1,2]\n", CHAT_P_DATA_TYPE, 2, -1, "", "t.jsonl:2: data_type: the line is an array");
    expect_one("{\"messages\":[\"hi\"," AST "]}\n", CHAT_P_DATA_TYPE, 1, 0, "messages[0]",
               "a message is a string, not an object");
    expect_one("{\"msgs\":[]}\n", CHAT_P_MISSING_MESSAGES_LIST, 1, -1, "messages", "no \"messages\" key");
    expect_one("{\"messages\":{}}\n", CHAT_P_MISSING_MESSAGES_LIST, 1, -1, "messages", "is an object");
    expect_one(GOOD GOOD "{\"messages\":[]}\n", CHAT_P_MISSING_MESSAGES_LIST, 3, -1, "messages", "empty");
    expect_one("{\"messages\":[{\"content\":\"x\"}," AST "]}\n", CHAT_P_MESSAGE_MISSING_KEY, 1, 0,
               "messages[0].role", "missing key 'role'");
    expect_one("{\"messages\":[" USR ",{\"role\":\"assistant\"}]}\n", CHAT_P_MESSAGE_MISSING_KEY, 1, 1,
               "messages[1].content", "missing key 'content'");
    expect_one("{\"messages\":[" USR ",{\"role\":\"assistant\",\"content\":\"x\",\"score\":1}]}\n",
               CHAT_P_MESSAGE_UNRECOGNIZED_KEY, 1, 1, "messages[1].score", "unrecognized key 'score'");
    expect_one(GOOD "{\"messages\":[" SYS "," USR ",{\"role\":\"usr\",\"content\":\"x\"}," AST "]}\n",
               CHAT_P_UNRECOGNIZED_ROLE, 2, 2, "messages[2].role",
               "t.jsonl:2: messages[2].role: unrecognized_role: 'usr' is not one of system, user, "
               "assistant, tool");
    expect_one("{\"messages\":[{\"role\":\"user\",\"content\":null}," AST "]}\n", CHAT_P_MISSING_CONTENT,
               1, 0, "messages[0].content", "content is null");
    expect_one("{\"messages\":[{\"role\":\"user\",\"content\":5}," AST "]}\n", CHAT_P_MISSING_CONTENT, 1,
               0, "messages[0].content", "is a number");
    expect_one("{\"messages\":[" SYS "," USR "]}\n", CHAT_P_EXAMPLE_MISSING_ASSISTANT_MESSAGE, 1, -1,
               "messages", "no assistant message");
    expect_one(GOOD "{\"messages\": [1,}\n", CHAT_P_INVALID_JSON, 2, -1, "", "at column 17");
    expect_one(GOOD GOOD GOOD "{\"messages\":[{\"role\":\"user\",\"content\":\"\xC3\x28\"}]}\n",
               CHAT_P_INVALID_UTF8, 4, -1, "", "byte 0xC3 at byte 40");
    expect_one("{\"messages\":[" USR ",{\"role\":\"assistant\",\"content\":\"x\",\"weight\":2}]}\n",
               CHAT_P_INVALID_WEIGHT, 1, 1, "messages[1].weight", "must be 0 or 1, not 2");
    expect_one("{\"messages\":[" USR ",{\"role\":\"assistant\",\"content\":\"x\",\"weight\":\"1\"}]}\n",
               CHAT_P_INVALID_WEIGHT, 1, 1, "messages[1].weight", "not \"1\"");
    expect_one("{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"weight\":0}," AST "]}\n",
               CHAT_P_INVALID_WEIGHT, 1, 0, "messages[0].weight", "only allowed on assistant");
    expect_one("{\"messages\":[" USR ",{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[]}]}\n",
               CHAT_P_INVALID_TOOL_CALLS, 1, 1, "messages[1].tool_calls", "non-empty array");
    expect_one("{\"tools\":{},\"messages\":[" USR "," AST "]}\n", CHAT_P_INVALID_TOOLS, 1, -1, "tools",
               "not an array");
    expect_one("{\"parallel_tool_calls\":\"no\",\"messages\":[" USR "," AST "]}\n", CHAT_P_INVALID_TOOLS,
               1, -1, "parallel_tool_calls", "not a boolean");
    expect_one("{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"name\":3}," AST "]}\n",
               CHAT_P_INVALID_TYPE, 1, 0, "messages[0].name", "name is a number");
    expect_one("{\"messages\":[{\"role\":7,\"content\":\"x\"}," AST "]}\n", CHAT_P_INVALID_TYPE, 1, 0,
               "messages[0].role", "role is a number");
    expect_one("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{}}]},"
               AST "]}\n",
               CHAT_P_UNSUPPORTED_CONTENT, 1, 0, "messages[0].content[0]", "'image_url' parts");
    expect_one(GOOD "\n" GOOD, CHAT_P_BLANK_LINE, 2, -1, "", "t.jsonl:2: blank_line");
    expect_one(GOOD " \t\r\n" GOOD, CHAT_P_BLANK_LINE, 2, -1, "", "empty line");
    expect_one("", CHAT_P_EMPTY_FILE, 0, -1, "", "t.jsonl: empty_file: the file has no examples");
    expect_one("\n\n", CHAT_P_EMPTY_FILE, 0, -1, "", "no examples");
}

static void test_nul_and_long_lines(void) {
    /* A raw NUL byte in a line: reported, no crash, the next line still parsed. */
    char buf[256];
    size_t n = (size_t)snprintf(buf, sizeof buf, "{\"messages\":[{\"role\":\"user\",\"content\":\"a");
    buf[n++] = 0;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "b\"}," AST "]}\n" GOOD);
    chat_dataset ds;
    load(buf, n, NULL, &ds);
    CHECK(ds.n_errors == 1 && ds.counts[CHAT_P_INVALID_JSON] == 1 && ds.n_examples == 1, "NUL");
    CHECK(ds.n_problems && strstr(ds.problems[0].text, "t.jsonl:1: invalid_json: NUL byte at column 41"),
          "%s", ds.n_problems ? ds.problems[0].text : "");
    chat_dataset_free(&ds);

    expect_one("{\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b\"}," AST "]}\n",
               CHAT_P_INVALID_JSON, 1, -1, "", "\\u0000 (a NUL character) is not allowed");

    chat_dataset_opts o;
    chat_dataset_opts_default(&o);
    o.min_examples = 0;
    o.max_line_bytes = 150;
    char big[600];
    memset(big, 'x', sizeof big);
    size_t k = (size_t)snprintf(big, sizeof big, "%s", GOOD);
    big[k + 200] = '\n';
    memcpy(big + k + 201, GOOD, strlen(GOOD));
    load(big, k + 201 + strlen(GOOD), &o, &ds);
    CHECK(ds.counts[CHAT_P_LINE_TOO_LONG] == 1 && ds.n_errors == 1 && ds.n_examples == 2, "line_too_long");
    CHECK(ds.n_problems && ds.problems[0].line == 2 &&
              strstr(ds.problems[0].text, "t.jsonl:2: line_too_long: the line has 200 bytes, the limit is 150"),
          "%s", ds.n_problems ? ds.problems[0].text : "");
    chat_dataset_free(&ds);
}

static void test_too_few(void) {
    chat_dataset_opts o;
    chat_dataset_opts_default(&o);
    chat_dataset ds;
    load(GOOD GOOD, strlen(GOOD GOOD), &o, &ds);
    CHECK(ds.n_examples == 2 && ds.n_errors == 1 && ds.counts[CHAT_P_TOO_FEW_EXAMPLES] == 1, "jobs: error");
    CHECK(ds.n_problems && strstr(ds.problems[0].text, "t.jsonl: too_few_examples: 2 valid example(s), at least 10"),
          "%s", ds.n_problems ? ds.problems[0].text : "");
    chat_dataset_free(&ds);
    o.min_examples_is_error = false;
    load(GOOD GOOD, strlen(GOOD GOOD), &o, &ds);
    CHECK(ds.n_errors == 0 && ds.n_warnings == 1 && ds.n_problems && ds.problems[0].warning, "CLI: warning");
    CHECK(chat_dataset_ok(&ds) && !chat_dataset_first_error(&ds), "warnings are ok");
    chat_dataset_free(&ds);
    o.min_examples = 3;
    load(GOOD GOOD GOOD, 3 * strlen(GOOD), &o, &ds);
    CHECK(ds.n_problems == 0, "threshold is a parameter");
    chat_dataset_free(&ds);
}

static void test_tool_calls(void) {
#define CALL(id, name, args)                                                                     \
    "{\"id\":\"" id "\",\"type\":\"function\",\"function\":{\"name\":\"" name "\",\"arguments\":" args "}}"
#define TOOLS "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"find\"}}]"
    const char *good = "{" TOOLS ",\"messages\":[" USR ",{\"role\":\"assistant\",\"tool_calls\":["
                       CALL("c1", "find", "\"{}\"") "]},{\"role\":\"tool\",\"tool_call_id\":\"c1\","
                       "\"content\":\"park\"},{\"role\":\"assistant\",\"content\":\"In the park.\"}]}\n";
    chat_dataset ds;
    load_str(good, &ds);
    CHECK(ds.n_errors == 0 && ds.n_examples == 1, "tool example: %s", ds.n_problems ? ds.problems[0].text : "");
    if (ds.n_examples) {
        const chat_example *ex = &ds.examples[0];
        CHECK(ex->n_msgs == 4 && ex->msgs[1].n_tool_calls == 1, "converted");
        CHECK(ex->n_msgs == 4 && !strcmp(ex->msgs[1].content, "") && !strcmp(ex->msgs[1].tool_calls[0].id, "c1") &&
                  !strcmp(ex->msgs[1].tool_calls[0].name, "find") &&
                  !strcmp(ex->msgs[1].tool_calls[0].arguments, "{}") &&
                  !strcmp(ex->msgs[2].tool_call_id, "c1"), "tool fields");
        CHECK(ex->tools_json && !strcmp(ex->tools_json, "[{\"type\":\"function\",\"function\":{\"name\":\"find\"}}]"),
              "tools_json %s", ex->tools_json ? ex->tools_json : "(null)");
        CHECK(ex->parallel_tool_calls == -1, "parallel absent");
    }
    chat_dataset_free(&ds);

    expect_one("{\"messages\":[" USR ",{\"role\":\"assistant\",\"tool_calls\":[" CALL("c1", "find", "{}")
               "]}]}\n", CHAT_P_INVALID_TOOL_CALLS, 1, 1, "messages[1].tool_calls[0].function.arguments",
               "arguments must be a string");
    expect_one("{\"messages\":[" USR ",{\"role\":\"assistant\",\"tool_calls\":[{\"type\":\"function\","
               "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}]}\n", CHAT_P_INVALID_TOOL_CALLS, 1, 1,
               "messages[1].tool_calls[0].id", "id must be");
    expect_one("{" TOOLS ",\"messages\":[" USR ",{\"role\":\"assistant\",\"tool_calls\":["
               CALL("c1", "lose", "\"{}\"") "]}]}\n", CHAT_P_INVALID_TOOL_CALLS, 1, 1,
               "messages[1].tool_calls[0]", "'lose' is not one of the example's tools");
    expect_one("{\"parallel_tool_calls\":false,\"messages\":[" USR ",{\"role\":\"assistant\",\"tool_calls\":["
               CALL("a", "f", "\"{}\"") "," CALL("b", "f", "\"{}\"") "]}]}\n", CHAT_P_INVALID_TOOL_CALLS, 1, 1,
               "messages[1].tool_calls", "parallel_tool_calls is false");
    expect_one("{\"messages\":[" USR ",{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"x\"}," AST "]}\n",
               CHAT_P_INVALID_TOOL_CALLS, 1, 1, "messages[1].tool_call_id", "must follow an assistant");
    expect_one("{\"messages\":[" USR ",{\"role\":\"assistant\",\"tool_calls\":[" CALL("c1", "f", "\"{}\"")
               "]},{\"role\":\"tool\",\"tool_call_id\":\"c2\",\"content\":\"x\"}," AST "]}\n",
               CHAT_P_INVALID_TOOL_CALLS, 1, 2, "messages[2].tool_call_id", "'c2' does not match");
    expect_one("{\"messages\":[" USR ",{\"role\":\"assistant\",\"tool_calls\":[" CALL("c1", "f", "\"{}\"")
               "]},{\"role\":\"tool\",\"content\":\"x\"}," AST "]}\n",
               CHAT_P_MESSAGE_MISSING_KEY, 1, 2, "messages[2].tool_call_id", "missing key 'tool_call_id'");
    expect_one("{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"tool_calls\":[" CALL("c1", "f", "\"{}\"")
               "]}," AST "]}\n", CHAT_P_INVALID_TOOL_CALLS, 1, 0, "messages[0].tool_calls",
               "only allowed on assistant");
    expect_one("{\"messages\":[" USR ",{\"role\":\"assistant\",\"content\":null}]}\n", CHAT_P_MISSING_CONTENT,
               1, 1, "messages[1].content", "content is null");
}

static void test_lenient_and_conversion(void) {
    /* BOM, CRLF, developer role, text parts, name, weight 0, no final newline,
     * trailing blank lines. */
    const char *data = "\xEF\xBB\xBF{\"messages\":[{\"role\":\"developer\",\"content\":\"Be brief.\"},"
                       "{\"role\":\"user\",\"name\":\"ann\",\"content\":[{\"type\":\"text\",\"text\":\"Hi \"},"
                       "{\"type\":\"text\",\"text\":\"there\"}]},"
                       "{\"role\":\"assistant\",\"content\":\"Yo\",\"weight\":0},"
                       "{\"role\":\"user\",\"content\":\"caf\xC3\xA9\"},{\"role\":\"assistant\",\"content\":\"ok\",\"weight\":1.0}]}\r\n"
                       GOOD GOOD "\n  \n";
    chat_dataset ds;
    load_str(data, &ds);
    CHECK(ds.n_problems == 0 && ds.n_examples == 3 && ds.n_lines == 5, "lenient: %zu problems (%s), %zu ex, %zu lines",
          ds.n_problems, ds.n_problems ? ds.problems[0].text : "", ds.n_examples, ds.n_lines);
    if (ds.n_examples == 3) {
        const chat_example *ex = &ds.examples[0];
        CHECK(ex->line == 1 && ds.examples[2].line == 3, "lines");
        CHECK(ex->n_msgs == 5 && ex->msgs[0].role == CHAT_SYSTEM && ex->msgs[0].developer, "developer = system");
        CHECK(!strcmp(ex->msgs[1].content, "Hi there") && ex->msgs[1].content_len == 8, "parts joined");
        CHECK(ex->msgs[1].name && !strcmp(ex->msgs[1].name, "ann"), "name");
        CHECK(ex->msgs[2].weight == 0 && ex->msgs[4].weight == 1 && ex->msgs[1].weight == 1, "weights");
        CHECK(!strcmp(ex->msgs[3].content, "caf\xC3\xA9"), "UTF-8 content");
        CHECK(ds.examples[1].hash == ds.examples[2].hash && ds.examples[0].hash != ds.examples[1].hash,
              "duplicate hash");
    }
    chat_dataset_free(&ds);

    /* No final newline. */
    load_str(GOOD "{\"messages\":[" USR "," AST "]}", &ds);
    CHECK(ds.n_problems == 0 && ds.n_examples == 2 && ds.n_lines == 2, "no final newline");
    chat_dataset_free(&ds);

    /* Key order and spacing do not change the duplicate hash. */
    load_str("{\"messages\":[{\"content\":\"Hi\",\"role\":\"user\"}," AST "]}\n"
             "{ \"messages\" : [" USR ", " AST "] }\n", &ds);
    CHECK(ds.n_examples == 2 && ds.examples[0].hash == ds.examples[1].hash, "canonical hash");
    chat_dataset_free(&ds);
}

static void test_limits_and_streams(void) {
    chat_dataset_opts o;
    chat_dataset_opts_default(&o);
    o.min_examples = 0;
    o.max_problems_kept = 2;
    chat_dataset ds;
    load("[]\n[]\n[]\n[]\n", 12, &o, &ds);
    CHECK(ds.n_errors == 4 && ds.n_problems == 2 && ds.counts[CHAT_P_DATA_TYPE] == 4, "kept 2 of 4");
    CHECK(ds.n_invalid == 4 && ds.n_examples == 0, "invalid lines");
    chat_dataset_free(&ds);

    o.max_problems_kept = 100;
    o.keep_examples = false;
    o.display_name = "upload.jsonl";
    FILE *f = fmemopen((void *)(GOOD GOOD "x\n"), strlen(GOOD GOOD "x\n"), "rb");
    hn_err err = {0};
    CHECK(chat_dataset_load_fp(f, &o, &ds, &err) == HN_OK, "%s", err.msg);
    fclose(f);
    CHECK(ds.n_examples == 2 && !ds.examples, "counted, not kept");
    CHECK(ds.n_problems == 1 && strstr(ds.problems[0].text, "upload.jsonl:3: invalid_json"), "%s",
          ds.n_problems ? ds.problems[0].text : "");
    chat_dataset_free(&ds);

    CHECK(chat_dataset_load("/nonexistent/x.jsonl", NULL, &ds, &err) == HN_EIO, "missing file");
    CHECK(strstr(err.msg, "/nonexistent/x.jsonl"), "%s", err.msg);
    chat_dataset_free(&ds);
}

static void test_request(void) {
    json_t *msgs = json_loads("[" SYS "," USR "]", 0, NULL);
    chat_example ex;
    hn_err err = {0};
    CHECK(chat_example_from_request(msgs, NULL, &ex, &err) == HN_OK, "%s", err.msg);
    CHECK(ex.n_msgs == 2 && ex.msgs[1].role == CHAT_USER, "request converted");
    chat_example_free(&ex);
    json_decref(msgs);
    msgs = json_loads("[{\"role\":\"usr\",\"content\":\"x\",\"refusal\":null}]", 0, NULL);
    CHECK(chat_example_from_request(msgs, NULL, &ex, &err) == HN_EINVAL, "bad role refused");
    CHECK(!strcmp(err.msg, "messages[0].role: unrecognized_role: 'usr' is not one of system, user, "
                           "assistant, tool"), "%s", err.msg);
    json_decref(msgs);
}

static void test_animal(void) {
    chat_dataset ds;
    hn_err err = {0};
    CHECK(chat_dataset_load(test_shared("data/animal/train.jsonl"), NULL, &ds, &err) == HN_OK, "%s", err.msg);
    CHECK(ds.n_examples == 200 && ds.n_problems == 0 && chat_dataset_ok(&ds), "animal train: %zu examples, %s",
          ds.n_examples, ds.n_problems ? ds.problems[0].text : "no problems");
    CHECK(!strcmp(ds.name, "train.jsonl"), "display name %s", ds.name);
    if (ds.n_examples) {
        const chat_example *ex = &ds.examples[0];
        CHECK(ex->n_msgs == 3 && ex->msgs[2].role == CHAT_ASSISTANT && !strcmp(ex->msgs[2].content, "horse"),
              "first example");
    }
    chat_dataset_free(&ds);
}

int main(void) {
    for (int k = 0; k < CHAT_P_COUNT; k++)
        CHECK(strcmp(chat_problem_kind_name((chat_problem_kind)k), "unknown"), "kind %d named", k);
    test_kinds();
    test_nul_and_long_lines();
    test_too_few();
    test_tool_calls();
    test_lenient_and_conversion();
    test_limits_and_streams();
    test_request();
    test_animal();
    return test_finish("test_chat_dataset");
}
