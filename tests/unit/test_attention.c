/* test_attention.c — the tiled attention (attention_forward/_backward: AVX-512
 * and portable kernels) against the straight-loop oracle that materialises
 * the probabilities (attention_forward_ref/_backward_ref), per sequence:
 * - sequence lengths around the row path (T <= 4), the 32-row query block,
 *   the 64-key tile and the 8/6-row register blocks (odd T, T not a multiple
 *   of any tile), several key tiles per query block;
 * - head sizes 8, 20, 32, 64, 80 (a tail of 16) and 128 (two column passes);
 *   grouped-query heads (Hq != Hkv) and multi-head;
 * - B > 1 sequences in one call (the sequence strides);
 * - a KV-cache offset (pos0 > 0: prefill after a prompt, decode T = 1 with
 *   keys spanning several tiles), forward and backward;
 * - packed segments: the result matches the oracle, and changing the keys and
 *   values of one segment leaves every other segment's outputs bit for bit;
 * - the log-sum-exp rows against a double-precision sum;
 * - every output element written (outputs start as NaN);
 * - bitwise the same with one thread as with two, and with a scratch that
 *   holds one thread's share only; a scratch smaller than that is refused.
 * Tolerance per element: |x − x_ref| ≤ 5e-6 · (max |x_ref| of the tensor):
 * summation order and the online softmax's rescaling are the differences
 * (plus the AVX-512 exp, ~2 ulp). */
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

static float *nans(size_t n) {
    float *p = malloc(n * sizeof *p);
    memset(p, 0xff, n * sizeof *p); /* NaN: an element never written fails the comparison */
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

typedef struct tcase {
    int B, T, pos0, Hq, Hkv, hd;
    bool packed;
} tcase;

/* log sum_s exp(scale · q·k_s) over the keys row t of head h sees, in double */
static double lse_ref(const tcase *c, const float *q, const float *k, const int32_t *seg, int h,
                      int t) {
    const int qs = c->Hq * c->hd, ks = c->Hkv * c->hd, kh = h / (c->Hq / c->Hkv);
    const int qpos = c->pos0 + t;
    const double scale = 1.0 / sqrt((double)c->hd);
    double sc[1024], mx = -INFINITY, sum = 0;
    int n = 0;
    for (int s = 0; s <= qpos; s++) {
        if (seg && seg[s] != seg[qpos]) continue;
        double d = 0;
        for (int i = 0; i < c->hd; i++)
            d += (double)q[(size_t)t * qs + (size_t)h * c->hd + i] * k[(size_t)s * ks + (size_t)kh * c->hd + i];
        sc[n] = d * scale;
        mx = fmax(mx, sc[n++]);
    }
    for (int i = 0; i < n; i++) sum += exp(sc[i] - mx);
    return mx + log(sum);
}

static void check_case(bool portable, tcase c) {
    const int B = c.B, T = c.T, S = c.pos0 + T, Hq = c.Hq, Hkv = c.Hkv, hd = c.hd;
    const size_t qs = (size_t)Hq * hd, ks = (size_t)Hkv * hd;
    const size_t nq = (size_t)B * T * qs, nk = (size_t)B * S * ks, nl = (size_t)B * Hq * T;
    const size_t na = (size_t)Hq * T * S;
    float *q = rnd(nq, 2.0f), *k = rnd(nk, 2.0f), *v = rnd(nk, 1.0f), *dout = rnd(nq, 1.0f);
    float *out = nans(nq), *lse = nans(nl), *out_ref = malloc(nq * 4), *att = malloc(na * 4);
    int32_t *seg = NULL;
    if (c.packed) { /* segments of 7 (shifted per sequence), the first one short */
        seg = malloc(sizeof(int32_t) * B * S);
        for (int b = 0; b < B; b++)
            for (int s = 0, id = 0; s < S; s++)
                seg[(size_t)b * S + s] = s > 0 && (s + b) % 7 == 3 ? ++id : id;
    }
    size_t nws = attention_ws_floats(hd, 2);
    float *ws = malloc(nws * 4);
    attn_shape sh = {B, T, S, c.pos0, Hq, Hkv, hd, seg};
    attention_force_portable(portable);
    const char *kind = portable ? "portable" : "native";
    char what[160];
    snprintf(what, sizeof what, "%s B=%d T=%d pos0=%d Hq=%d Hkv=%d hd=%d seg=%d", kind, B, T,
             c.pos0, Hq, Hkv, hd, c.packed);

    CHECK(attention_forward(&sh, out, lse, q, k, v, ws, nws) == HN_OK, "%s: forward refused", what);
    double e_out = 0, e_lse = 0;
    float *dq = nans(nq), *dk = nans(nk), *dv = nans(nk);
    float *dq_ref = malloc(nq * 4), *dk_ref = malloc(nk * 4), *dv_ref = malloc(nk * 4);
    CHECK(attention_backward(&sh, dq, dk, dv, dout, out, lse, q, k, v, ws, nws) == HN_OK,
          "%s: backward refused", what);
    for (int b = 0; b < B; b++) {
        const float *qb = q + (size_t)b * T * qs, *kb = k + (size_t)b * S * ks;
        const float *vb = v + (size_t)b * S * ks, *dob = dout + (size_t)b * T * qs;
        const int32_t *sb = seg ? seg + (size_t)b * S : NULL;
        attention_forward_ref(out_ref + (size_t)b * T * qs, att, qb, kb, vb, T, S, c.pos0, Hq, Hkv,
                              hd, sb);
        attention_backward_ref(dq_ref + (size_t)b * T * qs, dk_ref + (size_t)b * S * ks,
                               dv_ref + (size_t)b * S * ks, dob, att, qb, kb, vb, T, S, c.pos0, Hq,
                               Hkv, hd);
        for (int h = 0; h < Hq; h++)
            for (int t = 0; t < T; t++) {
                double want = lse_ref(&c, qb, kb, sb, h, t);
                double got = lse[((size_t)b * Hq + h) * T + t];
                e_lse = fmax(e_lse, isnan(got) ? INFINITY : fabs(got - want) / (1 + fabs(want)));
            }
    }
    e_out = max_rel(out, out_ref, nq);
    CHECK(e_out <= 5e-6 && e_lse <= 2e-6, "%s: forward out %.2e lse %.2e", what, e_out, e_lse);
    double e[3] = {max_rel(dq, dq_ref, nq), max_rel(dk, dk_ref, nk), max_rel(dv, dv_ref, nk)};
    CHECK(e[0] <= 5e-6 && e[1] <= 5e-6 && e[2] <= 5e-6, "%s: backward dq %.2e dk %.2e dv %.2e",
          what, e[0], e[1], e[2]);

    /* one thread, and a scratch of one thread's share, give the same bytes as two */
    float *out1 = nans(nq), *lse1 = nans(nl), *dq1 = nans(nq), *dk1 = nans(nk), *dv1 = nans(nk);
    for (int pass = 0; pass < 2; pass++) {
        size_t n = pass ? attention_ws_floats(hd, 1) : nws;
        if (!pass) omp_set_num_threads(1);
        attention_forward(&sh, out1, lse1, q, k, v, ws, n);
        attention_backward(&sh, dq1, dk1, dv1, dout, out1, lse1, q, k, v, ws, n);
        omp_set_num_threads(2);
        bool same = !memcmp(out, out1, nq * 4) && !memcmp(lse, lse1, nl * 4) &&
                    !memcmp(dq, dq1, nq * 4) && !memcmp(dk, dk1, nk * 4) && !memcmp(dv, dv1, nk * 4);
        CHECK(same, "%s: %s differs from two threads", what, pass ? "a one-thread scratch" : "one thread");
    }
    CHECK(attention_forward(&sh, out1, lse1, q, k, v, ws, attention_ws_floats(hd, 1) - 1) == HN_EINVAL,
          "%s: a scratch under one thread's share accepted", what);

    if (seg) { /* nothing leaks across segments: change segment 1's keys and values */
        for (int b = 0; b < B; b++)
            for (int s = 0; s < S; s++)
                if (seg[(size_t)b * S + s] == 1)
                    for (size_t i = 0; i < ks; i++) {
                        k[((size_t)b * S + s) * ks + i] += 0.5f;
                        v[((size_t)b * S + s) * ks + i] -= 0.25f;
                    }
        attention_forward(&sh, out1, lse1, q, k, v, ws, nws);
        bool kept = true, changed = false, any = false;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                size_t o = ((size_t)b * T + t) * qs;
                bool same = !memcmp(out + o, out1 + o, qs * 4);
                if (seg[(size_t)b * S + c.pos0 + t] != 1) kept = kept && same;
                else any = true, changed = changed || !same;
            }
        CHECK(kept && changed == any, "%s: other segments' outputs %s, segment 1's %s", what,
              kept ? "kept" : "CHANGED", changed ? "changed" : "NOT changed");
    }
    free(q), free(k), free(v), free(dout), free(out), free(lse), free(out_ref), free(att);
    free(dq), free(dk), free(dv), free(dq_ref), free(dk_ref), free(dv_ref);
    free(out1), free(lse1), free(dq1), free(dk1), free(dv1), free(seg), free(ws);
}

int main(void) {
    hn_rng_seed(&rng, 77);
    omp_set_num_threads(2);
    for (int portable = 0; portable < 2; portable++) {
        static const int Ts[] = {1, 2, 4, 5, 7, 31, 32, 33, 63, 64, 65, 70, 97, 130};
        for (size_t i = 0; i < sizeof Ts / sizeof *Ts; i++) {
            check_case(portable, (tcase){1, Ts[i], 0, 4, 4, 64, false});
            check_case(portable, (tcase){1, Ts[i], 0, 4, 2, 8, false});
        }
        check_case(portable, (tcase){1, 45, 0, 6, 2, 80, false});   /* hd tail of 16 */
        check_case(portable, (tcase){1, 77, 0, 3, 1, 32, false});   /* one KV head, group of 3 */
        check_case(portable, (tcase){1, 40, 0, 2, 1, 128, false});  /* two column passes */
        check_case(portable, (tcase){3, 37, 0, 4, 2, 32, false});   /* B sequences per call */
        check_case(portable, (tcase){2, 150, 0, 2, 2, 64, false});
        check_case(portable, (tcase){1, 50, 0, 4, 2, 64, true});    /* packed segments */
        check_case(portable, (tcase){1, 37, 0, 3, 3, 20, true});
        check_case(portable, (tcase){2, 100, 0, 4, 1, 80, true});
        check_case(portable, (tcase){2, 3, 0, 2, 1, 64, true});     /* packed, row path */
        check_case(portable, (tcase){1, 1, 63, 4, 2, 64, false});   /* decode step */
        check_case(portable, (tcase){1, 1, 150, 4, 2, 64, false});  /* decode, 3 key tiles */
        check_case(portable, (tcase){1, 3, 140, 2, 2, 80, true});
        check_case(portable, (tcase){1, 17, 40, 4, 4, 64, false});  /* prefill after a prompt */
        check_case(portable, (tcase){1, 33, 20, 4, 2, 64, true});
        check_case(portable, (tcase){1, 64, 100, 4, 2, 32, false}); /* query block past a key tile */
        check_case(portable, (tcase){2, 40, 30, 2, 1, 64, true});
        check_case(portable, (tcase){1, 64, 0, 12, 12, 64, false}); /* the 110M model's heads */
    }
    return test_finish("test_attention");
}
