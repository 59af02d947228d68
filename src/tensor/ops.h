/* ops.h — the transformer kernels, each forward beside its backward.
 * Shapes in comments; all buffers are caller-provided (planned once per step),
 * none of these allocate. Backward functions ACCUMULATE into parameter
 * gradients (so micro-batches add up) and SET or ACCUMULATE input gradients as
 * documented. */
#ifndef HN_OPS_H
#define HN_OPS_H

#include <stdbool.h>
#include <stdint.h>

/* RMSNorm: out = x / rms(x) * w;  x,out (T,C), w (C), rstd (T) saved for backward. */
void rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int T, int C,
                     float eps);
/* dx += ...; dw += ... (dw may be NULL when the weight is frozen). */
void rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                      const float *rstd, int T, int C);

/* RoPE, rotate-half layout, in place on (T, n_heads*hd) rows at positions pos[t].
 * cos/sin tables are (max_pos, hd/2). */
void rope_forward(float *x, const int32_t *pos, int T, int n_heads, int hd, const float *cos_t,
                  const float *sin_t);
/* Applies the inverse rotation to a gradient in place. */
void rope_backward(float *dx, const int32_t *pos, int T, int n_heads, int hd,
                   const float *cos_t, const float *sin_t);
void rope_tables(float *cos_t, float *sin_t, int max_pos, int hd, float theta);

/* SwiGLU: h = silu(g) * u;  g,u,h (N). */
void swiglu_forward(float *h, const float *g, const float *u, long N);
/* dg, du set. */
void swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u,
                     long N);

/* Causal grouped-query attention for one sequence.
 * q (T, Hq*hd) queries at positions pos0..pos0+T-1; k,v (S, Hkv*hd) keys and
 * values for positions 0..S-1 with S = pos0 + T; out (T, Hq*hd).
 * att (Hq, T, S) receives the probabilities (needed for backward; may be a
 * scratch that is overwritten). seg (S) optional: per-position segment ids for
 * packed sequences (a query attends only to keys of its own segment). */
void attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                       int T, int S, int pos0, int Hq, int Hkv, int hd, const int32_t *seg);
/* dq set; dk, dv set (S rows). pos0 must be 0 (training). */
void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att,
                        const float *q, const float *k, const float *v, int T, int Hq, int Hkv,
                        int hd);
/* The oracle the blocked kernels above are tested against: straight loops,
 * one query row at a time, single-threaded. Same contracts. */
void attention_forward_ref(float *out, float *att, const float *q, const float *k,
                           const float *v, int T, int S, int pos0, int Hq, int Hkv, int hd,
                           const int32_t *seg);
void attention_backward_ref(float *dq, float *dk, float *dv, const float *dout,
                            const float *att, const float *q, const float *k, const float *v,
                            int T, int Hq, int Hkv, int hd);
/* Forces the portable C attention kernels even on AVX-512 CPUs (tests). */
void attention_force_portable(bool on);

/* Cross-entropy over rows of logits (N, V) in place: on return each row
 * holds d(loss)/d(logits) * scale[i] (softmax - onehot, times scale[i]).
 * loss[i] = -log softmax(logits)[target[i]]; correct[i] = argmax == target. */
void xent_forward_backward(float *logits, float *loss, uint8_t *correct, const int32_t *target,
                           const float *scale, int N, int V);

/* AdamW (PyTorch semantics: decoupled decay, bias correction), one flat pass. */
void adamw_update(float *p, const float *g, float *m, float *v, long n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int t);
/* The same with the gradient multiplied by gscale on the fly (gradient
 * clipping fused into the update: g itself is not written). */
void adamw_update_scaled(float *p, const float *g, float *m, float *v, long n, float lr,
                         float beta1, float beta2, float eps, float weight_decay, int t,
                         float gscale);
/* sum of x[i]^2 in double, threaded, the same result for any thread count. */
double ops_sum_squares(const float *x, long n);

#endif
