/* precision.h — which arithmetic a model's matrix products use.
 *
 *   f32   exact single precision (oneDNN or OpenBLAS f32)
 *   bf16  bf16 products with f32 accumulation; master weights, gradients and
 *         optimizer state stay f32 (mixed precision, docs/bench.md)
 *   auto  bf16 when it is both fast and harmless here: the CPU computes bf16
 *         natively (AVX512_BF16 or AMX), hone has oneDNN, and the model is
 *         wide enough (hidden size >= 512) that the products dominate; f32
 *         otherwise. HONE_GEMM, when set, is an explicit choice and wins.
 * The choice is process-wide (the GEMM backend), made once a model is loaded. */
#ifndef HN_PRECISION_H
#define HN_PRECISION_H

#include <stdbool.h>

#include "base/err.h"
#include "model/model.h"

typedef enum model_precision { PREC_AUTO = 0, PREC_F32, PREC_BF16 } model_precision;

/* "auto", "f32", "bf16"; NULL or "" is auto. */
hn_status model_precision_parse(const char *s, model_precision *out, hn_err *err);
const char *model_precision_name(model_precision p);
/* Whether this CPU computes bf16 natively (AVX512_BF16 or AMX-BF16). */
bool model_precision_cpu_bf16(void);
/* What auto resolves to for m on this machine (never PREC_AUTO). */
model_precision model_precision_auto(const hn_model *m);
/* Resolves want for m and selects the GEMM backend; the resolved precision. */
hn_status model_precision_apply(const hn_model *m, model_precision want, model_precision *used,
                                hn_err *err);

#endif
