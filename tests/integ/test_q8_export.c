/* test_q8_export.c — Q8_0 inference end to end with the hone binary:
 *   - `hone export --dtype q8_0` of stories260K (Llama: q/k rows permuted in
 *     GGUF, w_down width 172 kept F16) and of a Qwen3 made by `hone
 *     init-model` (every width a multiple of 32); loaded back, the model knows
 *     its matrices are Q8_0, and in q8_0 the cached copy of every Q8_0 matrix
 *     is the file's own blocks, byte for byte (no second quantization loss;
 *     a block whose f16 scale underflowed to 0 stands for zeros either way);
 *   - `hone generate` on the export picks q8_0 by itself (says so on stderr)
 *     and prints the same greedy story as `--precision f32` on the same file;
 *   - `hone eval --precision q8_0` runs; `hone finetune --precision q8_0` and
 *     `hone bench --precision q8_0` on a train case are refused with the
 *     message; `hone serve --precision q8_0` answers a chat completion.
 * The truncated-Q8_0-tensor case stays with the GGUF reader's corrupt-file
 * tests (unit/test_gguf). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "format/gguf.h"
#include "model/model.h"
#include "tensor/gemm.h"
#include "tensor/gemm_q8.h"
#include "test.h"

static const char *bin, *tmp;

static char *run(const char *cmd, int *st) {
    char *out = test_run_cmd(cmd, st);
    return out ? out : strdup("");
}

/* Every Q8_0 matrix of the file that the model multiplies with (its weight
 * products) against the model's cached Q8_0 copy: same bytes per row. */
static void check_blocks(const char *path, int *n_matrices) {
    hn_model *m = NULL;
    hn_err err = {0};
    CHECK(model_load(path, &m, &err) == HN_OK, "%s: %s", path, err.msg);
    if (!m) return;
    CHECK(m->gguf_q8_0, "%s: not recognised as a Q8_0 GGUF", path);
    CHECK(model_set_q8_0(m, true, &err) == HN_OK, "%s", err.msg);
    gguf_file *f = NULL;
    CHECK(gguf_open(path, &f, &err) == HN_OK, "%s", err.msg);
    int checked = 0, bad_rows = 0, flushed = 0;
    for (int i = 0; f && i < m->n_param_tensors; i++) {
        const model_param *p = &m->params[i];
        char name[96];
        gguf_layout lay;
        if (p->n_dims != 2 || !model_param_gguf_name(m, p, name, sizeof name, &lay)) continue;
        if (p->data == m->w.tok_emb && p->data != m->w.lm_head) continue; /* a lookup, no product */
        const gguf_tensor *t = gguf_find_tensor(f, name);
        int rows = (int)p->shape[0], cols = (int)p->shape[1];
        if (!t || t->type != GGUF_T_Q8_0) {
            CHECK(cols % 32 != 0, "%s: %s is not Q8_0 in the file", path, name);
            continue;
        }
        CHECK(lay != GGUF_LAYOUT_TRANSPOSE, "%s: transposed Q8_0 tensor", name);
        /* hone row r is file row perm[r] (q/k: adjacent-pair rows per head) */
        float *idx = malloc(sizeof(float) * rows), *perm = malloc(sizeof(float) * rows);
        for (int r = 0; r < rows; r++) idx[r] = (float)r;
        if (lay == GGUF_LAYOUT_PERMUTE_Q || lay == GGUF_LAYOUT_PERMUTE_K)
            model_unpermute_heads(perm, idx, lay == GGUF_LAYOUT_PERMUTE_Q ? m->cfg.n_heads
                                                                         : m->cfg.n_kv_heads,
                                  m->cfg.head_dim, 1);
        else memcpy(perm, idx, sizeof(float) * rows);
        size_t row_bytes = (size_t)cols / 32 * 34;
        unsigned char *mine = malloc(row_bytes * rows);
        CHECK(gemm_q8_cached_blocks(p->data, rows, cols, m->weights_version, mine),
              "%s: no Q8_0 copy", name);
        for (int r = 0; r < rows; r++) {
            const unsigned char *a = mine + (size_t)r * row_bytes;
            const unsigned char *b = (const unsigned char *)t->data + (size_t)perm[r] * row_bytes;
            bool same = !memcmp(a, b, row_bytes);
            for (size_t k = 0; !same && k < row_bytes / 34; k++) {
                const unsigned char *x = a + k * 34, *y = b + k * 34;
                bool zero_x = !x[0] && !x[1], zero_y = !y[0] && !y[1];
                if (memcmp(x, y, 34) && !(zero_x && zero_y)) break;
                if (memcmp(x, y, 34)) flushed++;
                if (k + 1 == row_bytes / 34) same = true;
            }
            bad_rows += !same;
        }
        checked++;
        free(idx), free(perm), free(mine);
    }
    CHECK(bad_rows == 0, "%s: %d rows of the Q8_0 copies differ from the file's blocks", path,
          bad_rows);
    printf("%s: %d Q8_0 matrices, copies equal to the file's blocks (%d zero-scale blocks)\n",
           path, checked, flushed);
    *n_matrices = checked;
    gguf_close(f);
    model_free(m);
}

/* The greedy text of the exported model: auto (q8_0) vs --precision f32. */
static void check_generate(const char *gguf, const char *prompt) {
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "'%s' generate --model '%s' --prompt '%s' --temperature 0 "
             "--max-tokens 40 2>'%s/gen.err'", bin, gguf, prompt, tmp);
    char *q8 = run(cmd, &st);
    CHECK(st == 0, "%s exited %d", cmd, st);
    size_t len;
    char path[1024];
    snprintf(path, sizeof path, "%s/gen.err", tmp);
    char *err = test_read(path, &len);
    CHECK(strstr(err, "computing in q8_0") && strstr(err, "(q8_0)"),
          "generate did not report q8_0:\n%s", err);
    free(err);
    snprintf(cmd, sizeof cmd, "'%s' generate --model '%s' --prompt '%s' --temperature 0 "
             "--max-tokens 40 --precision f32 2>'%s/gen.err'", bin, gguf, prompt, tmp);
    char *f32 = run(cmd, &st);
    CHECK(st == 0 && !strcmp(q8, f32), "q8_0 and f32 greedy text differ on %s:\nq8_0: %s\n f32: %s",
          gguf, q8, f32);
    err = test_read(path, &len);
    CHECK(!strstr(err, "q8_0"), "--precision f32 still reported q8_0:\n%s", err);
    free(err);
    printf("generate %s: %s", gguf, q8);
    free(q8), free(f32);
}

static void check_refusals(void) {
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "'%s' finetune --precision q8_0 --train x.jsonl --out '%s/ft' 2>&1",
             bin, tmp);
    char *out = run(cmd, &st);
    CHECK(st == 2 && strstr(out, "q8_0 is an inference precision; use auto, f32 or bf16 for training"),
          "finetune --precision q8_0: exit %d:\n%s", st, out);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' bench --quick --precision q8_0 --cases train:lora:1x16 2>&1",
             bin);
    out = run(cmd, &st);
    CHECK(st == 2 && strstr(out, "q8_0 is an inference precision"), "bench train q8_0: exit %d:\n%s",
          st, out);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' generate --precision q4 --prompt x 2>&1", bin);
    out = run(cmd, &st);
    CHECK(st == 2 && strstr(out, "f32, bf16 or q8_0"), "generate --precision q4: exit %d:\n%s", st,
          out);
    free(out);
}

static void check_eval(const char *gguf) {
    char cmd[4096];
    int st;
    const char *data = test_subset(test_shared("data/animal/test.jsonl"), 3, "eval3.jsonl");
    snprintf(cmd, sizeof cmd, "'%s' eval --model '%s' --data '%s' --precision q8_0 --quiet "
             "--json '%s/eval.json' 2>&1", bin, gguf, data, tmp);
    char *out = run(cmd, &st);
    CHECK(st == 0 && strstr(out, "exact"), "eval --precision q8_0: exit %d:\n%s", st, out);
    free(out);
}

/* `hone serve --precision q8_0` over the export's directory answers a chat
 * completion. */
static void check_serve(const char *models_dir) {
    char out_path[1024], data[1024];
    snprintf(out_path, sizeof out_path, "%s/serve.out", tmp);
    snprintf(data, sizeof data, "%s/serve-data", tmp);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (!freopen(out_path, "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(127);
        execl(bin, "hone", "serve", "--port", "0", "--data", data, "--models", models_dir,
              "--precision", "q8_0", (char *)NULL);
        _exit(127);
    }
    char url[256] = "";
    for (int i = 0; i < 300 && !*url; i++) {
        usleep(50000);
        FILE *f = fopen(out_path, "r");
        char line[512] = "";
        if (f && fgets(line, sizeof line, f)) {
            const char *u = strstr(line, "http://"), *v = u ? strstr(u, "/v1") : NULL;
            if (v) snprintf(url, sizeof url, "%.*s", (int)(v + 3 - u), u);
        }
        if (f) fclose(f);
    }
    CHECK(*url, "hone serve --precision q8_0 did not start");
    if (*url) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "curl -s -m 60 %s/chat/completions -H 'Content-Type: "
                 "application/json' -d '{\"model\":\"stories-q8\",\"temperature\":0,"
                 "\"max_tokens\":12,\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a "
                 "time\"}]}'", url);
        int st;
        char *out = run(cmd, &st);
        CHECK(st == 0 && strstr(out, "\"chat.completion\"") && strstr(out, "\"content\""),
              "chat completion from the q8_0 server:\n%s", out);
        free(out);
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

int main(void) {
    bin = getenv("HONE_BIN");
    if (!bin) {
        fprintf(stderr, "HONE_BIN not set\n");
        return 2;
    }
    tmp = test_tmpdir();
    char cmd[4096], models[600], stories[1024], qdir[1024], qwen[1024];
    snprintf(models, sizeof models, "%s/models", tmp);
    snprintf(stories, sizeof stories, "%s/stories-q8.gguf", models);
    snprintf(qdir, sizeof qdir, "%s/qwen3", tmp);
    snprintf(qwen, sizeof qwen, "%s/qwen3-q8.gguf", tmp);
    int st;
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && '%s' export --model '%s' --format gguf --dtype "
             "q8_0 --out '%s' 2>&1", models, bin,
             test_shared("models/stories260K/stories260K.gguf"), stories);
    char *out = run(cmd, &st);
    CHECK(st == 0, "%s:\n%s", cmd, out);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' init-model --arch qwen3 --tokenizer '%s' --out '%s' --dim 64 "
             "--layers 2 --heads 4 --kv-heads 2 --head-dim 16 --context 128 2>&1 && '%s' export "
             "--model '%s' --format gguf --dtype q8_0 --out '%s' 2>&1", bin,
             test_shared("tokenizers/qwen3"), qdir, bin, qdir, qwen);
    out = run(cmd, &st);
    CHECK(st == 0, "%s:\n%s", cmd, out);
    free(out);
    gemm_set_backend(GEMM_OPENBLAS);
    int n1 = 0, n2 = 0;
    check_blocks(stories, &n1);
    check_blocks(qwen, &n2);
    CHECK(n1 == 5 * 6 + 1, "stories260K: %d Q8_0 matrices checked (want 6 per layer + lm_head)", n1);
    CHECK(n2 == 2 * 7 + 1, "qwen3: %d Q8_0 matrices checked (want 7 per layer + the tied head)", n2);
    check_generate(stories, "Once upon a time");
    check_generate(stories, "The cat");
    check_refusals();
    check_eval(stories);
    check_serve(models);
    return test_finish("test_q8_export");
}
