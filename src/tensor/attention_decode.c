/* attention_decode.c — a decode step's attention: one query row per head
 * against the keys and values of the KV cache.
 *
 * attention.c's blocked kernels first pack Kᵀ of the head into a panel so that
 * a block of queries can be scored against keys in vectors. For a single query
 * the packing is the whole cost: S·hd scalar strided stores per head, layer
 * and token, then the panel is read again (Llama-110M decode of 128 tokens:
 * ~0.5 ms of a ~4.5 ms step, when the Q8_0 weight products themselves take
 * ~3.6). Here each key's score is a dot product over its contiguous row of
 * the cache (4 keys at a time), and the output a sum of value rows scaled by
 * their probabilities: K and V are each read once, in address order.
 *
 * Results match the blocked kernels to float rounding (summation order; the
 * same simd_exp512 softmax): attention_forward's tests cover this path (their
 * decode cases), and tests/unit/test_attention_decode.c adds head sizes and
 * lengths. One call computes one head on one thread, in a fixed order, so the
 * result does not depend on the thread count. */
#include "tensor/attention_decode.h"

#include <math.h>
#include <string.h>

#include "tensor/simd.h"

#ifdef HN_HAVE_AVX512

/* Sum of the 16 lanes of each of 4 vectors, as 4 floats. */
HN_AVX512 static inline void reduce4(float *dst, __m512 a, __m512 b, __m512 c, __m512 d) {
    dst[0] = _mm512_reduce_add_ps(a);
    dst[1] = _mm512_reduce_add_ps(b);
    dst[2] = _mm512_reduce_add_ps(c);
    dst[3] = _mm512_reduce_add_ps(d);
}

/* a[s] = q·k_s for s < n. */
HN_AVX512 static void scores(float *a, const float *q, const float *k, int n, int ks, int hd) {
    int s = 0;
    for (; s + 4 <= n; s += 4) {
        const float *k0 = k + (size_t)s * ks, *k1 = k0 + ks, *k2 = k1 + ks, *k3 = k2 + ks;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int d = 0; d < hd; d += 16) {
            __m512 qv = _mm512_loadu_ps(q + d);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(k0 + d), qv, a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(k1 + d), qv, a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(k2 + d), qv, a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(k3 + d), qv, a3);
        }
        reduce4(a + s, a0, a1, a2, a3);
    }
    for (; s < n; s++) {
        const float *ks_ = k + (size_t)s * ks;
        __m512 a0 = _mm512_setzero_ps();
        for (int d = 0; d < hd; d += 16)
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(ks_ + d), _mm512_loadu_ps(q + d), a0);
        a[s] = _mm512_reduce_add_ps(a0);
    }
}

/* a[0..n) = softmax(scale · a): attention.c's softmax_row_avx512 steps
 * (scale, max, simd_exp512 of the difference, times 1/sum). */
HN_AVX512 static void softmax(float *a, int n, float scale) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY), vs = _mm512_set1_ps(scale);
    __m512 mx = ninf;
    for (int s = 0; s < n; s += 16) {
        __mmask16 m = simd_tail16(n - s);
        __m512 x = _mm512_mul_ps(_mm512_mask_loadu_ps(ninf, m, a + s), vs);
        _mm512_mask_storeu_ps(a + s, m, x);
        mx = _mm512_max_ps(mx, x);
    }
    __m512 vmx = _mm512_set1_ps(_mm512_reduce_max_ps(mx)), sum = _mm512_setzero_ps();
    for (int s = 0; s < n; s += 16) {
        __mmask16 m = simd_tail16(n - s);
        __m512 e = _mm512_maskz_mov_ps(m, simd_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + s), vmx)));
        _mm512_mask_storeu_ps(a + s, m, e);
        sum = _mm512_add_ps(sum, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (int s = 0; s < n; s += 16) {
        __mmask16 m = simd_tail16(n - s);
        _mm512_mask_storeu_ps(a + s, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, a + s), inv));
    }
}

/* out = Σ_s a[s]·v_s, COLS vectors of 16 at a time (a constant at each call
 * site, so the accumulators stay in registers). */
HN_AVX512 __attribute__((always_inline)) static inline void
weighted_sum(float *out, const float *a, const float *v, int n, int ks, const int COLS) {
    __m512 acc[8];
    _Pragma("GCC unroll 8")
    for (int j = 0; j < COLS; j++) acc[j] = _mm512_setzero_ps();
    for (int s = 0; s < n; s++) {
        const __m512 p = _mm512_set1_ps(a[s]);
        const float *vs = v + (size_t)s * ks;
        _Pragma("GCC unroll 8")
        for (int j = 0; j < COLS; j++) acc[j] = _mm512_fmadd_ps(p, _mm512_loadu_ps(vs + 16 * j), acc[j]);
    }
    _Pragma("GCC unroll 8")
    for (int j = 0; j < COLS; j++) _mm512_storeu_ps(out + 16 * j, acc[j]);
}

HN_AVX512 static void row_avx512(float *out, float *a, const float *q, const float *k,
                                 const float *v, int n, int S, int ks, int hd) {
    scores(a, q, k, n, ks, hd);
    softmax(a, n, 1.0f / sqrtf((float)hd));
    memset(a + n, 0, sizeof(float) * (size_t)(S - n));
    /* 8 accumulators a pass: hd 16..128 in one pass, larger heads in several */
    for (int d = 0; d < hd; d += 128) {
        switch ((hd - d >= 128 ? 128 : hd - d) / 16) {
        case 1: weighted_sum(out + d, a, v + d, n, ks, 1); break;
        case 2: weighted_sum(out + d, a, v + d, n, ks, 2); break;
        case 3: weighted_sum(out + d, a, v + d, n, ks, 3); break;
        case 4: weighted_sum(out + d, a, v + d, n, ks, 4); break;
        case 5: weighted_sum(out + d, a, v + d, n, ks, 5); break;
        case 6: weighted_sum(out + d, a, v + d, n, ks, 6); break;
        case 7: weighted_sum(out + d, a, v + d, n, ks, 7); break;
        default: weighted_sum(out + d, a, v + d, n, ks, 8); break;
        }
    }
}

bool attention_decode_row(float *out, float *a, const float *q, const float *k, const float *v,
                          int n, int S, int ks, int hd) {
    if (hd % 16 || hd <= 0 || n <= 0 || !simd_have_avx512()) return false;
    row_avx512(out, a, q, k, v, n, S, ks, hd);
    return true;
}

#else

bool attention_decode_row(float *out, float *a, const float *q, const float *k, const float *v,
                          int n, int S, int ks, int hd) {
    (void)out, (void)a, (void)q, (void)k, (void)v, (void)n, (void)S, (void)ks, (void)hd;
    return false;
}

#endif
