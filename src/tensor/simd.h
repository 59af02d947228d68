/* simd.h — AVX-512 helpers shared by the kernels in src/tensor: a tail mask
 * and a vector exp. They are static inline in a header (against the usual
 * rule) because they must inline into each kernel compiled with
 * __attribute__((target("avx512f"))); the build itself has no -march, so
 * every caller checks __builtin_cpu_supports("avx512f") first. */
#ifndef HN_SIMD_H
#define HN_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HN_HAVE_AVX512 1
#define HN_AVX512 __attribute__((target("avx512f")))

/* Mask of the first k lanes (k clamped to 0..16). */
HN_AVX512 static inline __mmask16 simd_tail16(int k) {
    return k >= 16 ? (__mmask16)0xffff : k <= 0 ? (__mmask16)0 : (__mmask16)((1u << k) - 1);
}

/* Cephes expf: n = round(x/ln2), r = x - n ln2 (two-part ln2), exp(r) by a
 * degree-7 polynomial, times 2^n via scalef (which also flushes to 0 below
 * the clamp). Within ~2 ulp of expf over the clamped range. */
HN_AVX512 static inline __m512 simd_exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(88.72f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

static inline int simd_have_avx512(void) { return __builtin_cpu_supports("avx512f"); }
#else
static inline int simd_have_avx512(void) { return 0; }
#endif

#endif
