/* test.c — shared helpers for test executables. */
#include "test.h"

#include <stdlib.h>
#include <string.h>

#include "base/file.h"

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

int test_finish(const char *name) {
    printf("%s: %d checks, %d failed\n", name, test_checks, test_failures);
    return test_failures ? 1 : 0;
}
