/* norm_act.h — the kernels GPT-style blocks add to ops.h: LayerNorm (with
 * bias), the tanh-approximated GELU, and bias add / bias gradient. Same
 * conventions as ops.h: caller-provided buffers, forward beside backward,
 * parameter gradients ACCUMULATE. */
#ifndef HN_NORM_ACT_H
#define HN_NORM_ACT_H

/* LayerNorm: out = (x - mean) * rstd * w + b over rows of C;
 * x,out (T,C); w,b (C); mean,rstd (T) saved for backward (may be NULL). */
void layernorm_forward(float *out, float *mean, float *rstd, const float *x, const float *w,
                       const float *b, int T, int C, float eps);
/* dx += ...; dw += ...; db += ... (dw/db may be NULL when frozen). */
void layernorm_backward(float *dx, float *dw, float *db, const float *dout, const float *x,
                        const float *w, const float *mean, const float *rstd, int T, int C);

/* GELU, tanh form (GPT-2's gelu_new): h = 0.5 u (1 + tanh(sqrt(2/pi)(u + 0.044715 u^3))). */
void gelu_forward(float *h, const float *u, long N);
/* du set. */
void gelu_backward(float *du, const float *dh, const float *u, long N);

/* y (T,C) += b (C) on every row. */
void bias_forward(float *y, const float *b, int T, int C);
/* db (C) += column sums of dy (T,C). */
void bias_backward(float *db, const float *dy, int T, int C);

#endif
