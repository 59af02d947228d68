/* test_precision.c — the precision policy (model/precision.h): parsing, what
 * auto resolves to for narrow and wide models on this CPU, HONE_GEMM as an
 * explicit choice, the backend each precision selects, and a fine-tune that
 * reports and records the precision it used. */
#include <stdlib.h>
#include <string.h>

#include "model/precision.h"
#include "tensor/gemm.h"
#include "train/finetune.h"
#include "test.h"

static bool native_bf16(void) {
    return model_precision_cpu_bf16() && gemm_backend_available(GEMM_DNNL_BF16);
}

static void check_parse(void) {
    const char *ok[] = {NULL, "", "auto", "f32", "bf16"};
    const model_precision want[] = {PREC_AUTO, PREC_AUTO, PREC_AUTO, PREC_F32, PREC_BF16};
    for (int i = 0; i < 5; i++) {
        model_precision p = PREC_F32;
        hn_err e = {0};
        CHECK(model_precision_parse(ok[i], &p, &e) == HN_OK && p == want[i], "parse %s", ok[i]);
    }
    model_precision p;
    hn_err e = {0};
    CHECK(model_precision_parse("fp16", &p, &e) == HN_EINVAL && strstr(e.msg, "'fp16'") &&
              strstr(e.msg, "auto, f32 or bf16"),
          "bad precision message: %s", e.msg);
}

static void check_auto(void) {
    hn_model narrow, wide;
    memset(&narrow, 0, sizeof narrow);
    memset(&wide, 0, sizeof wide);
    narrow.cfg.dim = 64;
    wide.cfg.dim = 768;
    unsetenv("HONE_GEMM");
    CHECK(model_precision_auto(&narrow) == PREC_F32, "narrow model: auto should be f32");
    model_precision w = model_precision_auto(&wide);
    CHECK(w == (native_bf16() ? PREC_BF16 : PREC_F32), "wide model: auto gave %s (native bf16: %d)",
          model_precision_name(w), native_bf16());
    model_precision used;
    hn_err e = {0};
    CHECK(model_precision_apply(&wide, PREC_F32, &used, &e) == HN_OK && used == PREC_F32 &&
              gemm_get_backend() != GEMM_DNNL_BF16 && gemm_get_backend() != GEMM_REF,
          "f32 selects an exact fast backend, got %s", gemm_backend_name(gemm_get_backend()));
    if (gemm_backend_available(GEMM_DNNL_BF16)) {
        CHECK(model_precision_apply(&narrow, PREC_BF16, &used, &e) == HN_OK && used == PREC_BF16 &&
                  gemm_get_backend() == GEMM_DNNL_BF16,
              "bf16 selects dnnl_bf16");
        /* an explicit HONE_GEMM wins over the automatic choice, both ways */
        setenv("HONE_GEMM", "dnnl_bf16", 1);
        CHECK(model_precision_auto(&narrow) == PREC_BF16, "HONE_GEMM=dnnl_bf16: auto is bf16");
        setenv("HONE_GEMM", "dnnl", 1);
        CHECK(model_precision_auto(&wide) == PREC_F32, "HONE_GEMM=dnnl: auto is f32");
    }
    setenv("HONE_GEMM", "openblas", 1);
    CHECK(model_precision_apply(&wide, PREC_AUTO, &used, &e) == HN_OK && used == PREC_F32 &&
              gemm_get_backend() == GEMM_OPENBLAS,
          "HONE_GEMM=openblas: f32 on openblas, got %s", gemm_backend_name(gemm_get_backend()));
    unsetenv("HONE_GEMM");
}

/* A short fine-tune: the event log names the precision and
 * final/hone_finetune.json records it. */
static void on_event(void *ctx, const char *level, const char *msg) {
    (void)level;
    if (strstr(msg, "Matrix products in")) snprintf(ctx, 256, "%s", msg);
}

static void check_finetune(const char *precision, const char *want) {
    const char *train = test_subset(test_shared("data/animal/train.jsonl"), 8, "train8.jsonl");
    char out[512], said[256] = "";
    snprintf(out, sizeof out, "%s/ft-%s", test_tmpdir(), precision ? precision : "default");
    ft_config c;
    ft_config_default(&c);
    c.model_path = test_shared("models/stories260K/stories260K.gguf");
    c.train_path = train;
    c.out_dir = out;
    c.n_epochs = 1;
    c.batch_size = 4;
    c.method = FT_LORA;
    c.precision = precision;
    c.quiet = true;
    ft_callbacks cb = {.ctx = said, .on_event = on_event};
    ft_result res;
    hn_err e = {0};
    CHECK(ft_run(&c, &cb, &res, &e) == HN_OK, "ft_run: %s", e.msg);
    CHECK(res.precision && !strcmp(res.precision, want), "result precision %s, want %s",
          res.precision ? res.precision : "(null)", want);
    char needle[64];
    snprintf(needle, sizeof needle, "Matrix products in %s", want);
    CHECK(strstr(said, needle), "event: '%s'", said);
    char p[600];
    snprintf(p, sizeof p, "%s/final/hone_finetune.json", out);
    char *j = test_read(p, NULL);
    snprintf(needle, sizeof needle, "\"precision\": \"%s\"", want);
    CHECK(j && strstr(j, needle), "hone_finetune.json lacks %s", needle);
    free(j);
}

int main(void) {
    check_parse();
    check_auto();
    check_finetune(NULL, "f32"); /* stories260K is narrow: auto stays exact */
    if (gemm_backend_available(GEMM_DNNL_BF16)) check_finetune("bf16", "bf16");
    ft_config c;
    ft_config_default(&c);
    c.model_path = test_shared("models/stories260K/stories260K.gguf");
    c.train_path = test_shared("data/animal/train.jsonl");
    c.out_dir = test_tmp_path("ft-bad");
    c.precision = "int4";
    ft_result res;
    hn_err e = {0};
    CHECK(ft_run(&c, NULL, &res, &e) == HN_EINVAL && strstr(e.msg, "int4"), "bad precision: %s",
          e.msg);
    return test_finish("test_precision");
}
