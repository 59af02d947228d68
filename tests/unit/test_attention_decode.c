/* test_attention_decode.c — the decode-step attention (tensor/attention_decode.h,
 * taken by attention_forward for T = 1) against the oracle
 * attention_forward_ref: head sizes 16 to 256 (one and several accumulator
 * passes), 1 to 300 cached keys (the 4-key blocks and their tails), grouped
 * query heads; probabilities zero past the query's position. Tolerance as in
 * test_attention: |x − x_ref| ≤ 5e-6 · max |x_ref|. Head sizes that are not a
 * multiple of 16 are declined (attention.c's general path takes them). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "tensor/attention_decode.h"
#include "tensor/ops.h"
#include "tensor/simd.h"
#include "test.h"

static hn_rng rng;

static float *rnd(size_t n, float amp) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (hn_rng_uniform(&rng) * 2.0f - 1.0f) * amp;
    return p;
}

static double max_rel(const float *x, const float *ref, size_t n) {
    double mx = 0, err = 0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(ref[i]));
    for (size_t i = 0; i < n; i++) err = fmax(err, fabs(x[i] - ref[i]));
    return mx > 0 ? err / mx : err;
}

static void check_step(int pos0, int Hq, int Hkv, int hd) {
    int S = pos0 + 1, qs = Hq * hd, ks = Hkv * hd;
    float *q = rnd((size_t)qs, 1.5f), *k = rnd((size_t)S * ks, 1.5f), *v = rnd((size_t)S * ks, 1.0f);
    float *out = malloc(sizeof(float) * qs), *out_ref = malloc(sizeof(float) * qs);
    float *att = rnd((size_t)Hq * S, 9.0f), *att_ref = malloc(sizeof(float) * Hq * S);
    attention_forward(out, att, q, k, v, 1, S, pos0, Hq, Hkv, hd, NULL);
    attention_forward_ref(out_ref, att_ref, q, k, v, 1, S, pos0, Hq, Hkv, hd, NULL);
    double eo = max_rel(out, out_ref, (size_t)qs), ea = max_rel(att, att_ref, (size_t)Hq * S);
    CHECK(eo <= 5e-6 && ea <= 5e-6, "decode pos0=%d Hq=%d Hkv=%d hd=%d: out %.2e att %.2e", pos0,
          Hq, Hkv, hd, eo, ea);
    free(q), free(k), free(v), free(out), free(out_ref), free(att), free(att_ref);
}

/* The row function itself: zeros past n, declines what it has no kernel for. */
static void check_row(void) {
    int hd = 64, n = 5, S = 9, ks = 2 * hd;
    float *q = rnd((size_t)hd, 1.0f), *k = rnd((size_t)S * ks, 1.0f), *v = rnd((size_t)S * ks, 1.0f);
    float out[64], a[9];
    for (int i = 0; i < S; i++) a[i] = 7.0f;
    bool ran = attention_decode_row(out, a, q, k, v, n, S, ks, hd);
    CHECK(ran == (bool)simd_have_avx512(), "decode kernel ran: %d", ran);
    if (ran) {
        double sum = 0;
        for (int i = 0; i < n; i++) sum += a[i];
        bool zeros = true;
        for (int i = n; i < S; i++) zeros &= a[i] == 0.0f;
        CHECK(fabs(sum - 1.0) < 1e-6 && zeros, "probabilities sum to %.8f, zeros past n: %d", sum,
              zeros);
    }
    CHECK(!attention_decode_row(out, a, q, k, v, n, S, ks, 8), "hd = 8 must be declined");
    free(q), free(k), free(v);
}

int main(void) {
    hn_rng_seed(&rng, 77);
    if (!simd_have_avx512()) fprintf(stderr, "test_attention_decode: no AVX-512: the general path\n");
    const int hds[] = {16, 32, 48, 64, 128, 160, 256};
    const int pos[] = {0, 1, 2, 3, 4, 5, 7, 15, 16, 17, 63, 100, 299};
    for (size_t i = 0; i < sizeof hds / sizeof hds[0]; i++)
        for (size_t j = 0; j < sizeof pos / sizeof pos[0]; j++)
            check_step(pos[j], (i % 2) ? 4 : 6, (i % 2) ? 4 : 2, hds[i]);
    check_step(127, 12, 12, 64); /* Llama-110M's heads: a parallel region over heads */
    check_row();
    return test_finish("test_attention_decode");
}
