/* attention.c — causal grouped-query attention, forward and backward
 * (attention_forward/attention_backward, declared in ops.h) and their oracle
 * (attention_forward_ref/attention_backward_ref).
 *
 * The per-head products (Q·Kᵀ and P·V forward; dO·Vᵀ, dS·K, Pᵀ·dO and dSᵀ·Q
 * backward) are small GEMMs: hd = 64 deep, a few hundred keys wide. Handing
 * them to a BLAS with its own thread pool was slower than scalar loops (each
 * call too small to amortise a parallel region, and the pthread OpenBLAS pool
 * spun against libgomp), so they run here as single-threaded, register-blocked
 * microkernels inside ONE OpenMP region per call:
 *   forward   over (query head x block of QB queries), split between threads
 *             by causal key count so the threads get equal work;
 *   backward  over KV heads: a KV head's dK/dV rows are sums over its whole
 *             query group, so one thread owns them and no reduction is needed.
 * Kᵀ (forward) and Vᵀ (backward) of the current head are packed into a
 * per-thread panel (hd x S) so the score kernels load keys contiguously and
 * vectorise over keys, not over the hd-long dot product.
 *
 * Every output element is computed by one thread in a fixed order, so results
 * do not depend on the thread count or schedule (resume/seed tests compare
 * bytes). Kernels: AVX-512 when the CPU has it (function target attribute and
 * a run-time check, so the build needs no -march), portable C otherwise; both
 * are tested against the _ref oracle (tests/unit/test_attention.c). The AVX-512
 * softmax uses simd_exp512 (simd.h, ~2 ulp) instead of libm's expf. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/attention_decode.h"
#include "tensor/ops.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#include "tensor/simd.h"

enum { QB = 32 }; /* query rows per block: a block's P rows (QB x S) stay in L2 */

/* One set of kernels. In all of them rows of a block are queries t0..t0+R-1
 * whose key range is causal: row r sees keys 0..diag+r (diag = position of
 * row 0), entries beyond are zero (P, dS) or need not be computed (scores). */
typedef struct attn_kernels {
    /* C[r, j] = sum_d A[r, d] * Bt[d, j], j < min(n, diag + r + 1) at least */
    void (*abt)(int R, int n, int hd, int diag, const float *A, int lda, const float *Bt,
                int ldb, float *C, int ldc);
    /* C[r, :hd] = sum_{j<n} P[r, j] * V[j, :hd]  (set) */
    void (*ab)(int R, int n, int hd, int diag, const float *P, int ldp, const float *V, int ldv,
               float *C, int ldc);
    /* D[j, :hd] += sum_r A[r, j] * X[r, :hd], j < n */
    void (*atb_acc)(int R, int n, int hd, int diag, const float *A, int lda, const float *X,
                    int ldx, float *D, int ldd);
    /* a[0..n): raw scores (-INFINITY = masked) -> probabilities of scale*a */
    void (*softmax_row)(float *a, int n, float scale);
    /* dp[0..n) := p * (dp - sum(p*dp)) * scale  (dS from dP and P) */
    void (*dsoftmax_row)(float *dp, const float *p, int n, float scale);
} attn_kernels;

/* ---- portable kernels: contiguous inner loops, no reductions across lanes ---- */

static void abt_c(int R, int n, int hd, int diag, const float *A, int lda, const float *Bt,
                  int ldb, float *C, int ldc) {
    for (int r = 0; r < R; r++) {
        int nr = diag + r + 1 < n ? diag + r + 1 : n;
        float *c = C + (size_t)r * ldc;
        memset(c, 0, sizeof(float) * nr);
        for (int d = 0; d < hd; d++) {
            float a = A[(size_t)r * lda + d];
            const float *b = Bt + (size_t)d * ldb;
            for (int j = 0; j < nr; j++) c[j] += a * b[j];
        }
    }
}

static void ab_c(int R, int n, int hd, int diag, const float *P, int ldp, const float *V,
                 int ldv, float *C, int ldc) {
    for (int r = 0; r < R; r++) {
        int nr = diag + r + 1 < n ? diag + r + 1 : n;
        float *c = C + (size_t)r * ldc;
        memset(c, 0, sizeof(float) * hd);
        for (int j = 0; j < nr; j++) {
            float p = P[(size_t)r * ldp + j];
            if (p == 0.0f) continue;
            const float *vj = V + (size_t)j * ldv;
            for (int i = 0; i < hd; i++) c[i] += p * vj[i];
        }
    }
}

static void atb_acc_c(int R, int n, int hd, int diag, const float *A, int lda, const float *X,
                      int ldx, float *D, int ldd) {
    for (int r = 0; r < R; r++) {
        int nr = diag + r + 1 < n ? diag + r + 1 : n;
        const float *x = X + (size_t)r * ldx;
        for (int j = 0; j < nr; j++) {
            float a = A[(size_t)r * lda + j];
            if (a == 0.0f) continue;
            float *d = D + (size_t)j * ldd;
            for (int i = 0; i < hd; i++) d[i] += a * x[i];
        }
    }
}

static void softmax_row_c(float *a, int n, float scale) {
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

static void dsoftmax_row_c(float *dp, const float *p, int n, float scale) {
    float dot = 0;
    for (int s = 0; s < n; s++) dot += p[s] * dp[s];
    for (int s = 0; s < n; s++) dp[s] = p[s] * (dp[s] - dot) * scale;
}

static const attn_kernels k_portable = {abt_c, ab_c, atb_acc_c, softmax_row_c, dsoftmax_row_c};

/* ---- AVX-512 kernels ---- */
#ifdef HN_HAVE_AVX512
#define AVX512 HN_AVX512

/* 8 rows x 32 keys per register block (16 accumulators). Rows past R repeat
 * the last row and are not stored, so the block is always full. */
AVX512 static void abt_avx512(int R, int n, int hd, int diag, const float *A, int lda,
                              const float *Bt, int ldb, float *C, int ldc) {
    for (int r0 = 0; r0 < R; r0 += 8) {
        int nr = R - r0 < 8 ? R - r0 : 8;
        int ncol = diag + r0 + nr < n ? diag + r0 + nr : n;
        const float *ar[8];
        for (int i = 0; i < 8; i++) ar[i] = A + (size_t)(r0 + (i < nr ? i : nr - 1)) * lda;
        for (int j = 0; j < ncol; j += 32) {
            __mmask16 m0 = simd_tail16(ncol - j), m1 = simd_tail16(ncol - j - 16);
            __m512 acc[8][2];
            #pragma GCC unroll 8
            for (int i = 0; i < 8; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
            const float *b = Bt + j;
            for (int d = 0; d < hd; d++, b += ldb) {
                __m512 b0 = _mm512_maskz_loadu_ps(m0, b), b1 = _mm512_maskz_loadu_ps(m1, b + 16);
                #pragma GCC unroll 8
                for (int i = 0; i < 8; i++) {
                    __m512 a = _mm512_set1_ps(ar[i][d]);
                    acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
                    acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
                }
            }
            /* constant trip counts everywhere acc is indexed, so gcc keeps it
             * in registers (a variable bound made it spill every iteration) */
            #pragma GCC unroll 8
            for (int i = 0; i < 8; i++) {
                if (i >= nr) break;
                float *c = C + (size_t)(r0 + i) * ldc + j;
                _mm512_mask_storeu_ps(c, m0, acc[i][0]);
                _mm512_mask_storeu_ps(c + 16, m1, acc[i][1]);
            }
        }
    }
}

/* 6 rows x 64 columns of hd per register block (24 accumulators). */
AVX512 static void ab_avx512(int R, int n, int hd, int diag, const float *P, int ldp,
                             const float *V, int ldv, float *C, int ldc) {
    for (int r0 = 0; r0 < R; r0 += 6) {
        int nr = R - r0 < 6 ? R - r0 : 6;
        int nk = diag + r0 + nr < n ? diag + r0 + nr : n;
        const float *pr[6];
        for (int i = 0; i < 6; i++) pr[i] = P + (size_t)(r0 + (i < nr ? i : nr - 1)) * ldp;
        for (int c0 = 0; c0 < hd; c0 += 64) {
            __mmask16 m[4];
            for (int q = 0; q < 4; q++) m[q] = simd_tail16(hd - c0 - 16 * q);
            __m512 acc[6][4];
            #pragma GCC unroll 6
            for (int i = 0; i < 6; i++)
                acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = _mm512_setzero_ps();
            const float *vj = V + c0;
            for (int j = 0; j < nk; j++, vj += ldv) {
                __m512 v0 = _mm512_maskz_loadu_ps(m[0], vj), v1 = _mm512_maskz_loadu_ps(m[1], vj + 16);
                __m512 v2 = _mm512_maskz_loadu_ps(m[2], vj + 32), v3 = _mm512_maskz_loadu_ps(m[3], vj + 48);
                #pragma GCC unroll 6
                for (int i = 0; i < 6; i++) {
                    __m512 p = _mm512_set1_ps(pr[i][j]);
                    acc[i][0] = _mm512_fmadd_ps(p, v0, acc[i][0]);
                    acc[i][1] = _mm512_fmadd_ps(p, v1, acc[i][1]);
                    acc[i][2] = _mm512_fmadd_ps(p, v2, acc[i][2]);
                    acc[i][3] = _mm512_fmadd_ps(p, v3, acc[i][3]);
                }
            }
            #pragma GCC unroll 6
            for (int i = 0; i < 6; i++) {
                if (i >= nr) break;
                float *c = C + (size_t)(r0 + i) * ldc + c0;
                _mm512_mask_storeu_ps(c, m[0], acc[i][0]);
                _mm512_mask_storeu_ps(c + 16, m[1], acc[i][1]);
                _mm512_mask_storeu_ps(c + 32, m[2], acc[i][2]);
                _mm512_mask_storeu_ps(c + 48, m[3], acc[i][3]);
            }
        }
    }
}

/* 6 keys x 64 columns of hd per register block; rows whose causal range ends
 * before the block's first key are skipped (their entries are zero). */
AVX512 static void atb_acc_avx512(int R, int n, int hd, int diag, const float *A, int lda,
                                  const float *X, int ldx, float *D, int ldd) {
    for (int c0 = 0; c0 < hd; c0 += 64) {
        __mmask16 m[4];
        for (int q = 0; q < 4; q++) m[q] = simd_tail16(hd - c0 - 16 * q);
        for (int j0 = 0; j0 < n; j0 += 6) {
            int nj = n - j0 < 6 ? n - j0 : 6;
            int rb = j0 - diag > 0 ? j0 - diag : 0;
            if (rb >= R) break;
            int jc[6];
            for (int i = 0; i < 6; i++) jc[i] = j0 + (i < nj ? i : nj - 1);
            __m512 acc[6][4];
            #pragma GCC unroll 6
            for (int i = 0; i < 6; i++)
                acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = _mm512_setzero_ps();
            for (int r = rb; r < R; r++) {
                const float *x = X + (size_t)r * ldx + c0, *a = A + (size_t)r * lda;
                __m512 x0 = _mm512_maskz_loadu_ps(m[0], x), x1 = _mm512_maskz_loadu_ps(m[1], x + 16);
                __m512 x2 = _mm512_maskz_loadu_ps(m[2], x + 32), x3 = _mm512_maskz_loadu_ps(m[3], x + 48);
                #pragma GCC unroll 6
                for (int i = 0; i < 6; i++) {
                    __m512 s = _mm512_set1_ps(a[jc[i]]);
                    acc[i][0] = _mm512_fmadd_ps(s, x0, acc[i][0]);
                    acc[i][1] = _mm512_fmadd_ps(s, x1, acc[i][1]);
                    acc[i][2] = _mm512_fmadd_ps(s, x2, acc[i][2]);
                    acc[i][3] = _mm512_fmadd_ps(s, x3, acc[i][3]);
                }
            }
            #pragma GCC unroll 6
            for (int i = 0; i < 6; i++) {
                if (i >= nj) break;
                float *d = D + (size_t)(j0 + i) * ldd + c0;
                #pragma GCC unroll 4
                for (int q = 0; q < 4; q++) {
                    __m512 old = _mm512_maskz_loadu_ps(m[q], d + 16 * q);
                    _mm512_mask_storeu_ps(d + 16 * q, m[q], _mm512_add_ps(old, acc[i][q]));
                }
            }
        }
    }
}

AVX512 static void softmax_row_avx512(float *a, int n, float scale) {
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
        __m512 x = _mm512_mask_loadu_ps(ninf, m, a + s);
        __mmask16 live = _mm512_cmp_ps_mask(x, ninf, _CMP_NEQ_OQ);
        __m512 e = _mm512_maskz_mov_ps(live, simd_exp512(_mm512_sub_ps(x, vmx)));
        _mm512_mask_storeu_ps(a + s, m, e);
        sum = _mm512_add_ps(sum, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (int s = 0; s < n; s += 16) {
        __mmask16 m = simd_tail16(n - s);
        _mm512_mask_storeu_ps(a + s, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, a + s), inv));
    }
}

AVX512 static void dsoftmax_row_avx512(float *dp, const float *p, int n, float scale) {
    __m512 dot = _mm512_setzero_ps();
    for (int s = 0; s < n; s += 16) {
        __mmask16 m = simd_tail16(n - s);
        dot = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, p + s), _mm512_maskz_loadu_ps(m, dp + s), dot);
    }
    __m512 vd = _mm512_set1_ps(_mm512_reduce_add_ps(dot)), vs = _mm512_set1_ps(scale);
    for (int s = 0; s < n; s += 16) {
        __mmask16 m = simd_tail16(n - s);
        __m512 x = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, dp + s), vd);
        x = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, p + s), x), vs);
        _mm512_mask_storeu_ps(dp + s, m, x);
    }
}

static const attn_kernels k_avx512 = {abt_avx512, ab_avx512, atb_acc_avx512, softmax_row_avx512,
                                      dsoftmax_row_avx512};
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

static void forward_ref_row(float *out, float *att, const float *q, const float *k,
                            const float *v, int T, int S, int pos0, int Hq, int Hkv, int hd,
                            const int32_t *seg, int h, int t) {
    const int group = Hq / Hkv, qs = Hq * hd, ks = Hkv * hd, kh = h / group, qpos = pos0 + t;
    const float scale = 1.0f / sqrtf((float)hd);
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
    softmax_row_c(a, qpos + 1, scale);
    for (int s = qpos + 1; s < S; s++) a[s] = 0.0f;
    float *ot = out + (size_t)t * qs + (size_t)h * hd;
    memset(ot, 0, sizeof(float) * hd);
    for (int s = 0; s <= qpos; s++) {
        const float *vs = v + (size_t)s * ks + (size_t)kh * hd;
        for (int i = 0; i < hd; i++) ot[i] += a[s] * vs[i];
    }
}

void attention_forward_ref(float *out, float *att, const float *q, const float *k,
                           const float *v, int T, int S, int pos0, int Hq, int Hkv, int hd,
                           const int32_t *seg) {
    for (int h = 0; h < Hq; h++)
        for (int t = 0; t < T; t++)
            forward_ref_row(out, att, q, k, v, T, S, pos0, Hq, Hkv, hd, seg, h, t);
}

/* dq rows of the group's query heads set; dk, dv rows of head kh accumulated. */
static void backward_ref_head(float *dq, float *dk, float *dv, const float *dout,
                              const float *att, const float *q, const float *k, const float *v,
                              int T, int Hq, int Hkv, int hd, int kh) {
    const int group = Hq / Hkv, qs = Hq * hd, ks = Hkv * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int h = kh * group; h < (kh + 1) * group; h++) {
        for (int t = 0; t < T; t++) {
            const float *a = att + ((size_t)h * T + t) * T;
            const float *dot_ = dout + (size_t)t * qs + (size_t)h * hd;
            const float *qt = q + (size_t)t * qs + (size_t)h * hd;
            float *dqt = dq + (size_t)t * qs + (size_t)h * hd;
            memset(dqt, 0, sizeof(float) * hd);
            /* dp[s] = dout . v[s];  ds = p * (dp - sum(p*dp)) */
            float sum_pdp = 0;
            for (int s = 0; s <= t; s++) {
                const float *vs = v + (size_t)s * ks + (size_t)kh * hd;
                float dp = 0;
                for (int i = 0; i < hd; i++) dp += dot_[i] * vs[i];
                sum_pdp += a[s] * dp;
            }
            for (int s = 0; s <= t; s++) {
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

void attention_backward_ref(float *dq, float *dk, float *dv, const float *dout,
                            const float *att, const float *q, const float *k, const float *v,
                            int T, int Hq, int Hkv, int hd) {
    memset(dk, 0, sizeof(float) * (size_t)T * Hkv * hd);
    memset(dv, 0, sizeof(float) * (size_t)T * Hkv * hd);
    for (int kh = 0; kh < Hkv; kh++)
        backward_ref_head(dq, dk, dv, dout, att, q, k, v, T, Hq, Hkv, hd, kh);
}

/* ---- the blocked kernels ---- */

static int round16(int n) { return (n + 15) & ~15; }

/* Transposes keys [from, to) of head kh (rows of x with stride ks) into the
 * panel xt (hd x ldt). */
static void pack_transposed(float *xt, int ldt, const float *x, int ks, int kh, int hd, int from,
                            int to) {
    for (int s = from; s < to; s++) {
        const float *row = x + (size_t)s * ks + (size_t)kh * hd;
        for (int d = 0; d < hd; d++) xt[(size_t)d * ldt + s] = row[d];
    }
}

/* Key count a forward query block attends to, its share of the work. */
static long block_cost(int qb, int T, int pos0) {
    int t1 = (qb + 1) * QB < T ? (qb + 1) * QB : T;
    return (long)pos0 + t1 + QB; /* + QB: per-block overhead (softmax rows, stores) */
}

static void forward_block(const attn_kernels *K, float *kt, int ldk, float *out, float *att,
                          const float *q, const float *v, int T, int S, int pos0, int Hq,
                          int Hkv, int hd, const int32_t *seg, int h, int qb) {
    const int qs = Hq * hd, ks = Hkv * hd, kh = h / (Hq / Hkv);
    const int t0 = qb * QB, t1 = t0 + QB < T ? t0 + QB : T, nk = pos0 + t1;
    const float scale = 1.0f / sqrtf((float)hd);
    float *a0 = att + ((size_t)h * T + t0) * S;
    K->abt(t1 - t0, nk, hd, pos0 + t0, q + (size_t)t0 * qs + (size_t)h * hd, qs, kt, ldk, a0, S);
    for (int t = t0; t < t1; t++) {
        float *a = a0 + (size_t)(t - t0) * S;
        int qpos = pos0 + t;
        if (seg)
            for (int s = 0; s <= qpos; s++)
                if (seg[s] != seg[qpos]) a[s] = -INFINITY;
        K->softmax_row(a, qpos + 1, scale);
        memset(a + qpos + 1, 0, sizeof(float) * (size_t)(S - qpos - 1));
    }
    K->ab(t1 - t0, nk, hd, pos0 + t0, a0, S, v + (size_t)kh * hd, ks,
          out + (size_t)t0 * qs + (size_t)h * hd, qs);
}

void attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                       int T, int S, int pos0, int Hq, int Hkv, int hd, const int32_t *seg) {
    const attn_kernels *K = kernels_get();
    const int group = Hq / Hkv, ks = Hkv * hd, nqb = (T + QB - 1) / QB, ldk = round16(S);
    long total = 0;
    for (int qb = 0; qb < nqb; qb++) total += block_cost(qb, T, pos0);
    total *= Hq;
    #pragma omp parallel if ((long)T * S * Hq * hd > 1L << 16)
    {
        int nth = 1, id = 0;
#ifdef _OPENMP
        nth = omp_get_num_threads(), id = omp_get_thread_num();
#endif
        float *kt = malloc(sizeof(float) * (size_t)hd * ldk);
        int packed_kh = -1, packed_n = 0;
        long cum = 0;
        /* items in (head, block) order; an item belongs to the thread whose
         * share of the total cost holds the item's midpoint */
        for (int h = 0; h < Hq; h++)
            for (int qb = 0; qb < nqb; qb++) {
                long c = block_cost(qb, T, pos0), mid = cum + c / 2;
                cum += c;
                if ((int)(mid * nth / total) != id) continue;
                if (!kt) { /* no panel: the oracle, row by row */
                    int t1 = (qb + 1) * QB < T ? (qb + 1) * QB : T;
                    for (int t = qb * QB; t < t1; t++)
                        forward_ref_row(out, att, q, k, v, T, S, pos0, Hq, Hkv, hd, seg, h, t);
                    continue;
                }
                int kh = h / group, nk = pos0 + ((qb + 1) * QB < T ? (qb + 1) * QB : T);
                if (T == 1 && !seg && !g_force_portable && /* decode: no panel (attention_decode.c) */
                    attention_decode_row(out + (size_t)h * hd, att + (size_t)h * S,
                                         q + (size_t)h * hd, k + (size_t)kh * hd,
                                         v + (size_t)kh * hd, pos0 + 1, S, ks, hd))
                    continue;
                if (kh != packed_kh) packed_kh = kh, packed_n = 0;
                if (packed_n < nk) {
                    pack_transposed(kt, ldk, k, ks, kh, hd, packed_n, nk);
                    packed_n = nk;
                }
                forward_block(K, kt, ldk, out, att, q, v, T, S, pos0, Hq, Hkv, hd, seg, h, qb);
            }
        free(kt);
    }
}

/* One KV head: dq rows of its query group set, dk/dv rows of the head set. */
static void backward_head(const attn_kernels *K, float *vt, float *ds, int ldk, float *dq,
                          float *dk, float *dv, const float *dout, const float *att,
                          const float *q, const float *k, const float *v, int T, int Hq,
                          int Hkv, int hd, int kh) {
    const int group = Hq / Hkv, qs = Hq * hd, ks = Hkv * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    float *dkh = dk + (size_t)kh * hd, *dvh = dv + (size_t)kh * hd;
    for (int s = 0; s < T; s++) {
        memset(dkh + (size_t)s * ks, 0, sizeof(float) * hd);
        memset(dvh + (size_t)s * ks, 0, sizeof(float) * hd);
    }
    pack_transposed(vt, ldk, v, ks, kh, hd, 0, T);
    for (int h = kh * group; h < (kh + 1) * group; h++)
        for (int t0 = 0; t0 < T; t0 += QB) {
            const int t1 = t0 + QB < T ? t0 + QB : T, R = t1 - t0, nk = t1;
            const float *P = att + ((size_t)h * T + t0) * T;
            const float *dO = dout + (size_t)t0 * qs + (size_t)h * hd;
            /* dP = dO·Vᵀ, then dS = P ∘ (dP − rowsum(P ∘ dP)) · scale, zero past the diagonal */
            K->abt(R, nk, hd, t0, dO, qs, vt, ldk, ds, ldk);
            for (int r = 0; r < R; r++) {
                float *dsr = ds + (size_t)r * ldk;
                K->dsoftmax_row(dsr, P + (size_t)r * T, t0 + r + 1, scale);
                memset(dsr + t0 + r + 1, 0, sizeof(float) * (size_t)(nk - t0 - r - 1));
            }
            K->ab(R, nk, hd, t0, ds, ldk, k + (size_t)kh * hd, ks,
                  dq + (size_t)t0 * qs + (size_t)h * hd, qs);
            K->atb_acc(R, nk, hd, t0, P, T, dO, qs, dvh, ks);
            K->atb_acc(R, nk, hd, t0, ds, ldk, q + (size_t)t0 * qs + (size_t)h * hd, qs, dkh, ks);
        }
}

void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att,
                        const float *q, const float *k, const float *v, int T, int Hq, int Hkv,
                        int hd) {
    const attn_kernels *K = kernels_get();
    const int ldk = round16(T);
    #pragma omp parallel if ((long)T * T * Hq * hd > 1L << 16)
    {
        float *vt = malloc(sizeof(float) * (size_t)hd * ldk);
        float *ds = malloc(sizeof(float) * (size_t)QB * ldk);
        #pragma omp for schedule(static)
        for (int kh = 0; kh < Hkv; kh++) {
            if (vt && ds) {
                backward_head(K, vt, ds, ldk, dq, dk, dv, dout, att, q, k, v, T, Hq, Hkv, hd, kh);
                continue;
            }
            const int ks = Hkv * hd; /* no scratch: the oracle */
            for (int s = 0; s < T; s++) {
                memset(dk + (size_t)s * ks + (size_t)kh * hd, 0, sizeof(float) * hd);
                memset(dv + (size_t)s * ks + (size_t)kh * hd, 0, sizeof(float) * hd);
            }
            backward_ref_head(dq, dk, dv, dout, att, q, k, v, T, Hq, Hkv, hd, kh);
        }
        free(vt);
        free(ds);
    }
}
