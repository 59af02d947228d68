/* test_eval_graders.c — every `hone eval` grader on handcrafted cases:
 * trimming, Unicode case folding, regex errors, JSON key order and number
 * spelling, and edit distance over UTF-8 codepoints (not bytes). */
#include <math.h>
#include <string.h>

#include "eval/grade.h"
#include "test.h"

static bool near(double a, double b) { return fabs(a - b) < 1e-9; }

static void test_names(void) {
    for (int g = 0; g < EVAL_N_GRADERS; g++) {
        eval_grader back;
        hn_err err = {0};
        CHECK(eval_grader_parse(eval_grader_name((eval_grader)g), &back, &err) == HN_OK);
        CHECK(back == (eval_grader)g);
    }
    eval_grader g;
    hn_err err = {0};
    CHECK(eval_grader_parse("fuzzy", &g, &err) == HN_EINVAL);
    CHECK(strstr(err.msg, "unknown grader 'fuzzy'") && strstr(err.msg, "similarity"), "%s",
          err.msg);
}

static void test_exact(void) {
    CHECK(eval_grade_exact("cat", "cat") == 1.0);
    CHECK(eval_grade_exact("  cat\n", "cat ") == 1.0);
    CHECK(eval_grade_exact("\t\r\n", "") == 1.0);
    CHECK(eval_grade_exact("Cat", "cat") == 0.0);
    CHECK(eval_grade_exact("cat.", "cat") == 0.0);
    CHECK(eval_grade_exact("ca t", "cat") == 0.0);
}

static void test_contains(void) {
    CHECK(eval_grade_contains("The CAT sat.", "cat") == 1.0);
    CHECK(eval_grade_contains("a dog", "  dog\n") == 1.0);
    CHECK(eval_grade_contains("a dog", "cat") == 0.0);
    CHECK(eval_grade_contains("anything", "") == 1.0);
    /* the reference is a literal, not a pattern */
    CHECK(eval_grade_contains("abc", "a.c") == 0.0);
    CHECK(eval_grade_contains("xa.cx", "a.c") == 1.0);
    CHECK(eval_grade_contains("f(x) = [1]", "(X) = [1") == 1.0);
    /* Unicode case folding, not just ASCII */
    CHECK(eval_grade_contains("L'ÉCOLE EST FERMÉE", "école") == 1.0);
    CHECK(eval_grade_contains("ΣΟΦΙΑ", "σοφια") == 1.0);
    CHECK(eval_grade_contains("ecole", "école") == 0.0);
}

static void test_regex(void) {
    eval_regex *re = NULL;
    hn_err err = {0};
    CHECK(eval_regex_compile("^\\d+$", &re, &err) == HN_OK, "%s", err.msg);
    if (re) {
        CHECK(eval_grade_regex("42", re) == 1.0);
        CHECK(eval_grade_regex("4x2", re) == 0.0);
        CHECK(!strcmp(eval_regex_pattern(re), "^\\d+$"));
        eval_regex_free(re);
    }
    /* unanchored search, UTF mode: '.' is one codepoint */
    CHECK(eval_regex_compile("^.{3}$", &re, &err) == HN_OK);
    if (re) {
        CHECK(eval_grade_regex("äöü", re) == 1.0);
        CHECK(eval_grade_regex("äö", re) == 0.0);
        eval_regex_free(re);
    }
    CHECK(eval_regex_compile("(cat|dog)", &re, &err) == HN_OK);
    if (re) {
        CHECK(eval_grade_regex("it is a dog!", re) == 1.0);
        eval_regex_free(re);
    }
    re = (eval_regex *)1;
    CHECK(eval_regex_compile("([a-", &re, &err) == HN_EINVAL);
    CHECK(re == NULL);
    CHECK(strstr(err.msg, "invalid regex '([a-'") && strstr(err.msg, "offset"), "%s", err.msg);
    double scores[EVAL_N_GRADERS];
    eval_grade_all("cat", "cat", NULL, scores);
    CHECK(isnan(scores[EVAL_REGEX]) && scores[EVAL_EXACT] == 1.0 && scores[EVAL_SIMILARITY] == 1.0);
}

static void test_json(void) {
    CHECK(eval_grade_json_valid("{\"a\": 1}") == 1.0);
    CHECK(eval_grade_json_valid("  [1, 2]\n") == 1.0);
    CHECK(eval_grade_json_valid("42") == 1.0);
    CHECK(eval_grade_json_valid("\"s\"") == 1.0);
    CHECK(eval_grade_json_valid("{a: 1}") == 0.0);
    CHECK(eval_grade_json_valid("") == 0.0);
    CHECK(eval_grade_json_valid("{\"a\": 1} trailing") == 0.0);
    CHECK(eval_grade_json_valid("{\"a\": 1") == 0.0);

    const char *ref = "{\"name\": \"Ann\", \"tags\": [1, 2], \"o\": {\"x\": true, \"y\": null}}";
    CHECK(eval_grade_json_equal("{\"o\":{\"y\":null,\"x\":true},\"tags\":[1,2],\"name\":\"Ann\"}",
                                ref) == 1.0, "key order must not matter");
    CHECK(eval_grade_json_equal(" {\"a\": 1.0} ", "{\"a\": 1}") == 1.0, "1 == 1.0");
    CHECK(eval_grade_json_equal("{\"a\": 1}", "{\"a\": 2}") == 0.0);
    CHECK(eval_grade_json_equal("[1, 2]", "[2, 1]") == 0.0, "array order matters");
    CHECK(eval_grade_json_equal("{\"a\": 1, \"b\": 2}", "{\"a\": 1}") == 0.0);
    CHECK(eval_grade_json_equal("{\"a\": {\"b\": 1}}", "{\"a\": {\"b\": 1, \"c\": 2}}") == 0.0);
    CHECK(eval_grade_json_equal("{\"a\": \"1\"}", "{\"a\": 1}") == 0.0, "string is not number");
    CHECK(eval_grade_json_equal("not json", "not json") == 0.0, "invalid JSON never equal");
    CHECK(eval_grade_json_equal("{}", "{") == 0.0);
}

static void test_similarity(void) {
    CHECK(near(eval_grade_similarity("kitten", "sitting"), 1.0 - 3.0 / 7.0));
    CHECK(eval_grade_similarity("same", "same") == 1.0);
    CHECK(eval_grade_similarity("", "") == 1.0);
    CHECK(eval_grade_similarity("", "abc") == 0.0);
    CHECK(eval_grade_similarity("abc", "xyz") == 0.0);
    CHECK(eval_grade_similarity(" cat\n", "cat") == 1.0, "trimmed");
    /* codepoints, not bytes: é is 2 bytes but one edit */
    CHECK(near(eval_grade_similarity("café", "cafe"), 0.75));
    CHECK(near(eval_grade_similarity("日本語", "日本"), 1.0 - 1.0 / 3.0));
    CHECK(near(eval_grade_similarity("a😀b", "ab"), 1.0 - 1.0 / 3.0));
    CHECK(near(eval_grade_similarity("Ünïcödé", "Unicode"), 1.0 - 4.0 / 7.0));
    size_t la, lb;
    CHECK(eval_edit_distance("naïve", "naive", &la, &lb) == 1 && la == 5 && lb == 5);
    /* an invalid byte counts as one unit and equals only itself */
    CHECK(eval_edit_distance("a\xff" "b", "a\xff" "b", &la, &lb) == 0 && la == 3);
    CHECK(eval_edit_distance("a\xff" "b", "a\xfe" "b", NULL, NULL) == 1);
    double s = eval_grade_similarity("The cat sat", "the cat sat on the mat");
    CHECK(s > 0.0 && s < 1.0);
}

int main(void) {
    test_names();
    test_exact();
    test_contains();
    test_regex();
    test_json();
    test_similarity();
    return test_finish("test_eval_graders");
}
