/* test_gemm.c — every GEMM backend against the reference loop nest: random
 * matrices, all four transpose combinations, odd sizes, padded leading
 * dimensions, alpha/beta (including beta = 0 over a C full of NaN, which must
 * not leak), repeated calls (oneDNN's primitive cache) and the linear-layer
 * helpers. Tolerance per element, relative to the magnitude of the terms:
 *   |C - C_ref| <= tol * (|alpha| * sum_k |a_ik b_kj| + |beta c_ij|) + 1e-30
 * with tol = 1e-4 for f32 backends and 2^-7 for dnnl_bf16 (both inputs are
 * rounded to 8-bit mantissas, a relative error of at most ~2^-8 per product).
 * Also: the bf16 rounding itself, and the versioned bf16 weight cache. */
#include <math.h>
#include <stdlib.h>
#include <omp.h>
#include <string.h>

#include "base/rng.h"
#include "tensor/gemm.h"
#include "test.h"

static hn_rng g_rng;

static float *rand_mat(size_t n) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = hn_rng_uniform(&g_rng) * 2.0f - 1.0f;
    return p;
}

/* Checks one product with backend b against the double-precision truth. */
static void check_case(gemm_backend b, bool ta, bool tb, int M, int N, int K, float alpha,
                       float beta, int pad) {
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    size_t an = (size_t)(ta ? K : M) * lda, bn = (size_t)(tb ? N : K) * ldb,
           cn = (size_t)M * ldc;
    float *A = rand_mat(an), *B = rand_mat(bn), *C0 = rand_mat(cn);
    float *C = malloc(cn * sizeof *C);
    if (beta == 0.0f)
        for (size_t i = 0; i < cn; i++) C0[i] = NAN; /* beta = 0 must ignore C */
    memcpy(C, C0, cn * sizeof *C);
    gemm_set_backend(b);
    gemm_f32(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    double tol = b == GEMM_DNNL_BF16 ? 1.0 / 128 : 1e-4, worst = 0;
    int bad = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double bb = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += a * bb;
                mag += fabs(a * bb);
            }
            double c0 = C0[(size_t)i * ldc + j];
            double want = alpha * s + (beta != 0.0f ? beta * c0 : 0.0);
            double lim = tol * (fabs(alpha) * mag + (beta != 0.0f ? fabs(beta * c0) : 0.0)) + 1e-30;
            double err = fabs(C[(size_t)i * ldc + j] - want);
            if (!(err <= lim)) bad++;
            if (err / lim > worst || isnan(err)) worst = isnan(err) ? INFINITY : err / lim;
        }
    /* the padding columns of C must be untouched */
    for (int i = 0; i < M; i++)
        for (int j = N; j < ldc; j++)
            if (memcmp(&C[(size_t)i * ldc + j], &C0[(size_t)i * ldc + j], sizeof(float))) bad++;
    CHECK(bad == 0, "%s ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g pad=%d: %d bad, worst %.3g x tol",
          gemm_backend_name(b), ta, tb, M, N, K, alpha, beta, pad, bad, worst);
    free(A);
    free(B);
    free(C0);
    free(C);
}

static void check_backend(gemm_backend b) {
    static const int shapes[][3] = {{1, 1, 1},   {3, 5, 7},    {17, 13, 29}, {64, 48, 33},
                                    {1, 97, 65}, {70, 1, 130}, {33, 129, 257}};
    static const float ab[][2] = {{1, 0}, {0.5f, 1}, {-1.5f, 0.25f}};
    for (int s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++)
        for (int t = 0; t < 4; t++)
            for (int k = 0; k < 3; k++)
                check_case(b, t & 1, t >> 1, shapes[s][0], shapes[s][1], shapes[s][2], ab[k][0],
                           ab[k][1], (s + t + k) % 3 == 0 ? 3 : 0);
    /* the same shape again (cached primitive, new pointers) */
    for (int r = 0; r < 3; r++) check_case(b, false, true, 40, 24, 56, 1.0f, 1.0f, 0);
    /* a shape big enough for oneDNN's shape-specific primitive: the first call
     * runs with run-time dimensions, the second creates it, the third reuses it */
    for (int r = 0; r < 3; r++) check_case(b, r == 2, true, 130, 140, 150, 1.0f, 0.0f, 1);
    for (int r = 0; r < 3; r++) check_case(b, r == 2, true, 130, 140, 150, 1.0f, 0.0f, 1);
    /* K = 0: C = beta * C */
    float C[4] = {1, 2, 3, 4};
    gemm_set_backend(b);
    gemm_f32(false, false, 2, 2, 0, 1.0f, NULL, 1, NULL, 2, 0.5f, C, 2);
    CHECK(C[0] == 0.5f && C[3] == 2.0f, "%s K=0", gemm_backend_name(b));
}

/* gemm_xwt / gemm_xw / gemm_dw against explicit loops (f32 backends only). */
static void check_helpers(gemm_backend b) {
    int T = 9, out = 11, in = 13;
    float *x = rand_mat((size_t)T * in), *W = rand_mat((size_t)out * in),
          *dy = rand_mat((size_t)T * out);
    float *y = calloc((size_t)T * out, sizeof *y), *dx = calloc((size_t)T * in, sizeof *dx),
          *dW = calloc((size_t)out * in, sizeof *dW);
    gemm_set_backend(b);
    gemm_xwt(T, out, in, x, W, y, false);
    gemm_xw(T, out, in, dy, W, dx, false);
    gemm_dw(T, out, in, dy, x, dW, false);
    gemm_dw(T, out, in, dy, x, dW, true); /* accumulate: twice the product */
    double e1 = 0, e2 = 0, e3 = 0;
    for (int t = 0; t < T; t++)
        for (int o = 0; o < out; o++) {
            double s = 0;
            for (int i = 0; i < in; i++) s += (double)x[t * in + i] * W[o * in + i];
            e1 = fmax(e1, fabs(s - y[t * out + o]));
        }
    for (int t = 0; t < T; t++)
        for (int i = 0; i < in; i++) {
            double s = 0;
            for (int o = 0; o < out; o++) s += (double)dy[t * out + o] * W[o * in + i];
            e2 = fmax(e2, fabs(s - dx[t * in + i]));
        }
    for (int o = 0; o < out; o++)
        for (int i = 0; i < in; i++) {
            double s = 0;
            for (int t = 0; t < T; t++) s += (double)dy[t * out + o] * x[t * in + i];
            e3 = fmax(e3, fabs(2 * s - dW[o * in + i]));
        }
    double tol = b == GEMM_DNNL_BF16 ? 0.1 : 1e-4;
    CHECK(e1 < tol && e2 < tol && e3 < 2 * tol, "%s helpers: %g %g %g", gemm_backend_name(b), e1,
          e2, e3);
    free(x), free(W), free(dy), free(y), free(dx), free(dW);
}

/* gemm_round_bf16 against the bit-exact nearest-even rounding, ties, NaN,
 * infinities, and lengths that leave tails after the 32-wide vector loop. */
static uint16_t bf16_ref(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static void check_round_bf16(void) {
    enum { N = 77 };
    float src[N];
    uint16_t got[N];
    for (int i = 0; i < N; i++) src[i] = (hn_rng_uniform(&g_rng) - 0.5f) * 1e3f;
    src[0] = 1.0f + 1.0f / 256;           /* tie: rounds to even (1.0) */
    src[1] = 1.0f + 3.0f / 256;           /* tie: rounds to even (1 + 4/256) */
    src[2] = INFINITY, src[3] = -INFINITY, src[4] = NAN, src[5] = -0.0f, src[6] = 3.4e38f;
    for (int n = 1; n <= N; n += 19) {
        memset(got, 0, sizeof got);
        gemm_round_bf16(got, src, (size_t)n);
        int bad = 0;
        for (int i = 0; i < n; i++) {
            uint16_t want = bf16_ref(src[i]);
            bool nan_ok = isnan(src[i]) && (got[i] & 0x7f80) == 0x7f80 && (got[i] & 0x7f);
            if (got[i] != want && !nan_ok) bad++;
        }
        CHECK(bad == 0, "gemm_round_bf16 n=%d: %d differ", n, bad);
    }
}

/* Max over elements of |y - y_ref| / sum |terms| for y = x W^T (or dy W). */
static double rel_err_xwt(const float *x, const float *W, const float *y, int T, int out, int in,
                          bool xw) {
    double worst = 0;
    int rows_out = xw ? in : out, inner = xw ? out : in;
    for (int t = 0; t < T; t++)
        for (int o = 0; o < rows_out; o++) {
            double s = 0, mag = 0;
            for (int i = 0; i < inner; i++) {
                double w = xw ? W[(size_t)i * in + o] : W[(size_t)o * in + i];
                s += x[(size_t)t * inner + i] * w;
                mag += fabs(x[(size_t)t * inner + i] * w);
            }
            worst = fmax(worst, fabs(s - y[(size_t)t * rows_out + o]) / (mag + 1e-30));
        }
    return worst;
}

/* gemm_xwt_w / gemm_xw_w: right results on every backend; with dnnl_bf16 the
 * weight is converted once per version (cache size), re-converted after a
 * version bump and after its values change under the same address. */
static void check_weight_cache(gemm_backend b) {
    int T = 70, out = 96, in = 80;
    float *x = rand_mat((size_t)T * in), *W = rand_mat((size_t)out * in),
          *dy = rand_mat((size_t)T * out), *y = malloc(sizeof(float) * T * out),
          *dx = malloc(sizeof(float) * T * in);
    gemm_set_backend(b);
    gemm_weight_cache_clear();
    double tol = b == GEMM_DNNL_BF16 ? 1.0 / 128 : 1e-5;
    bool caches = b == GEMM_DNNL_BF16;
    size_t wbytes = (size_t)out * in * 2;
    for (int round = 0; round < 3; round++) {
        uint64_t version = round == 2 ? 7 : 1;
        if (round == 1)
            for (size_t i = 0; i < (size_t)out * in; i++) W[i] = -W[i]; /* same version */
        if (round == 2)
            for (size_t i = 0; i < (size_t)out * in; i++) W[i] *= 0.5f; /* bumped version */
        gemm_xwt_w(T, out, in, x, W, version, y, false);
        double e1 = rel_err_xwt(x, W, y, T, out, in, false);
        gemm_xw_w(T, out, in, dy, W, version, dx, false);
        double e2 = rel_err_xwt(dy, W, dx, T, out, in, true);
        CHECK(e1 <= tol && e2 <= tol, "%s weight cache round %d: %.3g %.3g", gemm_backend_name(b),
              round, e1, e2);
        CHECK(gemm_weight_cache_bytes() == (caches ? wbytes : 0), "%s: cache holds %zu bytes",
              gemm_backend_name(b), gemm_weight_cache_bytes());
    }
    gemm_weight_cache_clear();
    CHECK(gemm_weight_cache_bytes() == 0, "cache cleared");
    free(x), free(W), free(dy), free(y), free(dx);
}

/* gemv.c (decode-sized x·Wᵀ): f32 and bf16 weights against the double
 * reference, with accumulation, odd shapes and tails of every length; the
 * result does not depend on the thread count; gemm_xwt_w routes M <= 4 there. */
static void check_gemv_case(int M, int N, int K, bool acc) {
    float *x = rand_mat((size_t)M * K), *W = rand_mat((size_t)N * K);
    float *y0 = rand_mat((size_t)M * N), *y = malloc(sizeof(float) * M * N),
          *y1 = malloc(sizeof(float) * M * N);
    uint16_t *Wb = malloc(sizeof(uint16_t) * N * K);
    gemm_round_bf16(Wb, W, (size_t)N * K);
    /* layout 0: W is (N, K), y = x·Wᵀ; layout 1: W is (K, N), y = x·W */
    for (int lay = 0; lay < 2; lay++)
        for (int bf = 0; bf < 2; bf++) {
            double tol = bf ? 1.0 / 128 : 1e-5;
            for (int threads = 1; threads <= 2; threads++) {
                omp_set_num_threads(threads);
                float *out = threads == 1 ? y1 : y;
                memcpy(out, y0, sizeof(float) * M * N);
                if (lay == 0 && bf) gemv_xwt_bf16(M, N, K, x, Wb, out, acc);
                else if (lay == 0) gemv_xwt_f32(M, N, K, x, W, out, acc);
                else if (bf) gemv_xw_bf16(M, N, K, x, Wb, out, acc);
                else gemv_xw_f32(M, N, K, x, W, out, acc);
            }
            CHECK(!memcmp(y, y1, sizeof(float) * M * N),
                  "gemv %s layout %d M%d N%d K%d: 1 and 2 threads differ", bf ? "bf16" : "f32",
                  lay, M, N, K);
            double e = 0; /* |y - (acc ? y0 : 0) - x·W(ᵀ)| / (sum |terms| + |y0|) */
            for (int m = 0; m < M; m++)
                for (int n = 0; n < N; n++) {
                    double s = acc ? y0[m * N + n] : 0, mag = fabs(s);
                    for (int k = 0; k < K; k++) {
                        double w = lay ? W[(size_t)k * N + n] : W[(size_t)n * K + k];
                        s += (double)x[(size_t)m * K + k] * w;
                        mag += fabs((double)x[(size_t)m * K + k] * w);
                    }
                    e = fmax(e, fabs(s - y[m * N + n]) / (mag + 1e-30));
                }
            CHECK(e <= tol, "gemv %s layout %d M%d N%d K%d acc%d: rel err %.3g",
                  bf ? "bf16" : "f32", lay, M, N, K, acc, e);
        }
    free(x), free(W), free(y0), free(y), free(y1), free(Wb);
}

static void check_gemv(void) {
    const int Ms[] = {1, 2, 3, 4}, Ns[] = {1, 5, 67, 300}, Ks[] = {1, 15, 33, 100, 768, 2100}; /* 2100: x of 4 rows past gemv's stack buffer */
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++)
            for (int c = 0; c < 6; c++) check_gemv_case(Ms[a], Ns[b], Ks[c], (a + b + c) & 1);
    omp_set_num_threads(2);
    /* the route: gemm_xwt_w with 3 rows on each backend */
    int M = 3, N = 130, K = 200;
    float *x = rand_mat((size_t)M * K), *W = rand_mat((size_t)N * K), *y = rand_mat((size_t)M * N);
    for (int b = 0; b < GEMM_N_BACKENDS; b++) {
        if (!gemm_backend_available((gemm_backend)b)) continue;
        gemm_set_backend((gemm_backend)b);
        gemm_xwt_w(M, N, K, x, W, 3, y, false);
        double e = rel_err_xwt(x, W, y, M, N, K, false);
        CHECK(e <= (b == GEMM_DNNL_BF16 ? 1.0 / 128 : 1e-5), "gemm_xwt_w M3 on %s: %.3g",
              gemm_backend_name((gemm_backend)b), e);
        /* gemm_xw_w, the layout of GPT-2's Conv1D forward */
        gemm_xw_w(M, N, K, y, W, 3, x, false); /* x[M,K] = y[M,N] W[N,K] */
        e = rel_err_xwt(y, W, x, M, N, K, true);
        CHECK(e <= (b == GEMM_DNNL_BF16 ? 1.0 / 128 : 1e-5), "gemm_xw_w M3 on %s: %.3g",
              gemm_backend_name((gemm_backend)b), e);
    }
    gemm_weight_cache_clear();
    free(x), free(W), free(y);
}

int main(void) {
    hn_rng_seed(&g_rng, 1234);
    check_gemv();
    CHECK(gemm_backend_parse("openblas") == GEMM_OPENBLAS);
    CHECK(gemm_backend_parse("dnnl_bf16") == GEMM_DNNL_BF16);
    CHECK(gemm_backend_parse("nope") == GEMM_N_BACKENDS);
    for (int b = 0; b < GEMM_N_BACKENDS; b++) {
        if (!gemm_backend_available((gemm_backend)b)) {
            fprintf(stderr, "test_gemm: backend %s not built in, skipped\n",
                    gemm_backend_name((gemm_backend)b));
            continue;
        }
        check_backend((gemm_backend)b);
        check_helpers((gemm_backend)b);
        check_weight_cache((gemm_backend)b);
    }
    check_round_bf16();
    gemm_dnnl_release();
    return test_finish("test_gemm");
}
