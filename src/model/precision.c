/* precision.c — the precision policy: "auto" resolved per model and machine,
 * and the GEMM backend that implements each precision. */
#include "model/precision.h"

#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif

#include "tensor/gemm.h"

hn_status model_precision_parse(const char *s, model_precision *out, hn_err *err) {
    if (!s || !*s || !strcmp(s, "auto")) *out = PREC_AUTO;
    else if (!strcmp(s, "f32")) *out = PREC_F32;
    else if (!strcmp(s, "bf16")) *out = PREC_BF16;
    else if (!strcmp(s, "q8_0"))
        return hn_errf(err, HN_EINVAL, "precision: q8_0 is an inference precision; use auto, "
                                       "f32 or bf16 for training");
    else return hn_errf(err, HN_EINVAL, "precision: expected auto, f32 or bf16, not '%s'", s);
    return HN_OK;
}

const char *model_precision_name(model_precision p) {
    return p == PREC_F32 ? "f32" : p == PREC_BF16 ? "bf16" : "auto";
}

/* CPUID leaf 7: subleaf 1 EAX bit 5 is AVX512_BF16, subleaf 0 EDX bit 22
 * AMX-BF16 (read directly: clang's __builtin_cpu_supports has no "amx-bf16").
 * The OS must also enable AMX state for the latter; oneDNN checks that and
 * falls back to AVX512_BF16 kernels, which this test already requires or not. */
bool model_precision_cpu_bf16(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    unsigned a, b, c, d;
    bool avx512bf16 = __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a >> 5 & 1);
    bool amx = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 22 & 1);
    return avx512bf16 || amx;
#else
    return false;
#endif
}

/* HONE_GEMM names a backend: the user (or a test) chose the arithmetic. */
static bool env_backend(gemm_backend *b) {
    *b = gemm_backend_parse(getenv("HONE_GEMM"));
    return *b != GEMM_N_BACKENDS && gemm_backend_available(*b);
}

model_precision model_precision_auto(const hn_model *m) {
    gemm_backend b;
    if (env_backend(&b)) return b == GEMM_DNNL_BF16 ? PREC_BF16 : PREC_F32;
    /* below ~512 wide, bf16 barely speeds the step up (products with a side
     * under 64 stay f32 anyway) and small models are where tests want exact f32 */
    bool wide = m && m->cfg.dim >= 512;
    return wide && model_precision_cpu_bf16() && gemm_backend_available(GEMM_DNNL_BF16) ? PREC_BF16
                                                                                : PREC_F32;
}

hn_status model_precision_apply(const hn_model *m, model_precision want, model_precision *used,
                                hn_err *err) {
    model_precision p = want == PREC_AUTO ? model_precision_auto(m) : want;
    gemm_backend b;
    if (p == PREC_BF16) {
        if (!gemm_backend_available(GEMM_DNNL_BF16))
            return hn_errf(err, HN_EINVAL, "precision bf16 needs hone built with oneDNN");
        gemm_set_backend(GEMM_DNNL_BF16);
    } else if (env_backend(&b) && b != GEMM_DNNL_BF16) {
        gemm_set_backend(b); /* an f32 backend the user named */
    } else {
        gemm_set_backend(gemm_backend_available(GEMM_DNNL) ? GEMM_DNNL : GEMM_OPENBLAS);
    }
    if (used) *used = p;
    return HN_OK;
}
