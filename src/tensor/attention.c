/* attention.c — causal grouped-query attention, forward and backward, tiled
 * so that no (T, S) matrix is ever formed (FlashAttention-2's schedule on a
 * CPU), and the straight-loop oracle (attention_forward_ref/_backward_ref)
 * that still materialises the probabilities.
 *
 * Why tiled: keeping the probabilities P for the backward cost B·Hq·T·S
 * floats per layer (805 MB per layer at 4 x 2048 tokens), so long sequences
 * did not fit without recomputation. Now the forward keeps only the output O
 * and one log-sum-exp per query row, L = m + log(sum exp(scale·s − m)), and
 * the backward recomputes each tile of P = exp(scale·Q·Kᵀ − L) from them.
 *
 * Forward, per (sequence, query head, block of QB query rows): over key
 * blocks of KB keys up to the causal diagonal, S = Q·Kᵀ (one tile), an online
 * softmax (running row max m and sum l; the output accumulator is rescaled by
 * exp(m_old − m_new) when the max grows), O += P·V; at the end O /= l.
 * Backward, per (sequence, KV head) — a KV head's dK/dV rows are sums over its
 * whole query group, so one thread owns them and no reduction is needed —
 * per query head of the group, per query block: D = rowsum(dO ∘ O), then per
 * key block up to the diagonal: S = Q·Kᵀ and dP = dO·Vᵀ (two tiles),
 * P = exp(scale·S − L), dS = P ∘ (dP − D)·scale, dV += Pᵀ·dO, dK += dSᵀ·Q,
 * dQ += dS·K. Everything a thread touches per tile (the Qᵀ/dOᵀ panels, two
 * KB x QB tiles, KB rows of K/V/dK/dV) is ~100 KB: L2, not memory.
 *
 * Tiles are kept TRANSPOSED (key rows, query columns): the QB query rows of a
 * block are the vector lanes, so the online softmax's max and sum run down
 * the key rows lane-wise with no horizontal reductions, K and V are read in
 * place (no transposed panel of the head), and only the block's queries (and
 * output gradients) are packed transposed, QB x hd per block. The products
 * are small GEMMs (hd deep, QB or KB wide), too small for a BLAS with its own
 * thread pool, so they are single-threaded register-blocked microkernels
 * (8 keys x 32 query lanes for the score tiles, 6 rows x 64 columns of hd for
 * the P·V-like ones) inside ONE OpenMP region per call:
 *   forward   over (sequence x query head x query block), split between the
 *             threads by causal key count so they get equal work;
 *   backward  over (sequence x KV head), so a batch of B sequences gives
 *             B·Hkv items (GQA models with 2 KV heads still use both threads).
 * Short query runs (T <= ROW_T: decode, tiny prompts) go row by row instead,
 * vectorised over hd: a 32-lane tile with one live lane would waste 31/32 of
 * its products.
 *
 * Every output element is computed by one thread in a fixed order, so results
 * do not depend on the thread count or schedule (resume/seed tests compare
 * bytes). Scratch is the caller's (attention_ws_floats per thread, planned
 * once with the activations): nothing is allocated per call. Kernels: AVX-512
 * when the CPU has it (function target attribute and a run-time check, so the
 * build needs no -march), portable C otherwise; both are tested against the
 * _ref oracle (tests/unit/test_attention.c). The AVX-512 exp is simd_exp512
 * (simd.h, ~2 ulp) instead of libm's expf. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/ops.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#include "tensor/simd.h"

/* QB query rows per block = the lanes of a tile (two 16-float vectors); KB
 * keys per tile (tile rows). A KB x QB tile is 8 KB. ROW_T: query rows per
 * sequence at or below which the forward goes row by row. */
enum { QB = 32, QV = QB / 16, KB = 64, ROW_T = 4 };

static int min_i(int a, int b) { return a < b ? a : b; }
static int max_i(int a, int b) { return a > b ? a : b; }

/* One set of kernels. A tile is KB x QB, row j = key j0 + j of the block,
 * lane r = query row t0 + r; key j is causally visible to lane r iff
 * j <= diag + r (diag = first query's position − first key's position,
 * negative when the block starts after the first query). kseg (keys of the
 * block) / qseg (lanes) are segment ids, kseg NULL = no packing. */
typedef struct attn_kernels {
    /* C[j, r] = sum_d X[j, d] * Yt[d, r], j < n, all QB lanes (Yt is QB wide) */
    void (*st)(int n, int hd, const float *X, int ldx, const float *Yt, float *C);
    /* Forward softmax step over an n-row score tile S (raw Q·Kᵀ): masks,
     * updates the lanes' running max m and sum l, sets corr = exp(m_old −
     * m_new) and leaves P = exp(scale·s − m_new) (0 where masked) in S. */
    void (*fwd_softmax)(int n, int R, int diag, float scale, const int32_t *kseg,
                        const int32_t *qseg, float *S, float *m, float *l, float *corr);
    /* Backward: S (raw Q·Kᵀ) := P = exp(scale·s − L), dP := dS = P·(dP − D)·scale
     * (both 0 where masked), L and D per lane. */
    void (*bwd_pds)(int n, int R, int diag, float scale, const int32_t *kseg,
                    const int32_t *qseg, const float *L, const float *D, float *S, float *dP);
    /* C[r, :hd] = (acc ? (rs ? rs[r] : 1) * C[r, :] : 0) + sum_j A[j, r] * B[j, :],
     * r < R, j < min(n, diag + r + 1): O = corr·O + P·V and dQ += dS·K. */
    void (*tn)(int R, int n, int hd, int diag, const float *A, const float *B, int ldb, float *C,
               int ldc, const float *rs, bool acc);
    /* C[j, :hd] += sum_{r < R} A[j, r] * B[r, :], j < n: dV += Pᵀ·dO, dK += dSᵀ·Q
     * (lanes r < j − diag are zero in A and may be skipped). */
    void (*nn_acc)(int n, int R, int hd, int diag, const float *A, const float *B, int ldb,
                   float *C, int ldc);
    /* One query row q against n keys (rows of K, V with stride ks): the online
     * softmax step on (m, l) and o = corr·o + p·V (o set when first). sb: n
     * floats of scratch. */
    void (*row)(int n, int hd, const float *q, const float *K, const float *V, int ks, float scale,
                const int32_t *kseg, int32_t qseg, float *sb, float *m, float *l, float *o,
                bool first);
    /* xt (hd, QB) := rows [0, R) of x (stride ldx) transposed, lanes past R
     * zero (their scores are masked anyway; zeros keep them finite) */
    void (*pack)(float *xt, const float *x, int ldx, int R, int hd);
    /* d[r] = sum_i a[r, i] * b[r, i], r < R (rows of stride ld) */
    void (*rowdot)(float *d, const float *a, const float *b, int ld, int R, int hd);
} attn_kernels;

/* ---- portable kernels: the same loops and masks as the AVX-512 ones ---- */

static bool live_c(int j, int r, int R, int diag, const int32_t *kseg, const int32_t *qseg) {
    return r < R && j <= diag + r && (!kseg || kseg[j] == qseg[r]);
}

static void st_c(int n, int hd, const float *X, int ldx, const float *Yt, float *C) {
    for (int j = 0; j < n; j++) {
        float *c = C + (size_t)j * QB;
        memset(c, 0, sizeof(float) * QB);
        for (int d = 0; d < hd; d++) {
            float x = X[(size_t)j * ldx + d];
            const float *y = Yt + (size_t)d * QB;
            for (int r = 0; r < QB; r++) c[r] += x * y[r];
        }
    }
}

static void fwd_softmax_c(int n, int R, int diag, float scale, const int32_t *kseg,
                          const int32_t *qseg, float *S, float *m, float *l, float *corr) {
    for (int r = 0; r < QB; r++) {
        float mx = m[r];
        for (int j = 0; j < n; j++) {
            float *s = S + (size_t)j * QB + r;
            *s = live_c(j, r, R, diag, kseg, qseg) ? *s * scale : -INFINITY;
            if (*s > mx) mx = *s;
        }
        float ms = mx == -INFINITY ? 0.0f : mx; /* no live key yet: exp(-inf − 0) = 0 */
        float c = m[r] == -INFINITY ? 0.0f : expf(m[r] - ms), sum = 0;
        for (int j = 0; j < n; j++) {
            float *s = S + (size_t)j * QB + r;
            *s = *s == -INFINITY ? 0.0f : expf(*s - ms);
            sum += *s;
        }
        l[r] = l[r] * c + sum;
        m[r] = mx;
        corr[r] = c;
    }
}

static void bwd_pds_c(int n, int R, int diag, float scale, const int32_t *kseg,
                      const int32_t *qseg, const float *L, const float *D, float *S, float *dP) {
    for (int j = 0; j < n; j++)
        for (int r = 0; r < QB; r++) {
            size_t i = (size_t)j * QB + r;
            float p = live_c(j, r, R, diag, kseg, qseg) ? expf(S[i] * scale - L[r]) : 0.0f;
            S[i] = p;
            dP[i] = p * (dP[i] - D[r]) * scale;
        }
}

static void tn_c(int R, int n, int hd, int diag, const float *A, const float *B, int ldb,
                 float *C, int ldc, const float *rs, bool acc) {
    for (int r = 0; r < R; r++) {
        float *c = C + (size_t)r * ldc;
        if (!acc) memset(c, 0, sizeof(float) * hd);
        else if (rs)
            for (int i = 0; i < hd; i++) c[i] *= rs[r];
        int nk = min_i(max_i(diag + r + 1, 0), n);
        for (int j = 0; j < nk; j++) {
            float a = A[(size_t)j * QB + r];
            if (a == 0.0f) continue;
            const float *b = B + (size_t)j * ldb;
            for (int i = 0; i < hd; i++) c[i] += a * b[i];
        }
    }
}

static void nn_acc_c(int n, int R, int hd, int diag, const float *A, const float *B, int ldb,
                     float *C, int ldc) {
    for (int j = 0; j < n; j++) {
        float *c = C + (size_t)j * ldc;
        for (int r = max_i(j - diag, 0); r < R; r++) {
            float a = A[(size_t)j * QB + r];
            if (a == 0.0f) continue;
            const float *b = B + (size_t)r * ldb;
            for (int i = 0; i < hd; i++) c[i] += a * b[i];
        }
    }
}

static void row_c(int n, int hd, const float *q, const float *K, const float *V, int ks,
                  float scale, const int32_t *kseg, int32_t qseg, float *sb, float *m, float *l,
                  float *o, bool first) {
    float mx = *m;
    for (int j = 0; j < n; j++) {
        if (kseg && kseg[j] != qseg) {
            sb[j] = -INFINITY;
            continue;
        }
        const float *k = K + (size_t)j * ks;
        float d = 0;
        for (int i = 0; i < hd; i++) d += q[i] * k[i];
        sb[j] = d * scale;
        if (sb[j] > mx) mx = sb[j];
    }
    float ms = mx == -INFINITY ? 0.0f : mx;
    float c = *m == -INFINITY ? 0.0f : expf(*m - ms), sum = 0;
    if (first) memset(o, 0, sizeof(float) * hd);
    else
        for (int i = 0; i < hd; i++) o[i] *= c;
    for (int j = 0; j < n; j++) {
        if (sb[j] == -INFINITY) continue;
        float p = expf(sb[j] - ms);
        sum += p;
        const float *v = V + (size_t)j * ks;
        for (int i = 0; i < hd; i++) o[i] += p * v[i];
    }
    *l = *l * c + sum;
    *m = mx;
}

static void pack_c(float *xt, const float *x, int ldx, int R, int hd) {
    for (int d = 0; d < hd; d++) {
        float *row = xt + (size_t)d * QB;
        for (int r = 0; r < R; r++) row[r] = x[(size_t)r * ldx + d];
        for (int r = R; r < QB; r++) row[r] = 0.0f;
    }
}

static void rowdot_c(float *d, const float *a, const float *b, int ld, int R, int hd) {
    for (int r = 0; r < R; r++) {
        const float *x = a + (size_t)r * ld, *y = b + (size_t)r * ld;
        float s = 0;
        for (int i = 0; i < hd; i++) s += x[i] * y[i];
        d[r] = s;
    }
}

static const attn_kernels k_portable = {st_c,  fwd_softmax_c, bwd_pds_c, tn_c,
                                        nn_acc_c, row_c,       pack_c,    rowdot_c};

/* ---- AVX-512 kernels ---- */
#ifdef HN_HAVE_AVX512
#define AVX512 HN_AVX512

/* Lanes of vector v of a tile that are live for key row j: in range, causal,
 * and (packing) in the key's segment. */
/* Four vectors of a row at c0: plain loads when the 64 columns are all in
 * the row (masked loads cost 5-10% in the P·V-like kernels), masked for the
 * tail of an hd that is not a multiple of 64. */
AVX512 static inline void load4(__m512 b[4], const float *p, const __mmask16 m[4], bool full) {
    if (full) {
        b[0] = _mm512_loadu_ps(p), b[1] = _mm512_loadu_ps(p + 16);
        b[2] = _mm512_loadu_ps(p + 32), b[3] = _mm512_loadu_ps(p + 48);
    } else {
        b[0] = _mm512_maskz_loadu_ps(m[0], p), b[1] = _mm512_maskz_loadu_ps(m[1], p + 16);
        b[2] = _mm512_maskz_loadu_ps(m[2], p + 32), b[3] = _mm512_maskz_loadu_ps(m[3], p + 48);
    }
}

AVX512 static inline __mmask16 live_mask(__m512i lane, __mmask16 in_r, int j, int diag,
                                         const int32_t *kseg, __m512i qs) {
    __mmask16 m = in_r & _mm512_cmpge_epi32_mask(lane, _mm512_set1_epi32(j - diag));
    if (kseg) m &= _mm512_cmpeq_epi32_mask(qs, _mm512_set1_epi32(kseg[j]));
    return m;
}

/* KR keys x QB lanes per register block (16 or 24 accumulators). Keys past n
 * repeat the last key and are not stored, so the block is always full. */
enum { KR = QV == 2 ? 8 : 6 };
AVX512 static void st_avx512(int n, int hd, const float *X, int ldx, const float *Yt, float *C) {
    for (int j0 = 0; j0 < n; j0 += KR) {
        int nj = min_i(n - j0, KR);
        const float *xr[KR];
        for (int i = 0; i < KR; i++) xr[i] = X + (size_t)(j0 + min_i(i, nj - 1)) * ldx;
        __m512 acc[KR][QV];
        #pragma GCC unroll 8
        for (int i = 0; i < KR; i++)
            #pragma GCC unroll 4
            for (int v = 0; v < QV; v++) acc[i][v] = _mm512_setzero_ps();
        const float *y = Yt;
        for (int d = 0; d < hd; d++, y += QB) {
            __m512 yv[QV];
            #pragma GCC unroll 4
            for (int v = 0; v < QV; v++) yv[v] = _mm512_loadu_ps(y + 16 * v);
            #pragma GCC unroll 8
            for (int i = 0; i < KR; i++) {
                __m512 x = _mm512_set1_ps(xr[i][d]);
                #pragma GCC unroll 4
                for (int v = 0; v < QV; v++) acc[i][v] = _mm512_fmadd_ps(x, yv[v], acc[i][v]);
            }
        }
        /* constant trip counts wherever acc is indexed, so gcc keeps it in
         * registers (a variable bound made it spill every iteration) */
        #pragma GCC unroll 8
        for (int i = 0; i < KR; i++) {
            if (i >= nj) break;
            #pragma GCC unroll 4
            for (int v = 0; v < QV; v++) _mm512_storeu_ps(C + (size_t)(j0 + i) * QB + 16 * v, acc[i][v]);
        }
    }
}

AVX512 static void fwd_softmax_avx512(int n, int R, int diag, float scale, const int32_t *kseg,
                                      const int32_t *qseg, float *S, float *m, float *l,
                                      float *corr) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY), vs = _mm512_set1_ps(scale);
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int v = 0; v < QV; v++) {
        __m512i lane = _mm512_add_epi32(iota, _mm512_set1_epi32(16 * v));
        __mmask16 in_r = _mm512_cmplt_epi32_mask(lane, _mm512_set1_epi32(R));
        __m512i qs = kseg ? _mm512_loadu_si512(qseg + 16 * v) : _mm512_setzero_si512();
        __m512 mold = _mm512_loadu_ps(m + 16 * v), mx = mold;
        float *s = S + 16 * v;
        for (int j = 0; j < n; j++) {
            __mmask16 live = live_mask(lane, in_r, j, diag, kseg, qs);
            __m512 x = _mm512_mask_mul_ps(ninf, live, _mm512_loadu_ps(s + (size_t)j * QB), vs);
            _mm512_storeu_ps(s + (size_t)j * QB, x);
            mx = _mm512_max_ps(mx, x);
        }
        /* lanes with no live key yet use 0 as the max: exp(-inf − 0) = 0 */
        __m512 ms = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(mx, ninf, _CMP_NEQ_OQ), mx);
        __m512 c = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(mold, ninf, _CMP_NEQ_OQ),
                                       simd_exp512(_mm512_sub_ps(mold, ms)));
        __m512 sum = _mm512_setzero_ps();
        for (int j = 0; j < n; j++) {
            __m512 x = _mm512_loadu_ps(s + (size_t)j * QB);
            __mmask16 live = _mm512_cmp_ps_mask(x, ninf, _CMP_NEQ_OQ);
            __m512 p = _mm512_maskz_mov_ps(live, simd_exp512(_mm512_sub_ps(x, ms)));
            _mm512_storeu_ps(s + (size_t)j * QB, p);
            sum = _mm512_add_ps(sum, p);
        }
        __m512 lv = _mm512_loadu_ps(l + 16 * v);
        _mm512_storeu_ps(l + 16 * v, _mm512_add_ps(_mm512_mul_ps(lv, c), sum));
        _mm512_storeu_ps(m + 16 * v, mx);
        _mm512_storeu_ps(corr + 16 * v, c);
    }
}

AVX512 static void bwd_pds_avx512(int n, int R, int diag, float scale, const int32_t *kseg,
                                  const int32_t *qseg, const float *L, const float *D, float *S,
                                  float *dP) {
    const __m512 vs = _mm512_set1_ps(scale);
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int v = 0; v < QV; v++) {
        __m512i lane = _mm512_add_epi32(iota, _mm512_set1_epi32(16 * v));
        __mmask16 in_r = _mm512_cmplt_epi32_mask(lane, _mm512_set1_epi32(R));
        __m512i qs = kseg ? _mm512_loadu_si512(qseg + 16 * v) : _mm512_setzero_si512();
        __m512 lv = _mm512_loadu_ps(L + 16 * v), dv = _mm512_loadu_ps(D + 16 * v);
        float *s = S + 16 * v, *dp = dP + 16 * v;
        for (int j = 0; j < n; j++) {
            __mmask16 live = live_mask(lane, in_r, j, diag, kseg, qs);
            __m512 x = _mm512_sub_ps(_mm512_mul_ps(_mm512_loadu_ps(s + (size_t)j * QB), vs), lv);
            __m512 p = _mm512_maskz_mov_ps(live, simd_exp512(x));
            __m512 g = _mm512_sub_ps(_mm512_loadu_ps(dp + (size_t)j * QB), dv);
            _mm512_storeu_ps(s + (size_t)j * QB, p);
            _mm512_storeu_ps(dp + (size_t)j * QB, _mm512_mul_ps(_mm512_mul_ps(p, g), vs));
        }
    }
}

/* TR rows x 64 columns of hd per register block; rows past R repeat the last
 * row and are not stored. TR = 4 divides QB, so full blocks waste nothing
 * (6 rows left a 2-row block in 32). */
enum { TR = 4 };
AVX512 static void tn_avx512(int R, int n, int hd, int diag, const float *A, const float *B,
                             int ldb, float *C, int ldc, const float *rs, bool acc) {
    for (int r0 = 0; r0 < R; r0 += TR) {
        int nr = min_i(R - r0, TR), nk = min_i(max_i(diag + r0 + nr, 0), n);
        int ri[TR];
        for (int i = 0; i < TR; i++) ri[i] = r0 + min_i(i, nr - 1);
        for (int c0 = 0; c0 < hd; c0 += 64) {
            __mmask16 m[4];
            for (int q = 0; q < 4; q++) m[q] = simd_tail16(hd - c0 - 16 * q);
            __m512 a[TR][4];
            #pragma GCC unroll 8
            for (int i = 0; i < TR; i++) {
                const float *c = C + (size_t)ri[i] * ldc + c0;
                __m512 sc = _mm512_set1_ps(acc && rs ? rs[ri[i]] : 1.0f);
                #pragma GCC unroll 4
                for (int q = 0; q < 4; q++)
                    a[i][q] = acc ? _mm512_mul_ps(sc, _mm512_maskz_loadu_ps(m[q], c + 16 * q))
                                  : _mm512_setzero_ps();
            }
            const float *b = B + c0;
            const bool full = c0 + 64 <= hd;
            for (int j = 0; j < nk; j++, b += ldb) {
                __m512 bv[4];
                load4(bv, b, m, full);
                const float *aj = A + (size_t)j * QB;
                #pragma GCC unroll 8
                for (int i = 0; i < TR; i++) {
                    __m512 p = _mm512_set1_ps(aj[ri[i]]);
                    #pragma GCC unroll 4
                    for (int q = 0; q < 4; q++) a[i][q] = _mm512_fmadd_ps(p, bv[q], a[i][q]);
                }
            }
            #pragma GCC unroll 8
            for (int i = 0; i < TR; i++) {
                if (i >= nr) break;
                float *c = C + (size_t)(r0 + i) * ldc + c0;
                #pragma GCC unroll 4
                for (int q = 0; q < 4; q++) _mm512_mask_storeu_ps(c + 16 * q, m[q], a[i][q]);
            }
        }
    }
}

/* 6 keys x 64 columns of hd per register block; lanes before a key group's
 * first visible row are skipped (their entries are zero). The tile's sum is
 * added to C at the end, so C gets one rounding per tile. */
AVX512 static void nn_acc_avx512(int n, int R, int hd, int diag, const float *A, const float *B,
                                 int ldb, float *C, int ldc) {
    for (int c0 = 0; c0 < hd; c0 += 64) {
        __mmask16 m[4];
        for (int q = 0; q < 4; q++) m[q] = simd_tail16(hd - c0 - 16 * q);
        for (int j0 = 0; j0 < n; j0 += 6) {
            int nj = min_i(n - j0, 6), rb = max_i(j0 - diag, 0);
            if (rb >= R) break;
            const float *aj[6];
            for (int i = 0; i < 6; i++) aj[i] = A + (size_t)(j0 + min_i(i, nj - 1)) * QB;
            __m512 a[6][4];
            #pragma GCC unroll 6
            for (int i = 0; i < 6; i++) a[i][0] = a[i][1] = a[i][2] = a[i][3] = _mm512_setzero_ps();
            const bool full = c0 + 64 <= hd;
            for (int r = rb; r < R; r++) {
                __m512 bv[4];
                load4(bv, B + (size_t)r * ldb + c0, m, full);
                #pragma GCC unroll 6
                for (int i = 0; i < 6; i++) {
                    __m512 s = _mm512_set1_ps(aj[i][r]);
                    #pragma GCC unroll 4
                    for (int q = 0; q < 4; q++) a[i][q] = _mm512_fmadd_ps(s, bv[q], a[i][q]);
                }
            }
            #pragma GCC unroll 6
            for (int i = 0; i < 6; i++) {
                if (i >= nj) break;
                float *c = C + (size_t)(j0 + i) * ldc + c0;
                #pragma GCC unroll 4
                for (int q = 0; q < 4; q++) {
                    __m512 old = _mm512_maskz_loadu_ps(m[q], c + 16 * q);
                    _mm512_mask_storeu_ps(c + 16 * q, m[q], _mm512_add_ps(old, a[i][q]));
                }
            }
        }
    }
}

AVX512 static void row_avx512(int n, int hd, const float *q, const float *K, const float *V,
                              int ks, float scale, const int32_t *kseg, int32_t qseg, float *sb,
                              float *m, float *l, float *o, bool first) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    /* scores: one dot product per key, vectorised over hd */
    for (int j = 0; j < n; j++) {
        if (kseg && kseg[j] != qseg) {
            sb[j] = -INFINITY;
            continue;
        }
        const float *k = K + (size_t)j * ks;
        __m512 acc = _mm512_setzero_ps();
        for (int d = 0; d < hd; d += 16) {
            __mmask16 mk = simd_tail16(hd - d);
            acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, q + d), _mm512_maskz_loadu_ps(mk, k + d), acc);
        }
        sb[j] = _mm512_reduce_add_ps(acc) * scale;
    }
    __m512 vmx = _mm512_set1_ps(*m);
    for (int j = 0; j < n; j += 16)
        vmx = _mm512_max_ps(vmx, _mm512_mask_loadu_ps(ninf, simd_tail16(n - j), sb + j));
    float mx = _mm512_reduce_max_ps(vmx), ms = mx == -INFINITY ? 0.0f : mx;
    __m512 vms = _mm512_set1_ps(ms), sum = _mm512_setzero_ps();
    for (int j = 0; j < n; j += 16) {
        __mmask16 mk = simd_tail16(n - j);
        __m512 x = _mm512_mask_loadu_ps(ninf, mk, sb + j);
        __mmask16 live = _mm512_cmp_ps_mask(x, ninf, _CMP_NEQ_OQ);
        __m512 p = _mm512_maskz_mov_ps(live, simd_exp512(_mm512_sub_ps(x, vms)));
        _mm512_mask_storeu_ps(sb + j, mk, p);
        sum = _mm512_add_ps(sum, p);
    }
    float c = *m == -INFINITY ? 0.0f : expf(*m - ms);
    __m512 vc = _mm512_set1_ps(c);
    for (int c0 = 0; c0 < hd; c0 += 64) {
        __mmask16 mk[4];
        __m512 a[4];
        #pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            mk[i] = simd_tail16(hd - c0 - 16 * i);
            a[i] = first ? _mm512_setzero_ps()
                         : _mm512_mul_ps(vc, _mm512_maskz_loadu_ps(mk[i], o + c0 + 16 * i));
        }
        const float *v = V + c0;
        for (int j = 0; j < n; j++, v += ks) {
            if (sb[j] == 0.0f) continue;
            __m512 p = _mm512_set1_ps(sb[j]);
            #pragma GCC unroll 4
            for (int i = 0; i < 4; i++)
                a[i] = _mm512_fmadd_ps(p, _mm512_maskz_loadu_ps(mk[i], v + 16 * i), a[i]);
        }
        #pragma GCC unroll 4
        for (int i = 0; i < 4; i++) _mm512_mask_storeu_ps(o + c0 + 16 * i, mk[i], a[i]);
    }
    *l = *l * c + _mm512_reduce_add_ps(sum);
    *m = mx;
}

/* In-register 16 x 16 transpose (unpack, 4x4 shuffles, then 128-bit lane
 * shuffles in two rounds). */
AVX512 static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    #pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    #pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    #pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
    }
    #pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
}

/* 16 x 16 blocks through registers: a scalar transpose was ~10% of a pass */
AVX512 static void pack_avx512(float *xt, const float *x, int ldx, int R, int hd) {
    for (int r0 = 0; r0 < QB; r0 += 16)
        for (int d0 = 0; d0 < hd; d0 += 16) {
            __mmask16 md = simd_tail16(hd - d0);
            __m512 b[16];
            #pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                b[i] = r0 + i < R ? _mm512_maskz_loadu_ps(md, x + (size_t)(r0 + i) * ldx + d0)
                                  : _mm512_setzero_ps();
            transpose16(b);
            #pragma GCC unroll 16
            for (int i = 0; i < 16; i++) {
                if (d0 + i >= hd) break;
                _mm512_storeu_ps(xt + (size_t)(d0 + i) * QB + r0, b[i]);
            }
        }
}

AVX512 static void rowdot_avx512(float *d, const float *a, const float *b, int ld, int R, int hd) {
    for (int r = 0; r < R; r++) {
        const float *x = a + (size_t)r * ld, *y = b + (size_t)r * ld;
        __m512 acc = _mm512_setzero_ps();
        for (int i = 0; i < hd; i += 16) {
            __mmask16 m = simd_tail16(hd - i);
            acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), acc);
        }
        d[r] = _mm512_reduce_add_ps(acc);
    }
}

static const attn_kernels k_avx512 = {st_avx512,     fwd_softmax_avx512, bwd_pds_avx512,
                                      tn_avx512,     nn_acc_avx512,      row_avx512,
                                      pack_avx512,   rowdot_avx512};
#endif

static bool g_force_portable;

void attention_force_portable(bool on) { g_force_portable = on; }

static const attn_kernels *kernels_get(void) {
#ifdef HN_HAVE_AVX512
    if (!g_force_portable && simd_have_avx512()) return &k_avx512;
#endif
    return &k_portable;
}

/* ---- the oracle: one query row / one KV head at a time, straight loops ---- */

static void softmax_row_ref(float *a, int n, float scale) {
    float mx = -INFINITY;
    for (int s = 0; s < n; s++) {
        a[s] *= scale;
        if (a[s] > mx) mx = a[s];
    }
    float sum = 0;
    for (int s = 0; s < n; s++) {
        a[s] = a[s] == -INFINITY ? 0.0f : expf(a[s] - mx);
        sum += a[s];
    }
    float inv = 1.0f / sum;
    for (int s = 0; s < n; s++) a[s] *= inv;
}

void attention_forward_ref(float *out, float *att, const float *q, const float *k,
                           const float *v, int T, int S, int pos0, int Hq, int Hkv, int hd,
                           const int32_t *seg) {
    const int group = Hq / Hkv, qs = Hq * hd, ks = Hkv * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int h = 0; h < Hq; h++)
        for (int t = 0; t < T; t++) {
            const int kh = h / group, qpos = pos0 + t;
            const float *qt = q + (size_t)t * qs + (size_t)h * hd;
            float *a = att + ((size_t)h * T + t) * S;
            for (int s = 0; s <= qpos; s++) {
                if (seg && seg[s] != seg[qpos]) {
                    a[s] = -INFINITY;
                    continue;
                }
                const float *kk = k + (size_t)s * ks + (size_t)kh * hd;
                float d = 0;
                for (int i = 0; i < hd; i++) d += qt[i] * kk[i];
                a[s] = d;
            }
            softmax_row_ref(a, qpos + 1, scale);
            for (int s = qpos + 1; s < S; s++) a[s] = 0.0f;
            float *ot = out + (size_t)t * qs + (size_t)h * hd;
            memset(ot, 0, sizeof(float) * hd);
            for (int s = 0; s <= qpos; s++) {
                const float *vs = v + (size_t)s * ks + (size_t)kh * hd;
                for (int i = 0; i < hd; i++) ot[i] += a[s] * vs[i];
            }
        }
}

void attention_backward_ref(float *dq, float *dk, float *dv, const float *dout,
                            const float *att, const float *q, const float *k, const float *v,
                            int T, int S, int pos0, int Hq, int Hkv, int hd) {
    const int group = Hq / Hkv, qs = Hq * hd, ks = Hkv * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    memset(dk, 0, sizeof(float) * (size_t)S * ks);
    memset(dv, 0, sizeof(float) * (size_t)S * ks);
    for (int h = 0; h < Hq; h++) {
        const int kh = h / group;
        for (int t = 0; t < T; t++) {
            const int qpos = pos0 + t;
            const float *a = att + ((size_t)h * T + t) * S;
            const float *dot_ = dout + (size_t)t * qs + (size_t)h * hd;
            const float *qt = q + (size_t)t * qs + (size_t)h * hd;
            float *dqt = dq + (size_t)t * qs + (size_t)h * hd;
            memset(dqt, 0, sizeof(float) * hd);
            /* dp[s] = dout . v[s];  ds = p * (dp - sum(p*dp)) */
            float sum_pdp = 0;
            for (int s = 0; s <= qpos; s++) {
                const float *vs = v + (size_t)s * ks + (size_t)kh * hd;
                float dp = 0;
                for (int i = 0; i < hd; i++) dp += dot_[i] * vs[i];
                sum_pdp += a[s] * dp;
            }
            for (int s = 0; s <= qpos; s++) {
                float p = a[s];
                if (p == 0.0f) continue;
                const float *vs = v + (size_t)s * ks + (size_t)kh * hd;
                const float *kk = k + (size_t)s * ks + (size_t)kh * hd;
                float *dvs = dv + (size_t)s * ks + (size_t)kh * hd;
                float *dks = dk + (size_t)s * ks + (size_t)kh * hd;
                float dp = 0;
                for (int i = 0; i < hd; i++) dp += dot_[i] * vs[i];
                float ds = p * (dp - sum_pdp) * scale;
                for (int i = 0; i < hd; i++) {
                    dvs[i] += p * dot_[i];
                    dqt[i] += ds * kk[i];
                    dks[i] += ds * qt[i];
                }
            }
        }
    }
}

/* ---- the tiled passes ---- */

static size_t r16(size_t n) { return (n + 15) & ~(size_t)15; }

/* One thread's scratch, carved from its share of the caller's ws. */
typedef struct thread_ws {
    float *qt, *dot;            /* (hd, QB) transposed queries / output gradients */
    float *s, *dp;              /* (KB, QB) tiles */
    float *m, *l, *corr, *L, *D; /* (QB) per-lane statistics */
    int32_t *qseg;              /* (QB) segment of each lane's query */
    float *sb;                  /* (KB) row-path scores */
} thread_ws;

static size_t ws_per_thread(int hd) {
    return 2 * r16((size_t)QB * hd) + 2 * r16((size_t)KB * QB) + 6 * r16(QB) + r16(KB);
}

size_t attention_ws_floats(int hd, int threads) {
#ifdef _OPENMP
    if (threads <= 0) threads = omp_get_max_threads();
#endif
    return ws_per_thread(hd) * (size_t)(threads > 0 ? threads : 1);
}

static thread_ws ws_carve(float *p, int hd) {
    thread_ws w;
    w.qt = p, p += r16((size_t)QB * hd);
    w.dot = p, p += r16((size_t)QB * hd);
    w.s = p, p += r16((size_t)KB * QB);
    w.dp = p, p += r16((size_t)KB * QB);
    w.m = p, p += r16(QB);
    w.l = p, p += r16(QB);
    w.corr = p, p += r16(QB);
    w.L = p, p += r16(QB);
    w.D = p, p += r16(QB);
    w.qseg = (int32_t *)p, p += r16(QB);
    w.sb = p;
    return w;
}

/* Threads that fit in ws (at least 1 when ws holds one share). */
static int ws_threads(size_t ws_n, int hd) {
    size_t slots = ws_n / ws_per_thread(hd);
    int nth = 1;
#ifdef _OPENMP
    nth = omp_get_max_threads();
#endif
    return slots < (size_t)nth ? (int)slots : nth;
}

static void lanes_seg(int32_t *qseg, const int32_t *seg, int first, int R) {
    for (int r = 0; r < QB; r++) qseg[r] = seg && r < R ? seg[first + r] : 0;
}

/* Forward of query rows [t0, t0 + R) of head h of sequence b. */
static void fwd_block(const attn_kernels *K, const thread_ws *w, const attn_shape *sh, float *out,
                      float *lse, const float *q, const float *k, const float *v, int b, int h,
                      int t0, int R) {
    const int T = sh->T, S = sh->S, pos0 = sh->pos0, hd = sh->hd, qs = sh->Hq * hd;
    const int ks = sh->Hkv * hd, kh = h / (sh->Hq / sh->Hkv), nk = pos0 + t0 + R;
    const float scale = 1.0f / sqrtf((float)hd);
    const float *kb = k + (size_t)b * S * ks + (size_t)kh * hd;
    const float *vb = v + (size_t)b * S * ks + (size_t)kh * hd;
    const int32_t *seg = sh->seg ? sh->seg + (size_t)b * S : NULL;
    float *o = out + ((size_t)b * T + t0) * qs + (size_t)h * hd;
    K->pack(w->qt, q + ((size_t)b * T + t0) * qs + (size_t)h * hd, qs, R, hd);
    lanes_seg(w->qseg, seg, pos0 + t0, R);
    for (int r = 0; r < QB; r++) w->m[r] = -INFINITY, w->l[r] = 0.0f;
    for (int j0 = 0; j0 < nk; j0 += KB) {
        const int n = min_i(KB, nk - j0), diag = pos0 + t0 - j0;
        K->st(n, hd, kb + (size_t)j0 * ks, ks, w->qt, w->s);
        K->fwd_softmax(n, R, diag, scale, seg ? seg + j0 : NULL, w->qseg, w->s, w->m, w->l, w->corr);
        K->tn(R, n, hd, diag, w->s, vb + (size_t)j0 * ks, ks, o, qs, w->corr, j0 > 0);
    }
    for (int r = 0; r < R; r++) { /* every row sees its own key: l > 0 */
        float inv = 1.0f / w->l[r], *orow = o + (size_t)r * qs;
        for (int i = 0; i < hd; i++) orow[i] *= inv;
        if (lse) lse[((size_t)b * sh->Hq + h) * T + t0 + r] = w->m[r] + logf(w->l[r]);
    }
}

/* Forward of query row t of head h of sequence b, vectorised over hd. */
static void fwd_row(const attn_kernels *K, const thread_ws *w, const attn_shape *sh, float *out,
                    float *lse, const float *q, const float *k, const float *v, int b, int h,
                    int t) {
    const int T = sh->T, S = sh->S, hd = sh->hd, qs = sh->Hq * hd, ks = sh->Hkv * hd;
    const int kh = h / (sh->Hq / sh->Hkv), qpos = sh->pos0 + t;
    const float scale = 1.0f / sqrtf((float)hd);
    const float *kb = k + (size_t)b * S * ks + (size_t)kh * hd;
    const float *vb = v + (size_t)b * S * ks + (size_t)kh * hd;
    const int32_t *seg = sh->seg ? sh->seg + (size_t)b * S : NULL;
    const float *qr = q + ((size_t)b * T + t) * qs + (size_t)h * hd;
    float *o = out + ((size_t)b * T + t) * qs + (size_t)h * hd, m = -INFINITY, l = 0.0f;
    for (int j0 = 0; j0 <= qpos; j0 += KB)
        K->row(min_i(KB, qpos + 1 - j0), hd, qr, kb + (size_t)j0 * ks, vb + (size_t)j0 * ks, ks,
               scale, seg ? seg + j0 : NULL, seg ? seg[qpos] : 0, w->sb, &m, &l, o, j0 == 0);
    float inv = 1.0f / l;
    for (int i = 0; i < hd; i++) o[i] *= inv;
    if (lse) lse[((size_t)b * sh->Hq + h) * T + t] = m + logf(l);
}

hn_status attention_forward(const attn_shape *sh, float *out, float *lse, const float *q,
                            const float *k, const float *v, float *ws, size_t ws_n) {
    const attn_kernels *K = kernels_get();
    const int B = sh->B, T = sh->T, Hq = sh->Hq, pos0 = sh->pos0;
    const int nth_max = ws ? ws_threads(ws_n, sh->hd) : 0;
    if (nth_max < 1 || sh->S != pos0 + T || Hq % sh->Hkv) return HN_EINVAL;
    /* items: (sequence, head, block of QB rows), or single rows when T is small;
     * cost = causal key count (+ a per-item overhead) */
    const bool rows = T <= ROW_T;
    const int per = rows ? 1 : QB, nb = (T + per - 1) / per;
    long total = 0;
    for (int i = 0; i < nb; i++) total += pos0 + min_i((i + 1) * per, T) + per;
    total *= (long)B * Hq;
    const long work = (long)B * Hq * T * sh->S * sh->hd;
    #pragma omp parallel num_threads(nth_max) if (work > 1L << 16)
    {
        int nth = 1, id = 0;
#ifdef _OPENMP
        nth = omp_get_num_threads(), id = omp_get_thread_num();
#endif
        thread_ws w = ws_carve(ws + ws_per_thread(sh->hd) * (size_t)id, sh->hd);
        long cum = 0;
        /* an item belongs to the thread whose share of the total cost holds
         * the item's midpoint: a fixed partition of fixed computations */
        for (int b = 0; b < B; b++)
            for (int h = 0; h < Hq; h++)
                for (int i = 0; i < nb; i++) {
                    const int t0 = i * per, R = min_i(per, T - t0);
                    long c = pos0 + t0 + R + per, mid = cum + c / 2;
                    cum += c;
                    if ((int)(mid * nth / total) != id) continue;
                    if (rows) fwd_row(K, &w, sh, out, lse, q, k, v, b, h, t0);
                    else fwd_block(K, &w, sh, out, lse, q, k, v, b, h, t0, R);
                }
    }
    return HN_OK;
}

/* Backward of KV head kh of sequence b: dq rows of its query group set,
 * dk/dv rows of the head set. */
static void bwd_head(const attn_kernels *K, const thread_ws *w, const attn_shape *sh, float *dq,
                     float *dk, float *dv, const float *dout, const float *out, const float *lse,
                     const float *q, const float *k, const float *v, int b, int kh) {
    const int T = sh->T, S = sh->S, pos0 = sh->pos0, hd = sh->hd, Hq = sh->Hq;
    const int group = Hq / sh->Hkv, qs = Hq * hd, ks = sh->Hkv * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    const size_t kvo = (size_t)b * S * ks + (size_t)kh * hd;
    const float *kb = k + kvo, *vb = v + kvo;
    float *dkb = dk + kvo, *dvb = dv + kvo;
    const int32_t *seg = sh->seg ? sh->seg + (size_t)b * S : NULL;
    for (int s = 0; s < S; s++) {
        memset(dkb + (size_t)s * ks, 0, sizeof(float) * hd);
        memset(dvb + (size_t)s * ks, 0, sizeof(float) * hd);
    }
    for (int h = kh * group; h < (kh + 1) * group; h++)
        for (int t0 = 0; t0 < T; t0 += QB) {
            const int R = min_i(QB, T - t0), nk = pos0 + t0 + R;
            const size_t qo = ((size_t)b * T + t0) * qs + (size_t)h * hd;
            const float *qr = q + qo, *dor = dout + qo, *orow = out + qo;
            const float *Lr = lse + ((size_t)b * Hq + h) * T + t0;
            K->pack(w->qt, qr, qs, R, hd);
            K->pack(w->dot, dor, qs, R, hd);
            lanes_seg(w->qseg, seg, pos0 + t0, R);
            K->rowdot(w->D, dor, orow, qs, R, hd); /* D = rowsum(dO ∘ O) */
            for (int r = 0; r < QB; r++) { /* idle lanes: finite */
                if (r >= R) w->D[r] = 0.0f;
                w->L[r] = r < R ? Lr[r] : 0.0f;
            }
            for (int j0 = 0; j0 < nk; j0 += KB) {
                const int n = min_i(KB, nk - j0), diag = pos0 + t0 - j0;
                const float *kj = kb + (size_t)j0 * ks, *vj = vb + (size_t)j0 * ks;
                K->st(n, hd, kj, ks, w->qt, w->s);   /* S = Q·Kᵀ */
                K->st(n, hd, vj, ks, w->dot, w->dp); /* dP = dO·Vᵀ */
                K->bwd_pds(n, R, diag, scale, seg ? seg + j0 : NULL, w->qseg, w->L, w->D, w->s, w->dp);
                K->tn(R, n, hd, diag, w->dp, kj, ks, dq + qo, qs, NULL, j0 > 0); /* dQ (+)= dS·K */
                K->nn_acc(n, R, hd, diag, w->s, dor, qs, dvb + (size_t)j0 * ks, ks); /* dV += Pᵀ·dO */
                K->nn_acc(n, R, hd, diag, w->dp, qr, qs, dkb + (size_t)j0 * ks, ks); /* dK += dSᵀ·Q */
            }
        }
}

hn_status attention_backward(const attn_shape *sh, float *dq, float *dk, float *dv,
                             const float *dout, const float *out, const float *lse,
                             const float *q, const float *k, const float *v, float *ws,
                             size_t ws_n) {
    const attn_kernels *K = kernels_get();
    const int B = sh->B, Hkv = sh->Hkv;
    const int nth_max = ws ? ws_threads(ws_n, sh->hd) : 0;
    if (nth_max < 1 || sh->S != sh->pos0 + sh->T || sh->Hq % Hkv) return HN_EINVAL;
    const long work = (long)B * sh->Hq * sh->T * sh->S * sh->hd;
    #pragma omp parallel num_threads(nth_max) if (work > 1L << 16)
    {
        int id = 0;
#ifdef _OPENMP
        id = omp_get_thread_num();
#endif
        thread_ws w = ws_carve(ws + ws_per_thread(sh->hd) * (size_t)id, sh->hd);
        #pragma omp for schedule(static)
        for (int i = 0; i < B * Hkv; i++)
            bwd_head(K, &w, sh, dq, dk, dv, dout, out, lse, q, k, v, i / Hkv, i % Hkv);
    }
    return HN_OK;
}
