/* test_gemm_q8.c — the Q8_0 weight products (tensor/gemm_q8.h):
 *   - quantization: gemm_q8_quantize (vectorised where the CPU has VNNI)
 *     writes the bytes of ggml's quantize_row_q8_0_ref, written out here as
 *     the oracle (ties at .5, NaN, infinity included), and so does
 *     gguf_quantize_q8_0; quantizing a Q8_0 block's dequantized values
 *     again gives the block back byte for byte (outliers, all-zero blocks,
 *     scales down in f16's subnormal range) — except a block whose scale
 *     underflowed f16 to 0, which stands for zeros and comes back as zeros;
 *   - the portable kernel (the oracle) against the product of the dequantized
 *     weights with the exact activations, within the activation quantization
 *     error: |y - Σ w·x| <= Σ_b (d_x,b / 2) Σ_k∈b |w_k| (+ float slack);
 *   - the AVX512-VNNI kernel against the oracle on random shapes (M and N odd
 *     and even, 1 to 70 rows, K from 32 to 2080 with odd block counts,
 *     accumulate on and off, rows of zeros and outliers). Both see the same
 *     integers, so they differ only in the order of f32 additions:
 *     |y - y_ref| <= 1e-5 · Σ|terms|;
 *   - the weight cache behind gemm_xwt_w: marked ranges only, K % 32 == 0
 *     only, one copy per (weight, version), re-quantized after a version bump,
 *     the copy's bytes are gguf_quantize_q8_0's, freed by
 *     gemm_weight_cache_clear. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/num.h"
#include "base/rng.h"
#include "format/gguf.h"
#include "tensor/gemm.h"
#include "tensor/gemm_q8.h"
#include "test.h"

static hn_rng g_rng;

/* Values in [-1, 1) with some structure: every 7th block all zero, one
 * outlier (x40) in every 5th block, every 11th block small (1e-4: scales
 * among f16's subnormals). */
static float *rand_vals(size_t n) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        size_t b = i / 32;
        float v = hn_rng_uniform(&g_rng) * 2.0f - 1.0f;
        if (b % 7 == 3) v = 0.0f;
        else if (b % 5 == 1 && i % 32 == 9) v *= 40.0f;
        else if (b % 11 == 5) v *= 1e-4f;
        p[i] = v;
    }
    return p;
}

/* A Q8_0 matrix of W (rows × cols) for the kernels: quants + 128, f16 scales. */
typedef struct qmat {
    gemm_q8_mat m;
    uint8_t *u;
    uint16_t *d;
    float *deq; /* the values the matrix stands for */
} qmat;

static qmat qmat_make(const float *W, int rows, int cols) {
    size_t n = (size_t)rows * cols;
    qmat q;
    q.u = malloc(n);
    q.d = malloc(n / 32 * sizeof *q.d);
    q.deq = malloc(n * sizeof *q.deq);
    gemm_q8_quantize(W, n, q.d, (int8_t *)q.u);
    for (size_t i = 0; i < n; i++) {
        q.deq[i] = hn_f16_to_f32(q.d[i / 32]) * (float)(int8_t)q.u[i];
        q.u[i] ^= 0x80;
    }
    q.m = (gemm_q8_mat){rows, cols, q.u, q.d};
    return q;
}

static void qmat_free(qmat *q) {
    free(q->u);
    free(q->d);
    free(q->deq);
}

/* ggml's quantize_row_q8_0_ref, written out again as the oracle of the
 * (vectorised) gemm_q8_quantize. */
static void ggml_quantize_ref(const float *x, size_t n, unsigned char *out) {
    for (size_t b = 0; b < n / 32; b++, out += 34) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
        const float d = amax / ((1 << 7) - 1), id = d ? 1.0f / d : 0.0f;
        uint16_t h = hn_f32_to_f16(d);
        out[0] = (unsigned char)(h & 0xff);
        out[1] = (unsigned char)(h >> 8);
        for (int j = 0; j < 32; j++) {
            float v = roundf(x[b * 32 + j] * id);
            v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
            out[2 + j] = (unsigned char)(int8_t)(v == v ? (int)v : 0);
        }
    }
}

static void check_quantize(void) {
    size_t n = 32 * 200;
    float *x = rand_vals(n);
    x[5] = 3e-5f; /* a block whose scale is an f16 subnormal */
    for (int j = 0; j < 32; j++) x[32 * 150 + j] = (j - 16) * 1e-5f;
    for (int j = 0; j < 32; j++) x[32 * 151 + j] = (j - 16) * 1e-9f; /* d < f16's smallest */
    unsigned char *blocks = malloc(n / 32 * 34), *again = malloc(n / 32 * 34);
    uint16_t *d = malloc(n / 32 * sizeof *d);
    int8_t *q = malloc(n);
    /* values whose x/d lands exactly on .5, NaN and infinity (in blocks of their own) */
    for (int j = 0; j < 32; j++) x[32 * 160 + j] = (float)(j - 16) * 0.5f * (127.0f / 8.0f) / 127.0f;
    x[32 * 161 + 3] = NAN;
    x[32 * 162 + 7] = INFINITY;
    x[32 * 162 + 8] = -1e30f;
    unsigned char *oracle = malloc(n / 32 * 34);
    ggml_quantize_ref(x, n, oracle);
    gguf_quantize_q8_0(x, blocks, n);
    gemm_q8_quantize(x, n, d, q);
    CHECK(!memcmp(oracle, blocks, n / 32 * 34), "%s quantizer differs from ggml's reference",
          gemm_q8_kernel_name());
    free(oracle);
    int same = 0;
    for (size_t b = 0; b < n / 32; b++)
        same += blocks[b * 34] == (d[b] & 0xff) && blocks[b * 34 + 1] == (d[b] >> 8) &&
                !memcmp(blocks + b * 34 + 2, q + b * 32, 32);
    CHECK(same == (int)(n / 32), "gguf_quantize_q8_0 and gemm_q8_quantize agree on %d of %zu blocks",
          same, n / 32);
    /* dequantize (as the GGUF reader does) and quantize again */
    float *deq = malloc(n * sizeof *deq);
    for (size_t i = 0; i < n; i++) deq[i] = hn_f16_to_f32(d[i / 32]) * (float)q[i];
    gguf_quantize_q8_0(deq, again, n);
    int differ = 0, flushed = 0;
    for (size_t b = 0; b < n / 32; b++) {
        if (!memcmp(blocks + b * 34, again + b * 34, 34) || b == 162) continue; /* 162: d = inf */
        /* a scale under f16's smallest subnormal is stored as 0 beside
         * nonzero quants (ggml does the same): the block stands for zeros,
         * and comes back as d = 0, q = 0 — the same values */
        bool zeros = !blocks[b * 34] && !blocks[b * 34 + 1] && !again[b * 34] && !again[b * 34 + 1];
        for (int j = 0; zeros && j < 32; j++) zeros = again[b * 34 + 2 + j] == 0;
        if (zeros) flushed++;
        else differ++;
    }
    CHECK(differ == 0, "re-quantizing dequantized Q8_0 changes %d blocks", differ);
    CHECK(flushed == 1, "%d blocks with a flushed scale (want the 1 built for it)", flushed);
    bool zero_ok = true;
    for (int j = 0; j < 32; j++) zero_ok &= q[32 * 3 + j] == 0;
    CHECK(zero_ok && d[3] == 0, "an all-zero block has d = 0 and q = 0");
    free(x), free(blocks), free(again), free(d), free(q), free(deq);
}

/* The oracle against the exact product of the dequantized weights. */
static void check_oracle(int M, int N, int K) {
    float *x = rand_vals((size_t)M * K), *W = rand_vals((size_t)N * K);
    float *y = malloc(sizeof(float) * M * N);
    qmat q = qmat_make(W, N, K);
    CHECK(gemm_q8_xwt_ref(M, x, &q.m, y, false), "out of memory");
    int bad = 0;
    double worst = 0;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = 0, bound = 0;
            for (int b = 0; b < K / 32; b++) {
                double amax = 0, wsum = 0;
                for (int k = b * 32; k < b * 32 + 32; k++) {
                    double w = q.deq[(size_t)n * K + k], xv = x[(size_t)m * K + k];
                    s += w * xv;
                    amax = fmax(amax, fabs(xv));
                    wsum += fabs(w);
                }
                bound += amax / 127.0 / 2.0 * wsum * (1 + 1e-5) + 1e-6 * wsum * amax;
            }
            double e = fabs(y[(size_t)m * N + n] - s);
            if (!(e <= bound + 1e-30)) bad++;
            if (bound > 0) worst = fmax(worst, e / bound);
        }
    CHECK(bad == 0, "oracle %dx%dx%d: %d outputs outside the quantization bound (worst %.3g of it)",
          M, N, K, bad, worst);
    qmat_free(&q);
    free(x), free(W), free(y);
}

/* The fast kernel against the oracle. */
static double check_kernel(int M, int N, int K, bool acc) {
    float *x = rand_vals((size_t)M * K), *W = rand_vals((size_t)N * K);
    size_t ny = (size_t)M * N;
    float *y = malloc(sizeof(float) * ny), *yr = malloc(sizeof(float) * ny);
    for (size_t i = 0; i < ny; i++) y[i] = yr[i] = acc ? hn_rng_uniform(&g_rng) : NAN;
    if (M > 2)
        for (int k = 0; k < K; k++) x[(size_t)K + k] = 0.0f; /* row 1 all zero */
    qmat q = qmat_make(W, N, K);
    CHECK(gemm_q8_xwt(M, x, &q.m, y, acc) && gemm_q8_xwt_ref(M, x, &q.m, yr, acc), "oom");
    int bad = 0;
    double worst = 0;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double mag = acc ? fabs(yr[(size_t)m * N + n]) : 0;
            for (int k = 0; k < K; k++)
                mag += fabs((double)q.deq[(size_t)n * K + k] * x[(size_t)m * K + k]) * 1.01;
            double e = fabs((double)y[(size_t)m * N + n] - yr[(size_t)m * N + n]);
            double lim = 1e-5 * mag + 1e-30;
            if (!(e <= lim)) bad++;
            if (mag > 0) worst = fmax(worst, e / mag);
        }
    CHECK(bad == 0, "%s vs oracle %dx%dx%d acc %d: %d outputs differ (worst %.3g relative)",
          gemm_q8_kernel_name(), M, N, K, acc, bad, worst);
    if (M > 2 && !acc) {
        bool zero = true;
        for (int n = 0; n < N; n++) zero &= y[(size_t)N + n] == 0.0f;
        CHECK(zero, "%dx%dx%d: an all-zero row of x gives exact zeros", M, N, K);
    }
    qmat_free(&q);
    free(x), free(W), free(y), free(yr);
    return worst;
}

/* gemm_xwt_w on marked weights: the cached copy's product and bytes. */
static void check_cache(void) {
    int T = 5, out = 70, in = 96, odd_in = 80;
    size_t nw = (size_t)out * in;
    float *slab = rand_vals(nw + (size_t)out * odd_in), *W = slab, *W2 = slab + nw;
    float *x = rand_vals((size_t)T * in), *y = malloc(sizeof(float) * T * out),
          *want = malloc(sizeof(float) * T * out);
    gemm_weight_cache_clear();
    size_t base_bytes = gemm_weight_cache_bytes();
    /* unmarked: the f32 product */
    CHECK(!gemm_q8_xwt_w(T, out, in, x, W, 1, y, false), "unmarked weight took the Q8_0 path");
    CHECK(gemm_q8_weights_add(slab, nw + (size_t)out * odd_in), "mark");
    for (int round = 0; round < 3; round++) {
        uint64_t version = round == 2 ? 2 : 1;
        if (round == 2)
            for (size_t i = 0; i < nw; i++) W[i] *= -0.5f;
        qmat q = qmat_make(W, out, in);
        CHECK(gemm_q8_xwt(T, x, &q.m, want, false), "oom");
        gemm_xwt_w(T, out, in, x, W, version, y, false);
        CHECK(!memcmp(y, want, sizeof(float) * T * out), "round %d: gemm_xwt_w != the Q8_0 product",
              round);
        CHECK(gemm_weight_cache_bytes() == base_bytes + nw + nw / 32 * 2,
              "round %d: cache holds %zu bytes", round, gemm_weight_cache_bytes());
        unsigned char *blocks = malloc(nw / 32 * 34), *mine = malloc(nw / 32 * 34);
        gguf_quantize_q8_0(W, blocks, nw);
        CHECK(gemm_q8_cached_blocks(W, out, in, version, mine) &&
                  !memcmp(blocks, mine, nw / 32 * 34),
              "round %d: the cached copy is not gguf_quantize_q8_0's blocks", round);
        free(blocks), free(mine);
        qmat_free(&q);
    }
    /* accumulate */
    float *y2 = malloc(sizeof(float) * T * out);
    memcpy(y2, y, sizeof(float) * T * out);
    gemm_xwt_w(T, out, in, x, W, 2, y2, true);
    int bad = 0;
    for (int i = 0; i < T * out; i++) bad += fabsf(y2[i] - 2 * y[i]) > 1e-5f * fabsf(y[i]) + 1e-30f;
    CHECK(bad == 0, "accumulate: %d outputs differ", bad);
    /* in % 32 != 0 stays f32 (exact against gemm_xwt) */
    float *xo = rand_vals((size_t)T * odd_in);
    gemm_xwt_w(T, out, odd_in, xo, W2, 1, y, false);
    gemm_xwt(T, out, odd_in, xo, W2, want, false);
    CHECK(!memcmp(y, want, sizeof(float) * T * out), "in %% 32 != 0 must stay f32");
    CHECK(!gemm_q8_cached_blocks(W2, out, odd_in, 1, y), "no Q8_0 copy for in = 80");
    /* removing the mark: f32 again */
    gemm_q8_weights_remove(slab);
    gemm_xwt_w(T, out, in, x, W, 2, y, false);
    gemm_xwt(T, out, in, x, W, want, false);
    CHECK(!memcmp(y, want, sizeof(float) * T * out), "unmarked again: must be f32");
    gemm_weight_cache_clear();
    CHECK(gemm_weight_cache_bytes() == 0, "cache cleared: %zu bytes", gemm_weight_cache_bytes());
    free(slab), free(x), free(y), free(want), free(y2), free(xo);
}

int main(void) {
    hn_rng_seed(&g_rng, 4242);
    /* pin the f32 backend the cache test compares against */
    gemm_set_backend(GEMM_OPENBLAS);
    check_quantize();
    check_oracle(1, 9, 32);
    check_oracle(3, 17, 224);
    check_oracle(2, 5, 800);
    fprintf(stderr, "test_gemm_q8: kernel %s\n", gemm_q8_kernel_name());
    const int Ms[] = {1, 2, 3, 4, 5, 7, 9, 17, 70};
    const int Ns[] = {1, 3, 4, 6, 17, 64, 129};
    const int Ks[] = {32, 64, 96, 512, 544, 800, 2080};
    double worst = 0;
    int c = 0;
    for (int i = 0; i < 9; i++)
        for (int j = 0; j < 7; j++)
            for (int k = 0; k < 7; k++, c++)
                if ((i + j + k) % 3 == 0 || Ms[i] == 1)
                    worst = fmax(worst, check_kernel(Ms[i], Ns[j], Ks[k], c % 2));
    /* big enough for the threaded path */
    worst = fmax(worst, check_kernel(1, 1030, 2048, false));
    worst = fmax(worst, check_kernel(64, 260, 768, true));
    fprintf(stderr, "test_gemm_q8: worst kernel vs oracle %.3g of sum |terms|\n", worst);
    check_cache();
    return test_finish("test_gemm_q8");
}
