/* grade.h — the graders of `hone eval`: each compares a model's reply with
 * the reference answer and gives a score in [0, 1] (0/1 for pass/fail
 * graders, a fraction for `similarity`). The graders are pure functions of
 * the two strings (and, for `regex`, of a compiled pattern), so they are
 * tested on handcrafted cases without a model. docs/eval.md is the user's
 * description of each rule. */
#ifndef HN_EVAL_GRADE_H
#define HN_EVAL_GRADE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

typedef enum eval_grader {
    EVAL_EXACT = 0,   /* reply == reference, both trimmed of surrounding whitespace */
    EVAL_CONTAINS,    /* trimmed reference occurs in reply, Unicode case-insensitive */
    EVAL_REGEX,       /* reply matches a user-given PCRE2 pattern (unanchored) */
    EVAL_JSON_VALID,  /* trimmed reply parses as one JSON value */
    EVAL_JSON_EQUAL,  /* reply and reference parse to equal JSON values (key order ignored) */
    EVAL_SIMILARITY,  /* 1 - Levenshtein(codepoints) / max length, trimmed */
    EVAL_N_GRADERS
} eval_grader;

/* "exact", "contains", "regex", "json_valid", "json_equal", "similarity". */
const char *eval_grader_name(eval_grader g);
/* Parses a grader name; HN_EINVAL with the list of names otherwise. */
hn_status eval_grader_parse(const char *name, eval_grader *out, hn_err *err);

/* A compiled regex-grader pattern (PCRE2, UTF mode). */
typedef struct eval_regex eval_regex;
/* HN_EINVAL with PCRE2's message and the offset on a bad pattern. */
hn_status eval_regex_compile(const char *pattern, eval_regex **out, hn_err *err);
void eval_regex_free(eval_regex *re);
const char *eval_regex_pattern(const eval_regex *re);

/* The individual graders: 1.0 pass, 0.0 fail (similarity: a fraction).
 * Strings are NUL-terminated UTF-8. */
double eval_grade_exact(const char *reply, const char *ref);
double eval_grade_contains(const char *reply, const char *ref);
double eval_grade_regex(const char *reply, const eval_regex *re);
double eval_grade_json_valid(const char *reply);
double eval_grade_json_equal(const char *reply, const char *ref);
double eval_grade_similarity(const char *a, const char *b);

/* Runs every grader into scores[EVAL_N_GRADERS]; scores[EVAL_REGEX] is NAN
 * when re is NULL (no pattern given: the grader does not apply). */
void eval_grade_all(const char *reply, const char *ref, const eval_regex *re,
                    double scores[EVAL_N_GRADERS]);

/* Levenshtein distance over Unicode codepoints (invalid bytes count as one
 * codepoint each); *len_a / *len_b receive the codepoint counts. */
size_t eval_edit_distance(const char *a, const char *b, size_t *len_a, size_t *len_b);

#endif
