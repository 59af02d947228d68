/* ops.h — the transformer kernels, each forward beside its backward.
 * Shapes in comments; all buffers are caller-provided (planned once per step),
 * none of these allocate. Backward functions ACCUMULATE into parameter
 * gradients (so micro-batches add up) and SET or ACCUMULATE input gradients as
 * documented. */
#ifndef HN_OPS_H
#define HN_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

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

/* Causal grouped-query attention over B sequences, tiled (attention.c): no
 * (T, S) matrix is formed; the forward keeps one log-sum-exp per query row
 * and the backward recomputes the probabilities from it.
 * Per sequence b: q (T, Hq*hd) queries at positions pos0..pos0+T-1; k, v
 * (S, Hkv*hd) keys and values of positions 0..S-1, S = pos0 + T; out (T,
 * Hq*hd). Sequences follow each other: q/out at b*T*Hq*hd, k/v at
 * b*S*Hkv*hd, seg at b*S. seg (B, S) optional: per-position segment ids for
 * packed sequences (a query attends only to keys of its own segment). */
typedef struct attn_shape {
    int B, T, S, pos0;
    int Hq, Hkv, hd;    /* Hq a multiple of Hkv */
    const int32_t *seg; /* (B, S) or NULL */
} attn_shape;
/* Scratch floats for `threads` threads (<= 0: OpenMP's current maximum):
 * a few tiles per thread, independent of T and S. A call uses at most as
 * many threads as its ws holds (results are the same for any thread count). */
size_t attention_ws_floats(int hd, int threads);
/* out set; lse (B, Hq, T) set when not NULL (the backward needs it).
 * HN_EINVAL when ws holds less than one thread's share or the shape is
 * inconsistent; HN_OK otherwise (never allocates). */
hn_status attention_forward(const attn_shape *sh, float *out, float *lse, const float *q,
                            const float *k, const float *v, float *ws, size_t ws_n);
/* dq (B, T, Hq*hd) set; dk, dv (B, S, Hkv*hd) set. out and lse are the
 * forward's. Same return values. */
hn_status attention_backward(const attn_shape *sh, float *dq, float *dk, float *dv,
                             const float *dout, const float *out, const float *lse,
                             const float *q, const float *k, const float *v, float *ws,
                             size_t ws_n);
/* The oracle the tiled kernels are tested against: one sequence, straight
 * loops, one query row at a time, single-threaded, with the probabilities
 * materialised: att (Hq, T, S) receives them in the forward and is read by
 * the backward (which, unlike the tiled one, needs no seg: masked entries
 * of att are zero). dk, dv: S rows. */
void attention_forward_ref(float *out, float *att, const float *q, const float *k,
                           const float *v, int T, int S, int pos0, int Hq, int Hkv, int hd,
                           const int32_t *seg);
void attention_backward_ref(float *dq, float *dk, float *dv, const float *dout,
                            const float *att, const float *q, const float *k, const float *v,
                            int T, int S, int pos0, int Hq, int Hkv, int hd);
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
