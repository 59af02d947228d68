/* test_attention.c — the blocked attention kernels (AVX-512 and portable)
 * against the straight-loop oracle (attention_forward_ref/backward_ref):
 * head sizes that are and are not multiples of 16 (and above 64, which takes
 * two column passes), sequence lengths around the 32-row query block and the
 * 8/6-row register blocks, grouped-query heads, a KV-cache offset (pos0 > 0,
 * as in prefill after a prompt and in decode), packed segments; and that the
 * result is bitwise the same with one thread as with two.
 * Tolerance per element: |x − x_ref| ≤ 5e-6 · (max |x_ref| of the tensor),
 * summation order being the only difference (plus the AVX-512 exp, ~1 ulp). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "base/rng.h"
#include "tensor/ops.h"
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
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)x[i] - ref[i]);
        if (isnan(e)) return INFINITY;
        err = fmax(err, e);
    }
    return mx > 0 ? err / mx : err;
}

static void check_case(bool portable, int T, int pos0, int Hq, int Hkv, int hd, bool packed) {
    int S = pos0 + T, qs = Hq * hd, ks = Hkv * hd;
    size_t nq = (size_t)T * qs, nk = (size_t)S * ks, na = (size_t)Hq * T * S;
    float *q = rnd(nq, 2.0f), *k = rnd(nk, 2.0f), *v = rnd(nk, 1.0f), *dout = rnd(nq, 1.0f);
    float *out = malloc(nq * 4), *out_ref = malloc(nq * 4);
    float *att = malloc(na * 4), *att_ref = malloc(na * 4);
    memset(att, 0x7f, na * 4); /* every entry must be written */
    int32_t *seg = NULL;
    if (packed) {
        seg = malloc(sizeof(int32_t) * S);
        for (int s = 0, id = 0; s < S; s++) seg[s] = s > 0 && s % 7 == 3 ? ++id : id;
    }
    attention_force_portable(portable);
    attention_forward(out, att, q, k, v, T, S, pos0, Hq, Hkv, hd, seg);
    attention_forward_ref(out_ref, att_ref, q, k, v, T, S, pos0, Hq, Hkv, hd, seg);
    const char *kind = portable ? "portable" : "native";
    double e_out = max_rel(out, out_ref, nq), e_att = max_rel(att, att_ref, na);
    CHECK(e_out <= 5e-6 && e_att <= 5e-6, "%s forward T=%d pos0=%d Hq=%d Hkv=%d hd=%d seg=%d: out %.2e att %.2e",
          kind, T, pos0, Hq, Hkv, hd, packed, e_out, e_att);
    if (packed) { /* nothing may leak across segments */
        double leak = 0;
        for (int h = 0; h < Hq; h++)
            for (int t = 0; t < T; t++)
                for (int s = 0; s < S; s++)
                    if (s > pos0 + t || seg[s] != seg[pos0 + t])
                        leak = fmax(leak, fabs(att[((size_t)h * T + t) * S + s]));
        CHECK(leak == 0.0, "%s: probability %g outside the causal segment", kind, leak);
    }
    if (pos0 == 0) {
        float *g[3], *g_ref[3];
        size_t n[3] = {nq, nk, nk};
        for (int i = 0; i < 3; i++) {
            g[i] = malloc(n[i] * 4), g_ref[i] = malloc(n[i] * 4);
            memset(g[i], 0x7f, n[i] * 4); /* set, not accumulated */
        }
        attention_backward(g[0], g[1], g[2], dout, att_ref, q, k, v, T, Hq, Hkv, hd);
        attention_backward_ref(g_ref[0], g_ref[1], g_ref[2], dout, att_ref, q, k, v, T, Hq, Hkv, hd);
        static const char *names[3] = {"dq", "dk", "dv"};
        for (int i = 0; i < 3; i++) {
            double e = max_rel(g[i], g_ref[i], n[i]);
            CHECK(e <= 5e-6, "%s backward %s T=%d Hq=%d Hkv=%d hd=%d seg=%d: %.2e", kind,
                  names[i], T, Hq, Hkv, hd, packed, e);
        }
        /* one thread gives the same bytes as two */
        omp_set_num_threads(1);
        attention_forward(out_ref, att_ref, q, k, v, T, S, pos0, Hq, Hkv, hd, seg);
        attention_backward(g_ref[0], g_ref[1], g_ref[2], dout, att, q, k, v, T, Hq, Hkv, hd);
        omp_set_num_threads(2);
        attention_backward(g[0], g[1], g[2], dout, att, q, k, v, T, Hq, Hkv, hd);
        bool same = !memcmp(out, out_ref, nq * 4) && !memcmp(att, att_ref, na * 4);
        for (int i = 0; i < 3; i++) same = same && !memcmp(g[i], g_ref[i], n[i] * 4);
        CHECK(same, "%s T=%d Hq=%d hd=%d: 1 thread and 2 threads differ", kind, T, Hq, hd);
        for (int i = 0; i < 3; i++) free(g[i]), free(g_ref[i]);
    }
    free(q), free(k), free(v), free(dout), free(out), free(out_ref), free(att), free(att_ref);
    free(seg);
}

int main(void) {
    hn_rng_seed(&rng, 77);
    omp_set_num_threads(2);
    for (int portable = 0; portable < 2; portable++) {
        static const int Ts[] = {1, 5, 31, 32, 33, 70};
        for (size_t i = 0; i < sizeof Ts / sizeof *Ts; i++) {
            check_case(portable, Ts[i], 0, 4, 4, 64, false);
            check_case(portable, Ts[i], 0, 4, 2, 8, false);
        }
        check_case(portable, 45, 0, 6, 2, 80, false);   /* hd tail of 16 */
        check_case(portable, 40, 0, 2, 1, 128, false);  /* two column passes */
        check_case(portable, 50, 0, 4, 2, 64, true);    /* packed segments */
        check_case(portable, 37, 0, 3, 3, 20, true);
        check_case(portable, 1, 63, 4, 2, 64, false);   /* decode step */
        check_case(portable, 17, 40, 4, 4, 64, false);  /* prefill after a prompt */
        check_case(portable, 33, 20, 4, 2, 64, true);
        check_case(portable, 64, 0, 12, 12, 64, false); /* the 110M model's heads */
    }
    return test_finish("test_attention");
}
