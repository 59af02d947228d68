/* test.c — shared helpers for test executables. */
#include "test.h"

#include <stdlib.h>
#include <string.h>

#include <math.h>

#include <sys/wait.h>

#include "base/buf.h"
#include "base/file.h"
#include "format/safetensors.h"
#include "chat/dataset.h"
#include "base/rng.h"
#include "model/llama.h"

int test_failures, test_checks;

const char *test_shared(const char *rel) {
    static char bufs[8][4096];
    static int k;
    const char *root = getenv("HONE_SHARED");
    if (!root || !*root) root = "../shared";
    char *b = bufs[k++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", root, rel);
    return b;
}

const char *test_tmpdir(void) {
    static char dir[256];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/hone-test-XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return dir;
}

const char *test_tmp_path(const char *name) {
    static char bufs[8][512];
    static int k;
    char *b = bufs[k++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", test_tmpdir(), name);
    return b;
}

void test_write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n)) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

char *test_run_cmd(const char *cmd, int *status) {
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    hn_buf b;
    hn_buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0) hn_buf_append(&b, chunk, n);
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return hn_buf_take(&b);
}

char *test_read(const char *path, size_t *len) {
    char *data;
    hn_err err;
    if (hn_file_read(path, 0, &data, len, &err) != HN_OK) {
        fprintf(stderr, "test_read: %s\n", err.msg);
        exit(2);
    }
    return data;
}

const char *test_subset(const char *src, int n, const char *name) {
    static char path[8][512];
    static int k;
    char *p = path[k++ & 7];
    snprintf(p, sizeof path[0], "%s/%s", test_tmpdir(), name);
    char *data = test_read(src, NULL), *e = data;
    for (int i = 0; i < n && *e; i++) {
        char *nl = strchr(e, '\n');
        e = nl ? nl + 1 : e + strlen(e);
    }
    FILE *f = fopen(p, "w");
    if (!f) {
        perror(p);
        exit(2);
    }
    fwrite(data, 1, (size_t)(e - data), f);
    fclose(f);
    free(data);
    return p;
}

static double tensors_diff(const st_model *a, const st_model *b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < st_n_tensors(a); i++) {
        const st_tensor *ta = st_tensor_at(a, i), *tb = st_find(b, ta->name);
        if (!tb || tb->n_elems != ta->n_elems || ta->dtype != ST_F32 || tb->dtype != ST_F32)
            return INFINITY;
        const float *x = ta->data, *y = tb->data;
        for (uint64_t j = 0; j < ta->n_elems; j++) {
            num = fmax(num, fabs((double)x[j] - y[j]));
            den = fmax(den, fabs((double)x[j]));
        }
    }
    return den > 0 ? num / den : num;
}

double test_weights_diff(const char *dir_a, const char *dir_b, const char *file) {
    char pa[1024], pb[1024];
    snprintf(pa, sizeof pa, "%s/final/%s", dir_a, file);
    snprintf(pb, sizeof pb, "%s/final/%s", dir_b, file);
    st_model *a = NULL, *b = NULL;
    hn_err err;
    double d = INFINITY;
    if (st_open(pa, &a, &err) != HN_OK || st_open(pb, &b, &err) != HN_OK) {
        test_checks++;
        test_failures++;
        fprintf(stderr, "test_weights_diff: %s\n", err.msg);
    } else {
        d = tensors_diff(a, b);
    }
    if (a) st_close(a);
    if (b) st_close(b);
    return d;
}

int test_finish(const char *name) {
    printf("%s: %d checks, %d failed\n", name, test_checks, test_failures);
    return test_failures ? 1 : 0;
}

double test_fd_check(const char *what, float *x, const float *ana, size_t n, test_loss_fn f,
                     void *ctx, float eps, double tol) {
    double num_max = 0, err_max = 0;
    for (size_t i = 0; i < n; i++) {
        float x0 = x[i];
        x[i] = x0 + eps;
        double lp = f(ctx);
        x[i] = x0 - eps;
        double lm = f(ctx);
        x[i] = x0;
        double num = (lp - lm) / (2.0 * eps);
        num_max = fmax(num_max, fabs(num));
        err_max = fmax(err_max, fabs(num - ana[i]));
    }
    double rel = num_max > 0 ? err_max / num_max : err_max;
    CHECK(rel < tol, "%s: relative error %.3g (max |grad| %.3g)", what, rel, num_max);
    if (getenv("HONE_TEST_VERBOSE")) printf("  %-40s rel %.2e  max|g| %.2e\n", what, rel, num_max);
    return rel;
}

double test_logits_diff(const hn_model *a, const hn_model *b, int T) {
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)T);
    hn_err err = {0};
    llama_acts *xa = NULL, *xb = NULL;
    size_t n = (size_t)T * a->cfg.vocab_size;
    float *la = malloc(n * sizeof(float)), *lb = malloc(n * sizeof(float));
    double md = INFINITY;
    if (ids && la && lb && llama_acts_create(a, 1, T, 0, &xa, &err) == HN_OK &&
        llama_acts_create(b, 1, T, 0, &xb, &err) == HN_OK) {
        for (int i = 0; i < T; i++) ids[i] = (int32_t)((i * 7907L + 11) % a->cfg.vocab_size);
        llama_forward(a, NULL, xa, ids);
        llama_logits(a, xa, la);
        llama_forward(b, NULL, xb, ids);
        llama_logits(b, xb, lb);
        md = 0;
        for (size_t i = 0; i < n; i++) md = fmax(md, fabs(la[i] - lb[i]));
    }
    llama_acts_free(xa);
    llama_acts_free(xb);
    free(ids), free(la), free(lb);
    return md;
}

chat_example test_parse_example(const char *json) {
    chat_example ex = {0};
    json_error_t je;
    json_t *obj = json_loads(json, 0, &je);
    CHECK(obj, "bad test JSON: %s", je.text);
    chat_dataset ds;
    chat_dataset_init(&ds, NULL);
    bool ok = obj && chat_example_from_json(obj, 1, &ds, &ex);
    CHECK(ok, "example rejected: %s", ds.n_problems ? ds.problems[0].text : "?");
    json_decref(obj);
    chat_dataset_free(&ds);
    return ex;
}

void test_fill(hn_rng *r, float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * hn_rng_uniform(r);
}

double test_dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}
