/* grade.c — the six graders. Strings are compared as {ptr, len} slices after
 * trimming ASCII whitespace; `contains` and `regex` go through PCRE2 in UTF
 * mode (so case folding is Unicode's, not just ASCII's); the JSON graders
 * parse with jansson and compare numbers by value (1 == 1.0) and objects
 * without regard to key order; `similarity` runs Levenshtein's two-row
 * dynamic programme over decoded codepoints. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "eval/grade.h"

#include <jansson.h>
#include <math.h>
#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const grader_names[EVAL_N_GRADERS] = {
    "exact", "contains", "regex", "json_valid", "json_equal", "similarity"};
_Static_assert(sizeof grader_names / sizeof grader_names[0] == EVAL_N_GRADERS,
               "one name per grader");

const char *eval_grader_name(eval_grader g) {
    return (unsigned)g < EVAL_N_GRADERS ? grader_names[g] : "?";
}

hn_status eval_grader_parse(const char *name, eval_grader *out, hn_err *err) {
    for (int g = 0; g < EVAL_N_GRADERS; g++)
        if (!strcmp(name, grader_names[g])) {
            *out = (eval_grader)g;
            return HN_OK;
        }
    return hn_errf(err, HN_EINVAL,
                   "unknown grader '%s' (use exact, contains, regex, json_valid, json_equal "
                   "or similarity)", name);
}

/* ---- slices ---- */

typedef struct slice {
    const char *p;
    size_t n;
} slice;

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static slice trimmed(const char *s) {
    slice r = {s, strlen(s)};
    while (r.n && is_space(r.p[0])) r.p++, r.n--;
    while (r.n && is_space(r.p[r.n - 1])) r.n--;
    return r;
}

double eval_grade_exact(const char *reply, const char *ref) {
    slice a = trimmed(reply), b = trimmed(ref);
    return a.n == b.n && !memcmp(a.p, b.p, a.n) ? 1.0 : 0.0;
}

/* ---- PCRE2 ---- */

struct eval_regex {
    pcre2_code *code;
    char *pattern;
};

static bool pcre_search(pcre2_code *code, slice subject) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    if (!md) return false;
    int rc = pcre2_match(code, (PCRE2_SPTR)subject.p, subject.n, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

hn_status eval_regex_compile(const char *pattern, eval_regex **out, hn_err *err) {
    *out = NULL;
    int ec;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                     PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ec, &off, NULL);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return hn_errf(err, HN_EINVAL, "invalid regex '%s': %s at offset %zu", pattern,
                       (const char *)msg, (size_t)off);
    }
    eval_regex *re = calloc(1, sizeof *re);
    if (re) re->pattern = strdup(pattern);
    if (!re || !re->pattern) {
        pcre2_code_free(code);
        free(re);
        return hn_errf(err, HN_ENOMEM, "out of memory");
    }
    re->code = code;
    *out = re;
    return HN_OK;
}

void eval_regex_free(eval_regex *re) {
    if (!re) return;
    pcre2_code_free(re->code);
    free(re->pattern);
    free(re);
}

const char *eval_regex_pattern(const eval_regex *re) { return re->pattern; }

double eval_grade_regex(const char *reply, const eval_regex *re) {
    slice s = {reply, strlen(reply)};
    return pcre_search(re->code, s) ? 1.0 : 0.0;
}

/* ASCII-only fallback when the reference cannot be compiled as a literal. */
static bool ascii_icontains(slice hay, slice needle) {
    for (size_t i = 0; i + needle.n <= hay.n; i++) {
        size_t k = 0;
        while (k < needle.n) {
            char a = hay.p[i + k], b = needle.p[k];
            if (a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
            if (b >= 'A' && b <= 'Z') b = (char)(b - 'A' + 'a');
            if (a != b) break;
            k++;
        }
        if (k == needle.n) return true;
    }
    return false;
}

double eval_grade_contains(const char *reply, const char *ref) {
    slice hay = {reply, strlen(reply)}, needle = trimmed(ref);
    if (needle.n == 0) return 1.0;
    int ec;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)needle.p, needle.n,
                                     PCRE2_LITERAL | PCRE2_CASELESS | PCRE2_UTF |
                                         PCRE2_MATCH_INVALID_UTF,
                                     &ec, &off, NULL);
    if (!code) return ascii_icontains(hay, needle) ? 1.0 : 0.0;
    bool hit = pcre_search(code, hay);
    pcre2_code_free(code);
    return hit ? 1.0 : 0.0;
}

/* ---- JSON ---- */

static json_t *parse_json(const char *s) {
    slice t = trimmed(s);
    if (!t.n) return NULL;
    json_error_t e;
    return json_loadb(t.p, t.n, JSON_DECODE_ANY, &e);
}

double eval_grade_json_valid(const char *reply) {
    json_t *j = parse_json(reply);
    json_decref(j);
    return j ? 1.0 : 0.0;
}

/* json_equal, except that numbers compare by value (1 == 1.0). */
static bool json_same(const json_t *a, const json_t *b) {
    if (json_is_number(a) && json_is_number(b)) return json_number_value(a) == json_number_value(b);
    if (json_is_array(a) && json_is_array(b)) {
        if (json_array_size(a) != json_array_size(b)) return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!json_same(json_array_get(a, i), json_array_get(b, i))) return false;
        return true;
    }
    if (json_is_object(a) && json_is_object(b)) {
        if (json_object_size(a) != json_object_size(b)) return false;
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)a, k, v) {
            const json_t *w = json_object_get(b, k);
            if (!w || !json_same(v, w)) return false;
        }
        return true;
    }
    return json_equal((json_t *)a, (json_t *)b) != 0;
}

double eval_grade_json_equal(const char *reply, const char *ref) {
    json_t *a = parse_json(reply), *b = a ? parse_json(ref) : NULL;
    bool same = a && b && json_same(a, b);
    json_decref(a);
    json_decref(b);
    return same ? 1.0 : 0.0;
}

/* ---- similarity ---- */

/* Decodes one UTF-8 codepoint at s[*i]; an invalid byte becomes one unit of
 * its own (0x110000 + byte, outside Unicode, so it equals only itself). */
static uint32_t next_cp(const unsigned char *s, size_t n, size_t *i) {
    unsigned c = s[*i];
    int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
              : (c & 0xF8) == 0xF0 ? 4 : 0;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    if (len == 0 || *i + (size_t)len > n) goto bad;
    for (int k = 1; k < len; k++) {
        if ((s[*i + k] & 0xC0) != 0x80) goto bad;
        cp = cp << 6 | (s[*i + k] & 0x3F);
    }
    *i += (size_t)len;
    return cp;
bad:
    *i += 1;
    return 0x110000u + c;
}

static uint32_t *decode_cps(slice s, size_t *count) {
    uint32_t *v = malloc(sizeof *v * (s.n ? s.n : 1));
    size_t n = 0;
    for (size_t i = 0; v && i < s.n;) v[n++] = next_cp((const unsigned char *)s.p, s.n, &i);
    *count = n;
    return v;
}

static size_t levenshtein(const uint32_t *a, size_t na, const uint32_t *b, size_t nb) {
    size_t *row = malloc(sizeof *row * (nb + 1));
    if (!row) return na > nb ? na : nb;
    for (size_t j = 0; j <= nb; j++) row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    size_t d = row[nb];
    free(row);
    return d;
}

size_t eval_edit_distance(const char *a, const char *b, size_t *len_a, size_t *len_b) {
    slice sa = {a, strlen(a)}, sb = {b, strlen(b)};
    size_t na, nb;
    uint32_t *ca = decode_cps(sa, &na), *cb = decode_cps(sb, &nb);
    size_t d = ca && cb ? levenshtein(ca, na, cb, nb) : (na > nb ? na : nb);
    free(ca);
    free(cb);
    if (len_a) *len_a = na;
    if (len_b) *len_b = nb;
    return d;
}

double eval_grade_similarity(const char *a, const char *b) {
    slice ta = trimmed(a), tb = trimmed(b);
    size_t na, nb;
    uint32_t *ca = decode_cps(ta, &na), *cb = decode_cps(tb, &nb);
    double score = 0.0;
    if (ca && cb) {
        size_t longest = na > nb ? na : nb;
        score = longest ? 1.0 - (double)levenshtein(ca, na, cb, nb) / (double)longest : 1.0;
    }
    free(ca);
    free(cb);
    return score;
}

void eval_grade_all(const char *reply, const char *ref, const eval_regex *re,
                    double scores[EVAL_N_GRADERS]) {
    scores[EVAL_EXACT] = eval_grade_exact(reply, ref);
    scores[EVAL_CONTAINS] = eval_grade_contains(reply, ref);
    scores[EVAL_REGEX] = re ? eval_grade_regex(reply, re) : NAN;
    scores[EVAL_JSON_VALID] = eval_grade_json_valid(reply);
    scores[EVAL_JSON_EQUAL] = eval_grade_json_equal(reply, ref);
    scores[EVAL_SIMILARITY] = eval_grade_similarity(reply, ref);
}
