/* gemm.c — GEMM dispatch (HONE_GEMM / gemm_set_backend), the OpenBLAS
 * backend and the portable reference backend (oneDNN lives in gemm_dnnl.c,
 * Q8_0 weight products in gemm_q8.c).
 * The reference is a straightforward loop nest ordered so the inner loop is
 * contiguous (vectorizable); it is the oracle the faster backends are tested
 * against, not a fast path. */
#include "tensor/gemm.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tensor/gemm_q8.h"

static gemm_backend g_backend = GEMM_N_BACKENDS; /* unset: resolve from env */

static const char *g_names[] = {"ref", "openblas", "dnnl", "dnnl_bf16"};
_Static_assert(sizeof g_names / sizeof g_names[0] == GEMM_N_BACKENDS, "backend names");

gemm_backend gemm_backend_parse(const char *name) {
    for (int i = 0; i < GEMM_N_BACKENDS; i++)
        if (name && !strcmp(name, g_names[i])) return (gemm_backend)i;
    return GEMM_N_BACKENDS;
}

bool gemm_backend_available(gemm_backend b) {
    if (b == GEMM_DNNL || b == GEMM_DNNL_BF16) return gemm_dnnl_available();
    return (unsigned)b < GEMM_N_BACKENDS;
}

/* Default: oneDNN f32 when built in, else OpenBLAS. Both are exact f32;
 * oneDNN runs on libgomp's threads like hone's own kernels (Debian's OpenBLAS
 * is the pthread build: a second pool spinning against the first on 2 vCPUs),
 * is 3-5x faster at LoRA-rank shapes, and a LoRA 4x256 step of the 110M model
 * used ~20% less CPU time with it (docs/bench.md). bf16 stays opt-in: it
 * moves the golden logits by ~0.1 and breaks the bitwise-equivalence tests. */
static gemm_backend resolve_backend(void) {
    gemm_backend b = gemm_backend_parse(getenv("HONE_GEMM"));
    if (b != GEMM_N_BACKENDS && gemm_backend_available(b)) return b;
    return gemm_backend_available(GEMM_DNNL) ? GEMM_DNNL : GEMM_OPENBLAS;
}

gemm_backend gemm_get_backend(void) {
    if (g_backend == GEMM_N_BACKENDS) g_backend = resolve_backend();
    return g_backend;
}

void gemm_set_backend(gemm_backend b) {
    g_backend = gemm_backend_available(b) ? b : GEMM_OPENBLAS;
}

const char *gemm_backend_name(gemm_backend b) {
    return (unsigned)b < GEMM_N_BACKENDS ? g_names[b] : "?";
}

static void gemm_ref(bool ta, bool tb, int M, int N, int K, float alpha, const float *A,
                     int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    #pragma omp parallel for schedule(static) if ((long)M * N * K > 1 << 16)
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f) memset(c, 0, sizeof(float) * N);
        else if (beta != 1.0f) for (int j = 0; j < N; j++) c[j] *= beta;
        for (int k = 0; k < K; k++) {
            float a = alpha * (ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]);
            if (!tb) {
                const float *b = B + (size_t)k * ldb;
                for (int j = 0; j < N; j++) c[j] += a * b[j];
            } else {
                for (int j = 0; j < N; j++) c[j] += a * B[(size_t)j * ldb + k];
            }
        }
    }
}

/* ---- profile: HONE_PROFILE=1 times every product by shape ---- */

typedef struct prof_entry {
    bool ta, tb, w;
    int M, N, K;
    long calls;
    double sec;
} prof_entry;

enum { PROF_MAX = 96 };
static struct {
    int on; /* 0 unknown, 1 on, -1 off */
    int n;
    prof_entry e[PROF_MAX];
} g_prof;

static bool prof_on(void) {
    if (!g_prof.on) g_prof.on = getenv("HONE_PROFILE") && *getenv("HONE_PROFILE") ? 1 : -1;
    return g_prof.on > 0;
}

static double prof_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void prof_add(bool ta, bool tb, bool w, int M, int N, int K, double sec) {
    for (int i = 0; i < g_prof.n; i++) {
        prof_entry *e = &g_prof.e[i];
        if (e->ta == ta && e->tb == tb && e->w == w && e->M == M && e->N == N && e->K == K) {
            e->calls++;
            e->sec += sec;
            return;
        }
    }
    if (g_prof.n < PROF_MAX) g_prof.e[g_prof.n++] = (prof_entry){ta, tb, w, M, N, K, 1, sec};
}

static int prof_cmp(const void *a, const void *b) {
    double x = ((const prof_entry *)a)->sec, y = ((const prof_entry *)b)->sec;
    return x < y ? 1 : x > y ? -1 : 0;
}

void gemm_profile_report(FILE *f) {
    if (!prof_on() || !g_prof.n) return;
    qsort(g_prof.e, (size_t)g_prof.n, sizeof g_prof.e[0], prof_cmp);
    double total = 0;
    for (int i = 0; i < g_prof.n; i++) total += g_prof.e[i].sec;
    fprintf(f, "gemm profile (%s): %.1f ms in products\n", gemm_backend_name(gemm_get_backend()),
            total * 1e3);
    for (int i = 0; i < g_prof.n; i++) {
        const prof_entry *e = &g_prof.e[i];
        fprintf(f, "  %c%c%s M %5d N %5d K %5d  calls %6ld  %8.1f ms  %6.1f GFLOP/s\n",
                e->ta ? 'T' : 'N', e->tb ? 'T' : 'N', e->w ? " w" : "  ", e->M, e->N, e->K,
                e->calls, e->sec * 1e3, 2.0 * e->M * e->N * e->K * e->calls / e->sec * 1e-9);
    }
}

void gemm_profile_reset(void) { g_prof.n = 0; }

static void gemm_f32_run(bool ta, bool tb, int M, int N, int K, float alpha, const float *A,
                         int lda, const float *B, int ldb, float beta, float *C, int ldc);

void gemm_f32(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
    if (!prof_on()) {
        gemm_f32_run(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    double t0 = prof_now();
    gemm_f32_run(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    prof_add(ta, tb, false, M, N, K, prof_now() - t0);
}

static void gemm_f32_run(bool ta, bool tb, int M, int N, int K, float alpha, const float *A,
                         int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* C = beta*C */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] *= beta;
        return;
    }
    gemm_backend b = gemm_get_backend();
    if (b == GEMM_REF) {
        gemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if ((b == GEMM_DNNL || b == GEMM_DNNL_BF16) &&
        gemm_dnnl_run(b == GEMM_DNNL_BF16, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))
        return;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* Decode-sized x·Wᵀ (a few packed rows, beta 0 or 1) goes to gemv.c. The
 * reference backend stays the plain oracle. */
static bool gemv_wanted(bool ta, bool tb, int M, int N, int K, int lda, int ldb, int ldc,
                        float beta) {
    return !ta && M > 0 && M <= GEMV_MAX_M && N > 0 && K > 0 && lda == K &&
           ldb == (tb ? K : N) && ldc == N && (beta == 0.0f || beta == 1.0f) &&
           gemm_get_backend() != GEMM_REF;
}

/* gemm_f32 with B a versioned weight (cached as bf16 by dnnl_bf16). */
static void gemm_f32_w(bool ta, bool tb, int M, int N, int K, const float *A, int lda,
                       const float *B, int ldb, uint64_t version, float beta, float *C, int ldc) {
    double t0 = prof_on() ? prof_now() : 0;
    if (gemv_wanted(ta, tb, M, N, K, lda, ldb, ldc, beta)) {
        const uint16_t *wb = NULL;
        if (gemm_get_backend() == GEMM_DNNL_BF16)
            wb = gemm_dnnl_weight_bf16(B, (size_t)N * K, version);
        if (tb) {
            if (wb) gemv_xwt_bf16(M, N, K, A, wb, C, beta != 0.0f);
            else gemv_xwt_f32(M, N, K, A, B, C, beta != 0.0f);
        } else {
            if (wb) gemv_xw_bf16(M, N, K, A, wb, C, beta != 0.0f);
            else gemv_xw_f32(M, N, K, A, B, C, beta != 0.0f);
        }
        if (t0) prof_add(ta, tb, true, M, N, K, prof_now() - t0);
        return;
    }
    if (M > 0 && N > 0 && K > 0 && gemm_get_backend() == GEMM_DNNL_BF16 &&
        gemm_dnnl_run_w(true, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, version, true, beta, C, ldc)) {
        if (t0) prof_add(ta, tb, true, M, N, K, prof_now() - t0);
        return;
    }
    gemm_f32_run(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
    if (t0) prof_add(ta, tb, true, M, N, K, prof_now() - t0);
}

void gemm_xwt_w(int T, int out, int in, const float *x, const float *W, uint64_t version,
                float *y, bool acc) {
    if (gemm_q8_xwt_w(T, out, in, x, W, version, y, acc)) return;
    gemm_f32_w(false, true, T, out, in, x, in, W, in, version, acc ? 1.0f : 0.0f, y, out);
}

void gemm_xw_w(int T, int out, int in, const float *dy, const float *W, uint64_t version,
               float *dx, bool acc) {
    gemm_f32_w(false, false, T, in, out, dy, out, W, in, version, acc ? 1.0f : 0.0f, dx, in);
}

void gemm_weight_cache_clear(void) {
    gemm_dnnl_cache_clear();
    gemm_q8_cache_clear();
}

size_t gemm_weight_cache_bytes(void) { return gemm_dnnl_cache_bytes() + gemm_q8_cache_bytes(); }

void gemm_xwt(int T, int out, int in, const float *x, const float *W, float *y, bool acc) {
    gemm_f32(false, true, T, out, in, 1.0f, x, in, W, in, acc ? 1.0f : 0.0f, y, out);
}

void gemm_xw(int T, int out, int in, const float *dy, const float *W, float *dx, bool acc) {
    gemm_f32(false, false, T, in, out, 1.0f, dy, out, W, in, acc ? 1.0f : 0.0f, dx, in);
}

void gemm_dw(int T, int out, int in, const float *dy, const float *x, float *dW, bool acc) {
    gemm_f32(true, false, out, in, T, 1.0f, dy, out, x, in, acc ? 1.0f : 0.0f, dW, in);
}
