/* test_jinja.c — the Jinja interpreter: expressions, filters, tests, string
 * and dict methods, loops, scoping, namespace, macros, whitespace control,
 * raise_exception, small Llama-3-, Mistral- and Gemma-style templates (the
 * expected texts of the table were produced by Python Jinja2 3.1.6 set up as
 * transformers' apply_chat_template: trim_blocks, lstrip_blocks,
 * loopcontrols, its tojson and raise_exception), then errors: syntax errors
 * and unsupported constructs with line and column, and resource limits. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chat/jinja.h"
#include "test.h"

typedef struct jcase {
    const char *src, *vars, *want; /* want "ERROR: <kind>: <msg>": an error containing msg */
} jcase;

static const jcase cases[] = {
#include "jinja_cases.inc"
};

/* Renders src with vars (JSON text); returns the text (caller frees) or NULL
 * with err filled. */
static char *render_lim(const char *src, const char *vars, const jinja_limits *lim, hn_err *err) {
    jinja_tmpl *t;
    if (jinja_parse(src, strlen(src), &t, err) != HN_OK) return NULL;
    json_t *v = json_loads(vars ? vars : "{}", 0, NULL);
    hn_buf out;
    hn_buf_init(&out);
    hn_status st = jinja_render(t, v, lim, &out, err);
    json_decref(v);
    jinja_free(t);
    if (st != HN_OK) {
        hn_buf_free(&out);
        return NULL;
    }
    return out.data ? hn_buf_take(&out) : strdup("");
}

static char *render(const char *src, const char *vars, hn_err *err) {
    return render_lim(src, vars, NULL, err);
}

static void check_table(void) {
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        hn_err err = {0};
        char *got = render(cases[i].src, cases[i].vars, &err);
        const char *want = cases[i].want;
        if (!strncmp(want, "ERROR: ", 7)) {
            const char *msg = strchr(want + 7, ':') + 2;
            CHECK(!got && strstr(err.msg, msg), "case %zu: want error '%s', got %s", i, msg,
                  got ? got : err.msg);
        } else {
            CHECK(got && !strcmp(got, want), "case %zu:\n  got:  [%s]\n  want: [%s]", i,
                  got ? got : err.msg, want);
        }
        free(got);
    }
}

/* The error message of rendering src (which must fail). */
static void check_error(const char *src, const char *vars, hn_status code, const char *want) {
    hn_err err = {0};
    char *got = render(src, vars, &err);
    CHECK(!got, "'%s' should fail, rendered '%s'", src, got ? got : "");
    CHECK(err.code == code && strstr(err.msg, want), "'%s': want %s '%s', got %s '%s'", src,
          hn_status_name(code), want, hn_status_name(err.code), err.msg);
    free(got);
}

static void check_errors(void) {
    check_error("a\n\n  {{ x | wordwrap(3) }}", NULL, HN_EUNSUPPORTED,
                "chat template line 3, col 10: unsupported filter 'wordwrap'");
    check_error("{% if x is divisible %}{% endif %}", NULL, HN_EUNSUPPORTED, "line 1, col 12: unsupported test 'divisible'");
    check_error("{{ x.zfill(3) }}", NULL, HN_EUNSUPPORTED, "line 1, col 11: unsupported method 'zfill'");
    check_error("{{ lipsum(2) }}", NULL, HN_EUNSUPPORTED, "line 1, col 4: unsupported function 'lipsum'");
    check_error("{% include 'x.j2' %}", NULL, HN_EUNSUPPORTED, "line 1, col 4: unsupported statement '{% include %}'");
    check_error("x\n{% for m in messages %}\n{{ m }}", NULL, HN_EFORMAT, "line 2, col 4: unterminated '{% for %}' block");
    check_error("{% if a %}x{% else %}y", NULL, HN_EFORMAT, "line 1, col 4: unterminated '{% if %}' block");
    check_error("{% endfor %}", NULL, HN_EFORMAT, "unexpected '{% endfor %}'");
    check_error("{{ 'abc }}", NULL, HN_EFORMAT, "line 1, col 4: unterminated string literal");
    check_error("ok {{ x ", NULL, HN_EFORMAT, "line 1, col 4: unterminated '{{'");
    check_error("{# never closed", NULL, HN_EFORMAT, "unterminated comment");
    check_error("{{ (1 + }}", NULL, HN_EFORMAT, "line 1, col 9: unbalanced '}'");
    check_error("{% frobnicate %}", NULL, HN_EFORMAT, "unknown statement '{% frobnicate %}'");
    check_error("{% for x in l recursive %}{% endfor %}", NULL, HN_EUNSUPPORTED, "recursive");
    check_error("{{ x.y }}", NULL, HN_EINVAL, "'x' is undefined");
    check_error("{{ 1 + 'a' }}", NULL, HN_EINVAL, "unsupported operand types for +: 'int' and 'str'");
    check_error("{{ 1 // 0 }}", NULL, HN_EINVAL, "division or modulo by zero");
    check_error("\n{{ raise_exception('Roles must alternate') }}", NULL, HN_EINVAL,
                "chat template line 2, col 19: the template refused the conversation: Roles must alternate");
    check_error("{{ 'é' | upper }}", NULL, HN_EUNSUPPORTED, "upper of non-ASCII text is not supported");
    check_error("{{ d | tojson(sort_keys=true) }}", "{\"d\": {}}", HN_EUNSUPPORTED, "unsupported argument 'sort_keys'");
    check_error("{% set x.y = 1 %}", "{\"x\": {}}", HN_EINVAL, "non-namespace");
}

static void check_limits(void) {
    jinja_limits lim;
    jinja_limits_default(&lim);
    lim.max_output = 1000;
    hn_err err = {0};
    char *got = render_lim("{% for i in range(100) %}0123456789abcdef{% endfor %}", NULL, &lim, &err);
    CHECK(!got && err.code == HN_ENOMEM && strstr(err.msg, "exceeds 1000 bytes"), "output limit: %s", err.msg);
    free(got);
    jinja_limits_default(&lim);
    lim.max_iterations = 1000;
    got = render_lim("{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}", NULL, &lim, &err);
    CHECK(!got && strstr(err.msg, "more than 1000 loop iterations"), "iteration limit: %s", err.msg);
    free(got);
    got = render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", NULL, &err);
    CHECK(!got && strstr(err.msg, "nested deeper than 64"), "depth limit: %s", err.msg);
    free(got);
    jinja_limits_default(&lim);
    lim.max_memory = 1 << 20;
    got = render_lim("{% set s = 'x' * 100000000 %}{{ s | length }}", NULL, &lim, &err);
    CHECK(!got && err.code == HN_ENOMEM && strstr(err.msg, "memory"), "memory limit: %s", err.msg);
    free(got);
    got = render_lim("{{ range(100000000) | length }}", NULL, &lim, &err);
    CHECK(!got && err.code == HN_ENOMEM, "range limit: %s", err.msg);
    free(got);
    char deep[4000] = "{{ ";
    for (int i = 0; i < 1000; i++) strcat(deep, "(");
    got = render(deep, NULL, &err);
    CHECK(!got && err.code == HN_EFORMAT, "nesting: %s", err.msg);
    free(got);
}

/* strftime_now gives today's date in the format asked. */
static void check_strftime(void) {
    hn_err err = {0};
    char *got = render("{{ strftime_now('%Y') | length }}|{{ strftime_now('%d %b %Y') | length }}", NULL, &err);
    CHECK(got && !strcmp(got, "4|11"), "strftime_now: %s", got ? got : err.msg);
    free(got);
}

int main(void) {
    check_table();
    check_errors();
    check_limits();
    check_strftime();
    return test_finish("test_jinja");
}
