/* test.h — the tiny assertion kit every test uses. A failed CHECK records the
 * failure and the test's main returns test_finish(), non-zero on any failure. */
#ifndef HN_TEST_H
#define HN_TEST_H

#include <stdio.h>

extern int test_failures, test_checks;

#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        test_checks++;                                                           \
        if (!(cond)) {                                                           \
            test_failures++;                                                     \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, " " __VA_ARGS__);                                     \
            fprintf(stderr, "\n");                                               \
        }                                                                        \
    } while (0)

/* Path under the shared folder (HONE_SHARED, default ../shared). Static buffer
 * rotation: up to 8 live results. */
const char *test_shared(const char *rel);
/* A fresh temporary directory for this test (removed by nobody: lives in /tmp). */
const char *test_tmpdir(void);
/* test_tmpdir()/name (static buffer rotation: up to 8 live results). */
const char *test_tmp_path(const char *name);
/* Writes n bytes to path; aborts the test on failure. */
void test_write_file(const char *path, const void *p, size_t n);
/* Runs a shell command; returns its stdout (caller frees, NULL if it could not
 * start) and sets *status to its exit code (-1 if it did not exit). */
char *test_run_cmd(const char *cmd, int *status);
/* Reads a whole file; aborts the test on failure. Caller frees. */
char *test_read(const char *path, size_t *len);
/* Writes the first n lines of src to test_tmpdir()/name and returns that path
 * (static buffer rotation: up to 8 live results). */
const char *test_subset(const char *src, int n, const char *name);
/* max |a - b| / max |a| over every tensor of dir_a/final/file and
 * dir_b/final/file (safetensors); INFINITY when they do not match up. */
double test_weights_diff(const char *dir_a, const char *dir_b, const char *file);
/* Finite-difference check: central differences of f(ctx) w.r.t. x[0..n)
 * against the analytic gradient ana[0..n); CHECKs that
 * max |ana - num| / max |num| < tol and returns that relative error. */
typedef double (*test_loss_fn)(void *ctx);
double test_fd_check(const char *what, float *x, const float *ana, size_t n, test_loss_fn f,
                     void *ctx, float eps, double tol);
/* max |logits_a - logits_b| of two models (same vocab) on T fixed pseudo-random
 * ids through the training forward; INFINITY if a buffer cannot be made. */
struct hn_model;
/* One chat example from a JSON line (must be valid: CHECKs otherwise). */
struct chat_example;
struct chat_example test_parse_example(const char *json);
/* x[0..n) uniform in [lo, hi) from the test's generator r (a hn_rng). */
struct hn_rng;
void test_fill(struct hn_rng *r, float *x, size_t n, float lo, float hi);
/* sum a[i] * b[i] in double. */
double test_dot(const float *a, const float *b, size_t n);
double test_logits_diff(const struct hn_model *a, const struct hn_model *b, int T);
int test_finish(const char *name);

#endif
