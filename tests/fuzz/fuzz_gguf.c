/* fuzz_gguf.c — libFuzzer driver for the GGUF reader: the input becomes a
 * file, is opened, and if accepted every metadata value is formatted and
 * walked and every small tensor converted, so any out-of-bounds read shows. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "format/gguf.h"

#define MAX_ELEMS (1u << 20)

static const char *input_path(void) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/fuzz_gguf_%ld.gguf", (long)getpid());
    return path;
}

static int write_input(const char *path, const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = size ? fwrite(data, 1, size, f) : 0;
    fclose(f);
    return w == size ? 0 : -1;
}

static volatile double sink;

static void walk(const gguf_arr *a, int depth) {
    for (uint64_t i = 0; i < a->n && i < 64; i++) {
        if (a->type == GGUF_STRING) {
            gguf_str s = gguf_arr_str(a, i);
            if (s.len) sink += (unsigned char)s.p[s.len - 1];
        } else if (a->type == GGUF_ARRAY) {
            gguf_arr sub = gguf_arr_arr(a, i);
            if (depth < 16) walk(&sub, depth + 1);
        } else {
            sink += gguf_arr_num(a, i);
        }
    }
}

static void exercise(gguf_file *f) {
    char buf[512];
    hn_err err;
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        gguf_kv_format(f, i, buf, sizeof buf);
        if (gguf_kv_type(f, i) != GGUF_ARRAY) continue;
        gguf_str k = gguf_kv_key(f, i);
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(k.len < 255 ? k.len : 255), k.p);
        gguf_arr a;
        if (gguf_get_arr(f, key, &a, &err) == HN_OK) walk(&a, 0);
    }
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (t->n_elems > MAX_ELEMS) continue;
        float *dst = malloc(t->n_elems * sizeof *dst);
        if (dst && gguf_tensor_to_f32(f, t, dst, &err) == HN_OK && t->n_elems)
            sink += dst[t->n_elems - 1];
        free(dst);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = input_path();
    if (write_input(path, data, size)) return 0;
    gguf_file *f = NULL;
    hn_err err;
    if (gguf_open(path, &f, &err) == HN_OK) {
        exercise(f);
        gguf_close(f);
    }
    return 0;
}
