/* attention_decode.h — attention of a single query row over a KV cache (a
 * decode step), for attention_forward (attention.c) to call per head. */
#ifndef HN_ATTENTION_DECODE_H
#define HN_ATTENTION_DECODE_H

#include <stdbool.h>

/* One query head's row: a[0..n) = softmax(scale · q·k_s) over the n keys
 * k_s = k + s·ks (hd floats each; s < n), a[n..S) = 0, out (hd) = Σ a[s]·v_s
 * (v_s = v + s·ks), scale = 1/√hd. False (nothing written) when this CPU or
 * head size has no kernel here (AVX-512 and hd a multiple of 16): the caller
 * runs its general path. */
bool attention_decode_row(float *out, float *a, const float *q, const float *k, const float *v,
                          int n, int S, int ks, int hd);

#endif
