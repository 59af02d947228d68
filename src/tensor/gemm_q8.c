/* gemm_q8.c — Q8_0 quantization and the Q8_0 weight × activation products of
 * gemm_q8.h: a portable kernel, which is also the test oracle, and an
 * AVX512-VNNI kernel chosen at run time (compiled with target attributes, so
 * the build needs no -march).
 *
 * One product: the rows of x are quantized (per block of 32: an f32 scale and
 * int8 quants, the same rounding in both kernels, so both see identical
 * integers), then W's rows are shared out between the OpenMP threads (one
 * parallel region). With 4 or more rows of x (prefill) W goes in tiles of 4
 * rows, each tile against all rows of x, 4 at a time, so a weight block read
 * from memory once serves 4 × M products from cache. With fewer (decode) the
 * product is a stream over W at memory bandwidth: W's rows are read one after
 * another in address order, which the prefetchers follow (tiles of 4 rows,
 * whose loads hop between rows K bytes apart, streamed at less than half the
 * rate), and the per-call work besides (quantizing one row of x, one parallel
 * region) is kept small.
 *
 * The VNNI dot product. vpdpbusd multiplies unsigned bytes by signed bytes
 * (4 per int32 lane) and adds to the lane. Q8_0 weights and activations are
 * both signed, so the weights are stored as u = q + 128 (gemm_q8.h) and
 *   Σ u·x = Σ q·x + 128·Σ x.
 * The correction −128·Σx is a property of the activations alone: it is
 * computed once per call, per 4-byte lane (one vpdpbusd of the bytes 0x80
 * with x, negated), and is the starting value of every vpdpbusd against that
 * stretch of x — so the weight stream costs one load and one vpdpbusd per 32
 * bytes and activation row, with no per-weight fix-up (the usual alternative,
 * |w| and w's sign moved onto x, costs three more operations per weight
 * vector). The lane sums are exact int32 (at most 4 · 255 · 127 plus the
 * correction), so the result differs from the portable kernel only in the
 * order of the f32 additions.
 *
 * Scaling: a block's 8 lane sums are converted to f32 and multiplied by the
 * block's d_w·d_x into an 8-lane f32 accumulator per (weight row, activation
 * row) pair, reduced once at the end of the row; the products d_w·d_x come 16
 * blocks at a time from one vector multiply. */
#include "tensor/gemm_q8.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/num.h"

enum { TILE = 4 };

/* Products below this many multiply-adds run on the calling thread alone.
 * What a parallel region costs depends on how libgomp's threads wait: when
 * they spin a while (GOMP_SPINCOUNT, which hone sets on an idle machine, or
 * the ACTIVE policy) a region costs ~1 µs and pays from 2^17 MACs; when they
 * sleep at once (OMP_WAIT_POLICY=PASSIVE alone: the benchmark scripts, the
 * server, a busy machine) waking one costs ~10 µs or more of this VM's time
 * and only products from 2^21 MACs (the 110M model's lm_head, not its
 * 768 × 768 or 2048 × 768 projections) gain. Measured on Llama-110M decode:
 * all products threaded 121-126 tok/s passive / 187-195 spinning, only the
 * big ones 156-171 passive / 128-155 spinning. */
static double par_min(void) {
    static _Atomic double v = 0; /* the environment is read once */
    double m = atomic_load_explicit(&v, memory_order_relaxed);
    if (m == 0) {
        const char *policy = getenv("OMP_WAIT_POLICY"), *spin = getenv("GOMP_SPINCOUNT");
        bool sleeps = policy && !strcasecmp(policy, "passive") && !(spin && atof(spin) > 0);
        m = sleeps ? (double)(1 << 21) : (double)(1 << 17);
        atomic_store_explicit(&v, m, memory_order_relaxed);
    }
    return m;
}

/* ---- quantization ---- */

/* One block of 32: the int8 quants into q, the scale returned (f32, before
 * any rounding to f16). ggml's quantize_row_q8_0_ref. */
static float quant_block(const float *x, int8_t *q) {
    float amax = 0;
    for (int j = 0; j < GEMM_Q8_BLOCK; j++) amax = fmaxf(amax, fabsf(x[j]));
    float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
    for (int j = 0; j < GEMM_Q8_BLOCK; j++) {
        float v = roundf(x[j] * id);
        v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v; /* NaN stays NaN */
        q[j] = (int8_t)(v == v ? (int)v : 0);
    }
    return d;
}

/* The quantized rows of x. Rows of q (and of the correction) are padded with
 * zeros to a multiple of 64 bytes and rows of d to a multiple of 16 blocks, so
 * the vector kernel reads whole aligned vectors of x without masks. */
typedef struct q8_act {
    int M, K, ldq, ldd; /* ldq: bytes per row of q (and of corr); ldd: floats per row of d */
    int8_t *q;
    int32_t *corr; /* vector kernel: -128 * (sum of each 4 bytes of q), per lane */
    float *d;
    void *mem;
} q8_act;

static bool act_alloc(q8_act *a, int M, int K) {
    int nb = K / GEMM_Q8_BLOCK;
    a->M = M;
    a->K = K;
    a->ldq = (K + 63) & ~63;
    a->ldd = (nb + 15) & ~15;
    size_t qb = (size_t)M * a->ldq, db = (size_t)M * a->ldd * sizeof(float);
    a->mem = aligned_alloc(64, 2 * qb + db);
    if (!a->mem) return false;
    memset(a->mem, 0, 2 * qb + db);
    a->q = a->mem;
    a->corr = (int32_t *)((char *)a->mem + qb);
    a->d = (float *)((char *)a->mem + 2 * qb);
    return true;
}

static void act_quantize_ref(q8_act *a, const float *x) {
    int nb = a->K / GEMM_Q8_BLOCK;
    for (int m = 0; m < a->M; m++)
        for (int b = 0; b < nb; b++)
            a->d[(size_t)m * a->ldd + b] =
                quant_block(x + (size_t)m * a->K + (size_t)b * GEMM_Q8_BLOCK,
                            a->q + (size_t)m * a->ldq + (size_t)b * GEMM_Q8_BLOCK);
}

/* ---- the portable kernel ---- */

static void tile_ref(int mr, int nr, const q8_act *a, int m0, const gemm_q8_mat *W, int n0,
                     float *y, bool acc) {
    int K = W->cols, nb = K / GEMM_Q8_BLOCK, N = W->rows;
    for (int m = m0; m < m0 + mr; m++)
        for (int n = n0; n < n0 + nr; n++) {
            const uint8_t *u = W->u + (size_t)n * K;
            const uint16_t *wd = W->d + (size_t)n * nb;
            const int8_t *q = a->q + (size_t)m * a->ldq;
            const float *xd = a->d + (size_t)m * a->ldd;
            float s = 0;
            for (int b = 0; b < nb; b++) {
                int32_t dot = 0;
                for (int j = b * GEMM_Q8_BLOCK; j < (b + 1) * GEMM_Q8_BLOCK; j++)
                    dot += ((int32_t)u[j] - 128) * q[j];
                s += (float)dot * (hn_f16_to_f32(wd[b]) * xd[b]);
            }
            float *o = y + (size_t)m * N + n;
            *o = acc ? *o + s : s;
        }
}

/* ---- the AVX512-VNNI kernel ---- */

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HN_Q8_VNNI 1
#define Q8_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma")))

/* roundf (half away from zero), exactly: truncate, then step away from zero
 * where the dropped fraction is at least one half (t - trunc(t) is exact). */
Q8_TARGET static inline __m512 round_away(__m512 t) {
    __m512 tr = _mm512_roundscale_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __mmask16 half = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(t, tr)),
                                        _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    __mmask16 pos = _mm512_cmp_ps_mask(t, _mm512_setzero_ps(), _CMP_GT_OQ);
    tr = _mm512_mask_add_ps(tr, half & pos, tr, _mm512_set1_ps(1.0f));
    return _mm512_mask_sub_ps(tr, half & (__mmask16)~pos, tr, _mm512_set1_ps(1.0f));
}

/* The clamp's operand order makes a NaN come out as NaN (vmaxps/vminps
 * return their second operand when one is NaN), which the conversion turns
 * into 0, as quant_block does. */
Q8_TARGET static inline __m128i quant16(__m512 x, __m512 id) {
    __m512 r = round_away(_mm512_mul_ps(x, id));
    r = _mm512_min_ps(_mm512_set1_ps(127.0f), _mm512_max_ps(_mm512_set1_ps(-127.0f), r));
    return _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(r));
}

/* quant_block on nb blocks, 16 lanes at a time: the same scale and the same
 * rounding, so the same bytes (NaN inputs too: they are left out of max|x|,
 * as fmaxf does, and quantize to 0). */
Q8_TARGET static void quant_blocks_vnni(const float *x, int nb, float *d, int8_t *q) {
    for (int b = 0; b < nb; b++) {
        __m512 x0 = _mm512_loadu_ps(x + b * 32), x1 = _mm512_loadu_ps(x + b * 32 + 16);
        __m512 m = _mm512_max_ps(_mm512_abs_ps(x0), _mm512_setzero_ps());
        m = _mm512_max_ps(_mm512_abs_ps(x1), m);
        float amax = _mm512_reduce_max_ps(m);
        float s = amax / 127.0f, id = s > 0 ? 1.0f / s : 0.0f;
        d[b] = s;
        __m512 vid = _mm512_set1_ps(id);
        _mm_storeu_si128((__m128i *)(q + b * 32), quant16(x0, vid));
        _mm_storeu_si128((__m128i *)(q + b * 32 + 16), quant16(x1, vid));
    }
}

/* The rows of x, plus the lane corrections for the offset weights. */
Q8_TARGET static void act_quantize_vnni(q8_act *a, const float *x) {
    int nb = a->K / GEMM_Q8_BLOCK;
    for (int m = 0; m < a->M; m++) {
        int8_t *q = a->q + (size_t)m * a->ldq;
        quant_blocks_vnni(x + (size_t)m * a->K, nb, a->d + (size_t)m * a->ldd, q);
        int32_t *corr = a->corr + (size_t)m * (a->ldq / 4);
        const __m512i k128 = _mm512_set1_epi8((char)0x80);
        for (int j = 0; j < a->ldq; j += 64) {
            __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), k128, _mm512_load_si512(q + j));
            _mm512_store_si512(corr + j / 4, _mm512_sub_epi32(_mm512_setzero_si512(), s));
        }
    }
}

/* y[m0.., n0..] for MR activation rows × NR weight rows over the whole K, one
 * block (32 bytes: 8 int32 lanes of 4 products) per step on 256-bit vectors:
 * the block's combined scale d_w·d_x multiplies in as a broadcast memory
 * operand of the FMA. (A 512-bit version, two blocks per step with the two
 * scales spread over the lane halves by vpermps, measured 8% slower at M = 64
 * and no faster for decode.) MR and NR are constants at every call site and
 * the loops over them are unrolled (gcc will not on its own at this size), so
 * the 16 accumulators and 4 weight vectors of a 4 × 4 tile stay in registers. */
Q8_TARGET __attribute__((always_inline)) static inline void
tile_vnni(const int MR, const int NR, const q8_act *a, int m0, const gemm_q8_mat *W, int n0,
            float *y, bool acc) {
    const int K = W->cols, nb = K / GEMM_Q8_BLOCK, N = W->rows;
    const uint8_t *wu[TILE];
    const uint16_t *wd[TILE];
    const int8_t *xq[TILE];
    const int32_t *xc[TILE];
    const float *xd[TILE];
    __m256 accf[TILE][TILE];
    float comb[TILE][TILE][16] __attribute__((aligned(64)));
    _Pragma("GCC unroll 4")
    for (int n = 0; n < NR; n++) {
        wu[n] = W->u + (size_t)(n0 + n) * K;
        wd[n] = W->d + (size_t)(n0 + n) * nb;
    }
    _Pragma("GCC unroll 4")
    for (int m = 0; m < MR; m++) {
        xq[m] = a->q + (size_t)(m0 + m) * a->ldq;
        xc[m] = a->corr + (size_t)(m0 + m) * (a->ldq / 4);
        xd[m] = a->d + (size_t)(m0 + m) * a->ldd;
        _Pragma("GCC unroll 4")
        for (int n = 0; n < NR; n++) accf[m][n] = _mm256_setzero_ps();
    }
    for (int g = 0; g < nb; g += 16) {
        const int gb = nb - g < 16 ? nb - g : 16;
        const __mmask16 sm = (__mmask16)((1u << gb) - 1);
        _Pragma("GCC unroll 4")
        for (int n = 0; n < NR; n++) {
            __m512 ws = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(sm, wd[n] + g));
            _Pragma("GCC unroll 4")
            for (int m = 0; m < MR; m++)
                _mm512_store_ps(comb[m][n], _mm512_mul_ps(ws, _mm512_load_ps(xd[m] + g)));
        }
        for (int s = 0; s < gb; s++) {
            const size_t off = (size_t)(g + s) * GEMM_Q8_BLOCK;
            const float(*cb)[TILE][16] = comb;
            __asm__("" : "+r"(cb));
            __m256i w[TILE];
            _Pragma("GCC unroll 4")
            for (int n = 0; n < NR; n++) w[n] = _mm256_loadu_si256((const __m256i *)(wu[n] + off));
            _Pragma("GCC unroll 4")
            for (int m = 0; m < MR; m++) {
                const __m256i xv = _mm256_load_si256((const __m256i *)(xq[m] + off));
                const __m256i c = _mm256_load_si256((const __m256i *)(xc[m] + off / 4));
                _Pragma("GCC unroll 4")
                for (int n = 0; n < NR; n++) {
                    __m256i dot = _mm256_dpbusd_epi32(c, w[n], xv);
                    accf[m][n] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot),
                                                 _mm256_set1_ps(cb[m][n][s]), accf[m][n]);
                }
            }
        }
    }
    _Pragma("GCC unroll 4")
    for (int m = 0; m < MR; m++)
        _Pragma("GCC unroll 4")
        for (int n = 0; n < NR; n++) {
            __m128 h = _mm_add_ps(_mm256_castps256_ps128(accf[m][n]),
                                  _mm256_extractf128_ps(accf[m][n], 1));
            h = _mm_add_ps(h, _mm_movehl_ps(h, h));
            h = _mm_add_ss(h, _mm_movehdup_ps(h));
            float s = _mm_cvtss_f32(h);
            float *o = y + (size_t)(m0 + m) * N + n0 + n;
            *o = acc ? *o + s : s;
        }
}

/* Weight rows [n0, n1) against activation rows [m0, m0 + mr), mr <= 4: tiles
 * of 4 weight rows (each loaded block serves the 4 activation rows), the last
 * n1 - n0 < 4 rows one at a time. */
Q8_TARGET static void rows_vnni(int mr, int m0, int n0, int n1, const q8_act *a,
                                const gemm_q8_mat *W, float *y, bool acc) {
    int n = n0;
    for (; n + TILE <= n1; n += TILE)
        switch (mr) {
        case 1: tile_vnni(1, TILE, a, m0, W, n, y, acc); break;
        case 2: tile_vnni(2, TILE, a, m0, W, n, y, acc); break;
        case 3: tile_vnni(3, TILE, a, m0, W, n, y, acc); break;
        default: tile_vnni(4, TILE, a, m0, W, n, y, acc); break;
        }
    for (; n < n1; n++)
        switch (mr) {
        case 1: tile_vnni(1, 1, a, m0, W, n, y, acc); break;
        case 2: tile_vnni(2, 1, a, m0, W, n, y, acc); break;
        case 3: tile_vnni(3, 1, a, m0, W, n, y, acc); break;
        default: tile_vnni(4, 1, a, m0, W, n, y, acc); break;
        }
}

/* One weight row after another against all M < 4 activation rows: decode.
 * Reading W strictly in address order is what lets the hardware prefetchers
 * stream it (measured: 18 GB/s on one core, against 8 GB/s for tiles of 4
 * rows, whose loads hop between 4 rows K bytes apart). */
Q8_TARGET static void rows_vnni_stream(int M, int n0, int n1, const q8_act *a,
                                       const gemm_q8_mat *W, float *y, bool acc) {
    for (int n = n0; n < n1; n++)
        switch (M) {
        case 1: tile_vnni(1, 1, a, 0, W, n, y, acc); break;
        case 2: tile_vnni(2, 1, a, 0, W, n, y, acc); break;
        default: tile_vnni(3, 1, a, 0, W, n, y, acc); break;
        }
}

static bool have_vnni(void) {
    static int have = -1;
    if (have < 0)
        have = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
               __builtin_cpu_supports("fma");
    return have;
}
#else
static bool have_vnni(void) { return false; }
#endif

const char *gemm_q8_kernel_name(void) { return have_vnni() ? "avx512vnni" : "scalar"; }

void gemm_q8_quantize(const float *x, size_t n, uint16_t *d, int8_t *q) {
    size_t nb = n / GEMM_Q8_BLOCK;
#ifdef HN_Q8_VNNI
    if (have_vnni()) { /* 115M weights: 0.13 s instead of 1.05 s on one core */
        float s[64];
        for (size_t b = 0; b < nb; b += 64) {
            int k = nb - b < 64 ? (int)(nb - b) : 64;
            quant_blocks_vnni(x + b * GEMM_Q8_BLOCK, k, s, q + b * GEMM_Q8_BLOCK);
            for (int j = 0; j < k; j++) d[b + (size_t)j] = hn_f32_to_f16(s[j]);
        }
        return;
    }
#endif
    for (size_t b = 0; b < nb; b++)
        d[b] = hn_f32_to_f16(quant_block(x + b * GEMM_Q8_BLOCK, q + b * GEMM_Q8_BLOCK));
}

/* ---- one product ---- */

static bool xwt_run(bool vnni, int M, const float *x, const gemm_q8_mat *W, float *y, bool acc) {
    int N = W->rows, K = W->cols;
    if (M <= 0 || N <= 0) return true;
    if (K <= 0) { /* an empty sum */
        if (!acc) memset(y, 0, sizeof(float) * (size_t)M * N);
        return true;
    }
    q8_act a;
    if (!act_alloc(&a, M, K)) return false;
#ifdef HN_Q8_VNNI
    if (vnni) act_quantize_vnni(&a, x);
    else act_quantize_ref(&a, x);
#else
    (void)vnni;
    act_quantize_ref(&a, x);
#endif
    /* Rows handed out in guided chunks (half the rows first, then smaller
     * pieces, none under 1/32 of the product): the calling thread starts at
     * once while the others wake up (with passive waiting that takes ~10 µs,
     * a good part of a decode product), a thread that gets no CPU on a busy
     * machine leaves its share to the others instead of holding up the
     * product, and the first chunks are long streams for the prefetchers.
     * (Measured, decode of the 110M shape: static halves lose to the wake-up,
     * dynamic chunks of 1/64 lose 20-40% to broken-up streams.) */
    const bool stream = M < TILE;
    const int unit = stream ? 1 : TILE, n_units = (N + unit - 1) / unit;
    const int chunk = n_units / 32 > 1 ? n_units / 32 : 1;
    #pragma omp parallel for schedule(guided, chunk) if ((double)M * N * K >= par_min())
    for (int t = 0; t < n_units; t++) {
        int n0 = t * unit, n1 = n0 + unit < N ? n0 + unit : N;
#ifdef HN_Q8_VNNI
        if (vnni && stream) {
            rows_vnni_stream(M, n0, n1, &a, W, y, acc);
            continue;
        }
#endif
        for (int m0 = 0; m0 < M; m0 += TILE) {
            int mr = M - m0 < TILE ? M - m0 : TILE;
#ifdef HN_Q8_VNNI
            if (vnni) {
                rows_vnni(mr, m0, n0, n1, &a, W, y, acc);
                continue;
            }
#endif
            tile_ref(mr, n1 - n0, &a, m0, W, n0, y, acc);
        }
    }
    free(a.mem);
    return true;
}

bool gemm_q8_xwt(int M, const float *x, const gemm_q8_mat *W, float *y, bool acc) {
    return xwt_run(have_vnni(), M, x, W, y, acc);
}

bool gemm_q8_xwt_ref(int M, const float *x, const gemm_q8_mat *W, float *y, bool acc) {
    return xwt_run(false, M, x, W, y, acc);
}
