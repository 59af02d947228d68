/* fuzz_safetensors.c — libFuzzer driver for the safetensors reader. Each
 * input is opened twice: as a .safetensors file, and as the
 * model.safetensors.index.json of a directory holding one valid shard
 * ("a.safetensors"), so both the header and the index parser are exercised.
 * Accepted tensors below a size limit are converted to f32. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/safetensors.h"

#define MAX_ELEMS (1u << 20)

static char file_path[96], dir_path[96], index_path[160];

static int write_input(const char *path, const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = size ? fwrite(data, 1, size, f) : 0;
    fclose(f);
    return w == size ? 0 : -1;
}

static void setup(void) {
    long pid = (long)getpid();
    snprintf(file_path, sizeof file_path, "/tmp/fuzz_st_%ld.safetensors", pid);
    snprintf(dir_path, sizeof dir_path, "/tmp/fuzz_st_%ld.d", pid);
    snprintf(index_path, sizeof index_path, "%s/model.safetensors.index.json", dir_path);
    mkdir(dir_path, 0755);
    char shard[200];
    snprintf(shard, sizeof shard, "%s/a.safetensors", dir_path);
    float x[4] = {1, 2, 3, 4};
    st_wtensor t[2] = {{"w", ST_F32, 2, {2, 2}, x}, {"b", ST_F32, 1, {1}, x}};
    hn_err err;
    if (st_write(shard, t, 2, NULL, &err) != HN_OK) abort();
}

static volatile float sink;

static void exercise(st_model *m) {
    hn_err err;
    for (size_t i = 0; i < st_n_tensors(m); i++) {
        const st_tensor *t = st_tensor_at(m, i);
        if (st_find(m, t->name) != t) abort(); /* the index must agree */
        if (t->n_elems > MAX_ELEMS) continue;
        float *dst = malloc((t->n_elems ? t->n_elems : 1) * sizeof *dst);
        if (dst && st_tensor_to_f32(t, dst, &err) == HN_OK && t->n_elems)
            sink += dst[t->n_elems - 1];
        free(dst);
    }
    sink += st_metadata(m, "format") ? 1.0f : 0.0f;
}

static void try_open(const char *path) {
    st_model *m = NULL;
    hn_err err;
    if (st_open(path, &m, &err) == HN_OK) {
        exercise(m);
        st_close(m);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!file_path[0]) setup();
    if (write_input(file_path, data, size) == 0) try_open(file_path);
    if (size && data[0] == '{' && write_input(index_path, data, size) == 0) try_open(dir_path);
    return 0;
}
